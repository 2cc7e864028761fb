"""Split a byte stream into lines: the framing every text protocol needs.

TCP delivers bytes, not messages: one recv may hold half a line, or three lines
and the start of a fourth. :class:`LineBuffer` keeps what is not yet a whole line
and hands out the whole ones. It does no I/O, so it works the same from a callback
or a :meth:`~overlapio.Proactor.wait` loop::

    lines = LineBuffer()

    def on_recv(op):
        for line in lines.feed(buf[:op.nbytes]):
            handle(line)            # bytes, without the b"\\n" (or b"\\r\\n")
        ...
"""
from __future__ import annotations

__all__ = ["LineBuffer", "LineTooLong"]


class LineTooLong(ValueError):
    """More than ``max_line`` bytes arrived without an end of line."""


class LineBuffer:
    """Collects bytes and hands out the complete lines.

    A line ends with ``b"\\n"``; a ``b"\\r"`` just before it is dropped too, so
    ``b"\\r\\n"`` (HTTP, telnet) works as well. ``max_line`` bounds the memory a
    peer can make it hold: a line longer than that (not counting its end) raises
    :class:`LineTooLong` as soon as it is seen.

    :meth:`feed` adds bytes and returns every line they completed. Where the
    stream changes from lines to raw bytes (HTTP's header, then its body), take
    the lines one at a time with :meth:`add` and :meth:`line`, then the bytes
    after them with :meth:`rest`.
    """

    def __init__(self, max_line: int = 64 * 1024) -> None:
        if max_line < 1:
            raise ValueError(f"max_line must be at least 1, not {max_line}")
        self.max_line = max_line
        self._buf = bytearray()
        self._pos = 0  # where the next line starts in _buf

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return the lines now complete (possibly none), in order."""
        self.add(data)
        return list(iter(self.line, None))

    def add(self, data: bytes) -> None:
        """Add ``data`` without taking any line out."""
        self._buf += data

    def line(self) -> "bytes | None":
        """The next complete line, without its end; ``None`` if there is none yet."""
        buf, pos = self._buf, self._pos
        end = buf.find(b"\n", pos)
        if end < 0:
            if len(buf) - pos > self.max_line:
                raise LineTooLong(f"a line longer than {self.max_line} bytes")
            del buf[:pos]  # keep only the unfinished line
            self._pos = 0
            return None
        self._pos = end + 1
        if end > pos and buf[end - 1] == 13:  # b"\r"
            end -= 1
        if end - pos > self.max_line:
            raise LineTooLong(f"a line longer than {self.max_line} bytes")
        return bytes(buf[pos:end])

    def rest(self) -> bytes:
        """The bytes after the last line taken out (the start of a body, say), and
        forget them."""
        rest = bytes(self._buf[self._pos:])
        self._buf, self._pos = bytearray(), 0
        return rest

    def __len__(self) -> int:
        """How many bytes are held (not yet taken out as lines)."""
        return len(self._buf) - self._pos
