"""The POSIX backend: completions emulated on readiness (``select.epoll`` on
Linux, else the stdlib ``selectors``).

Ops: accept, connect, recv/send (a list of buffers: ``recvmsg_into``/``sendmsg``),
shutdown (queued behind the socket's sends, so it runs after them), recvfrom
(``recvmsg_into``, for the sender's address and ``MSG_TRUNC``; an ``ECONNREFUSED``
from an earlier send's ICMP error is skipped) and sendto (queued with the sends).

Each socket has FIFO queues of pending accepts, recvs and sends. When the selector
says the socket is ready, the head of the queue is performed with a non-blocking
call and, once finished, completed. Two choices keep the hot path lean:

- A send is tried at once when nothing is queued before it (the usual case), so
  most sends complete without ever touching the selector.
- Interest is brought up to date lazily, just before each poll, and only where
  it differs from what is registered. A ping-pong exchange empties and refills a
  socket's recv queue between two polls, so it costs no register/unregister pair
  per message.

Readiness comes from ``select.epoll`` itself where there is one (Linux): its poll
gives (fd, events) pairs and the backend finds the socket in its own fd table,
without the ``selectors`` layer's per-event keys and tuples. Elsewhere
``_SelectorPoller`` puts ``selectors.DefaultSelector`` behind the same interface
and event bits, so one poll loop serves both.
"""
from __future__ import annotations

import errno
import select
import selectors
import socket
import sys
from collections import deque
from typing import Any, Optional

from ..core.backend import Backend
from ..core.errors import OperationCancelled, normalize, os_error, send_after_shutdown
from ..core.op import Op, OpKind, datagram

# The event bits of the poll loop: epoll's (the same numbers where there is none,
# for _SelectorPoller). ERR and HUP count as both readable and writable, as in
# ``selectors``, so that an error reaches whatever op is pending.
EVENT_READ = getattr(select, "EPOLLIN", 1)
EVENT_WRITE = getattr(select, "EPOLLOUT", 4)
_READ_WRITE = EVENT_READ | EVENT_WRITE
_READABLE = EVENT_READ | getattr(select, "EPOLLERR", 8) | getattr(select, "EPOLLHUP", 16)
_RECV = OpKind.RECV
_SEND = OpKind.SEND
_SHUTDOWN = OpKind.SHUTDOWN
_MSG_TRUNC = getattr(socket, "MSG_TRUNC", 0)
_MSG_NOSIGNAL = getattr(socket, "MSG_NOSIGNAL", 0)  # EPIPE as an error, never a SIGPIPE

_PURGE_MIN = 64  # socket-table size below which no purge runs (see _purge)

# accept() errors caused by a client that went away before it was accepted:
# skip that client and keep the accept pending (the listener is fine).
_ACCEPT_RETRY = {errno.ECONNABORTED, errno.EPROTO, errno.ECONNRESET, errno.EPERM, errno.EINTR}


class _Sock:
    """A socket's queues and what the selector has registered for it."""

    __slots__ = ("sock", "fd", "accepts", "recvs", "sends", "readers", "connect", "mask", "reading", "dirty",
                 "shut", "froms")

    def __init__(self, sock: socket.socket, fd: int) -> None:
        self.sock = sock
        self.fd = fd
        self.accepts: deque[Op] = deque()
        self.recvs: deque[Op] = deque()
        self.sends: deque[Op] = deque()  # sends, sendtos and shutdowns, in submission order
        self.readers: list[Op] = []  # readable ops: all complete on the next read readiness
        self.froms: deque[Op] = deque()  # recvfroms
        self.connect: Optional[Op] = None
        self.mask = 0  # events registered with the selector
        self.reading = False  # EVENT_READ is in mask (recv's per-message test: a bool costs least)
        self.dirty = False  # queued in _dirty for an interest update
        self.shut = False  # a shutdown op was submitted: later sends fail (it waits in sends, or ran)

    def wanted(self) -> int:
        mask = EVENT_READ if (self.recvs or self.accepts or self.readers or self.froms) else 0
        if self.sends or self.connect is not None:
            mask |= EVENT_WRITE
        return mask


# our event bits <-> selectors' (EVENT_READ 1, EVENT_WRITE 2)
_TO_SELECTORS = {EVENT_READ: selectors.EVENT_READ, EVENT_WRITE: selectors.EVENT_WRITE,
                 _READ_WRITE: selectors.EVENT_READ | selectors.EVENT_WRITE}
_FROM_SELECTORS = (0, EVENT_READ, EVENT_WRITE, _READ_WRITE)


class _SelectorPoller:
    """``selectors.DefaultSelector`` behind ``select.epoll``'s interface and event
    bits (register, modify, unregister, poll giving (fd, events) pairs, close):
    the poller where there is no epoll. ``selectors`` already reports an error or
    hang-up as both readable and writable."""

    __slots__ = ("_sel",)

    def __init__(self) -> None:
        self._sel = selectors.DefaultSelector()

    def register(self, fd: int, mask: int) -> None:
        self._sel.register(fd, _TO_SELECTORS[mask])

    def modify(self, fd: int, mask: int) -> None:
        self._sel.modify(fd, _TO_SELECTORS[mask])

    def unregister(self, fd: int) -> None:
        self._sel.unregister(fd)

    def poll(self, timeout: Optional[float] = None) -> "list[tuple[int, int]]":
        return [(key.fd, _FROM_SELECTORS[events]) for key, events in self._sel.select(timeout)]

    def close(self) -> None:
        self._sel.close()


class SelectorsBackend(Backend):
    """Completion emulation on readiness: ``select.epoll`` where there is one,
    else ``selectors.DefaultSelector`` (through ``_SelectorPoller``)."""

    name = "posix"
    multi_buffer = True

    @classmethod
    def unavailable_reason(cls) -> Optional[str]:
        if sys.platform == "win32":
            return "the POSIX backend needs a POSIX system (use 'winsock' on Windows)"
        return None

    #: what the backend polls with (a class): ``select.epoll``, else ``_SelectorPoller``
    poller: Any = getattr(select, "epoll", _SelectorPoller)

    def __init__(self, complete: Any, ready: Any = None) -> None:
        super().__init__(complete, ready)
        self._poller = self.poller()
        # The sockets registered with the poller, by descriptor number: how the poll
        # loop finds a socket's state from an event. (Not the wakeup socket: an
        # event the table lacks is its, which costs the loop no test per event.)
        self._fds: dict[int, _Sock] = {}
        # By socket object, not descriptor number: the per-message lookup needs no
        # fileno() call. Sockets closed behind our back (sock.close() rather than
        # Proactor.close(sock)) are purged once the table has doubled.
        self._socks: dict[socket.socket, _Sock] = {}
        self._purge_at = _PURGE_MIN
        self._dirty: list[_Sock] = []
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._wake_fd = self._wake_r.fileno()
        self._poller.register(self._wake_fd, EVENT_READ)

    # -- sockets -------------------------------------------------------------
    def socket(self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM, proto: int = 0) -> socket.socket:
        sock = socket.socket(family, type, proto)
        sock.setblocking(False)
        return sock

    def _state(self, sock: socket.socket) -> _Sock:
        st = self._socks.get(sock)
        if st is None:
            if len(self._socks) >= self._purge_at:
                self._purge()
            sock.setblocking(False)
            st = self._socks[sock] = _Sock(sock, sock.fileno())
            old = self._fds.get(st.fd)
            if old is not None:  # (never the wakeup socket: it is not in the table)
                # A socket closed behind our back had this number: its ops end
                # here (aborted), so none of them sees this socket's data.
                self._forget(old, "socket closed while the op was pending")
        return st

    def _purge(self) -> None:
        """Forget the sockets that were closed behind our back (their pending ops
        end aborted); amortized O(1) per new socket."""
        for st in [st for st in self._socks.values() if st.sock.fileno() < 0]:
            self._forget(st, "socket closed while the op was pending")
        self._purge_at = max(_PURGE_MIN, 2 * len(self._socks))

    def _touch(self, st: _Sock) -> None:
        if not st.dirty:
            st.dirty = True
            self._dirty.append(st)

    # -- ops -----------------------------------------------------------------
    def accept(self, op: Op) -> None:
        st = self._state(op.sock)
        st.accepts.append(op)
        self._touch(st)

    def connect(self, op: Op, address: Any) -> None:
        st = self._state(op.sock)
        if st.connect is not None:
            self._complete(op, None, OSError(errno.EALREADY, "a connect is already pending on this socket"))
            return
        code = op.sock.connect_ex(address)
        if code in (errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
            st.connect = op
            self._touch(st)
        elif code == 0:
            self._complete(op, op.sock, None)
        else:
            self._complete(op, None, os_error(code))

    def recv(self, op: Op) -> None:
        try:  # (_state's fast path, inlined: a subscript costs less than .get(), a try nothing)
            st = self._socks[op.sock]
        except KeyError:
            st = self._state(op.sock)
        st.recvs.append(op)
        if not st.reading:  # not watched for reading yet
            self._touch(st)

    def readable(self, op: Op) -> None:
        st = self._socks.get(op.sock) or self._state(op.sock)
        st.readers.append(op)
        self._touch(st)

    def send(self, op: Op) -> None:
        sock = op.sock
        try:  # (as in recv)
            st = self._socks[sock]
        except KeyError:
            st = self._state(sock)
        view = op._view
        if type(view) is tuple:  # a list of buffers
            self._send_vector(op, st)
            return
        if not st.sends:
            # Nothing queued ahead: try at once; most sends finish here.
            try:
                n = sock.send(view, _MSG_NOSIGNAL)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError as exc:
                self._complete(op, None, send_after_shutdown() if st.shut else normalize(exc))
                return
            op.nbytes = n
            if n == len(view):
                op._value = n
                self._ready.append(op)  # = complete(op, n, None): the Backend's fast path
                return
        elif st.shut:  # queued behind a shutdown op: it would go out after the FIN
            self._complete(op, None, send_after_shutdown())
            return
        # It waits: pin the data with a view of our own, so that the caller can neither
        # resize a bytearray under it nor invalidate it by releasing their memoryview.
        op._bk = memoryview(op._view)
        st.sends.append(op)
        self._touch(st)

    def _send_vector(self, op: Op, st: _Sock) -> None:
        if st.shut:
            self._complete(op, None, send_after_shutdown())
            return
        op._bk = sum(map(len, op._view))  # its byte count (_do_sends)
        st.sends.append(op)
        if len(st.sends) == 1:
            self._do_sends(st)  # nothing queued ahead: try at once, as send() does
        if st.sends:
            self._touch(st)

    def recvfrom(self, op: Op) -> None:
        st = self._socks.get(op.sock) or self._state(op.sock)
        st.froms.append(op)
        self._touch(st)

    def sendto(self, op: Op) -> None:
        st = self._socks.get(op.sock) or self._state(op.sock)
        if st.sends or not self._sendto_now(op):  # queued behind others, or it would block
            st.sends.append(op)
            self._touch(st)

    def _do_recvfroms(self, st: _Sock) -> None:
        froms = st.froms
        sock = st.sock
        while froms:
            op = froms[0]
            try:
                n, _, flags, address = sock.recvmsg_into((op.buf,))
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionRefusedError:
                continue  # (connected socket) an ICMP port unreachable for an earlier send: no datagram
            except OSError as exc:
                froms.popleft()
                self._complete(op, None, normalize(exc))
                continue
            froms.popleft()
            op.nbytes = n
            self._complete(op, datagram(n, address, flags & _MSG_TRUNC), None)

    def shutdown(self, op: Op) -> None:
        st = self._socks.get(op.sock) or self._state(op.sock)
        st.shut = True
        if st.sends:  # it runs once the sends submitted before it are out (_do_sends)
            st.sends.append(op)
            self._touch(st)
        else:
            self._shut_now(op)

    def _sendto_now(self, op: Op) -> bool:
        """One queued datagram; False if the socket would block."""
        data, address = op._view
        try:
            n = op.sock.sendto(data, address)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:
            self._complete(op, None, normalize(exc))
            return True
        op.nbytes = n
        self._complete(op, n, None)
        return True

    def _shut_now(self, op: Op) -> None:
        try:
            op.sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            self._complete(op, None, normalize(exc))
        else:
            self._complete(op, None, None)

    def try_send(self, sock: socket.socket, data: Any) -> int:
        try:  # (as in recv; the state makes the socket non-blocking)
            st = self._socks[sock]
        except KeyError:
            st = self._state(sock)
        if st.sends:
            if st.shut:
                raise send_after_shutdown()
            return 0  # they go first
        try:
            return sock.send(data, _MSG_NOSIGNAL)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as exc:
            raise send_after_shutdown() if st.shut else normalize(exc)

    def cancel(self, op: Op) -> None:
        st = self._socks.get(op.sock)
        if st is None:
            return
        # Single-threaded: a queued op is never half-way through a syscall, so
        # removing it loses nothing; data not yet read stays in the socket.
        for queue in (st.recvs, st.sends, st.accepts, st.readers, st.froms):
            try:
                queue.remove(op)
            except ValueError:
                continue
            op._bk = None
            if op.kind is _SHUTDOWN:
                st.shut = False  # it never ran: the sending side stays open
            self._complete(op, None, OperationCancelled())
            self._touch(st)
            return
        if st.connect is op:
            st.connect = None
            self._complete(op, None, OperationCancelled())
            self._touch(st)

    def close_socket(self, sock: socket.socket) -> None:
        st = self._socks.get(sock)
        if st is not None:
            self._forget(st, "socket closed")
        sock.close()

    def _forget(self, st: _Sock, why: str) -> None:
        """Drop a socket: unregister it, complete its pending ops cancelled."""
        if self._socks.get(st.sock) is st:
            del self._socks[st.sock]
        if st.mask:
            self._unwatch(st)
        pending: list[Op] = [*st.accepts, *st.recvs, *st.froms, *st.sends, *st.readers]
        if st.connect is not None:
            pending.append(st.connect)
        st.accepts.clear()
        st.recvs.clear()
        st.sends.clear()
        st.readers.clear()
        st.froms.clear()
        st.connect = None
        for op in pending:
            op._bk = None
            self._complete(op, None, OperationCancelled(why))

    def _unwatch(self, st: _Sock) -> None:
        """Unregister a watched socket, also one closed behind our back (whose
        registration the kernel may have dropped, or whose number is reused)."""
        st.mask = 0
        st.reading = False
        if self._fds.get(st.fd) is st:
            del self._fds[st.fd]
            try:
                self._poller.unregister(st.fd)
            except (KeyError, ValueError, OSError):
                pass

    # -- the loop ------------------------------------------------------------
    def _update_interest(self) -> None:
        poller = self._poller
        dirty, self._dirty = self._dirty, []  # swapped first: _forget below may touch
        for st in dirty:
            st.dirty = False
            if self._socks.get(st.sock) is not st:
                continue  # forgotten since
            if st.sock.fileno() != st.fd:
                # Closed behind our back (sock.close()) before we watched it: its ops
                # end here, aborted; nothing is registered under a number it lost.
                self._forget(st, "socket closed while the op was pending")
                continue
            want = st.wanted()
            if want == st.mask:
                continue
            try:
                if not st.mask:
                    poller.register(st.fd, want)
                    self._fds[st.fd] = st
                elif not want:
                    poller.unregister(st.fd)
                    del self._fds[st.fd]
                else:
                    poller.modify(st.fd, want)
            except (KeyError, ValueError, OSError) as exc:
                # The selector refuses this socket: fail its ops rather than the loop.
                self._forget(st, f"the socket cannot be watched: {exc}")
                continue
            st.mask = want
            st.reading = want & EVENT_READ != 0

    def poll(self, timeout: Optional[float]) -> None:
        if self._dirty:
            self._update_interest()
        ready = self._ready
        fds = self._fds
        for fd, events in self._poller.poll(timeout):  # (a method: its call is specialised, a stored bound method's is not)
            try:
                st = fds[fd]
            except KeyError:
                if fd == self._wake_fd:
                    self._drain_wakeups()
                # else a socket closed behind our back whose registration a dup() kept alive
                continue
            # events is EVENT_READ in the hot case: == and != are cheaper tests than &
            # (CPython 3.11 specialises an int comparison that a short jump follows,
            # not int &; hence plain writability is dealt with first and the long
            # read side is not under an if). Anything but plain writability (read,
            # error, hang-up) is for the read side; anything but plain readability
            # for the write side. Where the socket has no op of that side queued, it
            # only asks for an interest update.
            if events == EVENT_WRITE:
                self._writable(st)
                continue
            if st.readers and events & _READABLE:
                # Before the recvs, which may take the data: readiness is what they wait for.
                readers, st.readers = st.readers, []
                for op in readers:
                    self._complete(op, None, None)
                if not st.dirty:
                    self._touch(st)
            recvs = st.recvs
            if recvs:
                # The queued recvs, in order (inlined: the per-message path).
                while True:  # (the queue is tested at the end of each round: one test fewer)
                    op = recvs.popleft()
                    try:  # (op._view: a list of buffers' views, else None)
                        n = st.sock.recv_into(op.buf) if op._view is None else st.sock.recvmsg_into(op._view)[0]
                    except (BlockingIOError, InterruptedError):
                        recvs.appendleft(op)
                        break
                    except OSError as exc:
                        self._complete(op, None, normalize(exc))
                    except (ValueError, TypeError, BufferError) as exc:
                        # the caller released or replaced the buffer meanwhile: fail this op, not the loop
                        self._complete(op, None, _misused("recv", exc))
                    except BaseException:
                        recvs.appendleft(op)  # not performed: it stays first in line
                        raise
                    else:
                        if n or len(op.buf):
                            op.nbytes = op._value = n
                            ready.append(op)  # = complete(op, n, None): the Backend's fast path
                            if not recvs or (n and n < len(op.buf)):
                                break  # (a short read: the socket is most likely drained; the poller says if not)
                            continue
                        # shrunk to nothing while pending: not an end of stream
                        self._complete(op, None, _misused("recv", None))
                    if not recvs:
                        break
            elif st.accepts:
                self._do_accepts(st)
            elif st.froms:
                self._do_recvfroms(st)
            elif not st.dirty:
                # Readable with nothing queued: only now drop the read interest.
                # Dropping it whenever the recv queue empties would cost a
                # syscall pair per message, as the next recv usually follows.
                self._touch(st)
            if events != EVENT_READ:
                self._writable(st)

    def _writable(self, st: _Sock) -> None:
        """The write side of a readiness event."""
        if st.connect is not None:
            self._do_connect(st)
        if st.sends:
            self._do_sends(st)
        if not st.sends and st.connect is None and not st.dirty:
            self._touch(st)  # writable is the usual state: stop watching for it

    def _do_sends(self, st: _Sock) -> None:
        sends = st.sends
        sock = st.sock
        while sends:
            op = sends[0]
            if op.kind is not _SEND:
                sends.popleft()
                if op.kind is _SHUTDOWN:  # every send before it is out
                    self._shut_now(op)
                elif not self._sendto_now(op):  # would block: back to the head
                    sends.appendleft(op)
                    return
                continue
            vec = op._view
            try:
                if type(vec) is tuple:  # a list of buffers; _bk is its byte count
                    total = op._bk
                    n = sock.sendmsg(_skip(vec, op.nbytes), (), _MSG_NOSIGNAL)
                else:
                    view = op._bk  # our memoryview of the data (send() pinned it): slices of it must not copy
                    total = len(view)
                    n = sock.send(view[op.nbytes:], _MSG_NOSIGNAL)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                sends.popleft()
                op._bk = None  # (a view pins a bytearray's size: let it go with the op)
                self._complete(op, None, normalize(exc))
                continue
            op.nbytes += n
            if op.nbytes < total:
                return  # the kernel buffer is full
            sends.popleft()
            op._bk = None
            self._complete(op, op.nbytes, None)

    def _do_accepts(self, st: _Sock) -> None:
        accepts = st.accepts
        while accepts:
            try:
                conn, addr = st.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _ACCEPT_RETRY:
                    continue
                self._complete(accepts.popleft(), None, normalize(exc))
                continue
            conn.setblocking(False)
            self._complete(accepts.popleft(), (conn, addr), None)

    def _do_connect(self, st: _Sock) -> None:
        op = st.connect
        st.connect = None
        code = st.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self._complete(op, None, os_error(code))
        else:
            self._complete(op, st.sock, None)

    def _drain_wakeups(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def wakeup(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, InterruptedError):
            pass  # a wakeup is already pending
        except OSError:
            pass  # closed: the proactor is going away

    def close(self) -> None:
        for st in list(self._socks.values()):
            self._forget(st, "proactor closed")
        self._dirty.clear()
        self._fds.clear()
        self._poller.close()
        self._wake_r.close()
        self._wake_w.close()


def _misused(what: str, exc: Optional[BaseException]) -> BufferError:
    """The error of an op whose buffer the caller broke while it was pending."""
    why = f": {exc}" if exc is not None else ""
    return BufferError(f"the {what} buffer was released, resized or emptied while the op was pending{why}")


def _skip(views: tuple, offset: int) -> Any:
    """The views of a list send from byte ``offset`` on (slices: no copy)."""
    if not offset:
        return views
    out = []
    for view in views:
        if offset >= len(view):
            offset -= len(view)
            continue
        out.append(view[offset:] if offset else view)
        offset = 0
    return out


class SelectorsFallbackBackend(SelectorsBackend):
    """The POSIX backend on ``selectors`` even where there is epoll: the poller of
    the systems without it, so that its path runs (and is tested) on Linux too.
    Not registered; ``Proactor(backend=SelectorsFallbackBackend)``."""

    name = "posix-selectors"
    poller = _SelectorPoller
