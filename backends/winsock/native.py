"""Everything the kernel may still touch, owned apart from the backend object
(:class:`Native`): cancel and wait for it, free it, or keep it for good."""
from __future__ import annotations

import math
import socket
import threading
from collections import deque
from time import monotonic
from typing import Any, Optional

from .api import lib
from .groups import WAIT_MAX, Group, stop_helpers
from .slots import GRAVEYARD, Slot
from .wakeup import uninstall_wakeup_fd

_STATUS_PENDING = lib.STATUS_PENDING
CLOSE_WAIT = 5.0  # seconds close()/close_socket() wait for cancelled ops to finish


class Native:
    """Everything the kernel may still touch (every slot and event) and the helper
    threads, owned apart from the backend object. The helper threads and the
    backend's finalizer hold this, never the backend: so a backend dropped without
    close() (garbage, an exception, interpreter exit) is still collected, and
    :meth:`abandon` winds it down as CPython's ``Overlapped_dealloc`` does."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.ffi = api.ffi
        self.slots: list[Slot] = []  # every slot made
        self.events: list[Any] = []  # every event made, closed by release()
        self.helpers: list[Group] = []
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

    def settle(self, slots: list) -> None:
        """Cancel every one of ``slots`` the kernel still has and wait until the
        kernel is done with each: a cancel takes microseconds, so this returns as
        soon as the last one completes; the bound is only for a kernel that never
        completes one (its memory is then kept by :meth:`release`)."""
        api, ffi = self.api, self.ffi
        live = [s for s in slots if s.ov.Internal == _STATUS_PENDING]
        for slot in live:
            api.CancelIoEx(ffi.cast("HANDLE", slot.handle), slot.ov)
        deadline = monotonic() + CLOSE_WAIT
        arr = ffi.new("WSAEVENT[64]")
        while live:
            chunk = live[:WAIT_MAX]
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
                GRAVEYARD.append(slot)
                keep.add(slot.key)
        events = self.events
        while events:
            ev = events.pop()
            if int(self.ffi.cast("uintptr_t", ev)) not in keep:
                self.api.WSACloseEvent(ev)
        self.slots.clear()
        self.helpers.clear()
        self.released = True

    def abandon(self) -> None:
        """The backend was dropped without close(): no op may complete any more
        (nobody is left to hear it), but the kernel's memory stays valid until the
        kernel is done with it."""
        if self.released:
            return
        with self.lock:
            self.closed = True
        stop_helpers(self)
        uninstall_wakeup_fd(self)
        self.settle(self.slots)
        self.release()
