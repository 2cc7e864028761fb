"""Submitting ops: one overlapped call per op (WSARecv, WSASend, WSARecvFrom,
WSASendTo, AcceptEx, ConnectEx), the half-close, and the sockets they run on.
What happens when an op's event is seen signalled is in finishers.py."""
from __future__ import annotations

import socket
from typing import Any, Optional

from ...core.errors import OperationCancelled, normalize, os_error, send_after_shutdown
from ...core.op import Op, OpKind, datagram
from .addresses import ADDRLEN, ensure_bound
from .api import SIO_UDP_NETRESET, ffi, lib
from .slots import Slot

_RECV, _SEND, _ACCEPT, _CONNECT, _READABLE = OpKind.RECV, OpKind.SEND, OpKind.ACCEPT, OpKind.CONNECT, OpKind.READABLE
_RECVFROM, _SENDTO = OpKind.RECVFROM, OpKind.SENDTO
MSGSIZE = lib.WSAEMSGSIZE  # a datagram larger than the buffer (which holds its start)
_SOCKADDR_STORAGE = ffi.sizeof("struct sockaddr_storage")
# the client reset before it was accepted
ACCEPT_RETRY = {lib.ERROR_NETNAME_DELETED, lib.WSAECONNRESET}
_ACCEPT_RETRY_LIMIT = 1000  # immediate failures in a row (a storm of dead clients)
MAX_CHUNK = 1 << 30  # bytes per WSABUF (its len is a ULONG)


class Ops:
    """The backend's submit side (Backend's recv, send, accept ... methods)."""

    def socket(self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM, proto: int = 0) -> socket.socket:
        sock = socket.socket(family, type, proto)  # overlapped on Windows (WSA_FLAG_OVERLAPPED)
        sock.setblocking(False)
        if type == socket.SOCK_DGRAM:
            try:
                self._udp_setup(sock)
            except BaseException:
                sock.close()
                raise
        return sock

    def _udp_setup(self, sock: socket.socket) -> None:
        """Switch off SIO_UDP_CONNRESET and SIO_UDP_NETRESET: by default an ICMP
        "port unreachable" for one sent datagram fails the *next* WSARecvFrom with
        WSAECONNRESET (asyncio's proactor read loop died of it: cpython gh-91227)."""
        ffi, api = self.ffi, self.api
        off = ffi.new("BOOL *", 0)
        nret = ffi.new("DWORD *")
        for code in (lib.SIO_UDP_CONNRESET, SIO_UDP_NETRESET):
            if api.WSAIoctl(sock.fileno(), code, off, ffi.sizeof("BOOL"), self._null, 0, nret, self._null,
                            self._null) and code == lib.SIO_UDP_CONNRESET:
                raise os_error(api.WSAGetLastError(), windows=True, what="WSAIoctl(SIO_UDP_CONNRESET)")
            # (SIO_UDP_NETRESET is best effort: Wine has not got it, and a TTL-expired ICMP is rare)
        self._udp_ready.add(sock)

    # -- ops --------------------------------------------------------------------------
    # Every overlapped call sits in a try whose handler is _rescue(): from the call
    # to the op's registration, an exception must not orphan an op the kernel has.
    def recv(self, op: Op) -> None:
        vec = op._view  # a list of buffers' views, else None
        self._issue_recv(self._slot(op, op.sock, _RECV), op.buf if vec is None else vec)

    def readable(self, op: Op) -> None:
        # The zero-byte receive: a 0-byte WSARecv completes (with 0) once data, end
        # of stream or a reset is there, reads nothing and locks no buffer in the
        # kernel (tests/windows/contracts/recv.c pins zero_byte_recv_*).
        self._issue_recv(self._slot(op, op.sock, _READABLE), None)

    def _issue_recv(self, slot: Slot, buf: Any) -> None:
        """WSARecv into ``buf`` (a tuple of views: several WSABUFs), or a zero-byte
        one for ``None``: its WSABUF then points at a byte of ours, never written
        (as libuv's does)."""
        try:
            if buf is None:
                pin = slot.pin = self._zero
                wb, count = slot.wsabuf, 1
                wb.buf = pin
                wb.len = 0
            elif type(buf) is tuple:  # a list of buffers: one WSARecv, several WSABUFs
                slot.pin = tuple(self.ffi.from_buffer("char[]", v, require_writable=True) for v in buf)
                wb, count = self._wsabufs(slot, 0)
            else:
                pin = slot.pin = self.ffi.from_buffer("char[]", buf, require_writable=True)
                wb, count = slot.wsabuf, 1
                wb.buf = pin
                wb.len = min(len(pin), MAX_CHUNK)
            slot.out[1] = 0
            self._issuing(slot)
            rc = self.api.WSARecv(slot.handle, wb, count, self._null, slot.out + 1, slot.ov, self._null)
            err = self._started(slot, rc == 0)
        except BaseException:
            self._rescue(slot)
            raise
        if err == MSGSIZE and slot.kind is _RECV:  # a datagram socket, failed at once truncated
            n = sum(wb[i].len for i in range(count))  # every buffer is full
            self._slot_ops[slot.n].nbytes = n
            self._finish(slot, n, None)
        elif err is not None:
            self._finish(slot, None, self._error(slot, err))

    def send(self, op: Op) -> None:
        if self._shut and op.sock in self._shut:  # never issued: it would follow the FIN
            self._complete(op, None, send_after_shutdown())
            return
        data = op._view  # the core's flat bytes (a tuple of them for a list of buffers)
        slot = self._slot(op, op.sock, _SEND)
        try:
            if type(data) is tuple:
                pins = slot.pin = tuple(self.ffi.from_buffer("char[]", v) for v in data)
                slot.total = sum(map(len, pins))
            else:
                pin = slot.pin = self.ffi.from_buffer("char[]", data)
                slot.total = len(pin)
            slot.sent = 0
            err = self._started(slot, self._issue_send(slot))
        except BaseException:
            self._rescue(slot)
            raise
        if err is not None:
            self._finish(slot, None, self._error(slot, err))

    def try_send(self, sock: socket.socket, data: Any) -> int:
        # A plain non-overlapped send on the non-blocking socket; only while no
        # WSASend of it is in flight (or done but not yet reaped), so that the
        # bytes keep submission order.
        if sock in self._shut:
            raise send_after_shutdown()
        for slot in self._by_sock.get(sock, ()):
            if slot.kind is _SEND:
                return 0
        if sock.gettimeout() != 0.0:
            sock.setblocking(False)  # a socket the caller made: never block the loop
        try:
            return sock.send(data)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as exc:
            code = getattr(exc, "winerror", None)
            if code:
                raise os_error(code, windows=True) from exc
            raise normalize(exc)

    def recvfrom(self, op: Op) -> None:
        sock = op.sock
        if sock not in self._udp_ready:  # a socket the caller made
            try:
                self._udp_setup(sock)
            except OSError as exc:
                self._complete(op, None, exc)
                return
            except BaseException:
                self._not_started(op)
                raise
        ffi = self.ffi
        slot = self._slot(op, sock, _RECVFROM)
        try:
            pin = slot.pin = ffi.from_buffer("char[]", op.buf, require_writable=True)
            wb = slot.wsabuf
            wb.buf = pin
            wb.len = min(len(pin), MAX_CHUNK)
            # the sender's address and its length: written by the kernel at completion
            slot.sa = (ffi.new("char[]", _SOCKADDR_STORAGE), ffi.new("INT *", _SOCKADDR_STORAGE))
            slot.out[1] = 0
            self._issuing(slot)
            rc = self.api.WSARecvFrom(slot.handle, wb, 1, self._null, slot.out + 1,
                                      ffi.cast("struct sockaddr *", slot.sa[0]), slot.sa[1], slot.ov, self._null)
            err = self._started(slot, rc == 0)
        except BaseException:
            self._rescue(slot)
            raise
        if err == MSGSIZE:
            # Failed at once, truncated: the buffer is full and the address written. The
            # request did complete (a warning status), so its event is set as well
            # (contracts/udp.c); the slot's next op resets it before the kernel has it.
            self._finish_datagram(slot, wb.len, True)
        elif err is not None:
            self._finish(slot, None, self._error(slot, err))

    def _finish_datagram(self, slot: Slot, n: int, truncated: bool) -> None:
        sa, salen = slot.sa
        try:
            address = self._decode_sockaddr(self.ffi.cast("struct sockaddr *", sa), salen[0])
        except OSError as exc:
            self._finish(slot, None, exc)
            return
        self._slot_ops[slot.n].nbytes = n
        self._finish(slot, datagram(n, address, truncated), None)

    def sendto(self, op: Op) -> None:
        sock = op.sock
        data, address = op._view
        try:
            if sock not in self._udp_ready:
                self._udp_setup(sock)
            sa, salen = self._sockaddr(sock.family, address)
        except OSError as exc:
            self._complete(op, None, exc)
            return
        except BaseException:
            self._not_started(op)
            raise
        slot = self._slot(op, sock, _SENDTO)
        try:
            slot.sa = sa
            pin = slot.pin = self.ffi.from_buffer("char[]", data)
            wb = slot.wsabuf
            wb.buf = pin
            wb.len = len(pin)
            self._issuing(slot)
            rc = self.api.WSASendTo(slot.handle, wb, 1, self._null, 0, self.ffi.cast("struct sockaddr *", sa),
                                    salen, slot.ov, self._null)
            err = self._started(slot, rc == 0)
        except BaseException:
            self._rescue(slot)
            raise
        if err is not None:
            self._finish(slot, None, self._error(slot, err))

    def shutdown(self, op: Op) -> None:
        sock = op.sock
        self._shut.add(sock)
        if any(slot.kind is _SEND for slot in self._by_sock.get(sock, ())):
            # Runs once the WSASends issued before it are reaped (_finish): shutdown()
            # would not wait for them, and their bytes must go out before the FIN.
            self._shut_waiting.setdefault(sock, []).append(op)
        else:
            self._shut_now(op)

    def _shut_now(self, op: Op) -> None:
        if self.api.shutdown(op.sock.fileno(), lib.SD_SEND):
            self._complete(op, None, os_error(self.api.WSAGetLastError(), windows=True, what="shutdown"))
        else:
            self._complete(op, None, None)

    def _shutdown_if_sent(self, sock: socket.socket) -> None:
        if sock in self._shut_waiting and not any(s.kind is _SEND for s in self._by_sock.get(sock, ())):
            for op in self._shut_waiting.pop(sock):
                self._shut_now(op)

    def _drop_shutdowns(self, sock: socket.socket, why: str) -> None:
        """Complete the shutdown ops still waiting on ``sock`` as cancelled."""
        for op in self._shut_waiting.pop(sock, ()):
            self._complete(op, None, OperationCancelled(why))

    def _issue_send(self, slot: Slot) -> bool:
        """One WSASend of everything not sent yet. A WSABUF's length is a ULONG:
        past MAX_CHUNK the rest goes as several WSABUFs of the same call, so that
        one send op is one request in the socket's queue, whatever its size."""
        left = slot.total - slot.sent
        if type(slot.pin) is tuple:  # a list of buffers
            wb, n = self._wsabufs(slot, slot.sent)
            self._issuing(slot)
            return self.api.WSASend(slot.handle, wb, n, self._null, 0, slot.ov, self._null) == 0
        start = slot.pin + slot.sent
        if left <= MAX_CHUNK:
            wb, n = slot.wsabuf, 1
            wb.buf = start
            wb.len = left
        else:
            n = -(-left // MAX_CHUNK)
            wb = slot.bufs = self.ffi.new("WSABUF[]", n)
            for i in range(n):
                wb[i].buf = start + i * MAX_CHUNK
                wb[i].len = min(MAX_CHUNK, left - i * MAX_CHUNK)
        self._issuing(slot)
        return self.api.WSASend(slot.handle, wb, n, self._null, 0, slot.ov, self._null) == 0

    def _wsabufs(self, slot: Slot, skip: int) -> tuple:
        """The WSABUF array (kept in ``slot.bufs`` until the op is reaped) over the
        pinned buffers of a list op (``slot.pin``, a tuple) from byte ``skip`` on,
        and its length; a buffer longer than a WSABUF takes is split."""
        parts = []
        for pin in slot.pin:
            size = len(pin)
            if skip >= size:
                skip -= size
                continue
            for at in range(skip, size, MAX_CHUNK):
                parts.append((pin + at, min(MAX_CHUNK, size - at)))
            skip = 0
        arr = slot.bufs = self.ffi.new("WSABUF[]", len(parts))
        for i, (ptr, length) in enumerate(parts):
            arr[i].buf = ptr
            arr[i].len = length
        return arr, len(parts)

    def accept(self, op: Op) -> None:
        try:
            accept_ex = self._extension(op.sock, "AcceptEx")
        except OSError as exc:
            self._complete(op, None, exc)
            return
        except BaseException:
            self._not_started(op)
            raise
        slot = self._slot(op, op.sock, _ACCEPT)
        try:
            if slot.addrbuf is None:
                slot.addrbuf = self.ffi.new("char[]", 2 * ADDRLEN)
            exc = self._arm_accept(slot, accept_ex)
        except BaseException:
            self._rescue(slot)
            raise
        if exc is not None:
            self._finish(slot, None, exc)

    def _arm_accept(self, slot: Slot, accept_ex: Any) -> Optional[OSError]:
        """Issue AcceptEx until one is in flight (None) or it fails for a reason
        other than a client that reset while queued (the error to finish with)."""
        listener = slot.sock
        err = 0
        for _ in range(_ACCEPT_RETRY_LIMIT):
            slot.issued = False
            try:
                slot.accept_sock = self.socket(listener.family, listener.type, listener.proto)
            except OSError as exc:  # no socket for the next client (e.g. out of descriptors)
                return exc
            slot.ov.InternalHigh = 0
            self._issuing(slot)
            ok = accept_ex(slot.handle, slot.accept_sock.fileno(), slot.addrbuf, 0, ADDRLEN, ADDRLEN, slot.out,
                           slot.ov)
            err = self._started(slot, bool(ok))
            if err is None:
                return None
            if err not in ACCEPT_RETRY:
                break
            slot.accept_sock.close()  # that client is gone: try the next one
            slot.accept_sock = None
        return self._error(slot, err)

    def connect(self, op: Op, address: Any) -> None:
        sock = op.sock
        try:
            connect_ex = self._extension(sock, "ConnectEx")
            ensure_bound(sock)
            sa, salen = self._sockaddr(sock.family, address)
        except OSError as exc:
            self._complete(op, None, exc)
            return
        except BaseException:
            self._not_started(op)
            raise
        slot = self._slot(op, sock, _CONNECT)
        slot.sa = sa
        try:
            self._issuing(slot)
            ok = connect_ex(slot.handle, self.ffi.cast("struct sockaddr *", sa), salen, self._null, 0, self._null,
                            slot.ov)
            err = self._started(slot, bool(ok))
        except BaseException:
            self._rescue(slot)
            raise
        if err is not None:
            self._finish(slot, None, self._error(slot, err))
