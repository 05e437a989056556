"""Writes the fuzzers' seed corpus (tests/fuzz/corpus/<target>/): payloads of typical and edge values.

  .venv/bin/python tests/fuzz/make_corpus.py
"""

import hashlib
import os

from manygil import _core

SEEDS = [
    None, True, False, 0, -1, 127, 128, -(2**63), 2**63 - 1, 2**64, -(2**100), 0.5, float("inf"), -0.0,
    "", "key", "caf\u00e9", "\ud800", "x" * 100, b"", b"\x00\xff",
    (), (1,), [], [1, 2.5, "x"], {}, {"a": 1, "b": [None, True]}, {(1, "k"): b"v"},
    [{"id": i, "name": f"n{i}", "score": i / 3} for i in range(5)],
    [[[[[]]]]], {"k" * 70: "long key"},
]

HTTP_SEEDS = [
    b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /a?b=c HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.1\r\n\r\n",
    b"POST /u HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello",
    b"POST /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nTrailer: t\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
    b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    b"HEAD / HTTP/1.1\r\nX-A: 1\r\nX-B:\r\n\r\n",
    # Issue 23: trailers, chunk extensions, methods, targets and versions by RFC 9112.
    b"POST /t HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nHost: evil\r\n"
    b"Authorization: x\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b;c\r\nhello\r\n1; x = y\r\n!\r\n"
    b"2;q=\"a; b\"\r\n!!\r\n0\r\n\r\n",
    b"FOO / HTTP/1.1\r\nHost: h\r\n\r\n",
    b"-BLARGH / HTTP/1.1\r\nHost: h\r\n\r\n",
    b"PURGE /cache HTTP/1.1\r\nHost: h\r\n\r\n",
    b"A" * 100 + b" / HTTP/1.1\r\nHost: h\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\nGET * HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET http://h:80/a?b#c HTTP/1.1\r\nHost: h\r\n\r\nPUT s://]ufd/: HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /foo#frag HTTP/1.2\r\nHost: h\r\n\r\nGET /foo HTTP/2.0\r\nHost: h\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
]


def ws_frame(opcode: int, payload: bytes, fin: bool = True, mask: bool = True, rsv: int = 0) -> bytes:
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    m = 0x80 if mask else 0
    n = len(payload)
    if n < 126:
        head += bytes([m | n])
    elif n < 65536:
        head += bytes([m | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([m | 127]) + n.to_bytes(8, "big")
    key = b"\x12\x34\x56\x78"
    if not mask:
        return head + payload
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


# Client frame streams for fuzz_websocket_frames: whole messages, fragments with pings between,
# closes, and each protocol error the front end answers.
WS_SEEDS = [
    ws_frame(1, b"hello") + ws_frame(2, b"\x00\xff") + ws_frame(8, b"\x03\xe8bye"),
    ws_frame(1, b"one ", fin=False) + ws_frame(9, b"p") + ws_frame(0, b"two", fin=False) + ws_frame(0, b"!"),
    ws_frame(2, b"x" * 300) + ws_frame(10, b"pong"),
    ws_frame(1, b"unmasked", mask=False),
    ws_frame(3, b"bad opcode"),
    ws_frame(1, b"rsv", rsv=4),
    ws_frame(9, b"fragmented ping", fin=False),
    ws_frame(9, b"p" * 126),
    ws_frame(1, "caf\u00e9".encode()[:4], fin=False) + ws_frame(0, "caf\u00e9".encode()[4:]),
    ws_frame(1, b"\xc3\x28"),
    ws_frame(2, b"y" * 3000),
    ws_frame(8, b"\x03\xee"),
    ws_frame(0, b"lonely continuation"),
]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    for target in ("fuzz_payload_value", "fuzz_payload_python"):
        out = os.path.join(here, "corpus", target)
        os.makedirs(out, exist_ok=True)
        for value in SEEDS:
            data = _core._payload_bytes(value)
            with open(os.path.join(out, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
                f.write(data)
    out = os.path.join(here, "corpus", "fuzz_http_request")
    os.makedirs(out, exist_ok=True)
    for request in HTTP_SEEDS:
        data = bytes([7]) + request  # the first byte picks the piece size
        with open(os.path.join(out, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
            f.write(data)
    out = os.path.join(here, "corpus", "fuzz_websocket_frames")
    os.makedirs(out, exist_ok=True)
    for data in WS_SEEDS:
        with open(os.path.join(out, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
