"""overlapio.lines: whole lines out of a byte stream, however it is cut."""
from __future__ import annotations

import random

import pytest

from overlapio.lines import LineBuffer, LineTooLong


def test_lines_come_out_whole_however_the_stream_is_cut():
    lines = [b"x" * random.Random(i).randrange(0, 300) + b"%d" % i for i in range(200)]
    stream = b"".join(line + (b"\r\n" if i % 3 == 0 else b"\n") for i, line in enumerate(lines)) + b"tail"
    for seed in range(20):
        rng = random.Random(seed)
        buf, out, pos = LineBuffer(max_line=400), [], 0
        while pos < len(stream):
            step = rng.randrange(1, 700)
            out += buf.feed(stream[pos:pos + step])
            pos += step
        assert out == lines
        assert len(buf) == 4 and buf.rest() == b"tail" and len(buf) == 0


def test_only_the_last_carriage_return_before_the_newline_goes():
    assert LineBuffer().feed(b"a\r\r\nb\rc\n\n") == [b"a\r", b"b\rc", b""]


def test_rest_is_what_follows_the_last_line():
    buf = LineBuffer()
    assert buf.feed(b"HTTP/1.0 200 OK\r\n\r\nbody") == [b"HTTP/1.0 200 OK", b""]
    assert buf.rest() == b"body"


def test_lines_one_at_a_time_then_the_raw_bytes_after_them():
    buf = LineBuffer()
    buf.add(b"HTTP/1.0 200 OK\r\nContent-Length: 12\r")
    assert [buf.line(), buf.line()] == [b"HTTP/1.0 200 OK", None]
    buf.add(b"\n\r\nline 1\nline 2\n")  # the body has lines of its own: they stay bytes
    assert [buf.line(), buf.line()] == [b"Content-Length: 12", b""]
    assert len(buf) == 14 and buf.rest() == b"line 1\nline 2\n" and buf.line() is None


def test_a_line_too_long_is_refused_as_soon_as_it_is():
    buf = LineBuffer(max_line=5)
    assert buf.feed(b"12345\r\n12") == [b"12345"]
    with pytest.raises(LineTooLong):
        buf.feed(b"3456")  # 6 bytes and no end yet
    with pytest.raises(LineTooLong):
        LineBuffer(max_line=5).feed(b"123456\n")
    with pytest.raises(ValueError):
        LineBuffer(max_line=0)
