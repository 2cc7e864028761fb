"""The event groups and their helper threads: past 64 events, ops wait in groups
of at most 64 handles, group 0 on the Proactor thread, every further one on a
helper thread of its own (the package doc tells how they hand over)."""
from __future__ import annotations

import threading
from typing import Any, Optional

from ...core.errors import os_error
from .api import lib
from .slots import Slot

_INFINITE = lib.WSA_INFINITE
_WAIT_FAILED = lib.WSA_WAIT_FAILED
WAIT_MAX = lib.WSA_MAXIMUM_WAIT_EVENTS


class Group:
    """Up to 64 handles waited on together: group 0 by the Proactor thread, the
    others by one helper thread each (handle 0 is then the control event)."""

    __slots__ = ("handles", "slots", "base", "cap", "lock", "control", "thread", "reported", "dirty",
                 "stopping", "dead")

    def __init__(self, ffi: Any, base: int) -> None:
        self.handles = ffi.new("WSAEVENT[64]")
        self.slots: list[Slot] = []
        self.base = base  # handles[base + i] is slots[i].ev
        self.cap = WAIT_MAX - base
        self.lock = threading.Lock()
        self.control: Any = None
        self.thread: Optional[threading.Thread] = None
        self.reported = False  # a report is queued and not yet reaped (guarded by lock)
        self.dirty = False  # slots were added since the helper's snapshot
        self.stopping = False
        self.dead = False  # its helper thread ended: it takes no new ops


def sweep(wait: Any, handles: Any, n: int, first: int) -> list[int]:
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


def run_helper(native: Any, g: Group) -> None:
    """A helper thread: wait on one group; report signalled events to the Proactor
    thread and park until it has reaped them (see the package doc)."""
    try:
        _helper_loop(native, g)
    except BaseException as exc:  # (raised to the Proactor thread by its next poll)
        native.helper_error = exc
    finally:
        if not g.stopping:  # it died: its group takes no new ops until poll() restarts it
            g.dead = True
            if native.helper_error is None:
                native.helper_error = RuntimeError("a Winsock wait thread ended")
            native.wakeup()


def _helper_loop(native: Any, g: Group) -> None:
    api, ffi = native.api, native.ffi
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
        keys = [int(ffi.cast("uintptr_t", arr[i])) for i in sweep(wait, arr, n, r)]
        with g.lock:
            if g.stopping:
                return
            g.reported = True
            api.WSAResetEvent(control)  # from here on only the reap may set it
            native.reports.append((g, keys))
        native.wakeup()
        wait(1, park, False, _INFINITE, False)  # park until the Proactor thread reaped them
        api.WSAResetEvent(control)


def stop_helpers(native: Any) -> None:
    """Stop and join every helper: nobody may wait on an event we close."""
    for g in native.helpers:
        with g.lock:
            g.stopping = True
            native.api.WSASetEvent(g.control)
    me = threading.current_thread()
    for g in native.helpers:
        if g.thread is not None and g.thread is not me and g.thread.ident is not None:
            g.thread.join()
    native.reports.clear()


class EventGroups:
    """The backend's side of the groups: placing an op's event in a group, taking
    it out, starting (and restarting) helpers, reaping what they report."""

    def _attach(self, slot: Slot) -> None:
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

    def _detach(self, slot: Slot) -> None:
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
    def _remove(g: Group, slot: Slot) -> None:
        slots = g.slots
        last = slots.pop()
        if last is not slot:
            i = slot.idx
            slots[i] = last
            last.idx = i
            g.handles[g.base + i] = last.ev

    def _new_helper(self) -> Group:
        g = Group(self.ffi, 1)
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

    def _start_helper(self, g: Group) -> None:
        g.thread = threading.Thread(target=run_helper, args=(self._native, g),
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
