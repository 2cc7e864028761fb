"""The Backend contract: the only platform-specific room.

A backend performs socket ops and reports each one finished exactly once by
calling ``complete(op, value, error)``, the function the Proactor hands it. A
recv or send that succeeded may take the fast path instead: set ``op.nbytes``
and ``op._value`` to the byte count and append the op to ``self._ready`` (the
Proactor's ready queue), which is what ``complete`` would do, minus a call per
message. Every other completion goes through ``complete``.
Timers, ``post()``, callback dispatch, argument checking and bookkeeping live in
the core, once, not in every backend. docs/semantics.md is the full contract the
conformance suite checks.

Rules a backend keeps:
- ``complete`` may be called from inside a submit method (an op the OS finished
  at once); the core still surfaces it only from ``wait()``/``run()``.
- ``complete`` is only ever called on the Proactor's thread (inside a method the
  core called); only ``wakeup()`` is called from other threads.
- ``cancel(op)`` asks; the op completes later (cancelled, or with its real result
  if it had already finished: no data is ever lost to a cancel).
- ``close_socket(sock)`` completes every op pending on ``sock`` (cancelled), then
  closes it so that the peer sees an orderly close.
- ``close()`` completes every op still pending (cancelled) and releases every
  descriptor, handle and event the backend holds.
"""
from __future__ import annotations

import socket
from collections import deque
from typing import Any, Callable, Optional

from .op import Op

Complete = Callable[[Op, Any, Optional[BaseException]], None]


class Backend:
    """Base class of backends. Subclasses implement every method below."""

    #: the registry name (``OVERLAPIO_BACKEND=<name>``, ``Proactor(backend=<name>)``)
    name = ""

    @classmethod
    def unavailable_reason(cls) -> Optional[str]:
        """``None`` if the backend can run here, else a one-line reason
        (saying what is missing)."""
        return None

    def __init__(self, complete: Complete) -> None:
        self._complete = complete
        #: the Proactor's ready queue (set by the Proactor), for the fast path above
        self._ready: "deque[Op]" = deque()

    # -- sockets ------------------------------------------------------------
    def socket(self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM, proto: int = 0) -> socket.socket:
        """A new socket prepared for this backend."""
        raise NotImplementedError

    def listen(self, sock: socket.socket, backlog: int) -> None:
        """Put a bound socket into listening state (plus any backend set-up)."""
        sock.listen(backlog)

    # -- ops (the core has checked the arguments) ---------------------------------
    def accept(self, op: Op) -> None:
        """Accept one connection on the listener ``op.sock``; value ``(conn, address)``
        with ``conn`` prepared for this backend. A client that resets before it is
        accepted must not fail the op."""
        raise NotImplementedError

    def connect(self, op: Op, address: Any) -> None:
        """Connect ``op.sock`` to the resolved ``address``; value: ``op.sock``."""
        raise NotImplementedError

    def recv(self, op: Op) -> None:
        """Receive into ``op.buf`` (a non-empty writable buffer)."""
        raise NotImplementedError

    def send(self, op: Op) -> None:
        """Send all of ``op.buf`` (non-empty); value: its length in bytes.
        On entry ``op._bk`` holds the data as flat bytes (``bytes``, ``bytearray``
        or a byte ``memoryview``: ``len()`` is the byte count)."""
        raise NotImplementedError

    def try_send(self, sock: socket.socket, data: Any) -> int:
        """Send what ``sock`` takes now, without waiting; return the byte count (0
        if it would block, or if a send op is still pending on ``sock``: the
        stream keeps submission order). A failed connection raises its
        ``OSError``, normalised as a send op's error would be. ``data`` is
        non-empty and whatever the caller passed: a ``TypeError``,
        ``ValueError`` or ``BufferError`` from the OS call is the core's to
        explain.

        This default sends nothing, which is always correct (the caller hands
        the data to :meth:`send`) but never fast; a backend should override it
        (the conformance suite expects an idle socket to take data at once)."""
        return 0

    def cancel(self, op: Op) -> None:
        """Ask for the pending ``op`` to end; it completes later, cancelled or with
        its real result if it had already finished."""
        raise NotImplementedError

    def close_socket(self, sock: socket.socket) -> None:
        """Complete every op pending on ``sock`` (cancelled, or with its real result
        if the OS had already finished it), then close it; also when it was already
        closed behind the backend's back."""
        raise NotImplementedError

    # -- the loop -----------------------------------------------------------------
    def poll(self, timeout: Optional[float]) -> None:
        """Wait up to ``timeout`` seconds (``None``: no limit; ``0``: don't block) for
        progress, completing what finished. Returns early after ``wakeup()``."""
        raise NotImplementedError

    def wakeup(self) -> None:
        """Make a blocked (or the next) ``poll()`` return soon. Thread-safe."""
        raise NotImplementedError

    def close(self) -> None:
        """Complete every pending op as cancelled and release every descriptor,
        handle, event and thread the backend holds."""
        raise NotImplementedError
