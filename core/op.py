"""``Op``: one submitted operation, and its own completion record.

A completion is not a second object: ``Proactor.wait()`` hands back the Ops that
finished and a callback receives the Op itself (one allocation per operation on
the hot path).
"""
from __future__ import annotations

import enum
from typing import Any, Callable, Optional

from .errors import OperationCancelled

__all__ = ["Op", "OpKind", "Callback", "Datagram", "datagram"]


class OpKind(enum.IntEnum):
    """What an Op does."""

    ACCEPT = 1
    CONNECT = 2
    RECV = 3
    SEND = 4
    SLEEP = 5
    POST = 6
    READABLE = 7
    SHUTDOWN = 8
    RECVFROM = 9
    SENDTO = 10
    RESOLVE = 11


Callback = Callable[["Op"], Any]

_PENDING = object()  # sentinel for "no value yet"


class _OpType(type):
    """Op's type: ``Op(kind, sock, buf, tag, callback)`` is built here, so that Op
    itself has neither ``__init__`` nor ``__new__`` and :data:`new_op` makes a bare
    Op in C alone (``object.__new__(Op)`` costs more, and an ``__init__`` a second
    interpreter frame): the per-message path of ``Proactor.recv()``/``send()``."""

    def __call__(cls, kind: OpKind, sock: Any, buf: Any, tag: Any, callback: Optional[Callback]) -> "Op":
        # Proactor.recv()/send() set these same fields inline (the per-message path);
        # tests/test_core.py::test_inline_ops_set_every_field fails if they drift apart.
        op = type.__call__(cls)
        op.kind = kind
        op.sock = sock
        op.buf = buf
        op.tag = tag
        op.callback = callback
        op.nbytes = 0
        op._value = _PENDING
        op._error = None
        # core: the submission's record until the op surfaces (handed to its callback or
        # returned by wait()): its Proactor, or the record of its timeout= (which names
        # the Proactor); None before and after. resubmit, cancel and timers read it.
        op._inflight = None
        op._view = None  # core: a send's data as flat bytes (what the backend sends)
        op._bk = None  # the backend's own per-op state; the core only resets it to None
        return op


class Op(metaclass=_OpType):
    """One operation submitted to a :class:`~overlapio.Proactor`.

    Attributes set at submission:
      ``kind`` (:class:`OpKind`), ``sock`` (the socket, or ``None`` for sleep/post),
      ``buf`` (the recv buffer or the send data), ``tag`` (anything of the caller's),
      ``callback`` (called with the Op once it completes, or ``None``).

    Once done:
      ``result`` is the value, or raises the op's exception;
      ``exception`` is that exception (``None`` on success);
      ``nbytes`` is how many bytes a recv/send transferred (for a cancelled send,
      how much went out before the cancel: the rest did not).

    Values by kind: ACCEPT ``(conn, address)``; CONNECT the connected socket;
    RECV the byte count ``n`` (``buf[:n]`` holds the data; ``0`` means end of
    stream, unless the buffer itself was empty); SEND ``len(data)``; SLEEP
    ``None``; POST the posted value; READABLE ``None`` (the socket has something
    to read: nothing was read); SHUTDOWN ``None``; RECVFROM a
    :class:`Datagram` ``(nbytes, address)``; SENDTO ``len(data)``; RESOLVE the
    list ``socket.getaddrinfo`` returns.

    Ops are made by the Proactor's methods; Op is not meant to be subclassed
    (its type builds every Op with the fields above, and no ``__init__`` of a
    subclass would run).
    """

    # The core's slots and the backend's: core/backend.py documents who may read and
    # write each one.
    __slots__ = ("kind", "sock", "buf", "tag", "callback", "nbytes", "_value", "_error", "_inflight", "_view",
                 "_bk", "__weakref__")

    @property
    def done(self) -> bool:
        """True once the op has completed (successfully, with an error, or cancelled)."""
        return self._value is not _PENDING or self._error is not None

    @property
    def cancelled(self) -> bool:
        """True if the op completed as cancelled/aborted."""
        return isinstance(self._error, OperationCancelled)

    @property
    def exception(self) -> Optional[BaseException]:
        """The op's exception, or ``None`` if it succeeded. Raises if still pending."""
        # A success is tested first, in one read: a value is set. Without one, the op
        # failed (a failure sets no value: see Proactor._complete) or is still pending.
        if self._value is not _PENDING:
            return self._error
        error = self._error
        if error is None:
            raise RuntimeError(f"{self!r} is still pending")
        return error

    @property
    def result(self) -> Any:
        """The op's value; raises its exception if it failed or was cancelled."""
        value = self._value
        if value is _PENDING:  # failed (a failure sets no value: see Proactor._complete) or pending
            if self._error is not None:
                raise self._error
            raise RuntimeError(f"{self!r} is still pending")
        return value

    def __await__(self):  # type: ignore[no-untyped-def]
        """``await op`` inside overlapio's asyncio event loop (:mod:`overlapio.asyncio`):
        the op's result, or its exception. The op must have no callback."""
        from ..asyncio import op_future  # the core itself does not need asyncio

        return op_future(self).__await__()

    def __repr__(self) -> str:
        if not self.done:
            state = "pending"
        elif self._error is not None:
            state = f"error={self._error!r}"
        else:
            state = f"result={self._value!r}"
        tag = f" tag={self.tag!r}" if self.tag is not None else ""
        return f"<Op {self.kind.name}{tag} {state}>"


#: A new Op with no field set (the caller sets every one): type.__call__ itself,
#: which skips _OpType.__call__.
new_op = type.__call__.__get__(Op)


class Datagram(tuple):
    """A recvfrom's value: the pair ``(nbytes, address)`` (so ``n, addr =
    op.result`` works), with ``truncated``: True when the datagram was larger
    than the buffer, which then holds its first ``nbytes`` bytes (the rest is
    gone, as the OS drops it)."""

    __slots__ = ()
    truncated = False

    def __new__(cls, nbytes: int, address: Any) -> "Datagram":
        return tuple.__new__(cls, (nbytes, address))

    @property
    def nbytes(self) -> int:
        """The bytes of the datagram now in the buffer (``self[0]``)."""
        return self[0]

    @property
    def address(self) -> Any:
        """The sender's address, in its family's usual tuple form (``self[1]``)."""
        return self[1]

    def __repr__(self) -> str:
        return f"Datagram(nbytes={self[0]}, address={self[1]!r}{', truncated' if self.truncated else ''})"


class _TruncatedDatagram(Datagram):
    __slots__ = ()
    truncated = True  # a class attribute: no per-datagram cost either way


def datagram(nbytes: int, address: Any, truncated: Any) -> Datagram:
    """The value a backend completes a recvfrom with (it sets ``op.nbytes`` too)."""
    return (_TruncatedDatagram if truncated else Datagram)(nbytes, address)
