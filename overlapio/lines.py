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
    """Collects bytes fed to it and returns the complete lines.

    A line ends with ``b"\\n"``; a ``b"\\r"`` just before it is dropped too, so
    ``b"\\r\\n"`` (HTTP, telnet) works as well. ``max_line`` bounds the memory a
    peer can make it hold: :meth:`feed` raises :class:`LineTooLong` for a line
    longer than that (not counting its end), as soon as it has seen that much.
    """

    def __init__(self, max_line: int = 64 * 1024) -> None:
        if max_line < 1:
            raise ValueError(f"max_line must be at least 1, not {max_line}")
        self.max_line = max_line
        self._partial = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return the lines it completed (possibly none), in order."""
        self._partial += data
        *lines, rest = self._partial.split(b"\n")
        lines = [bytes(line[:-1] if line.endswith(b"\r") else line) for line in lines]
        if len(rest) > self.max_line or any(len(line) > self.max_line for line in lines):
            raise LineTooLong(f"a line longer than {self.max_line} bytes")
        self._partial = bytearray(rest)
        return lines

    def rest(self) -> bytes:
        """The bytes after the last complete line (the start of a body, say), and
        forget them."""
        rest, self._partial = bytes(self._partial), bytearray()
        return rest

    def __len__(self) -> int:
        """How many bytes wait for the end of their line."""
        return len(self._partial)
