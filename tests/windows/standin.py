"""A scripted stand-in of the cffi Winsock library, for testing the Windows
backend's logic on Linux. It is a stand-in, not Windows: it behaves exactly as
the facts in docs/winsock-facts.md (measured under Wine by the contract programs
in tests/windows/contracts/ and by the table its rows are checked against,
tests/windows/facts_table.py) say Windows does -- no more.

What is real and what is scripted:

* The ``ffi`` is the real one, ``make_ffi()`` over the project's cdef: the backend
  allocates real ``WSAOVERLAPPED``/``WSABUF``/``GUID``/``sockaddr`` structs with the
  Win64 layout, and the stand-in reads and writes them through the same ffi
  (``hEvent``, ``Internal``, ``InternalHigh``, ``WSABUF.buf``...).
* ``AcceptEx``/``ConnectEx``/``GetAcceptExSockaddrs`` are real C function pointers
  (``ffi.callback``) handed out by ``WSAIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER)``
  when asked with the right GUID, so the backend calls them with C marshalling.
* A SOCKET is a Linux descriptor; the data moves over real Linux sockets. A
  "kernel" thread (``selectors``) performs pending ops when the descriptor is
  ready, fills ``Internal``/``InternalHigh`` and signals the op's event.
* Event objects are manual-reset events built on locks; ``WSAWaitForMultipleEvents``
  really blocks (at most 64 handles, lowest signalled index wins, 258 on timeout,
  WSA_WAIT_FAILED/87 for more than 64). A wait behaves like a C call with
  respect to signals: the C-level handler runs (and writes the
  ``set_wakeup_fd`` descriptor, as CPython's console-control handler does on
  Windows), but an exception raised by the Python-level handler meanwhile is
  held back until the wait returns -- so only an event (e.g. the wakeup socket's
  recv completing) can end the wait early. That is what makes the Ctrl-C tests
  meaningful here.

Pinned behaviours (docs/winsock-facts.md):

* WSARecv/WSASend take several WSABUFs (filled / sent in order, the array read
  at the call, the buffers used until completion).
* WSARecv/WSASend with nothing to do yet: SOCKET_ERROR, 997; the event stays
  unsignalled; WSAGetOverlappedResult(fWait=FALSE) says 996.
* Data already there: returns 0 with the bytes filled in *and* the event
  signalled (counted in ``immediate``).
* Issuing an op resets its event.
* A stream send completes only with all its bytes (or an error);
  ``InternalHigh`` tracks what went out, so a cancelled send reports its part.
* CancelIoEx: 995 for the op (TRUE), 1168 ERROR_NOT_FOUND when nothing is left
  to cancel, 6 for a dead handle. A recv that had its data keeps it.
* closesocket (or a socket closed behind our back, noticed when its number is
  next used) with ops pending: their events are signalled with a failure --
  995 like Windows, or ``wine_close=True``: Internal 0x8000000A and 10038 like Wine.
* AcceptEx: the pre-made accept socket becomes the connection (``os.dup2``);
  addresses go to the output buffer for GetAcceptExSockaddrs; SO_UPDATE_ACCEPT_CONTEXT
  must name the listener. A client that reset before it was accepted fails the
  AcceptEx with WSAECONNRESET (Linux would hand it over); ``fail_next_accepts``
  scripts other codes (ERROR_NETNAME_DELETED, 64).
* ConnectEx on an unbound socket: 10022; to a closed port: pending, then 10061.
* Peer reset: 10054; peer FIN: a pending recv completes with 0 bytes.
* UDP: one datagram per WSARecv(From); one too large for the buffers fails with
  WSAEMSGSIZE (10040) with the buffers full (through the event, or at once -- and
  then the event is signalled all the same); WSARecvFrom writes the sender's
  address. A WSASendTo to a loopback port nobody has bound makes the socket's next
  (or pending) receive fail with 10054 while SIO_UDP_CONNRESET is on, Windows'
  default; ``WSAIoctl`` switches it off.

Hardened so that the backend's memory mistakes show:

* Every call validates its SOCKET (a closed one: 10038 WSAENOTSOCK, also from
  WSAGetOverlappedResult, whatever state the op is in); socket numbers (Linux
  descriptors) and event handle values are handed out again at once, as Windows
  reuses handle values.
* CancelIoEx and closesocket never complete an op themselves: the op leaves its
  queue and completes on the kernel thread after ``completion_delay(op)``
  seconds (random, a few ms; tests script it), as CancelIoEx does not wait.
* It keeps no reference to an OVERLAPPED or a buffer. The backend's ffi is a
  :class:`TrackingFFI`: every ``new``/``from_buffer`` is recorded by address with
  a *weak* reference, and each kernel access takes a strong one for its duration
  or, if the memory was freed, records a use-after-free violation instead of
  writing. ``dispose()`` first runs the cancels and aborts still on their way.
  ``StandInWinsockBackend.close()`` raises if any violation was recorded.

Counters (for proving "no polling"): ``wait_calls``, ``wait_timeouts`` (a wait
with a non-zero timeout that ran out), ``zero_timeout_calls`` (sweeps),
``max_events`` (most handles in one call), ``finite_waits_while_pending``
(a wait with 0 < timeout < INFINITE while any op was in flight), ``events_created``,
``live_events``. ``violations`` lists every misuse seen (an OVERLAPPED reused while
pending, an event closed while an op or a wait used it, an exception inside a
callback, ...); tests assert it stays empty.
"""
from __future__ import annotations

import bisect
import errno
import heapq
import itertools
import os
import random
import select
import selectors
import socket
import stat
import threading
import traceback
import weakref
from collections import deque
from time import monotonic
from typing import Any, Optional

from overlapio.backends.winsock import WinsockBackend
from overlapio.backends.winsock import cdef as C
from overlapio.backends.winsock.api import SIO_UDP_NETRESET, lib

__all__ = ["StandIn", "StandInWinsockBackend", "make_backend", "shared_ffi"]

_FFI = None
_FFI_LOCK = threading.Lock()


def shared_ffi():
    """One real ``make_ffi()`` for every stand-in (parsing the cdef takes a while)."""
    global _FFI
    with _FFI_LOCK:
        if _FFI is None:
            _FFI = C.make_ffi()
        return _FFI


INFINITE = 0xFFFFFFFF
WAIT_FAILED = 0xFFFFFFFF
WAIT_TIMEOUT = 258
STATUS_PENDING = 0x103
_NTSTATUS = {995: 0xC0000120, 10054: 0xC000020D, 10061: 0xC0000236, 64: 0xC000013B, 10053: 0xC0000241}
_WINE_CLOSED_STATUS = 0x8000000A
_ERRNO_TO_WSA = {
    errno.ECONNRESET: 10054, errno.EPIPE: 10054, errno.ECONNREFUSED: 10061, errno.ETIMEDOUT: 10060,
    errno.ENOTCONN: 10057, errno.ECONNABORTED: 10053, errno.EBADF: 10038, errno.ENOTSOCK: 10038,
    errno.EINVAL: 10022, errno.EADDRINUSE: 10048, errno.EADDRNOTAVAIL: 10049, errno.ENETUNREACH: 10051,
    errno.EHOSTUNREACH: 10065, errno.EMSGSIZE: 10040, errno.ENOBUFS: 10055, errno.EISCONN: 10056,
    errno.EAFNOSUPPORT: 10047, errno.ESHUTDOWN: 10058,
}
_READ, _WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
#: calls whose only record of what they made is their return value (see inject())
_CREATES_HANDLE = {"WSACreateEvent", "WSASocketW"}


def wsa_code(eno: int) -> int:
    """A Linux errno as the Winsock code Windows reports (WSABASEERR + errno otherwise)."""
    return _ERRNO_TO_WSA.get(eno, 10000 + eno)


class _Alloc:
    """One allocation the backend made through its ffi: an address range and a
    weak reference to the cdata that owns it (alive <=> the memory is)."""

    __slots__ = ("start", "end", "ref", "what")

    def __init__(self, start: int, end: int, ref: Any, what: str) -> None:
        self.start = start
        self.end = end
        self.ref = ref
        self.what = what


class _Memory:
    """Every allocation the backend made, by address, held weakly: the stand-in
    keeps nothing alive, so memory the backend frees really is freed, and the
    kernel can tell that before it writes (a use-after-free detector)."""

    def __init__(self, ffi: Any) -> None:
        self._ffi = ffi
        self._lock = threading.Lock()
        self._starts: list[int] = []  # sorted; parallel to _recs
        self._recs: list[_Alloc] = []
        self._dead = 0  # freed records not yet dropped from the lists

    def add(self, owner: Any, what: str) -> None:
        ffi = self._ffi
        t = ffi.typeof(owner)
        size = ffi.sizeof(t.item) if t.kind == "pointer" else ffi.sizeof(owner)
        start = int(ffi.cast("uintptr_t", owner))
        rec = _Alloc(start, start + size, weakref.ref(owner, self._on_free), what)
        with self._lock:
            i = bisect.bisect_right(self._starts, start)
            self._starts.insert(i, start)
            self._recs.insert(i, rec)

    def _on_free(self, _ref: Any) -> None:
        self._dead += 1  # (may run in any thread, at any allocation: no lock here)

    def find(self, addr: int) -> Optional[_Alloc]:
        """The live allocation holding ``addr``, or None."""
        with self._lock:
            if self._dead > 1000 and 2 * self._dead > len(self._recs):
                live = [r for r in self._recs if r.ref() is not None]
                self._recs = live
                self._starts = [r.start for r in live]
                self._dead = 0
            i = bisect.bisect_right(self._starts, addr) - 1
            while i >= 0:
                rec = self._recs[i]
                if rec.end > addr and rec.ref() is not None:
                    return rec
                i -= 1
        return None


class TrackingFFI:
    """The ffi the backend is given: the real one, but every ``new`` and
    ``from_buffer`` is recorded (weakly) in a :class:`_Memory`."""

    def __init__(self, ffi: Any, memory: _Memory) -> None:
        self._ffi = ffi
        self._memory = memory

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._ffi, name)
        setattr(self, name, value)  # cache: cast, NULL, sizeof ... cost nothing more
        return value

    def new(self, cdecl: Any, init: Any = None) -> Any:
        p = self._ffi.new(cdecl, init)
        self._memory.add(p, str(cdecl))
        return p

    def from_buffer(self, *args: Any, **kwargs: Any) -> Any:
        p = self._ffi.from_buffer(*args, **kwargs)
        self._memory.add(p, "from_buffer")
        return p


class _Ev:
    __slots__ = ("signalled", "waiters", "busy")

    def __init__(self) -> None:
        self.signalled = False
        self.waiters: list = []
        self.busy = 0  # pending ops using it


class _KOp:
    """A kernel-side overlapped op. It holds the OVERLAPPED and the buffers by
    address and by their :class:`_Alloc` (weakly), never the memory itself."""

    __slots__ = ("kind", "ks", "ovkey", "ovmem", "ev", "bufs", "length", "offset", "done", "err", "n",
                 "accept_fd", "accept_ident", "lens", "cancelling", "addr_out", "to")

    def __init__(self, kind: str, ks: "_KSock", ovkey: int, ovmem: Optional[_Alloc], ev: _Ev) -> None:
        self.kind = kind
        self.ks = ks
        self.ovkey = ovkey
        self.ovmem = ovmem
        self.ev = ev
        self.bufs: list = []  # [(address, length, _Alloc or None)]
        self.length = 0
        self.offset = 0
        self.done = False
        self.err = 0
        self.n = 0
        self.accept_fd = -1
        self.accept_ident: Any = None
        self.lens: Any = None
        self.cancelling = False  # a cancel or close-abort is on its way (kernel thread)
        self.addr_out: Any = None  # WSARecvFrom: ((address, _Alloc) of lpFrom, of lpFromlen), written at completion
        self.to: Any = None  # WSASendTo: the destination, read at the call


class _KSock:
    __slots__ = ("fd", "ident", "recvs", "sends", "accepts", "connect", "mask", "accepted_from",
                 "connectex_ok", "dgram", "connreset", "icmp")

    def __init__(self, fd: int, ident: tuple) -> None:
        self.fd = fd
        self.ident = ident
        w = _wrap(fd)
        try:
            self.dgram = w.type == socket.SOCK_DGRAM
        finally:
            w.detach()
        self.connreset = True  # SIO_UDP_CONNRESET: on until switched off
        self.icmp = False  # a port unreachable arrived: the next receive fails with 10054
        self.recvs: deque = deque()
        self.sends: deque = deque()
        self.accepts: deque = deque()
        self.connect: Optional[_KOp] = None
        self.mask = 0
        self.accepted_from = -1  # the listener whose AcceptEx made this connection
        self.connectex_ok = False

    def ops(self) -> list:
        out = [*self.recvs, *self.sends, *self.accepts]
        if self.connect is not None:
            out.append(self.connect)
        return out


def _wrap(fd: int) -> socket.socket:
    return socket.socket(fileno=fd)


class StandIn:
    """The Win32 API namespace the backend gets from ``_load_api()`` (see module doc)."""

    def __init__(self, *, wine_close: bool = False) -> None:
        real = shared_ffi()
        self.memory = _Memory(real)
        self.ffi = ffi = TrackingFFI(real, self.memory)  # what the backend allocates with
        self.wine_close = wine_close
        self._lock = threading.RLock()
        self._tls = threading.local()
        self._events: dict[int, _Ev] = {}
        self._next_handle = 0x1000
        self._free_handles: list[int] = []  # closed event handles, handed out again at once
        self._ops: dict[int, _KOp] = {}  # OVERLAPPED address -> its latest op
        self._pending: dict[int, _KOp] = {}
        self._socks: dict[int, _KSock] = {}
        self._sel: Optional[selectors.BaseSelector] = None
        self._thread: Optional[threading.Thread] = None
        self._wake_r = self._wake_w = -1
        self._stopping = False
        self._timers: list = []  # (due, seq, fn): cancels and close-aborts the kernel thread runs
        self._seq = itertools.count()
        #: seconds before a cancel/close-abort completes (k -> delay); tests script orders
        self.completion_delay = lambda k: random.uniform(0.0, 0.003)
        self.fail_next_accepts: list[int] = []  # scripted AcceptEx failures (each needs a client)
        self.short_send_limit: Optional[int] = None  # scripted short send counts
        # counters
        self.wait_calls = 0
        self.wait_timeouts = 0
        self.zero_timeout_calls = 0
        self.max_events = 0
        self.finite_waits_while_pending = 0
        self.events_created = 0
        self.events_closed = 0
        self.immediate = 0
        self.deferred_signals = 0  # Python-level handler exceptions held until a wait returned
        self.cancel_calls = 0
        self.cancel_not_found = 0
        self.ioctl_calls = 0
        self.accept_failures = 0
        self.accept_ctx_updates = 0
        self.connect_ctx_updates = 0
        self.icmp_errors = 0  # port unreachables reported to a socket with SIO_UDP_CONNRESET on
        self.udp_ioctls = 0  # SIO_UDP_CONNRESET/SIO_UDP_NETRESET calls
        self.violations: list[str] = []
        self.freed_writes = 0  # kernel accesses to memory the backend had freed
        self.leaks: list[str] = []
        self._cb_accept = ffi.callback("LPFN_ACCEPTEX", self._accept_ex, onerror=self._cb_error)
        self._cb_connect = ffi.callback("LPFN_CONNECTEX", self._connect_ex, onerror=self._cb_error)
        self._cb_sockaddrs = ffi.callback("LPFN_GETACCEPTEXSOCKADDRS", self._get_sockaddrs,
                                          onerror=self._cb_error)
        self._extensions = {
            C.WSAID_ACCEPTEX.bytes_le: ("LPFN_ACCEPTEX", self._cb_accept),
            C.WSAID_CONNECTEX.bytes_le: ("LPFN_CONNECTEX", self._cb_connect),
            C.WSAID_GETACCEPTEXSOCKADDRS.bytes_le: ("LPFN_GETACCEPTEXSOCKADDRS", self._cb_sockaddrs),
        }
        # fault injection: see inject()
        self._owner = threading.get_ident()
        self._fault: Optional[tuple] = None
        self._deferred: Optional[BaseException] = None
        self.calls = 0  # calls counted since inject()
        for name in sorted({n for names in C.DLLS.values() for n in names}):
            fn = getattr(type(self), name, None)
            if callable(fn):
                setattr(self, name, self._counted(name, getattr(self, name)))

    # -- fault injection -----------------------------------------------------------
    def inject(self, n: Optional[int], exc: Any = None, only: Optional[str] = None) -> None:
        """Raise ``exc`` (a class) at the return of the ``n``-th API call the backend
        makes from the thread that made this stand-in, counting from now; ``n=None``
        only counts (``self.calls``); ``only`` counts the calls of that function
        alone; :meth:`stop_injecting` ends it. The call itself has
        happened (an op it started is in the kernel); only its result is lost, as
        when a KeyboardInterrupt lands right after a cffi call returns. A call
        that creates a handle fails instead (raises before it runs): a handle
        whose value was lost could be closed by no code at all. An
        extension function is a C pointer, and an exception cannot cross back
        through C: for those the fault is raised at the entry of the backend's
        next API call on that thread instead."""
        self.calls = 0
        self._deferred = None
        self._fault = (n, exc, only)

    def stop_injecting(self) -> None:
        self._fault = None
        self._deferred = None

    def _hit(self, name: str) -> Optional[BaseException]:
        """Count one call; the exception to raise at its return, if this is the one."""
        fault = self._fault
        if fault is None or threading.get_ident() != self._owner or fault[2] not in (None, name):
            return None
        self.calls += 1
        if self.calls == fault[0]:
            return fault[1]()
        return None

    def _counted(self, name: str, fn: Any) -> Any:
        creates = name in _CREATES_HANDLE

        def call(*args: Any) -> Any:
            if self._deferred is not None and threading.get_ident() == self._owner:
                exc, self._deferred = self._deferred, None
                raise exc
            if creates:  # a handle lost at the return could be closed by nobody: fail instead
                exc = self._hit(name)
                if exc is not None:
                    raise exc
                return fn(*args)
            result = fn(*args)
            exc = self._hit(name)
            if exc is not None:
                raise exc
            return result
        return call

    def _counted_callback(self, name: str) -> None:
        exc = self._hit(name)
        if exc is not None:
            self._deferred = exc

    # -- bookkeeping ---------------------------------------------------------------
    @property
    def live_events(self) -> int:
        return len(self._events)

    @property
    def pending_ops(self) -> int:
        return len(self._pending)

    def _set_err(self, code: int) -> None:
        self._tls.err = code

    def _violation(self, what: str) -> None:
        self.violations.append(what)

    def _cb_error(self, exc_type, exc, tb) -> None:
        self._violation("exception in a stand-in callback:\n" + "".join(traceback.format_exception(exc_type, exc, tb)))

    def _key(self, handle: Any) -> int:
        return int(self.ffi.cast("uintptr_t", handle))

    def _sock(self, fd: int) -> Optional[_KSock]:
        """The socket behind SOCKET ``fd``, or None if that is no socket. A record
        whose descriptor was closed (and maybe reused) is retired first: its ops
        fail as closesocket would have made them fail."""
        try:
            st = os.fstat(fd)
            ident = (st.st_dev, st.st_ino) if stat.S_ISSOCK(st.st_mode) else None
        except OSError:
            ident = None
        ks = self._socks.get(fd)
        if ks is not None and ks.ident != ident:
            self._abort_closed(ks)
            ks = None
        if ks is None and ident is not None:
            ks = self._socks[fd] = _KSock(fd, ident)
            os.set_blocking(fd, False)
        return ks

    def _abort_ops_of_closed_sockets(self, evs: list) -> None:
        """Windows aborts a socket's pending ops the moment the socket is closed; a
        Linux ``close()`` of the descriptor tells nobody. Before a bounded wait (the
        backend's close path waits bounded) notice such sockets among the ops whose
        events are waited on, as closesocket would have."""
        wanted = set(map(id, evs))
        for k in list(self._pending.values()):
            if id(k.ev) in wanted and self._socks.get(k.ks.fd) is k.ks:
                self._sock(k.ks.fd)  # retires the record (aborting its ops) if the fd changed

    def _abort_closed(self, ks: _KSock) -> None:
        for k in ks.ops():
            self._abort(k, 10038 if self.wine_close else 995, closed=True)
        if self._socks.get(ks.fd) is ks:
            del self._socks[ks.fd]
        if ks.mask and self._sel is not None:
            try:
                self._sel.unregister(ks.fd)
            except (KeyError, ValueError):
                pass
        ks.mask = 0

    def _new_op(self, kind: str, ks: _KSock, ov: Any) -> Optional[_KOp]:
        ffi = self.ffi
        if ov == ffi.NULL:
            self._violation(f"{kind} without an OVERLAPPED")
            self._set_err(87)
            return None
        ovkey = int(ffi.cast("uintptr_t", ov))
        if ovkey in self._pending:
            self._violation(f"{kind}: OVERLAPPED {ovkey:#x} reused while its op is still pending")
            self._set_err(87)
            return None
        ev = self._events.get(self._key(ov.hEvent))
        if ev is None:
            self._violation(f"{kind}: hEvent is not a live event")
            self._set_err(6)
            return None
        ovmem = self._tracked(ovkey, "OVERLAPPED", kind)
        ev.signalled = False  # issuing an op resets its event
        ov.Internal = STATUS_PENDING
        ov.InternalHigh = 0
        k = _KOp(kind, ks, ovkey, ovmem, ev)
        self._ops[ovkey] = k
        return k

    def _tracked(self, addr: int, what: str, kind: str) -> Optional[_Alloc]:
        rec = self.memory.find(addr)
        if rec is None:
            self._violation(f"{kind}: the {what} at {addr:#x} was not allocated through the backend's ffi")
        return rec

    def _hold(self, k: _KOp, rec: Optional[_Alloc], what: str) -> Any:
        """A strong reference to ``rec``'s memory for the duration of one kernel
        access (so it cannot be freed mid-write), or None if it was freed already:
        then the access is a use after free, recorded and not performed."""
        if rec is None:
            return None
        owner = rec.ref()
        if owner is None:
            self.freed_writes += 1
            self._violation(f"use after free: the kernel touched the freed {what} of a {k.kind} "
                            f"({rec.what} at {rec.start:#x})")
        return owner

    def _ov(self, k: _KOp) -> Any:
        """The op's OVERLAPPED for a kernel write, or None if it was freed."""
        if self._hold(k, k.ovmem, "OVERLAPPED") is None:
            return None
        return self.ffi.cast("WSAOVERLAPPED *", k.ovkey)

    def _mark_pending(self, ov: Any) -> None:
        """Every overlapped call sets Internal = STATUS_PENDING before it checks
        anything, so even one that fails at once leaves that (as Wine does:
        docs/winsock-facts.md); a backend must not read Internal after such a call."""
        if ov != self.ffi.NULL:
            ov.Internal = STATUS_PENDING

    def _pend(self, k: _KOp, queue: Optional[deque]) -> int:
        if queue is not None:
            queue.append(k)
        self._pending[k.ovkey] = k
        k.ev.busy += 1
        self._want(k.ks)
        self._set_err(997)
        return -1

    def _complete(self, k: _KOp, err: int, n: int, closed: bool = False) -> None:
        if self._pending.pop(k.ovkey, None) is not None:
            k.ev.busy -= 1
        k.done = True
        k.err = err
        k.n = n
        hold = self._hold(k, k.ovmem, "OVERLAPPED")
        if hold is not None:
            ov = self.ffi.cast("WSAOVERLAPPED *", k.ovkey)
            ov.InternalHigh = n
            ov.Internal = 0 if not err else (_WINE_CLOSED_STATUS if closed and self.wine_close
                                             else _NTSTATUS.get(err, 0xC0000001))
        del hold
        self._signal(k.ev)

    def _abort(self, k: _KOp, err: int, closed: bool = False) -> None:
        """Cancel or close-abort ``k``: it leaves its queue now (nothing more is
        performed for it) but completes on the kernel thread, a little later --
        CancelIoEx and closesocket do not wait for the op to end."""
        ks = k.ks
        for q in (ks.recvs, ks.sends, ks.accepts):
            if k in q:
                q.remove(k)
        if ks.connect is k:
            ks.connect = None
        k.cancelling = True
        self._later(self.completion_delay(k), lambda: self._complete(k, err, k.offset, closed=closed))

    def _later(self, delay: float, fn: Any) -> None:
        heapq.heappush(self._timers, (monotonic() + delay, next(self._seq), fn))
        if self._sel is None:
            self._start_kernel()
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass  # the kernel is woken already

    def _run_timers(self, everything: bool = False) -> None:
        now = monotonic()
        timers = self._timers
        while timers and (everything or timers[0][0] <= now):
            heapq.heappop(timers)[2]()

    def _signal(self, ev: _Ev) -> None:
        ev.signalled = True
        for w in ev.waiters:
            try:
                w.release()
            except RuntimeError:
                pass  # already released

    # -- the "kernel" thread -----------------------------------------------------------
    def _want(self, ks: _KSock) -> None:
        mask = (_READ if (ks.recvs or ks.accepts) else 0) | (_WRITE if (ks.sends or ks.connect) else 0)
        if mask == ks.mask:
            return
        if self._sel is None:
            self._start_kernel()
        sel = self._sel
        try:
            if not ks.mask:
                sel.register(ks.fd, mask, ks)
            elif not mask:
                sel.unregister(ks.fd)
            else:
                sel.modify(ks.fd, mask, ks)
        except (KeyError, ValueError, OSError):  # a stale registration of a reused number
            try:
                sel.unregister(ks.fd)
            except (KeyError, ValueError):
                pass
            if mask:
                sel.register(ks.fd, mask, ks)
        ks.mask = mask

    def _start_kernel(self) -> None:
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._sel.register(self._wake_r, _READ, None)
        self._thread = threading.Thread(target=self._kernel, name="standin-kernel", daemon=True)
        self._thread.start()

    def _kernel(self) -> None:
        sel = self._sel
        while True:
            with self._lock:
                timeout = max(0.0, self._timers[0][0] - monotonic()) if self._timers else None
            ready = sel.select(timeout)
            with self._lock:
                if self._stopping:
                    return
                for key, mask in ready:
                    ks = key.data
                    if ks is None:
                        try:
                            os.read(self._wake_r, 512)
                        except BlockingIOError:
                            pass
                        continue
                    if self._socks.get(ks.fd) is not ks or self._sock(ks.fd) is not ks:
                        continue  # closed (and maybe reused) since
                    if mask & _READ:
                        self._do_recvs(ks)
                        self._do_accepts(ks)
                    if mask & _WRITE:
                        if ks.connect is not None:
                            self._do_connect(ks)
                        self._do_sends(ks)
                    self._want(ks)
                self._run_timers()

    def dispose(self) -> None:
        """Stop the kernel thread and release its descriptors; note leaks. Cancels
        and aborts still on their way complete first (into memory that may have
        been freed meanwhile: the detector sees that)."""
        with self._lock:
            self._stopping = True
            self._run_timers(everything=True)
            if self._events:
                self.leaks.append(f"{len(self._events)} event(s) never closed")
            if self._pending:
                self.leaks.append(f"{len(self._pending)} op(s) never completed")
            thread = self._thread
        if thread is not None:
            os.write(self._wake_w, b"x")
            thread.join()
            self._sel.close()
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._thread = None
        # The C callbacks and the counting wrappers refer back to this object through
        # objects the garbage collector cannot traverse (cffi callbacks): drop them,
        # or every stand-in would stay in memory. Nothing may call them any more.
        for name in [n for n, v in vars(self).items() if getattr(v, "__name__", "") == "call"]:
            delattr(self, name)
        self._cb_accept = self._cb_connect = self._cb_sockaddrs = None
        self._extensions.clear()

    # -- performing ops -----------------------------------------------------------------
    def _perform_recv(self, k: _KOp) -> Optional[tuple]:
        fd = k.ks.fd
        if k.ks.dgram:
            return self._perform_recv_datagram(k)
        if k.length == 0:  # a zero-byte recv: completes (with 0) once data is there
            p = select.poll()
            p.register(fd, select.POLLIN)
            return (0, 0) if p.poll(0) else None
        views, holds = self._views(k)
        if views is None:
            return 10014, 0  # WSAEFAULT: (on Windows: memory corruption)
        try:
            n = os.readv(fd, views)  # the WSABUFs filled in order
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as exc:
            return wsa_code(exc.errno), 0
        return 0, n

    def _views(self, k: _KOp) -> tuple:
        """Writable views of all of an op's WSABUFs, and the references that keep
        their memory alive meanwhile; (None, None) if one was freed already."""
        views, holds = [], []
        for addr, length, rec in k.bufs:
            if not length:
                continue
            hold = self._hold(k, rec, "buffer")
            if hold is None:
                return None, None
            holds.append(hold)
            views.append(self.ffi.buffer(self.ffi.cast("char *", addr), length))
        return views, holds

    def _perform_recv_datagram(self, k: _KOp) -> Optional[tuple]:
        """One datagram; too large for the buffers: WSAEMSGSIZE with the buffers
        full. An ICMP port unreachable fails it (10054) only while
        SIO_UDP_CONNRESET is on (Windows' default)."""
        ks = k.ks
        if ks.icmp:
            ks.icmp = False
            return 10054, 0
        views, holds = self._views(k)
        if views is None:
            return 10014, 0
        w = _wrap(ks.fd)
        try:
            while True:
                try:
                    n, _, flags, addr = w.recvmsg_into(views)
                except (BlockingIOError, InterruptedError):
                    return None
                except ConnectionRefusedError:  # Linux: ICMP on a connected socket
                    if ks.connreset:
                        return 10054, 0
                    continue
                except OSError as exc:
                    return wsa_code(exc.errno), 0
                break
        finally:
            w.detach()
        if k.addr_out is not None and addr is not None:
            (sa, sa_rec), (lenp, len_rec) = k.addr_out
            hold = (self._hold(k, sa_rec, "address buffer"), self._hold(k, len_rec, "address length"))
            if None in hold:
                return 10014, 0
            ptr = self.ffi.cast("char *", sa)
            self._write_sockaddr(ptr, addr)
            self.ffi.cast("INT *", lenp)[0] = self._sockaddr_len(ptr)
        return (10040 if flags & socket.MSG_TRUNC else 0), n

    def _unreachable(self, addr: tuple) -> bool:
        """A loopback port no UDP socket is bound to: Windows gets an ICMP port
        unreachable for a datagram sent there."""
        host = addr[0]
        if not (host.startswith("127.") or host == "::1"):
            return False
        probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.bind(addr[:2])
            return True
        except OSError:
            return False
        finally:
            probe.close()

    def _perform_send_datagram(self, k: _KOp) -> Optional[tuple]:
        views, holds = self._views(k)
        if views is None:
            return 10014, 0
        ks = k.ks
        w = _wrap(ks.fd)
        try:
            n = w.sendmsg(views, (), 0, *(() if k.to is None else (k.to,)))
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as exc:
            return wsa_code(exc.errno), 0
        finally:
            w.detach()
        if ks.connreset and k.to is not None and self._unreachable(k.to):
            ks.icmp = True
            self.icmp_errors += 1
            if ks.recvs:
                self._do_recvs(ks)
        return 0, n

    def _perform_send(self, k: _KOp) -> Optional[tuple]:
        if k.ks.dgram:  # one datagram: whole or not at all
            return self._perform_send_datagram(k)
        # short_send_limit scripts a short count (never seen on Windows stream sockets)
        end = k.length if self.short_send_limit is None else min(k.length, self.short_send_limit)
        views, holds, skip, want = [], [], k.offset, end - k.offset
        for addr, length, rec in k.bufs:  # bytes offset..end, across the WSABUFs in order
            if skip >= length:
                skip -= length
                continue
            if want <= 0:
                break
            hold = self._hold(k, rec, "buffer")
            if hold is None:
                return 10014, k.offset
            holds.append(hold)
            take = min(length - skip, want)
            views.append(self.ffi.buffer(self.ffi.cast("char *", addr) + skip, take))
            want -= take
            skip = 0
        try:
            n = os.writev(k.ks.fd, views) if views else 0
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as exc:
            return wsa_code(exc.errno), k.offset
        k.offset += n
        ov = self._ov(k)
        if ov is not None:
            ov.InternalHigh = k.offset  # visible progress, as on Windows
        if k.offset < end:
            return None  # pends until all of it went out (stream sockets: all or error)
        return 0, k.offset

    def _perform_accept(self, k: _KOp) -> Optional[tuple]:
        w = _wrap(k.ks.fd)
        try:
            newfd, peer = w._accept()
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as exc:
            return wsa_code(exc.errno), 0
        finally:
            w.detach()
        conn = socket.socket(w.family, w.type, w.proto, fileno=newfd)
        try:
            if self.fail_next_accepts:
                self.accept_failures += 1
                return self.fail_next_accepts.pop(0), 0
            # Linux hands over a client that reset while queued; Windows fails the AcceptEx
            reset = conn.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNRESET
            if not reset:
                try:
                    conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
                except ConnectionResetError:
                    reset = True
                except OSError:
                    pass
            if reset:
                self.accept_failures += 1
                return 10054, 0
            try:
                st = os.fstat(k.accept_fd)
                ok = (st.st_dev, st.st_ino) == k.accept_ident
            except OSError:
                ok = False
            if not ok:
                return 10038, 0  # the accept socket was closed under the op
            conn.setblocking(False)
            local = conn.getsockname()
            os.dup2(conn.fileno(), k.accept_fd, inheritable=False)  # the accept socket becomes it
            st = os.fstat(k.accept_fd)
            old = self._socks.get(k.accept_fd)
            if old is not None:
                self._abort_closed(old)
            ks = self._socks[k.accept_fd] = _KSock(k.accept_fd, (st.st_dev, st.st_ino))
            ks.accepted_from = k.ks.fd
            recvlen, locallen, _ = k.lens
            addr, _, rec = k.bufs[0]
            hold = self._hold(k, rec, "address buffer")
            if hold is None:
                return 10014, 0
            base = self.ffi.cast("char *", addr) + recvlen
            self._write_sockaddr(base, local)
            self._write_sockaddr(base + locallen, peer)
            return 0, 0
        finally:
            conn.close()

    def _do_recvs(self, ks: _KSock) -> None:
        while ks.recvs:
            res = self._perform_recv(ks.recvs[0])
            if res is None:
                return
            self._complete(ks.recvs.popleft(), *res)

    def _do_sends(self, ks: _KSock) -> None:
        while ks.sends:
            res = self._perform_send(ks.sends[0])
            if res is None:
                return
            self._complete(ks.sends.popleft(), *res)

    def _do_accepts(self, ks: _KSock) -> None:
        while ks.accepts:
            res = self._perform_accept(ks.accepts[0])
            if res is None:
                return
            self._complete(ks.accepts.popleft(), *res)

    def _do_connect(self, ks: _KSock) -> None:
        k = ks.connect
        w = _wrap(ks.fd)
        try:
            code = w.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        finally:
            w.detach()
        ks.connect = None
        if not code:
            ks.connectex_ok = True
        self._complete(k, wsa_code(code) if code else 0, 0)

    # -- sockaddrs in the Windows layout ------------------------------------------------
    def _write_sockaddr(self, ptr: Any, addr: tuple) -> None:
        ffi = self.ffi
        if len(addr) == 2:
            p = ffi.cast("struct sockaddr_in *", ptr)
            ffi.memmove(p, bytes(ffi.sizeof("struct sockaddr_in")), ffi.sizeof("struct sockaddr_in"))
            p.sin_family = lib.AF_INET
            p.sin_port = socket.htons(addr[1])
            ffi.memmove(ffi.addressof(p[0], "sin_addr"), socket.inet_pton(socket.AF_INET, addr[0]), 4)
        else:
            p = ffi.cast("struct sockaddr_in6 *", ptr)
            ffi.memmove(p, bytes(ffi.sizeof("struct sockaddr_in6")), ffi.sizeof("struct sockaddr_in6"))
            p.sin6_family = lib.AF_INET6
            p.sin6_port = socket.htons(addr[1])
            p.sin6_flowinfo = socket.htonl(addr[2])
            p.sin6_scope_id = addr[3]
            ffi.memmove(ffi.addressof(p[0], "sin6_addr"), socket.inet_pton(socket.AF_INET6, addr[0]), 16)

    def _read_sockaddr(self, ptr: Any, length: int) -> Optional[tuple]:
        ffi = self.ffi
        family = ffi.cast("struct sockaddr *", ptr).sa_family
        if family == lib.AF_INET and length >= ffi.sizeof("struct sockaddr_in"):
            p = ffi.cast("struct sockaddr_in *", ptr)
            raw = bytes(ffi.buffer(ffi.addressof(p[0], "sin_addr"), 4))
            return socket.AF_INET, (socket.inet_ntop(socket.AF_INET, raw), socket.ntohs(p.sin_port))
        if family == lib.AF_INET6 and length >= ffi.sizeof("struct sockaddr_in6"):
            p = ffi.cast("struct sockaddr_in6 *", ptr)
            raw = bytes(ffi.buffer(ffi.addressof(p[0], "sin6_addr"), 16))
            return socket.AF_INET6, (socket.inet_ntop(socket.AF_INET6, raw), socket.ntohs(p.sin6_port),
                                     socket.ntohl(p.sin6_flowinfo), p.sin6_scope_id)
        return None

    def _sockaddr_len(self, ptr: Any) -> int:
        family = self.ffi.cast("struct sockaddr *", ptr).sa_family
        return self.ffi.sizeof("struct sockaddr_in6" if family == lib.AF_INET6 else "struct sockaddr_in")

    # ======================= the API (names as in winsock/cdef.DLLS) =======================
    def WSAGetLastError(self) -> int:
        return getattr(self._tls, "err", 0)

    GetLastError = WSAGetLastError

    # -- events ---------------------------------------------------------------------
    def WSACreateEvent(self) -> Any:
        with self._lock:
            if self._free_handles:  # Windows hands a closed handle's value out again at once
                key = self._free_handles.pop()
            else:
                key = self._next_handle
                self._next_handle += 4
            self._events[key] = _Ev()
            self.events_created += 1
        return self.ffi.cast("WSAEVENT", key)

    def WSACloseEvent(self, h: Any) -> int:
        with self._lock:
            ev = self._events.pop(self._key(h), None)
            if ev is None:
                self._set_err(6)
                return 0
            if ev.busy:
                self._violation("an event was closed while an op using it was still pending")
            if ev.waiters:
                self._violation("an event was closed while a thread was waiting on it")
            self._free_handles.append(self._key(h))
            self.events_closed += 1
            return 1

    def WSASetEvent(self, h: Any) -> int:
        with self._lock:
            ev = self._events.get(self._key(h))
            if ev is None:
                self._set_err(6)
                return 0
            self._signal(ev)
            return 1

    def WSAResetEvent(self, h: Any) -> int:
        with self._lock:
            ev = self._events.get(self._key(h))
            if ev is None:
                self._set_err(6)
                return 0
            ev.signalled = False
            return 1

    def WSAWaitForMultipleEvents(self, count: int, handles: Any, wait_all: int, timeout: int,
                                 alertable: int) -> int:
        with self._lock:
            self.wait_calls += 1
            if not 1 <= count <= lib.WSA_MAXIMUM_WAIT_EVENTS:
                self._set_err(87)
                return WAIT_FAILED
            evs = [self._events.get(self._key(handles[i])) for i in range(count)]
            if None in evs:
                self._set_err(6)
                return WAIT_FAILED
            self.max_events = max(self.max_events, count)
            if timeout != 0 and timeout != INFINITE:
                self._abort_ops_of_closed_sockets(evs)
            r = self._check(evs, wait_all)
            if r is not None:
                return r
            if timeout == 0:
                self.zero_timeout_calls += 1
                return WAIT_TIMEOUT
            if timeout != INFINITE and self._pending:
                self.finite_waits_while_pending += 1
            w = threading.Lock()
            w.acquire()
            for ev in evs:
                ev.waiters.append(w)
        deadline = None if timeout == INFINITE else monotonic() + timeout / 1000
        # A C call cannot be interrupted by a Python-level signal handler: if one runs
        # (and raises) while we block here, its exception is held back until the
        # wait is over, as it would surface only once the real call returned.
        deferred: Optional[BaseException] = None
        r: Optional[int] = None
        while r is None:
            try:
                if deadline is None:
                    w.acquire()
                else:
                    left = deadline - monotonic()
                    if left > 0:
                        w.acquire(timeout=left)
                with self._lock:
                    r = self._check(evs, wait_all)
                    if r is None and deadline is not None and monotonic() >= deadline:
                        self.wait_timeouts += 1
                        r = WAIT_TIMEOUT
            except BaseException as exc:  # e.g. KeyboardInterrupt from the SIGINT handler
                deferred = deferred or exc
        with self._lock:
            for ev in evs:
                try:
                    ev.waiters.remove(w)
                except ValueError:
                    pass
        if deferred is not None:
            self.deferred_signals += 1
            raise deferred
        return r

    @staticmethod
    def _check(evs: list, wait_all: int) -> Optional[int]:
        if wait_all:
            return 0 if all(ev.signalled for ev in evs) else None
        for i, ev in enumerate(evs):
            if ev.signalled:
                return i
        return None

    # -- overlapped recv/send -----------------------------------------------------------
    def WSARecv(self, s: int, bufs: Any, nbufs: int, nrecvd: Any, flags: Any, ov: Any, routine: Any) -> int:
        return self._start_io("WSARecv", s, bufs, nbufs, nrecvd, ov, routine)

    def WSASend(self, s: int, bufs: Any, nbufs: int, nsent: Any, flags: int, ov: Any, routine: Any) -> int:
        return self._start_io("WSASend", s, bufs, nbufs, nsent, ov, routine)

    def WSARecvFrom(self, s: int, bufs: Any, nbufs: int, nrecvd: Any, flags: Any, addr: Any, addrlen: Any,
                    ov: Any, routine: Any) -> int:
        ffi = self.ffi
        if addr == ffi.NULL or addrlen == ffi.NULL or addrlen[0] < ffi.sizeof("struct sockaddr_in6"):
            self._violation("WSARecvFrom without room for an IPv6 sender address")
        where = []
        for ptr, what in ((addr, "address buffer"), (addrlen, "address length")):
            at = int(ffi.cast("uintptr_t", ptr))
            where.append((at, self._tracked(at, what, "WSARecvFrom")))
        return self._start_io("WSARecvFrom", s, bufs, nbufs, nrecvd, ov, routine, addr_out=tuple(where))

    def WSASendTo(self, s: int, bufs: Any, nbufs: int, nsent: Any, flags: int, addr: Any, addrlen: int,
                  ov: Any, routine: Any) -> int:
        to = self._read_sockaddr(addr, addrlen)  # read at the call
        if to is None:
            self._set_err(10014)
            return -1
        return self._start_io("WSASendTo", s, bufs, nbufs, nsent, ov, routine, to=to[1])

    def _start_io(self, name: str, s: int, bufs: Any, nbufs: int, count: Any, ov: Any, routine: Any,
                  addr_out: Any = None, to: Any = None) -> int:
        """WSARecv/WSASend: done at once when nothing is queued before it and the
        socket is ready (returns 0 and still signals the event), else pending."""
        if routine != self.ffi.NULL or not 1 <= nbufs <= 1024:
            self._violation(f"{name}: {nbufs} WSABUFs or a completion routine are not scripted")
        self._mark_pending(ov)
        with self._lock:
            ks = self._sock(s)
            if ks is None:
                self._set_err(10038)
                return -1
            k = self._new_op(name, ks, ov)
            if k is None:
                return -1
            for i in range(nbufs):  # the WSABUF array itself is captured here (Windows does too)
                addr, length = int(self.ffi.cast("uintptr_t", bufs[i].buf)), bufs[i].len
                k.bufs.append((addr, length, self._tracked(addr, "buffer", name) if length else None))
                k.length += length
            k.addr_out = addr_out
            k.to = to
            if name.startswith("WSARecv"):
                queue, perform = ks.recvs, self._perform_recv
            else:
                queue, perform = ks.sends, self._perform_send
            if not queue:
                res = perform(k)
                if res is not None:
                    err, n = res
                    if err == 10040 and ks.dgram:
                        # a truncated datagram is a warning status: the request did
                        # complete (event set, OVERLAPPED filled), yet the call says 10040
                        self._complete(k, err, n)
                    if err:  # failed at once: neither the OVERLAPPED nor the event is touched
                        k.done, k.err = True, err
                        self._set_err(err)
                        return -1
                    self._complete(k, 0, n)
                    self.immediate += 1
                    if count != self.ffi.NULL:
                        count[0] = n
                    return 0
            return self._pend(k, queue)

    def WSAGetOverlappedResult(self, s: int, ov: Any, transferred: Any, wait: int, flags: Any) -> int:
        ovkey = int(self.ffi.cast("uintptr_t", ov))
        with self._lock:
            if self._sock(s) is None:  # a closed handle: whatever state the op is in
                self._set_err(10038)
                return 0
            k = self._ops.get(ovkey)
            if k is None:
                self._violation("WSAGetOverlappedResult on an OVERLAPPED never used")
                self._set_err(87)
                return 0
            if not k.done and not wait:
                self._set_err(996)
                return 0
        if not k.done:
            arr = self.ffi.new("WSAEVENT[1]", [ov.hEvent])
            self.WSAWaitForMultipleEvents(1, arr, 0, INFINITE, 0)
        transferred[0] = k.n
        if flags != self.ffi.NULL:
            flags[0] = 0
        if k.err:
            self._set_err(k.err)
            return 0
        return 1

    def CancelIoEx(self, handle: Any, ov: Any) -> int:
        fd = self._key(handle)
        with self._lock:
            self.cancel_calls += 1
            ks = self._sock(fd)
            if ks is None:
                self._set_err(6)
                return 0
            if ov == self.ffi.NULL:
                targets = ks.ops()
            else:
                k = self._pending.get(int(self.ffi.cast("uintptr_t", ov)))
                targets = [k] if k is not None and k.ks is ks and not k.cancelling else []
            if not targets:
                self.cancel_not_found += 1
                self._set_err(1168)
                return 0
            for k in targets:
                self._abort(k, 995)
            self._want(ks)
            return 1

    # -- sockets ----------------------------------------------------------------------
    def WSASocketW(self, af: int, type: int, proto: int, info: Any, group: int, flags: int) -> int:
        family = {lib.AF_INET: socket.AF_INET, lib.AF_INET6: socket.AF_INET6}.get(af)
        if family is None or not flags & lib.WSA_FLAG_OVERLAPPED:
            self._violation("WSASocketW: only overlapped AF_INET/AF_INET6 sockets are scripted")
            self._set_err(10047)
            return lib.INVALID_SOCKET
        return socket.socket(family, type, proto).detach()

    def closesocket(self, s: int) -> int:
        with self._lock:
            ks = self._sock(s)
            if ks is None:
                self._set_err(10038)
                return -1
            self._abort_closed(ks)
            os.close(s)
            return 0

    def shutdown(self, s: int, how: int) -> int:
        with self._lock:
            if self._sock(s) is None:
                self._set_err(10038)
                return -1
        w = _wrap(s)
        try:
            w.shutdown({0: socket.SHUT_RD, 1: socket.SHUT_WR, 2: socket.SHUT_RDWR}[how])
            return 0
        except OSError as exc:
            self._set_err(wsa_code(exc.errno))
            return -1
        finally:
            w.detach()

    def setsockopt(self, s: int, level: int, name: int, value: Any, length: int) -> int:
        with self._lock:
            ks = self._sock(s)
            if ks is None:
                self._set_err(10038)
                return -1
            if level == lib.SOL_SOCKET and name == lib.SO_UPDATE_ACCEPT_CONTEXT:
                if length != self.ffi.sizeof("SOCKET"):
                    self._set_err(10014)
                    return -1
                listener = self.ffi.cast("SOCKET *", value)[0]
                if ks.accepted_from < 0 or listener != ks.accepted_from:
                    self._violation(f"SO_UPDATE_ACCEPT_CONTEXT on {s} naming {listener}, not its listener")
                    self._set_err(10022)
                    return -1
                self.accept_ctx_updates += 1
                return 0
            if level == lib.SOL_SOCKET and name == lib.SO_UPDATE_CONNECT_CONTEXT:
                if not ks.connectex_ok:
                    self._set_err(10057)
                    return -1
                self.connect_ctx_updates += 1
                return 0
            self._violation(f"setsockopt({level:#x}, {name:#x}) is not scripted")
            self._set_err(10042)
            return -1

    def WSAIoctl(self, s: int, code: int, inbuf: Any, inlen: int, outbuf: Any, outlen: int, nret: Any,
                 ov: Any, routine: Any) -> int:
        with self._lock:
            if self._sock(s) is None:
                self._set_err(10038)
                return -1
            if code in (lib.SIO_UDP_CONNRESET, SIO_UDP_NETRESET):
                ks = self._sock(s)
                if not ks.dgram or inlen != self.ffi.sizeof("BOOL"):
                    self._set_err(10022 if not ks.dgram else 10014)
                    return -1
                self.udp_ioctls += 1
                if code == lib.SIO_UDP_CONNRESET:
                    ks.connreset = bool(self.ffi.cast("BOOL *", inbuf)[0])
                return 0
            if code != lib.SIO_GET_EXTENSION_FUNCTION_POINTER:
                self._set_err(10045)
                return -1
            if inlen != self.ffi.sizeof("GUID") or outlen < 8:
                self._set_err(10014)
                return -1
            found = self._extensions.get(bytes(self.ffi.buffer(inbuf, 16)))
            if found is None:
                self._set_err(10022)
                return -1
            ctype, fn = found
            self.ffi.cast(ctype + " *", outbuf)[0] = fn
            nret[0] = 8
            self.ioctl_calls += 1
            return 0

    # -- the extension functions (C callbacks) ------------------------------------------------
    def _accept_ex(self, listen_s: int, accept_s: int, buf: Any, recvlen: int, locallen: int, remotelen: int,
                   nrecvd: Any, ov: Any) -> int:
        self._counted_callback("AcceptEx")
        self._mark_pending(ov)
        with self._lock:
            lks, aks = self._sock(listen_s), self._sock(accept_s)
            if lks is None or aks is None:
                self._set_err(10038)
                return 0
            w = _wrap(listen_s)
            try:
                listening = w.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
                need = (self.ffi.sizeof("struct sockaddr_in6") if w.family == socket.AF_INET6
                        else self.ffi.sizeof("struct sockaddr_in")) + 16
            finally:
                w.detach()
            a = _wrap(accept_s)
            try:
                fresh = a.getsockname()[1] == 0
                try:
                    a.getpeername()
                    fresh = False
                except OSError:
                    pass
            finally:
                a.detach()
            if recvlen:
                self._violation("AcceptEx with a receive length: not scripted")
            if not listening or not fresh:
                self._set_err(10022)
                return 0
            if locallen < need or remotelen < need:
                self._set_err(10014)
                return 0
            k = self._new_op("AcceptEx", lks, ov)
            if k is None:
                return 0
            addr = int(self.ffi.cast("uintptr_t", buf))
            k.bufs.append((addr, locallen + remotelen, self._tracked(addr, "address buffer", "AcceptEx")))
            k.lens = (recvlen, locallen, remotelen)
            k.accept_fd = accept_s
            k.accept_ident = aks.ident
            if not lks.accepts:
                res = self._perform_accept(k)
                if res is not None:
                    err, n = res
                    self._complete(k, err, n)
                    if err:  # failed, but through the completion (the op was started)
                        self._set_err(997)
                        return 0
                    self.immediate += 1
                    if nrecvd != self.ffi.NULL:
                        nrecvd[0] = 0
                    return 1
            self._pend(k, lks.accepts)
            return 0

    def _connect_ex(self, s: int, name: Any, namelen: int, sendbuf: Any, sendlen: int, nsent: Any,
                    ov: Any) -> int:
        self._counted_callback("ConnectEx")
        self._mark_pending(ov)
        with self._lock:
            ks = self._sock(s)
            if ks is None:
                self._set_err(10038)
                return 0
            if sendlen:
                self._violation("ConnectEx with send data: not scripted")
            target = self._read_sockaddr(name, namelen)
            if target is None:
                self._set_err(10014)
                return 0
            w = _wrap(s)
            try:
                if w.getsockname()[1] == 0:  # ConnectEx needs a bound socket
                    self._set_err(10022)
                    return 0
                k = self._new_op("ConnectEx", ks, ov)
                if k is None:
                    return 0
                code = w.connect_ex(target[1])
            finally:
                w.detach()
            if code == 0:
                ks.connectex_ok = True
                self._complete(k, 0, 0)
                self.immediate += 1
                return 1
            if code in (errno.EINPROGRESS, errno.EAGAIN, errno.EALREADY):
                ks.connect = k
                self._pend(k, None)
                return 0
            self._complete(k, wsa_code(code), 0)  # pends, then fails at once (refused: 10061)
            self._set_err(997)
            return 0

    def _get_sockaddrs(self, buf: Any, recvlen: int, locallen: int, remotelen: int, local: Any, local_len: Any,
                       remote: Any, remote_len: Any) -> None:
        self._counted_callback("GetAcceptExSockaddrs")
        ffi = self.ffi
        base = ffi.cast("char *", buf) + recvlen
        local[0] = ffi.cast("struct sockaddr *", base)
        local_len[0] = self._sockaddr_len(base)
        remote[0] = ffi.cast("struct sockaddr *", base + locallen)
        remote_len[0] = self._sockaddr_len(base + locallen)


class StandInWinsockBackend(WinsockBackend):
    """The real WinsockBackend, given the stand-in instead of ws2_32.dll.

    Only ``_load_api`` is overridden (the backend's one seam). ``close()`` also
    disposes of the stand-in "kernel" afterwards -- the test's operating system
    goes away with its only user, so the descriptor-leak checks see none of it --
    and raises AssertionError if the backend misused the API meanwhile (a use
    after free included), so every test that closes one checks that.
    """

    name = "winsock-standin"
    standin_options: dict = {}

    @classmethod
    def _load_api(cls) -> StandIn:
        return StandIn(**cls.standin_options)

    def close(self) -> None:
        super().close()  # (if it raises, the stand-in stays up: the next close() finishes)
        self.api.dispose()
        if self.api.violations:  # a misuse of the API fails whatever test closed it
            raise AssertionError("Winsock stand-in: " + "; ".join(self.api.violations))


class WineCloseStandInBackend(StandInWinsockBackend):
    """Closing a socket with ops pending reports what Wine reports (10038)."""

    name = "winsock-standin-wineclose"
    standin_options = {"wine_close": True}


def make_backend() -> type:
    return StandInWinsockBackend
