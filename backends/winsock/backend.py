"""The Windows backend class: the slots' life cycle (take, issue, register,
rescue, release), cancel and close, and the loop's ``poll``; the rest is mixed in
from groups.py, wakeup.py, ops.py and addresses.py."""
from __future__ import annotations

import math
import socket
import weakref
from typing import Any, Optional

from ...core.backend import Backend
from ...core.errors import BackendUnavailable, OperationCancelled, os_error
from ...core.op import Op, OpKind
from . import finishers
from .addresses import Addresses
from .api import lib, load_windows_api
from .groups import EventGroups, Group, stop_helpers, sweep
from .native import Native
from .ops import Ops
from .slots import Slot
from .wakeup import SignalWakeup, uninstall_wakeup_fd

__all__ = ["WinsockBackend"]

_INFINITE = lib.WSA_INFINITE
_WAIT_TIMEOUT = lib.WSA_WAIT_TIMEOUT
_IO_PENDING = lib.WSA_IO_PENDING
_STATUS_PENDING = lib.STATUS_PENDING


class WinsockBackend(Ops, Addresses, EventGroups, SignalWakeup, Backend):
    """Overlapped Winsock + event objects (see the package doc for the design)."""

    name = "winsock"
    multi_buffer = True

    #: install the signal wakeup socket around blocking waits (tests switch it off
    #: to show that without it a blocked wait does not see Ctrl-C)
    _SIGNAL_WAKEUP = True

    # -- the one seam: where the Win32 API comes from ---------------------------
    @classmethod
    def _load_api(cls) -> Any:
        """A namespace with ``ffi`` and the ws2_32/kernel32 functions of
        ``cdef.DLLS``. Tests override this (and only this)."""
        return load_windows_api()

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
        self._native = native = Native(api)
        self._finalizer = weakref.finalize(self, native.abandon)
        # The WSABUF of every zero-byte receive (readable ops); each slot's pin holds it
        # too, so it lives as long as a slot the kernel may still use.
        self._zero = ffi.new("char[1]")
        self._pool: list[Slot] = []
        self.events_created = 0  # event objects made (pool + wake + signal + controls)
        self._events = native.events
        self._slots = native.slots
        # slot.n -> the op it carries: kept here, not on the slot, because the slots
        # outlive a dropped backend (in Native) and an op refers to its Proactor
        self._slot_ops: list[Optional[Op]] = []
        self._by_key: dict[int, Slot] = {}  # event handle value -> its slot
        self._by_sock: dict[socket.socket, list[Slot]] = {}
        self._helpers = native.helpers
        self._open: list[Group] = []  # helper groups with room
        self._dirty: list[Group] = []
        self._reports = native.reports
        self._ext: dict = {}
        # Half-close: sockets a shutdown op was submitted on (later sends fail), and
        # the shutdown ops still waiting for earlier WSASends to be reaped.
        self._shut: set[socket.socket] = set()
        self._shut_waiting: dict[socket.socket, list[Op]] = {}
        # datagram sockets whose ICMP-error reporting (SIO_UDP_CONNRESET/NETRESET) is off
        self._udp_ready: "weakref.WeakSet[socket.socket]" = weakref.WeakSet()
        self._sig_slot: Optional[Slot] = None
        self._sig_r = self._sig_w = None
        self._wake = native.wake = self._new_event()
        base = 1
        if self._SIGNAL_WAKEUP:
            base = self._start_signal_wakeup()
        g0 = self._g0 = Group(ffi, base)
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

    def _make_slot(self) -> Slot:
        slot = Slot(self.ffi, self._new_event())
        slot.n = len(self._slot_ops)
        self._slot_ops.append(None)
        self._slots.append(slot)
        self._by_key[slot.key] = slot
        return slot

    def _slot(self, op: Op, sock: socket.socket, kind: Any) -> Slot:
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

    def _started(self, slot: Slot, ok: bool) -> Optional[int]:
        """After an overlapped call: ``ok`` is its success. Returns None if the op
        is in flight (then it is attached and tracked), else the error code."""
        if not ok:
            err = self.api.WSAGetLastError()
            if err != _IO_PENDING:
                return err
        self._register(slot)
        return None

    def _register(self, slot: Slot) -> None:
        """Track an op the kernel has: its event in a group (room was made by
        _slot()), the slot under its socket. Idempotent."""
        if slot.group is None:
            self._attach(slot)
        lst = self._by_sock.get(slot.sock)
        if lst is None:
            self._by_sock[slot.sock] = [slot]
        elif slot not in lst:
            lst.append(slot)

    def _issuing(self, slot: Slot) -> None:
        """Right before an overlapped call: from here on the kernel may have the op.
        (The system sets Internal to STATUS_PENDING when it takes a request; we set
        it first, so that an op whose call failed at once also reads as not done.)"""
        slot.ov.Internal = _STATUS_PENDING
        slot.issued = True

    def _in_kernel(self, slot: Slot) -> bool:
        """After an exception took the overlapped call's result: may the kernel have
        the op? Done (Internal set) or pending (the call's WSA_IO_PENDING is still
        the thread's last error) -- or else the call failed and started nothing."""
        return slot.issued and (slot.ov.Internal != _STATUS_PENDING or self.api.WSAGetLastError() == _IO_PENDING)

    def _not_started(self, op: Op) -> None:
        """An exception escaped before ``op`` had a slot: the op was given to us,
        so it still completes exactly once."""
        self._complete(op, None, OperationCancelled("interrupted before it started"))

    def _rescue(self, slot: Slot) -> None:
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

    def _release(self, slot: Slot) -> None:
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

    def _finish(self, slot: Slot, value: Any, error: Optional[BaseException]) -> None:
        op = self._slot_ops[slot.n]
        sock = slot.sock
        self._release(slot)
        self._complete(op, value, error)
        if self._shut_waiting and slot.kind is OpKind.SEND:
            self._shutdown_if_sent(sock)

    def cancel(self, op: Op) -> None:
        if op.kind is OpKind.SHUTDOWN:
            waiting = self._shut_waiting.get(op.sock)
            if waiting and op in waiting:  # it never ran: the sending side stays open
                waiting.remove(op)
                if not waiting:
                    del self._shut_waiting[op.sock]
                    self._shut.discard(op.sock)
                self._complete(op, None, OperationCancelled("shutdown cancelled"))
            return
        slot = op._bk
        if not isinstance(slot, Slot) or self._slot_ops[slot.n] is not op or slot.cancelled:
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
    def _reap(self, slot: Slot) -> None:
        """``slot``'s event was seen signalled: finish its op through the finisher
        of its kind (which may also resubmit the rest of a short send or re-arm an
        accept whose client reset)."""
        if slot.ov.Internal == _STATUS_PENDING:
            # HasOverlappedIoCompleted: only the OVERLAPPED says the kernel is done. A
            # sighting can be stale, and WSAGetOverlappedResult fails (WSAENOTSOCK) for a
            # closed handle while the op still runs: neither may release the slot.
            return
        api = self.api
        kind = slot.kind
        if kind in finishers.IN_ORDER:
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
        finishers.BY_KIND[kind](self, slot, err, n)

    def _error(self, slot: Slot, err: int) -> OSError:
        if slot.closing or slot.sock is None or slot.sock.fileno() < 0:
            # closed by close_socket, or behind our back (Windows: 995, Wine: 10038)
            return OperationCancelled("socket closed")
        return os_error(err, windows=True)

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
        hit = sweep(wait, handles, n, r)
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
        stop_helpers(native)
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
        uninstall_wakeup_fd(native)
        for s in (self._sig_r, self._sig_w):
            if s is not None and s is not native.sig_installed:
                s.close()
        native.release()
        self._by_sock.clear()
        self._by_key.clear()
        self._pool.clear()
        self._open.clear()
