"""manygil.SharedBuffer: zero-copy memory shared by reference between interpreters."""

import gc
import pickle

import pytest

import helpers
import manygil
from manygil import SharedBuffer, _core


def test_buffer_protocol():
    buf = SharedBuffer(32)
    assert len(buf) == buf.nbytes == 32
    assert bytes(buf) == b"\0" * 32  # zero-filled
    doubles = memoryview(buf).cast("d")
    doubles[1] = 2.5
    assert doubles.tolist() == [0.0, 2.5, 0.0, 0.0]
    view = memoryview(buf)
    view[0:3] = b"abc"
    assert bytes(buf)[:3] == b"abc" and not view.readonly
    assert bytes(view[8:16]) == memoryview(buf).cast("d")[1:2].tobytes()


def test_from_bytes_copies_and_bad_sizes():
    source = bytearray(b"hello")
    buf = SharedBuffer.from_bytes(source)
    source[0] = ord("j")
    assert bytes(buf) == b"hello"
    assert len(SharedBuffer(0)) == 0
    with pytest.raises(ValueError):
        SharedBuffer(-1)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(buf)


def test_a_task_writes_into_the_callers_memory(pool):
    buf = SharedBuffer(1 << 20)
    assert pool.submit(helpers.fill, buf, 7).result() is None
    assert bytes(memoryview(buf)[:4]) == b"\x07" * 4  # written in place: no result carried it back
    assert pool.submit(helpers.buffer_address, buf).result() == helpers.buffer_address(buf)  # same memory


def test_returned_buffer_is_the_same_memory(pool):
    buf = SharedBuffer(8)
    back = pool.submit(helpers.identity, buf).result()
    assert back is not buf and isinstance(back, SharedBuffer)
    memoryview(back)[0] = 42
    assert memoryview(buf)[0] == 42
    nested = pool.submit(helpers.identity, {"k": [buf]}).result()
    assert helpers.buffer_address(nested["k"][0]) == helpers.buffer_address(buf)


def test_buffer_outlives_the_interpreter_that_created_it():
    gc.collect()
    before = _core.live_buffers()
    with manygil.Interpreter() as interp:
        buf = interp.call(helpers.make_buffer, 1000, 9)
    # The creating interpreter has ended; its memory lives on with the caller's wrapper.
    assert bytes(buf) == b"\x09" * 1000
    assert _core.live_buffers() == before + 1
    del buf
    gc.collect()
    assert _core.live_buffers() == before


def test_freed_when_the_last_holder_in_any_interpreter_lets_go():
    gc.collect()
    before = _core.live_buffers()
    interp = manygil.Interpreter()
    buf = SharedBuffer(64)
    interp.call(helpers.keep, buf)  # the worker holds its own wrapper
    del buf
    gc.collect()
    assert _core.live_buffers() == before + 1  # still held by the worker
    interp.close()  # ending the interpreter drops its wrapper
    assert _core.live_buffers() == before


def test_an_exported_view_keeps_the_memory_alive():
    gc.collect()
    before = _core.live_buffers()
    buf = SharedBuffer(16)
    view = memoryview(buf).cast("d")
    del buf
    gc.collect()
    view[1] = 3.0  # still valid memory
    assert view[1] == 3.0 and _core.live_buffers() == before + 1
    view.release()
    del view
    gc.collect()
    assert _core.live_buffers() == before


def test_map_over_buffers_in_place(pool):
    buffers = [SharedBuffer(100) for _ in range(10)]
    list(pool.map(helpers.fill, buffers, range(10)))
    assert [memoryview(b)[0] for b in buffers] == list(range(10))
