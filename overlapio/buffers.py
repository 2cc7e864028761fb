"""Receive buffers shared by many connections, for servers with idle clients.

A recv pending on a quiet connection holds its buffer all that time, so a
buffer per connection costs its size for every idle client. Instead, wait with
:meth:`~overlapio.Proactor.readable` (no buffer), then take a buffer from a
:class:`BufferPool` for the recv, which completes at once (the data is there),
and give it back once its bytes are used (echoed, parsed, copied)::

    pool = BufferPool(65536)

    def on_readable(op):
        if op.exception:
            px.close(sock)
            return
        buf = pool.take()
        px.recv(sock, buf, lambda op: on_recv(op, buf))

    def on_recv(op, buf):
        ...                          # use buf[:op.nbytes]
        pool.give(buf)
        px.resubmit(waiter)          # the readable op: wait for the next data

A buffer must go back only once nothing uses it any more (a send of a view of
it must have completed): the pool hands it out again at once.
"""
from __future__ import annotations

__all__ = ["BufferPool"]


class BufferPool:
    """``take()`` a ``bytearray`` of ``size`` bytes, ``give()`` it back when done.

    Memory follows the connections *reading at once*, not the connections open:
    buffers are made on demand, and at most ``keep`` given-back ones are kept for
    reuse (the rest are freed, so a burst does not stay allocated).
    """

    __slots__ = ("size", "keep", "_free")

    def __init__(self, size: int = 65536, keep: int = 16) -> None:
        if size < 1 or keep < 0:
            raise ValueError(f"BufferPool needs size >= 1 and keep >= 0, not {size}, {keep}")
        self.size = size
        self.keep = keep
        self._free: list[bytearray] = []

    def take(self) -> bytearray:
        """A buffer of ``size`` bytes, yours until you :meth:`give` it back."""
        free = self._free
        return free.pop() if free else bytearray(self.size)

    def give(self, buf: bytearray) -> None:
        """Hand back a buffer :meth:`take` gave (nothing may use it any more)."""
        if len(self._free) < self.keep:
            self._free.append(buf)

    def __len__(self) -> int:
        """How many given-back buffers wait for reuse."""
        return len(self._free)
