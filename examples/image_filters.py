"""Pure-Python image code for examples/images.py (a module, so workers import it by reference)."""


def paint(buf, size, seed):
    """Fills an RGB image with a deterministic pattern."""
    view = memoryview(buf)
    row = bytearray(size * 3)
    for y in range(size):
        for x in range(size):
            i = 3 * x
            row[i] = (x * 7 + y * 3 + seed) & 0xFF
            row[i + 1] = (x * y + seed * 5) & 0xFF
            row[i + 2] = (x ^ y ^ seed) & 0xFF
        view[y * size * 3:(y + 1) * size * 3] = row


def _luma(data):
    """Replaces each RGB pixel of a bytearray by its luma (ITU-R BT.601, integer weights)."""
    for i in range(0, len(data), 3):
        y = (299 * data[i] + 587 * data[i + 1] + 114 * data[i + 2]) // 1000
        data[i] = data[i + 1] = data[i + 2] = y


def grayscale(buf):
    """The filter in place, on shared memory."""
    view = memoryview(buf)
    data = bytearray(view)  # one read; the loop is pure Python
    _luma(data)
    view[:] = data  # one write back into the shared memory


def grayscale_copy(pixels):
    """The same filter for processes: bytes in, bytes out."""
    data = bytearray(pixels)
    _luma(data)
    return bytes(data)
