"""What an op's completion means, one finisher per op kind: each takes the
backend, the slot, the error code (0 for success) and the byte count that
``WSAGetOverlappedResult`` gave, and finishes the op -- or issues its call again
(the rest of a short send, an accept whose client reset)."""
from __future__ import annotations

from typing import Any

from ...core.errors import OperationCancelled, os_error
from ...core.op import OpKind
from .api import lib
from .ops import ACCEPT_RETRY, MSGSIZE
from .slots import Slot

_SOL_SOCKET = lib.SOL_SOCKET


def readable(bk: Any, slot: Slot, err: int, n: int) -> None:
    bk._finish(slot, None, bk._error(slot, err) if err else None)


def transferred(bk: Any, slot: Slot, err: int, n: int) -> None:
    """A sendto's, and a recv's: the byte count, or the error."""
    if err:
        bk._finish(slot, None, bk._error(slot, err))
    else:
        bk._slot_ops[slot.n].nbytes = n
        bk._finish(slot, n, None)


def recv(bk: Any, slot: Slot, err: int, n: int) -> None:
    # a datagram socket's recv that did not take all of it: the bytes that fit, as POSIX gives them
    transferred(bk, slot, 0 if err == MSGSIZE else err, n)


def send(bk: Any, slot: Slot, err: int, n: int) -> None:
    slot.sent += n
    bk._slot_ops[slot.n].nbytes = slot.sent
    if err:
        bk._finish(slot, None, bk._error(slot, err))
    elif slot.sent >= slot.total:
        bk._finish(slot, slot.total, None)
    elif slot.closing or slot.cancelled:
        bk._finish(slot, None, OperationCancelled("send cancelled"))
    elif n == 0:
        bk._finish(slot, None, os_error(lib.WSAECONNRESET, windows=True, what="send"))  # no progress
    elif _later_send_in_flight(bk, slot):
        # The rest would go out after a later send: the stream is already
        # broken (Windows does not do this on stream sockets: all or error).
        bk._finish(slot, None, os_error(lib.WSAECONNABORTED, windows=True,
                                        what="short send with later sends in flight"))
    else:  # a short count: resubmit the rest, same slot
        try:
            err = bk._started(slot, bk._issue_send(slot))
        except BaseException:
            bk._rescue(slot)
            raise
        if err is not None:
            bk._finish(slot, None, bk._error(slot, err))


def _later_send_in_flight(bk: Any, slot: Slot) -> bool:
    mine = bk._by_sock.get(slot.sock, [])
    return any(other.kind is OpKind.SEND for other in mine[mine.index(slot) + 1:])


def recvfrom(bk: Any, slot: Slot, err: int, n: int) -> None:
    if err and err != MSGSIZE:
        bk._finish(slot, None, bk._error(slot, err))
    else:
        bk._finish_datagram(slot, n, err == MSGSIZE)


def connect(bk: Any, slot: Slot, err: int, n: int) -> None:
    api = bk.api
    if not err and api.setsockopt(slot.handle, _SOL_SOCKET, lib.SO_UPDATE_CONNECT_CONTEXT, bk._null, 0):
        err = api.WSAGetLastError()
    if err:
        bk._finish(slot, None, bk._error(slot, err))
    elif slot.closing:
        bk._finish(slot, None, OperationCancelled("socket closed"))
    else:
        bk._finish(slot, bk._slot_ops[slot.n].sock, None)


def accept(bk: Any, slot: Slot, err: int, n: int) -> None:
    api, ffi = bk.api, bk.ffi
    if not err:
        conn = slot.accept_sock
        listen_handle = ffi.new("SOCKET *", slot.handle)
        if api.setsockopt(conn.fileno(), _SOL_SOCKET, lib.SO_UPDATE_ACCEPT_CONTEXT,
                          ffi.cast("char *", listen_handle), ffi.sizeof("SOCKET")):
            err = api.WSAGetLastError()
        elif slot.closing:
            bk._finish(slot, None, OperationCancelled("listener closed"))  # closes conn
            return
        else:
            try:
                address = bk._accept_address(slot)
            except OSError as exc:
                err = getattr(exc, "winerror", 0) or lib.WSAECONNRESET
            else:
                slot.accept_sock = None
                bk._finish(slot, (conn, address), None)
                return
    if err in ACCEPT_RETRY and (slot.closing or slot.cancelled):
        # cancelled meanwhile: a client that reset is not this accept's result
        bk._finish(slot, None, OperationCancelled("accept cancelled"))
        return
    if err in ACCEPT_RETRY and slot.sock.fileno() >= 0:
        # the client reset before it was accepted: re-arm silently (gh-93821)
        slot.accept_sock.close()
        slot.accept_sock = None
        slot.issued = False
        try:
            exc = bk._arm_accept(slot, bk._extension(slot.sock, "AcceptEx"))
        except OSError as exc2:  # WSAIoctl failed
            exc = exc2
        except BaseException:
            bk._rescue(slot)
            raise
        if exc is not None:
            bk._finish(slot, None, exc)
        return
    bk._finish(slot, None, bk._error(slot, err))


#: op kind -> its finisher
BY_KIND = {OpKind.READABLE: readable, OpKind.RECV: recv, OpKind.SEND: send, OpKind.RECVFROM: recvfrom,
           OpKind.SENDTO: transferred, OpKind.CONNECT: connect, OpKind.ACCEPT: accept}
#: kinds whose ops on one socket complete in the order they were issued
IN_ORDER = frozenset((OpKind.RECV, OpKind.SEND, OpKind.RECVFROM, OpKind.SENDTO))
