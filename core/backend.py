"""The Backend contract: the only platform-specific room, and everything a backend
author needs to know about the core.

Division of labour
==================
The core (:class:`~overlapio.Proactor`) checks arguments, counts ops, runs timers
(``sleep`` and every op's ``timeout=``), ``post()``, cancellation of timers,
callback dispatch and socket ownership -- once, not in every backend. A backend
performs socket ops and reports each one finished exactly once. It never raises
out of a submit method for an I/O failure: an I/O failure is a completion.
docs/semantics.md is the full contract the conformance suite checks
(``python -m pytest tests/conformance --backend-class pkg.module:YourBackend``).

Construction
============
``Backend(complete, ready)``, called by the Proactor (a subclass that overrides
``__init__`` must pass both on to ``super().__init__``):

- ``complete(op, value, error)`` -- the one general way to finish an op: ``error``
  is ``None`` for success (``value`` is then the result), else an exception
  (``value`` is ignored). Call it only on the Proactor's thread, from inside a
  method the core called (it may be inside the submit method itself: the core
  still surfaces the op only later, from ``wait()``/``run()``).
- ``ready`` -- the Proactor's ready queue (a ``collections.deque``), kept as
  ``self._ready``: the *fast path*. A recv or send that succeeded may be finished
  by ``op.nbytes = op._value = n; self._ready.append(op)``, which is all that
  ``complete`` does for it, minus a call per message. Nothing else may take the
  fast path (accept and connect results need the core's bookkeeping; errors and
  cancellations go through ``complete``). Never read from, reorder or clear it.

A backend written for the earlier one-argument constructor (``__init__(self,
complete)``) still works: the Proactor sees the signature, calls ``cls(complete)``
and sets ``_ready`` afterwards, with a ``DeprecationWarning``.

The Op, seen from a backend
===========================
Read, never write (the core set them): ``op.kind``, ``op.sock``, ``op.buf`` (the
recv buffer, or the send data exactly as the caller gave it), ``op.callback``,
``op.tag`` (``op.buf`` of a shutdown op is ``how``; a sendto's ``op._view`` is ``(data,
address)``), and ``op._view``: for a
send, the data as flat bytes (``bytes``, ``bytearray`` or a 1-D byte
``memoryview``; ``len()`` is the byte count) -- send this, not ``op.buf``.
A recv or send given a *list* of buffers has ``op.buf`` that list and ``op._view``
a tuple of flat byte memoryviews of its non-empty buffers, in order (writable for
a recv; never without bytes: the core completes such an op itself); for every
other recv ``op._view`` is ``None``. Such an op moves its bytes through the views
in order as one operation (``recvmsg_into``/``sendmsg``, several WSABUFs), with
the same ``nbytes`` contract; its value is the total count.

Write: ``op.nbytes`` (bytes transferred so far; for a send that ends cancelled or
failed, how many of its bytes the OS took), and ``op._value`` only on the fast
path above.

Yours: ``op._bk``, the backend's private per-op slot (a memoryview for partial
sends, an OVERLAPPED slot, a submission queue entry ...). The core sets it to
``None`` whenever the op is submitted (and again when it is resubmitted) and
never reads it. Release what it holds before completing the op if it pins
memory.

The core's own slots, never touched by a backend: ``_error``, ``_inflight`` (the
Proactor the op is in flight in, or the record of the submission's timeout, until
it surfaces), and ``_value`` outside the fast path. Posted values are kept by the
core outside the op.

An op is submitted again with ``Proactor.resubmit`` only after it completed and
surfaced: the backend then sees the same Op object in ``recv``/``send``/``accept``
once more, exactly as if it were new.

Rules a backend keeps
=====================
- Each op is completed exactly once per submission, with its real outcome.
- ``complete``/``ready`` only on the Proactor's thread; only ``wakeup()`` is
  called from other threads (and from signal handlers: keep it lock-free, or at
  least never block on a lock the interrupted thread may hold; the core's SIGINT
  handler calls it only while the Proactor's thread is inside ``poll()``).
- Nothing to do for Ctrl-C: a KeyboardInterrupt that lands in a backend method
  the core called is deferred by the core to a point between steps
  (core/interrupts.py). A program's own SIGINT handler that raises can still
  interrupt any line.
- ``cancel(op)`` asks; the op completes later or at once (cancelled, with an
  ``OperationCancelled``, or with its real result if it had already finished: no
  data is ever lost to a cancel). The core turns the cancellation of an op whose
  ``timeout=`` ran out into a ``TimeoutError`` itself; a backend does nothing
  special for timeouts.
- ``close_socket(sock)`` completes every op pending on ``sock`` (cancelled), then
  closes it so that the peer sees an orderly close.
- ``close()`` completes every op still pending (cancelled) and releases every
  descriptor, handle, event and thread the backend holds.
- Errors are reported as the ``OSError`` subclasses of ``overlapio.core.errors``
  (``os_error(code)``, ``normalize(exc)``): the same class for the same situation
  on every backend.
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

    #: True if recv/send handle a list of buffers (``op._view`` a tuple); for a
    #: backend that leaves it False the core refuses list ops (NotImplementedError)
    multi_buffer = False

    @classmethod
    def unavailable_reason(cls) -> Optional[str]:
        """``None`` if the backend can run here, else a one-line reason
        (saying what is missing)."""
        return None

    def __init__(self, complete: Complete, ready: "Optional[deque[Op]]" = None) -> None:
        """``complete`` and ``ready`` as the module doc says. ``ready`` is optional
        only for subclasses still written to the one-argument constructor (the
        Proactor sets ``_ready`` for them afterwards)."""
        self._complete = complete
        #: the Proactor's ready queue: the fast path for a successful recv or send
        self._ready: "deque[Op]" = deque() if ready is None else ready

    # -- sockets ------------------------------------------------------------
    def socket(self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM, proto: int = 0) -> socket.socket:
        """A new socket prepared for this backend."""
        raise NotImplementedError

    def listen(self, sock: socket.socket, backlog: int) -> None:
        """Put a bound socket into listening state (plus any backend set-up)."""
        sock.listen(backlog)

    # -- ops (the core has checked the arguments) ---------------------------------
    def accept(self, op: Op) -> None:
        """Accept one connection on ``op.sock`` (a listening socket); value
        ``(conn, address)`` with ``conn`` prepared for this backend. A client that
        resets before it is accepted must not fail the op."""
        raise NotImplementedError

    def connect(self, op: Op, address: Any) -> None:
        """Connect ``op.sock`` to the resolved ``address``; value: ``op.sock``."""
        raise NotImplementedError

    def recv(self, op: Op) -> None:
        """Receive into ``op.buf`` (a non-empty writable buffer), or into the
        views of ``op._view`` in order when it is not ``None`` (a list of
        buffers); value: the byte count, 0 at end of stream."""
        raise NotImplementedError

    def send(self, op: Op) -> None:
        """Send all of ``op._view`` (non-empty flat bytes: ``len()`` is the byte
        count; or a tuple of such views, for a list of buffers, sent in order);
        value: the byte count. Partial sends are the backend's business."""
        raise NotImplementedError

    def readable(self, op: Op) -> None:
        """Complete ``op`` (value ``None``) once ``op.sock`` has something to read
        -- data, end of stream, or an error -- without reading it and without a
        buffer in the OS (readiness; a 0-byte ``WSARecv``; a poll request). Every
        such op pending on a socket completes. A backend that does not override
        this has no readable op: ``Proactor.readable`` then raises
        ``NotImplementedError`` at once."""
        raise NotImplementedError

    def shutdown(self, op: Op) -> None:
        """Half-close ``op.sock`` (``op.buf`` is ``socket.SHUT_WR``, checked by the
        core) once every send submitted on it before this op has completed;
        value ``None``. From this op's submission on, a send on ``op.sock``
        completes with ``errors.send_after_shutdown()`` and ``try_send`` raises
        it. Cancelled while it waits for earlier sends, it shuts nothing down
        and sends work again. A backend without it leaves this method out: the
        core then raises ``NotImplementedError`` for ``Proactor.shutdown``."""
        raise NotImplementedError

    def recvfrom(self, op: Op) -> None:
        """Receive one datagram into ``op.buf`` (a non-empty writable buffer) on
        the datagram socket ``op.sock``; value ``datagram(n, address,
        truncated)`` (``core.op.datagram``; set ``op.nbytes = n`` too). A datagram larger than the buffer completes with
        the bytes that fit and ``truncated`` true, never with an error. Several
        pending recvfroms complete in submission order, one datagram each. An
        ICMP error for an earlier send (port/net unreachable) must never fail
        one: skip it (POSIX: ECONNREFUSED on a connected socket) or switch it
        off (Windows: SIO_UDP_CONNRESET, SIO_UDP_NETRESET). Optional: without
        it the core raises ``NotImplementedError`` for ``Proactor.recvfrom``."""
        raise NotImplementedError

    def sendto(self, op: Op) -> None:
        """Send ``op._view``, a pair ``(data, address)`` -- ``data`` flat bytes as
        for a send, possibly empty (an empty datagram), ``address`` checked
        numeric by the core -- as one datagram; value ``len(data)`` (set
        ``op.nbytes``). Pending sendtos on one socket go out in submission
        order. Optional, as :meth:`recvfrom`."""
        raise NotImplementedError

    def try_send(self, sock: socket.socket, data: Any) -> int:
        """Send what ``sock`` takes now, without waiting; return the byte count (0
        if it would block, or if a send op is still pending on ``sock``: the
        stream keeps submission order). ``data`` is non-empty and checked by the
        core: ``bytes``, a ``bytearray`` or a C-contiguous ``memoryview`` (of any
        format: hand it to one OS call, which counts bytes). A failed connection
        raises its ``OSError``, normalised as a send op's error would be.

        This default sends nothing, which is always correct (the caller hands
        the data to :meth:`send`) but never fast; a backend should override it
        (the conformance suite expects an idle socket to take data at once)."""
        return 0

    def cancel(self, op: Op) -> None:
        """Ask for the pending ``op`` to end; it completes later (or at once),
        cancelled or with its real result if it had already finished."""
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
        """Make a blocked (or the next) ``poll()`` return soon. Thread-safe, and
        safe from a signal handler."""
        raise NotImplementedError

    def close(self) -> None:
        """Complete every pending op as cancelled and release every descriptor,
        handle, event and thread the backend holds."""
        raise NotImplementedError
