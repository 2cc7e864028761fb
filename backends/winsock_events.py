"""The Windows backend: overlapped Winsock with event objects, through cffi.

How it fits together
====================

Every op is one *overlapped* call -- ``WSARecv``, ``WSASend``, ``AcceptEx`` or
``ConnectEx`` -- given a ``WSAOVERLAPPED`` whose ``hEvent`` is a manual-reset event
object. The kernel runs the op on its own; when it is finished the event is
signalled. We learn that from ``WSAWaitForMultipleEvents`` and read the outcome
with ``WSAGetOverlappedResult``. There is exactly one way an op finishes here: *its
event is seen signalled, and WSAGetOverlappedResult says it is done*. An op that
completed inside the call that started it (the call returned 0 / TRUE) also
signals its event (docs/winsock-facts.md, ``recv_immediate_signals_event``),
so it goes through the very same path and can never complete twice. A call that
fails with anything but WSA_IO_PENDING started nothing and signals nothing: that
op is completed with the error at once.

Slots: what lives as long as the kernel may touch it
----------------------------------------------------
An op's native state is a *slot*: the event, the ``WSAOVERLAPPED``, the ``WSABUF``,
two DWORD out-parameters, and -- while the op runs -- the pinned buffer
(``ffi.from_buffer``; a recv buffer must be writable), the ``sockaddr`` of a
ConnectEx and the address buffer and pre-made socket of an AcceptEx. The kernel
writes into the buffer and the OVERLAPPED until the completion, so none of them
may be freed or reused before the kernel is done. Rule: a slot leaves the "in
flight" state *only* in :meth:`WinsockBackend._reap`, and only once its
OVERLAPPED says so (``Internal != STATUS_PENDING``, CPython's
``HasOverlappedIoCompleted``): not on an event sighting alone (it may be stale)
and not on a failed ``WSAGetOverlappedResult`` (it fails with WSAENOTSOCK for a
socket closed behind our back while the op still runs).
Cancel (``CancelIoEx``) and close never free anything themselves: they make the
kernel finish the op sooner, and the ordinary reap path completes it (as
cancelled -- or with its real result if it had already finished: a recv that had
its data keeps it, so a cancel never loses bytes). Slots, and their event
objects, are pooled: after warm-up no event is created per op. If an op never
finishes even after close() cancelled it (should not happen), its slot is parked
forever in ``_GRAVEYARD`` rather than freed under the kernel's feet.

Every slot and event lives in a :class:`_Native`, shared by the backend, its
helper threads and a ``weakref.finalize`` on the backend -- never referring to the
backend, and a slot never refers to its op (an op refers to its Proactor): a
backend dropped without close() is collected, and the finalizer (also run at
interpreter exit) cancels what the kernel still has and waits for it, as CPython's
``Overlapped_dealloc`` does. Room in a group is made before each overlapped call,
and every call sits in a ``try`` whose handler, :meth:`WinsockBackend._rescue`,
registers the op if an exception (a KeyboardInterrupt at the call's return) took
the call's result while the kernel may have the op. docs/design.md has the table
of who keeps the memory alive on each path.

Past 64 events: the Proactor thread plus helper threads
-------------------------------------------------------
One ``WSAWaitForMultipleEvents`` sees at most 64 handles (65 fails with
WSA_INVALID_PARAMETER). Ops are placed in *groups*:

* group 0 is waited on by the Proactor thread itself: its wake event (``wakeup()``
  is ``WSASetEvent`` on it, thread-safe), the signal-wakeup recv's event (below)
  and up to 62 op events. A small server never pays a thread hop.
* every further group holds up to 63 op events plus one *control* event and has
  its own helper thread. The helper waits on the whole group (INFINITE timeout).
  When some op events are signalled it *sweeps* them all, appends
  ``(group, handles)`` to a queue, signals the Proactor's wake event, and then
  waits on its control event *only*. The Proactor thread wakes, reaps those ops
  (each through ``_reap``), and signals the control event: the helper takes a
  fresh snapshot of its group and waits again. A helper therefore never waits on
  an event that is still signalled because nobody reaped it yet -- it would
  spin -- and it never touches an op: completions happen on the Proactor thread
  only, as the Backend contract requires.
* new ops go to group 0 while it has room, else to a helper group with room (a
  new group and thread when all are full). Adding an op to a helper group marks
  it dirty; at the start of the next ``poll()`` its control event is signalled
  so the helper re-snapshots. That adds no latency: a completion can only
  surface from a poll anyway, and the 65th op is seen after one thread hop,
  without any timeout-driven polling anywhere (every wait is INFINITE unless the
  caller of ``poll()`` asked for a timeout, e.g. for a timer).
* a ``reported`` flag (under the group's lock) keeps the Proactor from asking a
  helper to re-snapshot between its report and the reap: it would report the
  same still-signalled events twice. Even so, a report is only a hint: ``_reap``
  checks the OVERLAPPED first (an event that was reused meanwhile), so a stale
  sighting can never complete a pending op.
* helpers stay (parked on their control event, no CPU) once created, and are
  reused; ``close()`` stops and joins every one of them.

Sweeping: ``WSAWaitForMultipleEvents`` returns the *lowest* signalled index. If
we reaped only that one, a busy socket at a low index would starve the rest
(tinc PR #183). After every wake we sweep: zero-timeout waits on the handles
after the last index found, until none is signalled. k signalled events cost k+1
calls, and every one of them is reaped in this pass.

Ordering: several pending sends (or recvs) on one socket are issued in
submission order, and we rely on Windows keeping that order in the kernel (it
queues overlapped requests per socket in the order they were issued; sends are
never interleaved, recvs are filled in order). Our sweep may *see* a later
completion first; ``_reap`` then reaps the socket's earlier ops of the same kind
first, so completions surface in submission order. A stream-socket WSASend is
all-or-error; if a short count ever came back we resubmit the rest from the same
slot -- but only when no later send of that socket is in flight (the rest would
go out after it): then the op fails (ConnectionResetError/ECONNABORTED) rather
than let the stream be interleaved silently.

Accept: ``AcceptEx`` and ``ConnectEx`` (and ``GetAcceptExSockaddrs``) are fetched
once per address family with ``WSAIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER)``
(that picks the socket's own provider). AcceptEx gets a pre-made socket and an
address buffer; once it completes we call ``setsockopt(SO_UPDATE_ACCEPT_CONTEXT)``
(needed before getpeername/shutdown on Windows; Wine cannot catch a missing call)
and read the peer address with GetAcceptExSockaddrs. An AcceptEx that fails
because the client reset before it was accepted (ERROR_NETNAME_DELETED 64 /
WSAECONNRESET) is re-armed silently with a fresh accept socket (cpython gh-93821):
an accept loop must not die because one client went away.

Connect: ConnectEx needs a bound socket (WSAEINVAL otherwise), so an unbound
socket is bound to port 0 first; afterwards ``SO_UPDATE_CONNECT_CONTEXT``.

Sockets: ``socket()`` returns Python's own ``socket.socket``. On Windows CPython
creates every socket with ``WSASocketW(..., WSA_FLAG_OVERLAPPED |
WSA_FLAG_NO_HANDLE_INHERIT)``, so it accepts overlapped ops, and the user keeps a
real socket object (getsockname, setsockopt, close, GC, the Proactor's type
checks) instead of a bare SOCKET we would have to wrap. We set it non-blocking so
that a direct ``sock.send`` by the user can never block the loop thread;
overlapped calls do not depend on that mode (asyncio's proactor runs them on
non-blocking sockets too). Ops use ``sock.fileno()`` as the SOCKET.

Datagrams: ``WSARecvFrom``/``WSASendTo``, one overlapped call per op like the
TCP ones; the sender's ``sockaddr`` and its length live in the slot until the
reap. A datagram larger than the buffer ends the op with WSAEMSGSIZE and the
buffer full: reported as a truncated ``Datagram``, never as an error (a plain
recv on a datagram socket gets the bytes that fit). Every datagram socket gets
``SIO_UDP_CONNRESET`` and ``SIO_UDP_NETRESET`` switched off before its first op:
by default an ICMP port unreachable for one sent datagram fails the next
WSARecvFrom with WSAECONNRESET (cpython gh-91227, gh-127057).

Lists of buffers: one WSARecv/WSASend with a WSABUF per buffer; the pinned
buffers and the WSABUF array stay in the slot until the op is reaped.

Half-close: ``shutdown(SD_SEND)`` does not wait for WSASends in flight, so a
shutdown op waits (in ``_shut_waiting``) until the socket's sends issued before it
are reaped, then calls it; sends submitted after it are never issued (they fail
with ``send_after_shutdown()``).

Closing a socket: ``close_socket`` cancels each of the socket's ops the kernel
still has (``CancelIoEx`` per OVERLAPPED: on a closed and reused handle value it
finds nothing), waits until each OVERLAPPED says done -- cancellation takes
microseconds; the bound is only for a kernel that never completes -- reaps them
(cancelled, or their real result if they had finished) and only then closes the
socket. Closing with nothing
pending gives the peer an orderly FIN (closing with a recv pending can send a
reset: libuv#3034), and every buffer stays valid until its op was observed. A
socket closed behind our back (``sock.close()``) makes Windows abort its ops (995;
Wine says 10038): any error on an op whose socket is closed completes it as
cancelled.

Closing the backend, in this order: stop and join every helper (so nothing waits
on an event we are about to close); cancel every op in flight and the
signal-wakeup recv and wait until each is done (``_Native.settle``); reap them
all (cancelled, or the real result of a recv/send that had finished); put the
wakeup fd back; close every event (``_Native.release``: a slot still pending is
kept, with its event). Each step may run again: a close() cut short by an
exception is finished by the next one.

Ctrl-C
------
Python runs signal handlers only in the main thread, between bytecodes. The
Proactor thread blocked inside ``WSAWaitForMultipleEvents`` (a cffi call) runs no
bytecode, so Ctrl-C would wait for the next completion. On Windows the C-level
handler runs in a console-control thread and writes the signal number to the
socket set with ``signal.set_wakeup_fd`` (asyncio's ProactorEventLoop relies on
the same). So: the backend owns a socketpair; an overlapped recv is always
pending on its read end, with its event in group 0; at the first *blocking* wait
on the main thread we install the write end with ``set_wakeup_fd`` (once: not a
call per wait) and close() puts the previous one back; signal bytes are forwarded
to that previous fd, so another library's wakeup fd is not starved. A Ctrl-C completes that recv, the wait
returns, and the Python-level handler runs right after the call returns: the
core's defers the KeyboardInterrupt to the loop's next safe point
(core/interrupts.py); a program's own handler that raises does so before any
completion is consumed -- the events stay signalled and the next poll() sees
them. No timed slices: the idle loop stays fully asleep.
A Proactor run from another thread does not install anything (signals are not
delivered there anyway, and set_wakeup_fd would raise).

Error codes: every Winsock/Win32 code goes through
``core.errors.os_error(code, windows=True)``; nothing is mapped here.

Testing: the Win32 API object comes from one place, :meth:`WinsockBackend._load_api`
(a namespace with ``ffi`` and the functions named in ``_winsock_cdef.DLLS``). The
tests subclass the backend and override only that factory with a scripted
stand-in (tests/windows/standin.py) that implements the behaviours pinned in
docs/winsock-facts.md over real Linux sockets.
"""
from __future__ import annotations

import math
import signal
import socket
import sys
import threading
import types
import weakref
from collections import deque
from time import monotonic
from typing import Any, Optional

from ..core.backend import Backend
from ..core.errors import BackendUnavailable, OperationCancelled, normalize, os_error, send_after_shutdown
from ..core.op import Op, OpKind, datagram
from . import _winsock_cdef as _c

__all__ = ["WinsockBackend"]

_RECV, _SEND, _ACCEPT, _CONNECT, _READABLE = OpKind.RECV, OpKind.SEND, OpKind.ACCEPT, OpKind.CONNECT, OpKind.READABLE
_SHUTDOWN, _RECVFROM, _SENDTO = OpKind.SHUTDOWN, OpKind.RECVFROM, OpKind.SENDTO
_MSGSIZE = 10040  # WSAEMSGSIZE: a datagram larger than the buffer (which holds its start)
_SOCKADDR_STORAGE = 128
_SIGNAL = object()  # the kind of the signal-wakeup recv's slot

_INFINITE = _c.WSA_INFINITE
_WAIT_TIMEOUT = _c.WSA_WAIT_TIMEOUT
_WAIT_FAILED = _c.WSA_WAIT_FAILED
_WAIT_MAX = _c.WSA_MAXIMUM_WAIT_EVENTS
_HELPER_OPS = _WAIT_MAX - 1  # a helper group: its control event + 63 op events
_IO_PENDING = _c.WSA_IO_PENDING
_STATUS_PENDING = _c.STATUS_PENDING
# the client reset before it was accepted
_ACCEPT_RETRY = {_c.ERROR_NETNAME_DELETED, _c.WSAECONNRESET}
_ACCEPT_RETRY_LIMIT = 1000  # immediate failures in a row (a storm of dead clients)
_MAX_CHUNK = 1 << 30  # bytes per WSABUF (its len is a ULONG)
_CLOSE_WAIT = 5.0  # seconds close()/close_socket() wait for cancelled ops to finish
_SOL_SOCKET = _c.SOL_SOCKET
_UNAVAILABLE = "needs Windows (overlapped Winsock in ws2_32.dll); use 'posix' here"

# Slots whose op never finished even after cancel+close: their memory must stay valid.
_GRAVEYARD: list = []

_REAL_API: Optional[types.SimpleNamespace] = None
_REAL_API_LOCK = threading.Lock()


def _load_windows_api() -> types.SimpleNamespace:
    """The real Win32 API: ``ffi`` plus every function of ``DLLS``, loaded once."""
    global _REAL_API
    if sys.platform != "win32":
        raise BackendUnavailable(_UNAVAILABLE)
    with _REAL_API_LOCK:
        if _REAL_API is None:
            try:
                from ._winsock_ffi import ffi  # generated by build_ffi.py (out-of-line ABI mode)
            except ImportError:  # an editable install: same cdef, in-line
                ffi = _c.make_ffi()
            api = types.SimpleNamespace(ffi=ffi, libs=[])
            for dll, names in _c.DLLS.items():
                lib = ffi.dlopen(f"{dll}.dll")  # the full name: no PATH search via find_library
                api.libs.append(lib)  # keep each DLL loaded
                for name in names:
                    setattr(api, name, getattr(lib, name))
            _REAL_API = api
        return _REAL_API


class _Slot:
    """One op's native state (pooled; see the module doc for the lifetime rule)."""

    __slots__ = ("ev", "key", "ov", "wsabuf", "out", "n", "kind", "sock", "handle", "pin", "total",
                 "sent", "accept_sock", "addrbuf", "sa", "closing", "cancelled", "group", "idx", "issued", "bufs")

    def __init__(self, ffi: Any, ev: Any) -> None:
        self.ev = ev
        self.key = int(ffi.cast("uintptr_t", ev))
        self.ov = ffi.new("WSAOVERLAPPED *")
        self.ov.hEvent = ev
        self.wsabuf = ffi.new("WSABUF *")
        self.out = ffi.new("DWORD[2]")  # [bytes transferred, flags]
        self.n = 0  # its index in the backend's _slot_ops (a slot never refers to its op, see _Native)
        self.kind: Any = None
        self.sock: Optional[socket.socket] = None
        self.handle = 0
        self.pin: Any = None
        self.total = 0
        self.sent = 0
        self.accept_sock: Optional[socket.socket] = None
        self.addrbuf: Any = None
        self.sa: Any = None
        self.closing = False
        self.cancelled = False
        self.group: Optional[_Group] = None
        self.idx = 0
        self.issued = False  # its overlapped call was made (the kernel may have the op)
        self.bufs: Any = None  # a WSABUF array, for a send larger than one WSABUF takes


class _Group:
    """Up to 64 handles waited on together: group 0 by the Proactor thread, the
    others by one helper thread each (handle 0 is then the control event)."""

    __slots__ = ("handles", "slots", "base", "cap", "lock", "control", "thread", "reported", "dirty",
                 "stopping", "dead")

    def __init__(self, ffi: Any, base: int) -> None:
        self.handles = ffi.new("WSAEVENT[64]")
        self.slots: list[_Slot] = []
        self.base = base  # handles[base + i] is slots[i].ev
        self.cap = _WAIT_MAX - base
        self.lock = threading.Lock()
        self.control: Any = None
        self.thread: Optional[threading.Thread] = None
        self.reported = False  # a report is queued and not yet reaped (guarded by lock)
        self.dirty = False  # slots were added since the helper's snapshot
        self.stopping = False
        self.dead = False  # its helper thread ended: it takes no new ops



class _Native:
    """Everything the kernel may still touch (every slot and event) and the helper
    threads, owned apart from the backend object. The helper threads and the
    backend's finalizer hold this, never the backend: so a backend dropped without
    close() (garbage, an exception, interpreter exit) is still collected, and
    :meth:`abandon` winds it down as CPython's ``Overlapped_dealloc`` does."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.ffi = api.ffi
        self.slots: list[_Slot] = []  # every slot made
        self.events: list[Any] = []  # every event made, closed by release()
        self.helpers: list[_Group] = []
        self.reports: deque = deque()  # (group, [event keys]) from helpers
        self.helper_error: Optional[BaseException] = None
        self.lock = threading.Lock()  # guards closed against a racing wakeup()
        self.closed = False
        self.released = False  # release() ran: nothing is left to look after
        self.sig_installed: Optional[socket.socket] = None  # our wakeup fd's socket, while installed
        self.sig_prev = -1  # the wakeup fd ours replaced
        self.wake: Any = None  # group 0's wake event

    def wakeup(self) -> None:
        with self.lock:
            if not self.closed and self.wake is not None:
                self.api.WSASetEvent(self.wake)

    def helper(self, g: _Group) -> None:
        """Wait on one group; report signalled events to the Proactor thread and
        park until it has reaped them (see the module doc)."""
        try:
            self._helper_loop(g)
        except BaseException as exc:  # (raised to the Proactor thread by its next poll)
            self.helper_error = exc
        finally:
            if not g.stopping:  # it died: its group takes no new ops until poll() restarts it
                g.dead = True
                if self.helper_error is None:
                    self.helper_error = RuntimeError("a Winsock wait thread ended")
                self.wakeup()

    def _helper_loop(self, g: _Group) -> None:
        api, ffi = self.api, self.ffi
        wait = api.WSAWaitForMultipleEvents
        arr = ffi.new("WSAEVENT[64]")
        hsize = ffi.sizeof("WSAEVENT")
        control = g.control
        park = ffi.new("WSAEVENT[1]", [control])
        while True:
            with g.lock:
                if g.stopping:
                    return
                n = g.base + len(g.slots)
                ffi.memmove(arr, g.handles, n * hsize)
            r = wait(n, arr, False, _INFINITE, False)
            if r == 0:  # control: re-snapshot (new ops) or stop
                api.WSAResetEvent(control)
                continue
            if not 0 < r < n:
                code = api.WSAGetLastError() if r == _WAIT_FAILED else r
                raise os_error(code, windows=True, what="WSAWaitForMultipleEvents (helper thread)")
            keys = [int(ffi.cast("uintptr_t", arr[i])) for i in _sweep(wait, arr, n, r)]
            with g.lock:
                if g.stopping:
                    return
                g.reported = True
                api.WSAResetEvent(control)  # from here on only the reap may set it
                self.reports.append((g, keys))
            self.wakeup()
            wait(1, park, False, _INFINITE, False)  # park until the Proactor thread reaped them
            api.WSAResetEvent(control)

    def stop_helpers(self) -> None:
        """Stop and join every helper: nobody may wait on an event we close."""
        for g in self.helpers:
            with g.lock:
                g.stopping = True
                self.api.WSASetEvent(g.control)
        me = threading.current_thread()
        for g in self.helpers:
            if g.thread is not None and g.thread is not me and g.thread.ident is not None:
                g.thread.join()
        self.reports.clear()

    def settle(self, slots: list) -> None:
        """Cancel every one of ``slots`` the kernel still has and wait until the
        kernel is done with each: a cancel takes microseconds, so this returns as
        soon as the last one completes; the bound is only for a kernel that never
        completes one (its memory is then kept by :meth:`release`)."""
        api, ffi = self.api, self.ffi
        live = [s for s in slots if s.ov.Internal == _STATUS_PENDING]
        for slot in live:
            api.CancelIoEx(ffi.cast("HANDLE", slot.handle), slot.ov)
        deadline = monotonic() + _CLOSE_WAIT
        arr = ffi.new("WSAEVENT[64]")
        while live:
            chunk = live[:_WAIT_MAX]
            for k, slot in enumerate(chunk):
                arr[k] = slot.ev
            ms = max(0, math.ceil((deadline - monotonic()) * 1000))
            r = api.WSAWaitForMultipleEvents(len(chunk), arr, False, ms, False)
            live = [s for s in live if s.ov.Internal == _STATUS_PENDING]
            if not 0 <= r < len(chunk):
                break  # timed out (or failed): what is still pending stays the kernel's

    def release(self) -> None:
        """Free what the kernel is done with; a slot it still has (should not
        happen after settle()) goes to the graveyard with its event, for the life
        of the process."""
        keep = set()
        for slot in self.slots:
            if slot.ov.Internal == _STATUS_PENDING:
                _GRAVEYARD.append(slot)
                keep.add(slot.key)
        events = self.events
        while events:
            ev = events.pop()
            if int(self.ffi.cast("uintptr_t", ev)) not in keep:
                self.api.WSACloseEvent(ev)
        self.slots.clear()
        self.helpers.clear()
        self.released = True

    def uninstall_wakeup_fd(self) -> None:
        """Put back the wakeup fd ours replaced. Only the main thread can: anywhere
        else ours stays installed and its socket open for good, so that the C-level
        signal handler never writes into a closed (or reused) handle."""
        w = self.sig_installed
        if w is None:
            return
        if threading.current_thread() is not threading.main_thread():
            _GRAVEYARD.append(w)
            return
        self.sig_installed = None
        prev = self.sig_prev
        while prev in _CLOSED_WAKEUPS:  # one of ours, closed since: put back what it replaced
            prev = _CLOSED_WAKEUPS.pop(prev)
        try:
            current = signal.set_wakeup_fd(prev)
        except (ValueError, OSError):  # a foreign fd, closed since: none is better than a stale one
            current = signal.set_wakeup_fd(-1)
        if current != w.fileno():  # another was installed over ours since: leave that one,
            signal.set_wakeup_fd(current)
            _CLOSED_WAKEUPS[w.fileno()] = prev  # and whoever restores ours gets what ours replaced

    def abandon(self) -> None:
        """The backend was dropped without close(): no op may complete any more
        (nobody is left to hear it), but the kernel's memory stays valid until the
        kernel is done with it."""
        if self.released:
            return
        with self.lock:
            self.closed = True
        self.stop_helpers()
        self.uninstall_wakeup_fd()
        self.settle(self.slots)
        self.release()


# Wakeup fds of ours closed while another was installed over them -> the fd each had
# replaced: closing Proactors in any order then puts back a live fd, never a closed one.
_CLOSED_WAKEUPS: dict[int, int] = {}


def _sweep(wait: Any, handles: Any, n: int, first: int) -> list[int]:
    """Indices of every signalled event among ``handles[:n]``, given that ``first``
    is the lowest one a wait returned: zero-timeout waits on the handles after the
    last one found, so a busy low index cannot starve the rest (k hits, k+1 calls)."""
    hit = [first]
    j = first + 1
    while j < n:
        k = wait(n - j, handles + j, False, 0, False)
        if k >= n - j:
            break
        hit.append(j + k)
        j += k + 1
    return hit

class WinsockBackend(Backend):
    """Overlapped Winsock + event objects (see the module doc for the design)."""

    name = "winsock"
    multi_buffer = True

    #: install the signal wakeup socket around blocking waits (tests switch it off
    #: to show that without it a blocked wait does not see Ctrl-C)
    _SIGNAL_WAKEUP = True

    # -- the one seam: where the Win32 API comes from ---------------------------
    @classmethod
    def _load_api(cls) -> Any:
        """A namespace with ``ffi`` and the ws2_32/mswsock/kernel32 functions of
        ``_winsock_cdef.DLLS``. Tests override this (and only this)."""
        return _load_windows_api()

    @classmethod
    def unavailable_reason(cls) -> Optional[str]:
        try:
            cls._load_api()
        except BackendUnavailable as exc:
            return str(exc)
        except Exception as exc:  # a DLL or symbol that would not load
            return f"cannot load the Winsock API: {exc}"
        return None

    def __init__(self, complete: Any, ready: Any = None) -> None:
        super().__init__(complete, ready)
        self.api = api = self._load_api()
        self.ffi = ffi = api.ffi
        self._null = ffi.NULL
        # first of all: whatever happens from here on, the kernel's memory is looked after
        self._native = native = _Native(api)
        self._finalizer = weakref.finalize(self, native.abandon)
        # The WSABUF of every zero-byte receive (readable ops); each slot's pin holds it
        # too, so it lives as long as a slot the kernel may still use.
        self._zero = ffi.new("char[1]")
        self._pool: list[_Slot] = []
        self.events_created = 0  # event objects made (pool + wake + signal + controls)
        self._events = native.events
        self._slots = native.slots
        # slot.n -> the op it carries: kept here, not on the slot, because the slots
        # outlive a dropped backend (in _Native) and an op refers to its Proactor
        self._slot_ops: list[Optional[Op]] = []
        self._by_key: dict[int, _Slot] = {}  # event handle value -> its slot
        self._by_sock: dict[socket.socket, list[_Slot]] = {}
        self._helpers = native.helpers
        self._open: list[_Group] = []  # helper groups with room
        self._dirty: list[_Group] = []
        self._reports = native.reports
        self._ext: dict = {}
        # Half-close: sockets a shutdown op was submitted on (later sends fail), and
        # the shutdown ops still waiting for earlier WSASends to be reaped.
        self._shut: set[socket.socket] = set()
        self._shut_waiting: dict[socket.socket, list[Op]] = {}
        # datagram sockets whose ICMP-error reporting (SIO_UDP_CONNRESET/NETRESET) is off
        self._udp_ready: "weakref.WeakSet[socket.socket]" = weakref.WeakSet()
        self._sig_slot: Optional[_Slot] = None
        self._sig_r = self._sig_w = None
        self._wake = native.wake = self._new_event()
        base = 1
        if self._SIGNAL_WAKEUP:
            base = self._start_signal_wakeup()
        g0 = self._g0 = _Group(ffi, base)
        g0.handles[0] = self._wake
        if self._sig_slot is not None:
            g0.handles[1] = self._sig_slot.ev

    # -- events and slots -----------------------------------------------------
    def _new_event(self) -> Any:
        ev = self.api.WSACreateEvent()
        if ev == self._null:  # WSA_INVALID_EVENT
            raise os_error(self.api.WSAGetLastError(), windows=True, what="WSACreateEvent")
        self.events_created += 1
        self._events.append(ev)
        return ev

    def _make_slot(self) -> _Slot:
        slot = _Slot(self.ffi, self._new_event())
        slot.n = len(self._slot_ops)
        self._slot_ops.append(None)
        self._slots.append(slot)
        self._by_key[slot.key] = slot
        return slot

    def _slot(self, op: Op, sock: socket.socket, kind: Any) -> _Slot:
        """A slot for ``op``, and room for its event in a group: everything that can
        fail is done here, before the overlapped call, so that registering the op
        after the call cannot fail."""
        g0 = self._g0
        try:
            while self._open and self._open[-1].dead:
                self._open.pop()
            if len(g0.slots) >= g0.cap and not self._open:
                self._new_helper()
            slot = self._pool.pop() if self._pool else self._make_slot()
        except BaseException:
            self._not_started(op)
            raise
        ov = slot.ov
        ov.InternalHigh = 0
        ov.Offset = 0
        ov.OffsetHigh = 0
        self._slot_ops[slot.n] = op
        slot.kind = kind
        slot.sock = sock
        slot.handle = sock.fileno()
        op._bk = slot
        return slot

    def _started(self, slot: _Slot, ok: bool) -> Optional[int]:
        """After an overlapped call: ``ok`` is its success. Returns None if the op
        is in flight (then it is attached and tracked), else the error code."""
        if not ok:
            err = self.api.WSAGetLastError()
            if err != _IO_PENDING:
                return err
        self._register(slot)
        return None

    def _register(self, slot: _Slot) -> None:
        """Track an op the kernel has: its event in a group (room was made by
        _slot()), the slot under its socket. Idempotent."""
        if slot.group is None:
            self._attach(slot)
        lst = self._by_sock.get(slot.sock)
        if lst is None:
            self._by_sock[slot.sock] = [slot]
        elif slot not in lst:
            lst.append(slot)

    def _issuing(self, slot: _Slot) -> None:
        """Right before an overlapped call: from here on the kernel may have the op.
        (The system sets Internal to STATUS_PENDING when it takes a request; we set
        it first, so that an op whose call failed at once also reads as not done.)"""
        slot.ov.Internal = _STATUS_PENDING
        slot.issued = True

    def _in_kernel(self, slot: _Slot) -> bool:
        """After an exception took the overlapped call's result: may the kernel have
        the op? Done (Internal set) or pending (the call's WSA_IO_PENDING is still
        the thread's last error) -- or else the call failed and started nothing."""
        return slot.issued and (slot.ov.Internal != _STATUS_PENDING or self.api.WSAGetLastError() == _IO_PENDING)

    def _not_started(self, op: Op) -> None:
        """An exception escaped before ``op`` had a slot: the op was given to us,
        so it still completes exactly once."""
        self._complete(op, None, OperationCancelled("interrupted before it started"))

    def _rescue(self, slot: _Slot) -> None:
        """An exception (a KeyboardInterrupt landing as the call returns, a
        MemoryError ...) escaped between taking ``slot`` and registering its op.
        If the kernel may have the op, register it: it completes as usual, or
        close() cancels it and waits. If not, finish it now. Either way it
        completes exactly once and its memory outlives the kernel's use of it."""
        if self._slot_ops[slot.n] is None:
            return  # finished already
        if self._in_kernel(slot):
            self._register(slot)
        else:
            op = self._slot_ops[slot.n]
            self._release(slot)
            self._not_started(op)

    def _attach(self, slot: _Slot) -> None:
        g = self._g0
        if len(g.slots) < g.cap:
            slot.idx = len(g.slots)
            g.handles[g.base + slot.idx] = slot.ev
            g.slots.append(slot)
            slot.group = g
            return
        g = self._open[-1]  # _slot() made sure there is one
        with g.lock:
            slot.idx = len(g.slots)
            g.handles[g.base + slot.idx] = slot.ev
            g.slots.append(slot)
            slot.group = g
            if len(g.slots) == g.cap:
                self._open.remove(g)
        if not g.dirty:
            g.dirty = True
            self._dirty.append(g)

    def _detach(self, slot: _Slot) -> None:
        g = slot.group
        slot.group = None
        if g is self._g0:
            self._remove(g, slot)
            return
        with g.lock:
            was_full = len(g.slots) == g.cap
            self._remove(g, slot)
            if was_full and not g.stopping:
                self._open.append(g)
        if not g.dirty:  # its snapshot still holds this event: have it take a new one
            g.dirty = True
            self._dirty.append(g)

    @staticmethod
    def _remove(g: _Group, slot: _Slot) -> None:
        slots = g.slots
        last = slots.pop()
        if last is not slot:
            i = slot.idx
            slots[i] = last
            last.idx = i
            g.handles[g.base + i] = last.ev

    def _release(self, slot: _Slot) -> None:
        """The op's completion was observed: detach and pool the slot."""
        if slot.group is not None:
            self._detach(slot)
        lst = self._by_sock.get(slot.sock)
        if lst is not None:
            try:
                lst.remove(slot)
            except ValueError:
                pass
            if not lst:
                del self._by_sock[slot.sock]
        if slot.accept_sock is not None:  # an accept socket nobody was given
            slot.accept_sock.close()
            slot.accept_sock = None
        ops = self._slot_ops
        op = ops[slot.n]
        if op is not None:
            op._bk = None
            ops[slot.n] = None
        slot.sock = slot.pin = slot.sa = slot.bufs = None
        slot.closing = slot.cancelled = slot.issued = False
        slot.ov.Internal = 0  # pooled: not the kernel's (an op that never started left it pending)
        self._pool.append(slot)

    def _finish(self, slot: _Slot, value: Any, error: Optional[BaseException]) -> None:
        op = self._slot_ops[slot.n]
        sock = slot.sock
        self._release(slot)
        self._complete(op, value, error)
        if self._shut_waiting and slot.kind is _SEND:
            self._shutdown_if_sent(sock)

    # -- helper threads -----------------------------------------------------------
    def _new_helper(self) -> _Group:
        g = _Group(self.ffi, 1)
        g.control = self._new_event()
        g.handles[0] = g.control
        self._helpers.append(g)  # first: stop_helpers() must know every thread that may run
        try:
            self._start_helper(g)
        except BaseException:
            self._helpers.remove(g)
            raise
        self._open.append(g)
        return g

    def _start_helper(self, g: _Group) -> None:
        g.thread = threading.Thread(target=self._native.helper, args=(g,),
                                    name=f"overlapio-wait-{self._helpers.index(g) + 1}", daemon=True)
        g.thread.start()

    def _revive_helpers(self) -> None:
        """A helper thread died: restart it on its group (its ops still wait
        there), then raise what killed it."""
        native = self._native
        exc, native.helper_error = native.helper_error, None
        for g in self._helpers:
            if g.dead and not g.stopping:
                if g in self._open:
                    self._open.remove(g)
                self._start_helper(g)
                g.dead = False
                if len(g.slots) < g.cap:
                    self._open.append(g)
        if exc is not None:
            raise exc

    def _kick_dirty(self) -> None:
        for g in self._dirty:
            g.dirty = False
            with g.lock:
                if not g.reported:  # else the reap of its report re-arms it
                    self.api.WSASetEvent(g.control)
        self._dirty.clear()

    def _drain_reports(self) -> None:
        reports = self._reports
        by_key = self._by_key
        while reports:
            g, keys = reports[0]
            try:
                if not g.stopping:
                    for key in keys:
                        slot = by_key.get(key)
                        if slot is not None and slot.group is g and self._slot_ops[slot.n] is not None:
                            self._reap(slot)
            finally:
                # Also when a reap raised: the helper takes a fresh snapshot and reports
                # again whatever is still signalled, so no completion is lost.
                reports.popleft()
                with g.lock:
                    g.reported = False
                    self.api.WSASetEvent(g.control)
                if g.dirty:
                    g.dirty = False
                    self._dirty.remove(g)

    # -- signal wakeup (Ctrl-C) ------------------------------------------------------
    def _start_signal_wakeup(self) -> int:
        try:
            r, w = socket.socketpair()
        except OSError:
            return 1
        r.setblocking(False)
        w.setblocking(False)
        self._sig_r, self._sig_w = r, w
        slot = self._make_slot()
        slot.kind = _SIGNAL
        slot.sock = r
        slot.handle = r.fileno()
        slot.pin = self.ffi.new("char[]", 64)
        if self._issue_signal_recv(slot):
            self._sig_slot = slot
            return 2
        r.close()
        w.close()
        self._sig_r = self._sig_w = None
        return 1

    def _issue_signal_recv(self, slot: _Slot) -> bool:
        slot.wsabuf.buf = slot.pin
        slot.wsabuf.len = 64
        slot.out[1] = 0
        slot.ov.InternalHigh = 0
        slot.issued = False
        try:
            self._issuing(slot)
            rc = self.api.WSARecv(slot.handle, slot.wsabuf, 1, self._null, slot.out + 1, slot.ov, self._null)
            return rc == 0 or self.api.WSAGetLastError() == _IO_PENDING
        except BaseException:
            if not self._in_kernel(slot):
                slot.ov.Internal = 0  # it never started: nothing of it is the kernel's
            raise

    def _on_signal_bytes(self) -> None:
        slot = self._sig_slot
        if slot.ov.Internal == _STATUS_PENDING:
            return
        ok = self.api.WSAGetOverlappedResult(slot.handle, slot.ov, slot.out, False, slot.out + 1)
        n = slot.out[0] if ok else 0
        prev = self._native.sig_prev
        if n and prev >= 0:
            _forward_signal_bytes(prev, bytes(self.ffi.buffer(slot.pin, n)))
        if not (ok and n and self._issue_signal_recv(slot)):
            self._stop_signal_wakeup()  # the pair broke: run without it

    def _stop_signal_wakeup(self) -> None:
        slot = self._sig_slot
        if slot is None:
            return
        self._sig_slot = None  # its recv is over (observed): nothing to keep alive
        g = self._g0
        # drop its handle from group 0: the op events shift down by one
        for i, s in enumerate(g.slots):
            g.handles[1 + i] = s.ev
        g.base = 1
        g.cap = _WAIT_MAX - 1

    # -- sockets --------------------------------------------------------------------
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
        for code in (_c.SIO_UDP_CONNRESET, _c.SIO_UDP_NETRESET):
            if api.WSAIoctl(sock.fileno(), code, off, ffi.sizeof("BOOL"), self._null, 0, nret, self._null,
                            self._null) and code == _c.SIO_UDP_CONNRESET:
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

    def _issue_recv(self, slot: _Slot, buf: Any) -> None:
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
                wb.len = min(len(pin), _MAX_CHUNK)
            slot.out[1] = 0
            self._issuing(slot)
            rc = self.api.WSARecv(slot.handle, wb, count, self._null, slot.out + 1, slot.ov, self._null)
            err = self._started(slot, rc == 0)
        except BaseException:
            self._rescue(slot)
            raise
        if err == _MSGSIZE and slot.kind is _RECV:  # a datagram socket, failed at once truncated
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
            wb.len = min(len(pin), _MAX_CHUNK)
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
        if err == _MSGSIZE:
            # Failed at once, truncated: the buffer is full and the address written. The
            # request did complete (a warning status), so its event is set as well
            # (contracts/udp.c); the slot's next op resets it before the kernel has it.
            self._finish_datagram(slot, wb.len, True)
        elif err is not None:
            self._finish(slot, None, self._error(slot, err))

    def _finish_datagram(self, slot: _Slot, n: int, truncated: bool) -> None:
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
        if self.api.shutdown(op.sock.fileno(), _c.SD_SEND):
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

    def _issue_send(self, slot: _Slot) -> bool:
        """One WSASend of everything not sent yet. A WSABUF's length is a ULONG:
        past _MAX_CHUNK the rest goes as several WSABUFs of the same call, so that
        one send op is one request in the socket's queue, whatever its size."""
        left = slot.total - slot.sent
        if type(slot.pin) is tuple:  # a list of buffers
            wb, n = self._wsabufs(slot, slot.sent)
            self._issuing(slot)
            return self.api.WSASend(slot.handle, wb, n, self._null, 0, slot.ov, self._null) == 0
        start = slot.pin + slot.sent
        if left <= _MAX_CHUNK:
            wb, n = slot.wsabuf, 1
            wb.buf = start
            wb.len = left
        else:
            n = -(-left // _MAX_CHUNK)
            wb = slot.bufs = self.ffi.new("WSABUF[]", n)
            for i in range(n):
                wb[i].buf = start + i * _MAX_CHUNK
                wb[i].len = min(_MAX_CHUNK, left - i * _MAX_CHUNK)
        self._issuing(slot)
        return self.api.WSASend(slot.handle, wb, n, self._null, 0, slot.ov, self._null) == 0

    def _wsabufs(self, slot: _Slot, skip: int) -> tuple:
        """The WSABUF array (kept in ``slot.bufs`` until the op is reaped) over the
        pinned buffers of a list op (``slot.pin``, a tuple) from byte ``skip`` on,
        and its length; a buffer longer than a WSABUF takes is split."""
        parts = []
        for pin in slot.pin:
            size = len(pin)
            if skip >= size:
                skip -= size
                continue
            for at in range(skip, size, _MAX_CHUNK):
                parts.append((pin + at, min(_MAX_CHUNK, size - at)))
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
                slot.addrbuf = self.ffi.new("char[]", 2 * _ADDRLEN)
            exc = self._arm_accept(slot, accept_ex)
        except BaseException:
            self._rescue(slot)
            raise
        if exc is not None:
            self._finish(slot, None, exc)

    def _arm_accept(self, slot: _Slot, accept_ex: Any) -> Optional[OSError]:
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
            ok = accept_ex(slot.handle, slot.accept_sock.fileno(), slot.addrbuf, 0, _ADDRLEN, _ADDRLEN, slot.out,
                           slot.ov)
            err = self._started(slot, bool(ok))
            if err is None:
                return None
            if err not in _ACCEPT_RETRY:
                break
            slot.accept_sock.close()  # that client is gone: try the next one
            slot.accept_sock = None
        return self._error(slot, err)

    def connect(self, op: Op, address: Any) -> None:
        sock = op.sock
        try:
            connect_ex = self._extension(sock, "ConnectEx")
            _ensure_bound(sock)
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

    def cancel(self, op: Op) -> None:
        if op.kind is _SHUTDOWN:
            waiting = self._shut_waiting.get(op.sock)
            if waiting and op in waiting:  # it never ran: the sending side stays open
                waiting.remove(op)
                if not waiting:
                    del self._shut_waiting[op.sock]
                    self._shut.discard(op.sock)
                self._complete(op, None, OperationCancelled("shutdown cancelled"))
            return
        slot = op._bk
        if not isinstance(slot, _Slot) or self._slot_ops[slot.n] is not op or slot.cancelled:
            return
        slot.cancelled = True
        # FALSE/ERROR_NOT_FOUND: it finished already; its event is (or will be) set and
        # the reap reports the real result. Any other failure: the socket was closed
        # under us, which aborted the op anyway.
        self.api.CancelIoEx(self.ffi.cast("HANDLE", slot.handle), slot.ov)

    def close_socket(self, sock: socket.socket) -> None:
        self._drop_shutdowns(sock, "socket closed")
        self._shut.discard(sock)
        slots = self._by_sock.get(sock)
        if slots:
            slots = list(slots)
            for slot in slots:
                slot.closing = True
            # (Closed behind our back, Windows aborts its ops itself; a cancel of our
            # OVERLAPPED on a reused handle value finds nothing there.)
            self._native.settle(slots)
            for slot in slots:
                if self._slot_ops[slot.n] is not None:
                    self._reap(slot)  # a slot that did not finish yet stays in flight (closing)
        sock.close()

    # -- completions ------------------------------------------------------------------
    def _reap(self, slot: _Slot) -> None:
        """``slot``'s event was seen signalled: finish its op (or resubmit the rest
        of a short send / re-arm an accept whose client reset)."""
        if slot.ov.Internal == _STATUS_PENDING:
            # HasOverlappedIoCompleted: only the OVERLAPPED says the kernel is done. A
            # sighting can be stale, and WSAGetOverlappedResult fails (WSAENOTSOCK) for a
            # closed handle while the op still runs: neither may release the slot.
            return
        api = self.api
        kind = slot.kind
        if kind is _RECV or kind is _SEND or kind is _RECVFROM or kind is _SENDTO:
            mine = self._by_sock.get(slot.sock)
            if mine is not None and mine[0] is not slot:
                # Windows completes a socket's recvs (sends) in the order they were
                # issued; our sweep may have seen a later one first. Surface the
                # earlier ones first, so completions keep submission order.
                for other in list(mine):
                    if other is slot:
                        break
                    if other.kind is kind and self._slot_ops[other.n] is not None:
                        self._reap(other)
        out = slot.out
        if api.WSAGetOverlappedResult(slot.handle, slot.ov, out, False, out + 1):
            err = 0
            n = out[0]
        else:
            err = api.WSAGetLastError()
            n = slot.ov.InternalHigh
        op = self._slot_ops[slot.n]
        if kind is _READABLE:
            self._finish(slot, None, self._error(slot, err) if err else None)
        elif kind is _RECV:
            if err == _MSGSIZE:  # a datagram socket's recv: the bytes that fit, as POSIX gives them
                err = 0
            if err:
                self._finish(slot, None, self._error(slot, err))
            else:
                op.nbytes = n
                self._finish(slot, n, None)
        elif kind is _SEND:
            slot.sent += n
            op.nbytes = slot.sent
            if err:
                self._finish(slot, None, self._error(slot, err))
            elif slot.sent >= slot.total:
                self._finish(slot, slot.total, None)
            elif slot.closing or slot.cancelled:
                self._finish(slot, None, OperationCancelled("send cancelled"))
            elif n == 0:
                self._finish(slot, None, os_error(_c.WSAECONNRESET, windows=True, what="send"))  # no progress
            elif self._later_send_in_flight(slot):
                # The rest would go out after a later send: the stream is already
                # broken (Windows does not do this on stream sockets: all or error).
                self._finish(slot, None, os_error(_c.WSAECONNABORTED, windows=True,
                                                  what="short send with later sends in flight"))
            else:  # a short count: resubmit the rest, same slot
                try:
                    err = self._started(slot, self._issue_send(slot))
                except BaseException:
                    self._rescue(slot)
                    raise
                if err is not None:
                    self._finish(slot, None, self._error(slot, err))
        elif kind is _RECVFROM:
            if err and err != _MSGSIZE:
                self._finish(slot, None, self._error(slot, err))
            else:
                self._finish_datagram(slot, n, err == _MSGSIZE)
        elif kind is _SENDTO:
            if err:
                self._finish(slot, None, self._error(slot, err))
            else:
                op.nbytes = n
                self._finish(slot, n, None)
        elif kind is _ACCEPT:
            self._reap_accept(slot, err)
        elif kind is _CONNECT:
            if not err and api.setsockopt(slot.handle, _SOL_SOCKET, _c.SO_UPDATE_CONNECT_CONTEXT, self._null, 0):
                err = api.WSAGetLastError()
            if err:
                self._finish(slot, None, self._error(slot, err))
            elif slot.closing:
                self._finish(slot, None, OperationCancelled("socket closed"))
            else:
                self._finish(slot, op.sock, None)

    def _later_send_in_flight(self, slot: _Slot) -> bool:
        mine = self._by_sock.get(slot.sock, [])
        return any(other.kind is _SEND for other in mine[mine.index(slot) + 1:])

    def _reap_accept(self, slot: _Slot, err: int) -> None:
        api, ffi = self.api, self.ffi
        if not err:
            conn = slot.accept_sock
            listen_handle = ffi.new("SOCKET *", slot.handle)
            if api.setsockopt(conn.fileno(), _SOL_SOCKET, _c.SO_UPDATE_ACCEPT_CONTEXT,
                              ffi.cast("char *", listen_handle), ffi.sizeof("SOCKET")):
                err = api.WSAGetLastError()
            elif slot.closing:
                self._finish(slot, None, OperationCancelled("listener closed"))  # closes conn
                return
            else:
                try:
                    address = self._accept_address(slot)
                except OSError as exc:
                    err = getattr(exc, "winerror", 0) or _c.WSAECONNRESET
                else:
                    slot.accept_sock = None
                    self._finish(slot, (conn, address), None)
                    return
        if err in _ACCEPT_RETRY and (slot.closing or slot.cancelled):
            # cancelled meanwhile: a client that reset is not this accept's result
            self._finish(slot, None, OperationCancelled("accept cancelled"))
            return
        if err in _ACCEPT_RETRY and slot.sock.fileno() >= 0:
            # the client reset before it was accepted: re-arm silently (gh-93821)
            slot.accept_sock.close()
            slot.accept_sock = None
            slot.issued = False
            try:
                exc = self._arm_accept(slot, self._extension(slot.sock, "AcceptEx"))
            except OSError as exc2:  # WSAIoctl failed
                exc = exc2
            except BaseException:
                self._rescue(slot)
                raise
            if exc is not None:
                self._finish(slot, None, exc)
            return
        self._finish(slot, None, self._error(slot, err))

    def _accept_address(self, slot: _Slot) -> Any:
        ffi = self.ffi
        get = self._extension(slot.sock, "GetAcceptExSockaddrs")
        sas = ffi.new("struct sockaddr *[2]")
        lens = ffi.new("INT[2]")
        get(slot.addrbuf, 0, _ADDRLEN, _ADDRLEN, sas, lens, sas + 1, lens + 1)
        return self._decode_sockaddr(sas[1], lens[1])

    def _error(self, slot: _Slot, err: int) -> OSError:
        if slot.closing or slot.sock is None or slot.sock.fileno() < 0:
            # closed by close_socket, or behind our back (Windows: 995, Wine: 10038)
            return OperationCancelled("socket closed")
        return os_error(err, windows=True)

    # -- extension functions and addresses ------------------------------------------
    def _extension(self, sock: socket.socket, which: str) -> Any:
        key = (which, sock.family)
        fn = self._ext.get(key)
        if fn is None:
            ffi = self.ffi
            guid = ffi.new("GUID *", _GUIDS[which].as_init())
            out = ffi.new(_LPFN[which] + " *")
            nret = ffi.new("DWORD *")
            rc = self.api.WSAIoctl(sock.fileno(), _c.SIO_GET_EXTENSION_FUNCTION_POINTER, guid, ffi.sizeof("GUID"),
                                   out, ffi.sizeof(_LPFN[which]), nret, self._null, self._null)
            if rc != 0:
                raise os_error(self.api.WSAGetLastError(), windows=True, what=f"WSAIoctl({which})")
            fn = self._ext[key] = out[0]
        return fn

    def _sockaddr(self, family: int, address: Any) -> tuple:
        ffi = self.ffi
        host, port = address[0], address[1]
        if family == socket.AF_INET6:
            sa = ffi.new("struct sockaddr_in6 *")
            sa.sin6_family = _c.AF_INET6
            sa.sin6_port = socket.htons(port)
            sa.sin6_flowinfo = socket.htonl(address[2] if len(address) > 2 else 0)
            sa.sin6_scope_id = address[3] if len(address) > 3 else 0
            raw = socket.inet_pton(socket.AF_INET6, host.partition("%")[0])
            ffi.memmove(ffi.addressof(sa[0], "sin6_addr"), raw, 16)
            return sa, ffi.sizeof("struct sockaddr_in6")
        sa = ffi.new("struct sockaddr_in *")
        sa.sin_family = _c.AF_INET
        sa.sin_port = socket.htons(port)
        ffi.memmove(ffi.addressof(sa[0], "sin_addr"), socket.inet_pton(socket.AF_INET, host), 4)
        return sa, ffi.sizeof("struct sockaddr_in")

    def _decode_sockaddr(self, sa: Any, length: int) -> Any:
        ffi = self.ffi
        family = sa.sa_family
        if family == _c.AF_INET and length >= ffi.sizeof("struct sockaddr_in"):
            p = ffi.cast("struct sockaddr_in *", sa)
            raw = bytes(ffi.buffer(ffi.addressof(p[0], "sin_addr"), 4))
            return socket.inet_ntop(socket.AF_INET, raw), socket.ntohs(p.sin_port)
        if family == _c.AF_INET6 and length >= ffi.sizeof("struct sockaddr_in6"):
            p = ffi.cast("struct sockaddr_in6 *", sa)
            raw = bytes(ffi.buffer(ffi.addressof(p[0], "sin6_addr"), 16))
            return (socket.inet_ntop(socket.AF_INET6, raw), socket.ntohs(p.sin6_port),
                    socket.ntohl(p.sin6_flowinfo), p.sin6_scope_id)
        raise OSError(0, f"unexpected address family {family} from GetAcceptExSockaddrs")

    # -- the loop -----------------------------------------------------------------------
    def poll(self, timeout: Optional[float]) -> None:
        if self._dirty:
            self._kick_dirty()
        if self._reports:  # left by a poll that a Ctrl-C interrupted after its wait
            self._drain_reports()
        if self._native.helper_error is not None:
            self._revive_helpers()
        api = self.api
        wait = api.WSAWaitForMultipleEvents
        if timeout is None:
            ms = _INFINITE
        elif timeout <= 0:
            ms = 0
        else:
            ms = min(math.ceil(timeout * 1000), _INFINITE - 1)  # never early: round up
        g = self._g0
        handles = g.handles
        n = g.base + len(g.slots)
        if ms and self._sig_slot is not None:
            r = self._wait_with_signal_wakeup(n, handles, ms)
        else:
            r = wait(n, handles, False, ms, False)
        if r == _WAIT_TIMEOUT:
            return
        if not 0 <= r < n:
            raise os_error(api.WSAGetLastError(), windows=True, what="WSAWaitForMultipleEvents")
        hit = _sweep(wait, handles, n, r)
        base = g.base
        slots = g.slots
        ready = [slots[i - base] for i in hit if i >= base]
        if r == 0:
            api.WSAResetEvent(self._wake)  # before draining: a later report sets it again
            if self._reports:
                self._drain_reports()
        if base == 2 and hit[0] <= 1 and 1 in hit[:2]:
            self._on_signal_bytes()
        for slot in ready:
            if slot.group is g:
                self._reap(slot)

    def _wait_with_signal_wakeup(self, n: int, handles: Any, ms: int) -> int:
        native = self._native
        if native.sig_installed is None and threading.current_thread() is threading.main_thread():
            # Installed once, at the first blocking wait, and kept until close(): no
            # call per wait. (Off the main thread no signal arrives here: nothing to do.)
            try:
                native.sig_prev = signal.set_wakeup_fd(self._sig_w.fileno(), warn_on_full_buffer=False)
                _CLOSED_WAKEUPS.pop(self._sig_w.fileno(), None)  # that number is live again
                native.sig_installed = self._sig_w
            except (ValueError, OSError):
                pass
        return self.api.WSAWaitForMultipleEvents(n, handles, False, ms, False)

    def wakeup(self) -> None:
        self._native.wakeup()

    # -- closing -----------------------------------------------------------------------
    def close(self) -> None:
        # Every step may run again: a close() that an exception cut short is finished
        # by the next one.
        native = self._native
        if native.released:
            return
        with native.lock:
            native.closed = True
        # 1. stop every helper: nobody may wait on an event we close below
        native.stop_helpers()
        self._dirty.clear()
        for sock in list(self._shut_waiting):  # first: reaping their sends below must not run them
            self._drop_shutdowns(sock, "proactor closed")
        self._shut.clear()
        # 2. cancel every op in flight and wait until the kernel is done with each
        flying = [s for g in (self._g0, *self._helpers) for s in g.slots]
        for slot in flying:
            slot.closing = True
        sig = self._sig_slot
        native.settle(flying + ([sig] if sig is not None else []))
        # 3. complete them: a recv/send that had finished keeps its real result
        for slot in flying:
            op = self._slot_ops[slot.n]
            if op is None:
                continue
            self._reap(slot)
            if self._slot_ops[slot.n] is op:  # the kernel never finished it: release() keeps its memory
                self._slot_ops[slot.n] = None
                op._bk = None
                self._complete(op, None, OperationCancelled("proactor closed"))
        # 4. sockets, then every event and slot the kernel is done with
        self._sig_slot = None
        native.uninstall_wakeup_fd()
        for s in (self._sig_r, self._sig_w):
            if s is not None and s is not native.sig_installed:
                s.close()
        native.release()
        self._by_sock.clear()
        self._by_key.clear()
        self._pool.clear()
        self._open.clear()


# -- module helpers ----------------------------------------------------------------------
_ADDRLEN = 128 + 16  # sizeof(SOCKADDR_STORAGE) + 16, what AcceptEx wants per address
_GUIDS = {"AcceptEx": _c.WSAID_ACCEPTEX, "ConnectEx": _c.WSAID_CONNECTEX,
          "GetAcceptExSockaddrs": _c.WSAID_GETACCEPTEXSOCKADDRS}
_LPFN = {"AcceptEx": "LPFN_ACCEPTEX", "ConnectEx": "LPFN_CONNECTEX",
         "GetAcceptExSockaddrs": "LPFN_GETACCEPTEXSOCKADDRS"}


def _ensure_bound(sock: socket.socket) -> None:
    """ConnectEx wants a bound socket (WSAEINVAL otherwise): bind to port 0."""
    try:
        port = sock.getsockname()[1]
    except OSError:  # Windows: an unbound socket has no name (WSAEINVAL)
        port = 0
    if not port:
        sock.bind(("::", 0) if sock.family == socket.AF_INET6 else ("0.0.0.0", 0))


def _forward_signal_bytes(fd: int, data: bytes) -> None:
    """Hand signal numbers on to the wakeup fd that was installed before ours."""
    try:
        if sys.platform == "win32":
            s = socket.socket(fileno=fd)
            try:
                s.send(data)
            finally:
                s.detach()
        else:
            import os
            os.write(fd, data)
    except OSError:
        pass
