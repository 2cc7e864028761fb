"""The Linux io_uring backend: completions done by the kernel, as on Windows.

One ring per Proactor. A recv or send is a request appended to two Python lists
(no cffi call per op); ``poll()`` hands them to one C call that writes
their SQEs, submits them all and waits in one ``io_uring_enter``, and the C half
(``uring_cdef.py``) copies the completions into two flat arrays that Python walks
once. Accept, connect, cancel and the other ops (list recv and send:
``RECVMSG``/``SENDMSG``; shutdown; recvfrom: ``RECVMSG``; sendto: ``SENDMSG``)
write their SQE directly, after the list (so the ring keeps submission order).

Order: each socket keeps FIFO queues of its recvs and sends, and only the head
of each is in the kernel, so several pending recvs (or sends) on one socket
complete in submission order with the bytes in stream order. A send with none
queued ahead first goes out as far as the socket takes it at once
(``MSG_DONTWAIT``, as ``try_send``); what is left goes with ``MSG_WAITALL``: the
kernel itself retries short sends, and its completion says how many bytes went
out (all of them, or how many before an error or a cancel).
A socket's send queue also holds its list sends, sendtos and shutdowns, so a
shutdown goes in only once the sends before it have completed; its recvfroms
have a queue of their own.

Buffers: every op in the kernel is in ``_Ring.inflight`` by its user data,
with the cffi view of its buffer (or, for a ``RECVMSG``/``SENDMSG``, the ``_Msg``
holding its msghdr, sockaddr room, iovec array and buffers), until its completion arrives: on every path
(cancel, close, an exception, garbage collection) the kernel never writes into
memory Python has freed. ``close()`` cancels them all and waits for each
completion.

Cancel: ``IORING_OP_ASYNC_CANCEL`` by user data. Its own result (cancelled,
already running, not found) is not needed: the op's completion is the answer,
``-ECANCELED`` with nothing transferred, or its real result.
"""
from __future__ import annotations

import errno
import os
import socket
import struct
import sys
import threading
from collections import deque
from time import monotonic
from typing import Any, Optional

from ..core.backend import Backend
from ..core.errors import OperationCancelled, normalize, os_error, send_after_shutdown
from ..core.op import Op, OpKind, datagram

try:
    from ._uring_ffi import ffi, lib
except ImportError as _exc:  # not built: no C compiler or no io_uring header at install time
    ffi = lib = None
    _IMPORT_ERROR: Optional[str] = str(_exc)
else:
    _IMPORT_ERROR = None
    # Bound once: a cffi lib attribute lookup costs more than the call's own work.
    from_buffer = ffi.from_buffer
    _uring_wait, _uring_queue = lib.uring_wait, lib.uring_queue

_RECV, _SEND, _ACCEPT, _READABLE = OpKind.RECV, OpKind.SEND, OpKind.ACCEPT, OpKind.READABLE
_RECVFROM, _SENDTO, _SHUTDOWN = OpKind.RECVFROM, OpKind.SENDTO, OpKind.SHUTDOWN
_SQ_ENTRIES = 1024
_CQ_ENTRIES = 16384  # completions the kernel can post between two polls without overflowing
_MIN_KERNEL = (6, 0)  # MSG_WAITALL sends that report partial progress on error or cancel
_CLOSE_WAIT = 10.0  # seconds close() waits for the kernel to give back every buffer
_ECANCELED = errno.ECANCELED
_SOCK_NONBLOCK = getattr(socket, "SOCK_NONBLOCK", 0)
_MSG_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)
_MSG_TRUNC = getattr(socket, "MSG_TRUNC", 0)
_LIST_SEND_FLAGS = getattr(socket, "MSG_WAITALL", 0) | getattr(socket, "MSG_NOSIGNAL", 0)  # as a single send's
_SENDTO_FLAGS = getattr(socket, "MSG_NOSIGNAL", 0)
_TRY_SEND_FLAGS = _MSG_DONTWAIT | _SENDTO_FLAGS  # EPIPE as an error, never a SIGPIPE
_ADDR_ROOM = 128  # a sockaddr_storage, then its socklen_t

# accept() errors caused by a client that went away before it was accepted:
# skip that client and keep the accept pending (the listener is fine).
_ACCEPT_RETRY = {errno.ECONNABORTED, errno.EPROTO, errno.ECONNRESET, errno.EPERM, errno.EINTR, errno.EAGAIN}

_LEAKED: list = []  # rings the kernel did not finish with in time: kept (buffers too) until exit
_probe_cache: list = []


def _kernel() -> tuple:
    try:
        return tuple(int(x) for x in os.uname().release.split("-")[0].split(".")[:2])
    except ValueError:  # an unusual release string: let the probe decide
        return _MIN_KERNEL


def _probe() -> Optional[str]:
    if not sys.platform.startswith("linux"):
        return "io_uring is Linux only"
    if _IMPORT_ERROR is not None:
        return ("the C extension was not built (no C compiler or no <linux/io_uring.h> at install time; "
                f"reinstall with one): {_IMPORT_ERROR}")
    release = os.uname().release
    code = -lib.uring_probe()
    if code == errno.ENOSYS:
        return f"kernel too old, or built without io_uring ({release}; io_uring_setup: ENOSYS)"
    if code == errno.EPERM:
        try:
            with open("/proc/sys/kernel/io_uring_disabled") as f:
                setting = f.read().strip()
        except OSError:
            setting = "?"
        return f"io_uring disabled by sysctl (kernel.io_uring_disabled={setting}), or by a seccomp filter (EPERM)"
    if code == errno.ENOMEM:
        if _kernel() < (5, 12):  # rings were charged to RLIMIT_MEMLOCK until then
            import resource
            soft = resource.getrlimit(resource.RLIMIT_MEMLOCK)[0]
            return f"RLIMIT_MEMLOCK too low ({soft} bytes) for a ring (io_uring_setup: ENOMEM); raise it (ulimit -l)"
        return "not enough memory for a ring (io_uring_setup: ENOMEM)"
    if code == errno.EOPNOTSUPP or _kernel() < _MIN_KERNEL:
        return (f"kernel too old ({release}; needs Linux {_MIN_KERNEL[0]}.{_MIN_KERNEL[1]} or later, "
                "for sends the kernel itself completes in full)")
    if code:
        return f"io_uring_setup failed: {os.strerror(code)}"
    return None


class _Sock:
    """A socket's queues: the head of ``recvs`` and of ``sends`` is in the kernel."""

    __slots__ = ("sock", "fd", "req", "recvs", "sends", "froms", "accepts", "readers", "connect", "live", "shut")

    def __init__(self, sock: socket.socket, fd: int) -> None:
        self.sock = sock
        self.fd = fd
        self.req = fd << 1  # the fd as a queued request carries it (see _Ring.sq)
        self.recvs: deque[Op] = deque()
        self.sends: deque[Op] = deque()  # sends, sendtos and shutdowns, in submission order
        self.froms: deque[Op] = deque()  # recvfroms
        self.accepts: list[Op] = []  # all in the kernel at once
        self.readers: list[Op] = []  # readable ops (poll requests, no buffer): all in the kernel at once
        self.connect: Optional[Op] = None
        self.live = True  # False once closed: completions start nothing more
        self.shut = False  # a shutdown op was submitted: later sends fail (it waits in sends, or ran)


class _Ring:
    """The ring, its wakeup eventfd and the ops the kernel holds. Separate from the
    backend so that its finaliser runs with every buffer still alive (also when
    the garbage collector breaks a cycle: finalisers run before anything is
    cleared), and so that it can outlive a backend whose close() timed out."""

    def __init__(self) -> None:
        # For __del__ at interpreter exit, when module globals may be gone.
        self._lib, self._ffi, self._clock, self._leaked, self._os_close = lib, ffi, monotonic, _LEAKED, os.close
        self.r = ffi.new("struct uring *")
        self.inflight: dict[int, tuple] = {}  # user data -> (op, _Sock, cffi buffer view)
        # Requests not yet written into the ring (their ops are in inflight already):
        # sq holds fd << 1 | is-a-send and length of each, bufs its buffer (NULL: taken
        # back). Their user data is implicit: the latest queued ones, consecutive even
        # numbers (see uring_cdef.py).
        self.sq: list[int] = []
        self.bufs: list = []
        self.wake_fd = os.eventfd(0, os.EFD_CLOEXEC)  # blocking: the ring's read of it must wait
        # wakeup() racing close(): never write to a recycled number. Held only
        # around one eventfd write or the release; re-entrant, so a signal handler
        # that wakes the ring while this thread holds it does not block.
        self.lock = threading.RLock()
        rc = lib.uring_open(self.r, _SQ_ENTRIES, _CQ_ENTRIES, self.wake_fd)
        if rc < 0:
            os.close(self.wake_fd)
            raise os_error(-rc, what="io_uring_setup")
        self.open = True

    def finish(self, handle: Any, limit: float) -> bool:
        """Cancel everything in the kernel and wait (up to ``limit`` seconds) for
        every completion, passing staged ones to ``handle()`` (or dropping them).
        Then release the ring, unless the kernel still holds buffers."""
        lib_, r, inflight, sq = self._lib, self.r, self.inflight, self.sq
        if sq:  # requests never written (even user data past the last written): the kernel never saw them
            for ud in [ud for ud in inflight if not ud & 1 and ud > r.queued_ud]:
                del inflight[ud]
            sq.clear()
            self.bufs.clear()
        for ud in list(inflight):
            lib_.uring_cancel(r, ud)
        lib_.uring_cancel(r, 1)  # the eventfd read
        deadline = self._clock() + limit
        while True:
            # What is staged first (an interrupted poll may have left some unhandled):
            # uring_wait forgets it.
            if handle is not None:
                handle()
            else:
                for ud in self._unstage():
                    inflight.pop(ud, None)
            if not (inflight or r.wake_armed):
                break
            if self._clock() > deadline:
                self._leaked.append(self)  # the kernel may still write into these buffers
                return False
            lib_.uring_wait(r, 50_000_000, 0, self._ffi.NULL, self._ffi.NULL, 0)
        self.release()
        return True

    def _unstage(self) -> list:
        r = self.r
        uds = self._ffi.unpack(r.ud, r.nstaged) if r.nstaged else []
        r.nstaged = 0
        return uds

    def release(self) -> None:
        with self.lock:
            if self.open:
                self.open = False
                self._lib.uring_close(self.r)
                self._os_close(self.wake_fd)

    def __del__(self, _limit: float = _CLOSE_WAIT) -> None:
        if getattr(self, "open", False):  # never closed: the backend was dropped, or the interpreter exits
            self.finish(None, _limit)


class UringBackend(Backend):
    """Socket ops as io_uring requests."""

    name = "uring"
    multi_buffer = True

    @classmethod
    def unavailable_reason(cls) -> Optional[str]:
        if not _probe_cache:
            _probe_cache.append(_probe())
        return _probe_cache[0]

    def __init__(self, complete: Any, ready: Any) -> None:
        super().__init__(complete, ready)
        self._ring = _Ring()
        self._r = self._ring.r
        # The C half's staging arrays (fixed while the ring is open) as memoryviews:
        # a slice's tolist() per poll, no struct field lookup and no cffi call.
        cap = self._r.cap
        self._staged_ud = memoryview(ffi.buffer(self._r.ud, cap * 8)).cast("Q")
        self._staged_res = memoryview(ffi.buffer(self._r.res, cap * 4)).cast("i")
        self._inflight = self._ring.inflight
        self._sq = self._ring.sq
        self._bufs = self._ring.bufs
        self._cancelling: set[int] = set()  # user data of ops asked to cancel
        self._accepted: dict[int, tuple] = {}  # user data -> (conn, address) not yet recorded
        # User data (0 and 1 are the C half's own): even for queued requests (the
        # C half counts them back from the next one), odd for SQEs written directly.
        self._ud = 2  # the next queued request's
        self._direct_ud = 3
        self._socks: dict[socket.socket, _Sock] = {}
        self._by_fd: dict[int, _Sock] = {}
        self._interrupted = False  # an exception left poll() half-way: see _recover
        self._walking: Any = None  # the queue _start_next is starting ops of

    # -- sockets -------------------------------------------------------------
    def socket(self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM, proto: int = 0) -> socket.socket:
        sock = socket.socket(family, type, proto)
        sock.setblocking(False)
        return sock

    def _state(self, sock: socket.socket) -> _Sock:
        st = self._socks.get(sock)
        if st is None:
            fd = sock.fileno()
            old = self._by_fd.get(fd)
            if old is not None:
                # A socket closed behind our back had this number: its ops end here
                # (cancelled), before any SQE of theirs names the new socket.
                self._forget(old, "socket closed while the op was pending")
            sock.setblocking(False)
            st = self._socks[sock] = self._by_fd[fd] = _Sock(sock, fd)
        return st

    # -- submitting ----------------------------------------------------------
    def _flush(self) -> None:
        """Write the queued recv and send requests into the ring: before an SQE
        written directly, so that the ring keeps submission order."""
        bufs = self._bufs
        if bufs and _uring_queue(self._r, self._ud, self._sq, bufs, len(bufs)):
            self._sq.clear()
            bufs.clear()

    def _enter(self, op: Op, st: _Sock, keep: Any) -> int:
        """The user data for an SQE written directly, after the queued requests
        (so the ring keeps submission order). ``op`` and ``keep`` (the memory the
        SQE points at) go into the table first: whatever interrupts the C call,
        that memory stays alive until the kernel is done with it."""
        ud = self._direct_ud
        self._direct_ud = ud + 2
        self._flush()
        op._bk = ud
        self._inflight[ud] = (op, st, keep)
        return ud

    def _started(self, op: Op, st: _Sock, ud: int, rc: int) -> bool:
        """True if ``op``'s SQE was written (``rc`` 0); else ``op`` fails, and the
        next op of its queue goes in."""
        if rc == 0:
            return True
        del self._inflight[ud]
        op._bk = None
        if op.kind is _SHUTDOWN:
            st.shut = False  # it never ran: the sending side stays open
        self._unqueue(op, st)
        self._complete(op, None, os_error(-rc, what="io_uring submission queue"))
        if st.live:
            self._start_next(op, st)
        return False

    def _start_recv(self, st: _Sock, op: Op) -> None:
        if op._view is not None:  # a list of buffers
            self._start_msg(st, op, _Msg(op._view), 0, 0)
            return
        keep = from_buffer(op.buf)  # (the core checked that it is writable; one argument parses fastest)
        ud = self._ud
        sq = self._sq
        sq.append(st.req)
        sq.append(len(keep))
        self._ud = ud + 2  # (next to the append: the C half counts user data from len(bufs))
        self._bufs.append(keep)
        op._bk = ud
        self._inflight[ud] = (op, st, keep)

    def _start_send(self, st: _Sock, op: Op) -> None:
        if op.kind is not _SEND or type(op._view) is tuple:  # a list of buffers, a sendto, a shutdown
            self._start_other_send(st, op)
            return
        keep = from_buffer(op._view)
        ud = self._ud
        done = op.nbytes
        sq = self._sq
        sq.append(st.req + 1)
        sq.append(len(keep) - done)
        self._ud = ud + 2
        self._bufs.append(keep + done)
        op._bk = ud
        self._inflight[ud] = (op, st, keep)

    def _start_accept(self, st: _Sock, op: Op) -> None:
        keep = ffi.new("char[]", _ADDR_ROOM + 4)
        ffi.cast("unsigned *", keep + _ADDR_ROOM)[0] = _ADDR_ROOM
        ud = self._enter(op, st, keep)
        self._started(op, st, ud, lib.uring_accept(self._r, st.fd, keep, keep + _ADDR_ROOM, ud))

    def _start_other_send(self, st: _Sock, op: Op) -> None:
        """The head of ``st.sends`` that is not a single-buffer send: a list send
        (``SENDMSG``, from the byte it got to), a sendto or a shutdown."""
        kind = op.kind
        if kind is _SHUTDOWN:
            ud = self._enter(op, st, None)
            self._started(op, st, ud, lib.uring_shutdown(self._r, st.fd, op.buf, ud))
        elif kind is _SENDTO:
            name = op._bk  # packed by sendto()
            if type(name) is not bytes:  # (restarted after an interruption; it packed before)
                name = _pack_sockaddr(op.sock.family, op._view[1])
            self._start_msg(st, op, _Msg((op._view[0],), 0, name), _SENDTO_FLAGS, 1)
        else:
            self._start_msg(st, op, _Msg(op._view, op.nbytes), _LIST_SEND_FLAGS, 1)

    def _start_recvfrom(self, st: _Sock, op: Op) -> None:
        # MSG_TRUNC: the result is the datagram's whole length, so a truncation shows.
        self._start_msg(st, op, _Msg((op.buf,), 0, None), _MSG_TRUNC, 0)

    def _start_msg(self, st: _Sock, op: Op, msg: "_Msg", flags: int, send: int) -> None:
        """Write ``op``'s SENDMSG or RECVMSG; ``msg`` (all the memory it hands the
        kernel) stays in the table with it until its completion."""
        ud = self._enter(op, st, msg)
        self._started(op, st, ud, lib.uring_msg(self._r, st.fd, msg.m, msg.iov, msg.niov, msg.namelen, flags, send, ud))

    def _start_next(self, op: Op, st: _Sock) -> None:
        """After ``op`` left the kernel (or failed to enter it): the heads of its
        queue go in until one is in. A loop, not a recursion through a failing
        start: a long queue of ops that all fail to start (a full ring) must not
        exhaust the stack; a failure inside the loop returns here for the next."""
        kind = op.kind
        if kind is _RECV:
            queue, start = st.recvs, self._start_recv
        elif kind is _RECVFROM:
            queue, start = st.froms, self._start_recvfrom
        elif kind is _SEND or kind is _SENDTO or kind is _SHUTDOWN:
            queue, start = st.sends, self._start_send
        else:
            return
        if self._walking is queue:  # a start inside the loop below failed: the loop goes on
            return
        outer, self._walking = self._walking, queue
        try:
            inflight = self._inflight
            while queue and queue[0]._bk not in inflight:
                start(st, queue[0])
        finally:
            self._walking = outer

    # -- ops -----------------------------------------------------------------
    def accept(self, op: Op) -> None:
        st = self._state(op.sock)
        st.accepts.append(op)
        self._start_accept(st, op)

    def readable(self, op: Op) -> None:
        st = self._state(op.sock)
        st.readers.append(op)
        self._start_readable(st, op)

    def _start_readable(self, st: _Sock, op: Op) -> None:
        ud = self._enter(op, st, None)
        self._started(op, st, ud, lib.uring_poll_in(self._r, st.fd, ud))

    def connect(self, op: Op, address: Any) -> None:
        st = self._state(op.sock)
        if st.connect is not None:
            self._complete(op, None, OSError(errno.EALREADY, "a connect is already pending on this socket"))
            return
        try:
            keep = ffi.new("char[]", _pack_sockaddr(op.sock.family, address))
        except OSError as exc:
            self._complete(op, None, exc)
            return
        st.connect = op
        ud = self._enter(op, st, keep)
        if not self._started(op, st, ud, lib.uring_connect(self._r, st.fd, keep, len(keep), ud)):
            st.connect = None

    def recv(self, op: Op) -> None:
        try:  # (a subscript, not get(): no call on the per-message path)
            st = self._socks[op.sock]
        except KeyError:
            st = self._state(op.sock)
        recvs = st.recvs
        if recvs:  # it waits for those ahead
            recvs.append(op)
            return
        recvs.append(op)
        if op._view is not None:  # a list of buffers
            self._start_recv(st, op)
            return
        # _start_recv, inlined: the per-message path.
        keep = from_buffer(op.buf)
        ud = self._ud
        sq = self._sq
        sq.append(st.req)
        sq.append(len(keep))
        self._ud = ud + 2  # (next to the append: the C half counts user data from len(bufs))
        self._bufs.append(keep)
        op._bk = ud
        self._inflight[ud] = (op, st, keep)

    def send(self, op: Op) -> None:
        sock = op.sock
        try:  # (as in recv)
            st = self._socks[sock]
        except KeyError:
            st = self._state(sock)
        sends = st.sends
        if not sends:
            # Nothing queued ahead: what the socket takes now goes at once, and a
            # send that fits completes here, as with try_send: no SQE, no CQE, no
            # extra poll per message. Only the rest goes through the ring.
            view = op._view
            try:  # try_send, inlined: nothing is queued on st
                n = sock.send(view, _TRY_SEND_FLAGS)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError as exc:
                self._complete(op, None, self._send_error(st, exc))
                return
            except TypeError:
                # A list of buffers: op._view is a tuple, which send() refuses before any
                # system call (tested here, not before every single send): one SENDMSG.
                if type(view) is not tuple:
                    raise
                if st.shut:
                    self._complete(op, None, send_after_shutdown())
                    return
                sends.append(op)
                self._start_send(st, op)
                return
            if n == len(view):
                op.nbytes = op._value = n
                self._ready.append(op)  # = complete(op, n, None): the Backend's fast path
                return
            op.nbytes = n
            sends.append(op)
            self._start_send(st, op)
            return
        if st.shut:  # queued behind a shutdown op: it would go out after the FIN
            self._complete(op, None, send_after_shutdown())
            return
        sends.append(op)

    def sendto(self, op: Op) -> None:
        st = self._socks.get(op.sock) or self._state(op.sock)
        try:  # before it is queued: an address that cannot be packed fails alone
            op._bk = _pack_sockaddr(op.sock.family, op._view[1])
        except OSError as exc:
            self._complete(op, None, exc)
            return
        st.sends.append(op)
        if len(st.sends) == 1:
            self._start_next(op, st)

    def shutdown(self, op: Op) -> None:
        st = self._socks.get(op.sock) or self._state(op.sock)
        st.shut = True
        st.sends.append(op)  # it runs once the sends submitted before it are out
        if len(st.sends) == 1:
            self._start_next(op, st)

    def recvfrom(self, op: Op) -> None:
        st = self._socks.get(op.sock) or self._state(op.sock)
        st.froms.append(op)
        if len(st.froms) == 1:
            self._start_recvfrom(st, op)

    def try_send(self, sock: socket.socket, data: Any) -> int:
        try:  # (as in recv)
            st = self._socks[sock]
        except KeyError:
            st = None
        if st is not None and st.sends:
            if st.shut:
                raise send_after_shutdown()
            return 0  # they go first
        try:
            return sock.send(data, _TRY_SEND_FLAGS)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as exc:
            raise self._send_error(st, exc)

    @staticmethod
    def _send_error(st: Optional[_Sock], exc: OSError) -> OSError:
        """The error of a send the OS refused (after a shutdown op: that one)."""
        return send_after_shutdown() if st is not None and st.shut else normalize(exc)

    def cancel(self, op: Op) -> None:
        ud = op._bk
        if type(ud) is int and ud in self._inflight:
            self._cancel_in_kernel(op, ud)
            return
        st = self._socks.get(op.sock)
        if st is None:
            return
        for queue in (st.recvs, st.sends, st.froms):
            if op in queue:  # queued behind the head, not in the kernel yet
                queue.remove(op)
                op._bk = None
                if op.kind is _SHUTDOWN:
                    st.shut = False  # it never ran: the sending side stays open
                self._complete(op, None, OperationCancelled())
                return

    def _cancel_in_kernel(self, op: Op, ud: int) -> None:
        self._flush()
        if lib.uring_void(self._r, ud) or self._drop_request(ud):
            # Not submitted yet: it never reaches the kernel, so it ends here.
            _, st, _ = self._inflight.pop(ud)
            self._unqueue(op, st)
            if op.kind is _SHUTDOWN:
                st.shut = False  # it never ran: the sending side stays open
            self._complete(op, None, OperationCancelled())
            if st.live:
                self._start_next(op, st)
            return
        self._cancelling.add(ud)
        lib.uring_cancel(self._r, ud)

    def _drop_request(self, ud: int) -> bool:
        """Take the request of ``ud`` off the queue if the ring was too full for it."""
        bufs = self._bufs
        if bufs and not ud & 1 and ud > self._r.queued_ud:  # (else written, or never queued)
            # Voided in place, not deleted: the user data of those after it is implicit.
            bufs[(ud - self._ud) // 2 + len(bufs)] = ffi.NULL
            return True
        return False

    def close_socket(self, sock: socket.socket) -> None:
        st = self._socks.get(sock)
        if st is not None:
            self._forget(st, "socket closed")
            # Its ops in the kernel hold the socket open: submit their cancels now,
            # so that the peer sees the close now, not after our next poll.
            lib.uring_submit(self._r)
        sock.close()

    def _forget(self, st: _Sock, why: str) -> None:
        """Drop a socket: its queued ops complete cancelled now, those in the
        kernel are cancelled there (and complete when it says so)."""
        st.live = False
        if self._socks.get(st.sock) is st:
            del self._socks[st.sock]
        if self._by_fd.get(st.fd) is st:
            del self._by_fd[st.fd]
        in_kernel = [*st.accepts, *st.readers]
        for queue in (st.recvs, st.sends, st.froms):
            if queue:
                in_kernel.append(queue.popleft())
                for op in queue:
                    op._bk = None
                    self._complete(op, None, OperationCancelled(why))
                queue.clear()
        if st.connect is not None:
            in_kernel.append(st.connect)
        for op in in_kernel:
            if op._bk in self._inflight:
                self._cancel_in_kernel(op, op._bk)

    # -- completions -----------------------------------------------------------
    def poll(self, timeout: Optional[float]) -> None:
        if self._interrupted:
            self._recover()
        if timeout is None:
            ns = -1
        else:
            ns = int(timeout * 1e9)
            if ns <= 0 < timeout:
                ns = 1
        sq, bufs = self._sq, self._bufs
        try:
            n = _uring_wait(self._r, ns, self._ud, sq, bufs, len(bufs))  # 2 x completions staged + backlog, or -errno
            if n >= 0:
                if sq and not n & 1:  # all written into the ring
                    sq.clear()  # (kept, should an exception come first: the C half skips what it wrote)
                    bufs.clear()
                if n > 1:
                    self._reap(n >> 1)
            else:
                if sq and not self._r.backlog:
                    sq.clear()
                    bufs.clear()
                if self._r.nstaged:
                    self._reap(self._r.nstaged)
                if n not in (-errno.EAGAIN, -errno.EBUSY, -errno.ENOMEM):
                    raise os_error(-n, what="io_uring_enter")
                # else the kernel is short of room: what is queued goes next time
        except BaseException:  # Ctrl-C: the rest of what was staged is handled next time
            self._interrupted = True
            raise

    def _reap(self, n: int) -> None:
        """Handle the ``n`` completions staged by the C half."""
        inflight = self._inflight
        ready = self._ready
        cancelling = self._cancelling
        for ud, res in zip(self._staged_ud[:n].tolist(), self._staged_res[:n].tolist()):
            try:  # (a subscript, not get(): no call)
                op, st, keep = inflight[ud]
            except KeyError:
                continue  # handled before an interruption
            # The per-message paths: a recv that got data (or end of stream), a
            # send that went out in full. No call from the del of its user data to
            # the append, so a signal's exception cannot land half-way. The op leaves
            # the head of its queue after that, with popleft() (a call, but cheaper
            # than reading queue[0]): a done head an exception leaves there is what
            # _recover pops. (The op is the head; the queue is empty if the socket
            # was forgotten.)
            if op.kind is _RECV and res >= 0:
                del inflight[ud]  # (op._bk keeps the spent user data: never reused, never found)
                op.nbytes = op._value = res
                ready.append(op)  # = complete(op, res, None): the Backend's fast path
                recvs = st.recvs
                try:
                    head = recvs.popleft()
                except IndexError:
                    head = op
                if head is not op:
                    recvs.appendleft(head)
                if cancelling:
                    cancelling.discard(ud)
                if recvs and st.live:
                    self._start_recv(st, recvs[0])
            elif op.kind is _SEND and res >= 0 and op.nbytes + res == len(keep):
                del inflight[ud]
                op.nbytes = op._value = op.nbytes + res
                ready.append(op)
                sends = st.sends
                try:
                    head = sends.popleft()
                except IndexError:
                    head = op
                if head is not op:
                    sends.appendleft(head)
                if cancelling:
                    cancelling.discard(ud)
                if sends and st.live:
                    self._start_send(st, sends[0])
            else:
                self._completed(ud, op, st, keep, res)
        # (Left staged: the C half forgets them at its next uring_wait, and handling
        # them again finds nothing. A cffi field write costs more than the walk of one.)

    def _completed(self, ud: int, op: Op, st: _Sock, keep: Any, res: int) -> None:
        """Every other completion. Order, for _recover: queue
        book-keeping, then complete, then forget the user data, then start more."""
        cancelled = ud in self._cancelling
        kind = op.kind
        if kind is _SEND:
            # op.nbytes changes only once the completion is recorded: handling this
            # completion again after an interruption must not count res twice.
            done = op.nbytes + res if res >= 0 else op.nbytes
            if res >= 0 and done < len(keep) and not cancelled and st.live:
                # Short without an error or a cancel (a signal): the rest, at once.
                # (No call between these two, so no signal's exception either: with
                # nbytes first, a completion handled again would count res twice.)
                del self._inflight[ud]
                op.nbytes = done
                self._start_send(st, op)
                return
            self._unqueue(op, st)
            if done == len(keep):
                self._complete(op, done, None)
            else:
                self._complete(op, None, OperationCancelled() if res >= 0 else self._error(op, res, cancelled))
            op.nbytes = done
        elif kind is _RECV:
            self._unqueue(op, st)
            self._complete(op, None, self._error(op, res, cancelled))
        elif kind is _READABLE:
            self._unqueue(op, st)
            self._complete(op, None, None if res >= 0 else self._error(op, res, cancelled))
        elif kind is _ACCEPT:
            if res >= 0:
                self._unqueue(op, st)
                # Kept until recorded: handled again after an interruption, the
                # descriptor must not get a second socket object (which would close it).
                conn = self._accepted.get(ud) or self._accepted.setdefault(ud, _accepted(op.sock, res, keep))
                self._complete(op, conn, None)
                del self._accepted[ud]
            elif -res in _ACCEPT_RETRY and not cancelled and st.live:
                del self._inflight[ud]  # a client that went away: wait for the next one
                self._start_accept(st, op)
                return
            else:
                self._unqueue(op, st)
                self._complete(op, None, self._error(op, res, cancelled))
        elif kind is _RECVFROM:
            if res == -errno.ECONNREFUSED:
                # (a connected socket) an ICMP port unreachable for an earlier send: no datagram
                if not cancelled and st.live:
                    del self._inflight[ud]
                    self._start_recvfrom(st, op)
                    return
                res = -_ECANCELED  # it took no datagram
            self._unqueue(op, st)
            if res >= 0:
                size = len(keep.bufs[0])
                op.nbytes = n = min(res, size)  # res: the datagram's whole length (MSG_TRUNC)
                self._complete(op, datagram(n, _unpack_sockaddr(keep.name()), res > size), None)
            else:
                self._complete(op, None, self._error(op, res, cancelled))
        elif kind is _SENDTO:
            self._unqueue(op, st)
            if res >= 0:
                op.nbytes = res
            self._complete(op, res if res >= 0 else None, None if res >= 0 else self._error(op, res, cancelled))
        elif kind is _SHUTDOWN:
            self._unqueue(op, st)
            error = None if res >= 0 else self._error(op, res, cancelled)
            if isinstance(error, OperationCancelled):
                st.shut = False  # it never ran: the sending side stays open
            self._complete(op, None, error)
        else:  # connect
            if st.connect is op:
                st.connect = None
            self._complete(op, op.sock if res == 0 else None, None if res == 0 else self._error(op, res, cancelled))
        del self._inflight[ud]
        self._cancelling.discard(ud)
        op._bk = None
        if st.live:
            self._start_next(op, st)

    def _error(self, op: Op, res: int, cancelled: bool) -> OSError:
        code = -res
        if code == _ECANCELED or (cancelled and code in (errno.EINTR, errno.EBADF)):
            return OperationCancelled()
        if code == errno.EBADF and op.sock.fileno() < 0:
            return OperationCancelled("socket closed while the op was pending")
        return os_error(code)

    def _unqueue(self, op: Op, st: _Sock) -> None:
        kind = op.kind
        queue = st.recvs if kind is _RECV else st.froms if kind is _RECVFROM else \
            st.sends if kind is _SEND or kind is _SENDTO or kind is _SHUTDOWN else None
        if queue is not None:
            if queue and queue[0] is op:
                queue.popleft()
        elif kind is _ACCEPT and op in st.accepts:
            st.accepts.remove(op)
        elif kind is _READABLE and op in st.readers:
            st.readers.remove(op)

    def _recover(self) -> None:
        """After an exception (Ctrl-C) inside poll(): finish handling what was
        staged (ops already completed are only forgotten), then make sure the
        head of every queue is in the kernel. Done again at the next poll if an
        exception stops it too: the C half forgets what it staged once called again."""
        r = self._r
        if r.nstaged:
            uds = ffi.unpack(r.ud, r.nstaged)
            for ud in uds:
                entry = self._inflight.get(ud)
                if entry is not None and entry[0].done:
                    del self._inflight[ud]
                    self._unqueue(entry[0], entry[1])
            self._reap(r.nstaged)
        for st in list(self._socks.values()):
            for queue in (st.recvs, st.sends, st.froms):
                while queue and queue[0].done:
                    queue.popleft()
                if queue:
                    self._start_next(queue[0], st)
            for op in list(st.accepts):
                if op.done:
                    st.accepts.remove(op)
                elif op._bk not in self._inflight:
                    st.accepts.remove(op)
                    self.accept(op)
            for op in list(st.readers):
                if op.done:
                    st.readers.remove(op)
                elif op._bk not in self._inflight:
                    st.readers.remove(op)
                    self.readable(op)
        self._interrupted = False

    # -- the rest ----------------------------------------------------------------
    def wakeup(self) -> None:
        ring = self._ring
        with ring.lock:
            if ring.open:
                os.eventfd_write(ring.wake_fd, 1)

    def close(self) -> None:
        for st in list(self._socks.values()):
            self._forget(st, "proactor closed")
        self._socks.clear()
        self._by_fd.clear()
        # Every buffer stays referenced until the kernel gave it back.
        self._ring.finish(self._reap_at_close, _CLOSE_WAIT)

    def _reap_at_close(self) -> None:
        if self._interrupted:
            self._recover()  # (no socket is left to restart anything on)
        elif self._r.nstaged:
            self._reap(self._r.nstaged)


def _pack_sockaddr(family: int, address: Any) -> bytes:
    """The C ``sockaddr`` for a resolved address."""
    if family == socket.AF_INET:
        host, port = address[0], address[1]
        return struct.pack("=H", family) + struct.pack("!H", port) + socket.inet_pton(family, host) + bytes(8)
    if family == socket.AF_INET6:
        host, port = address[0], address[1]
        flow, scope = (address[2], address[3]) if len(address) == 4 else (0, 0)
        host, _, zone = host.partition("%")
        if zone and not scope:  # "fe80::1%eth0" (or "%2"), as the socket module takes it
            scope = int(zone) if zone.isdigit() else socket.if_nametoindex(zone)
        return (struct.pack("=H", family) + struct.pack("!HI", port, flow) + socket.inet_pton(family, host)
                + struct.pack("=I", scope))
    raise OSError(errno.EAFNOSUPPORT, f"the uring backend connects IPv4 and IPv6 sockets, not family {family}")


def _unpack_sockaddr(raw: bytes) -> Any:
    """The address tuple of a C ``sockaddr`` the kernel filled (``None`` for a
    family other than IPv4 and IPv6)."""
    family = struct.unpack_from("=H", raw)[0]
    if family == socket.AF_INET:
        return socket.inet_ntop(family, raw[4:8]), struct.unpack_from("!H", raw, 2)[0]
    if family == socket.AF_INET6:
        port, flow = struct.unpack_from("!HI", raw, 2)
        return socket.inet_ntop(family, raw[8:24]), port, flow, struct.unpack_from("=I", raw, 24)[0]
    return None


def _accepted(listener: socket.socket, fd: int, keep: Any) -> tuple:
    """The accepted socket (non-blocking, as the kernel made it) and its peer address."""
    conn = socket.socket(listener.family, listener.type | _SOCK_NONBLOCK, listener.proto, fileno=fd)
    addr = _unpack_sockaddr(ffi.buffer(keep, _ADDR_ROOM)[:])
    return conn, conn.getpeername() if addr is None else addr


class _Msg:
    """All the memory one SENDMSG or RECVMSG hands the kernel: the msghdr with
    room for a sockaddr, the iovec array and the pinned buffers. It stays in
    ``_Ring.inflight`` with its op until the op's completion, as a single
    buffer does. ``len()`` is the op's byte count over all its buffers, so that
    a list send completes (and resumes after a short send) through the code of
    a single send."""

    __slots__ = ("m", "iov", "bufs", "niov", "namelen", "size")

    def __init__(self, views: Any, skip: int = 0, name: Optional[bytes] = b"") -> None:
        """``views`` from byte ``skip`` on (a list send resumed); ``name``: the
        address to send to, ``None`` for room for the sender's, ``b""`` for none."""
        self.bufs = bufs = [from_buffer(v) for v in views]  # (the core checked them: writable for a recv)
        self.size = sum(map(len, bufs))
        self.iov = iov = ffi.new("struct iovec[]", len(bufs))
        i = 0
        for b in bufs:
            n = len(b)
            if skip and skip >= n:
                skip -= n
                continue
            iov[i].iov_base = b + skip
            iov[i].iov_len = n - skip
            skip = 0
            i += 1
        self.niov = i
        self.m = ffi.new("struct uring_msg *")
        if name is None:
            self.namelen = _ADDR_ROOM
        else:
            self.namelen = len(name)
            ffi.memmove(self.m.name, name, len(name))

    def __len__(self) -> int:
        return self.size

    def name(self) -> bytes:
        return ffi.buffer(self.m.name)[:]
