"""Ctrl-C while the Proactor thread is blocked in a wait: a socketpair whose read
end always has an overlapped recv pending in group 0, and whose write end is the
``signal.set_wakeup_fd`` (the package doc tells why)."""
from __future__ import annotations

import signal
import socket
import sys
import threading
from typing import Any

from .api import lib
from .groups import WAIT_MAX
from .slots import GRAVEYARD, Slot

_IO_PENDING = lib.WSA_IO_PENDING
_STATUS_PENDING = lib.STATUS_PENDING
SIGNAL = object()  # the kind of the signal-wakeup recv's slot

# Wakeup fds of ours closed while another was installed over them -> the fd each had
# replaced: closing Proactors in any order then puts back a live fd, never a closed one.
CLOSED_WAKEUPS: dict[int, int] = {}


def uninstall_wakeup_fd(native: Any) -> None:
    """Put back the wakeup fd ours replaced. Only the main thread can: anywhere
    else ours stays installed and its socket open for good, so that the C-level
    signal handler never writes into a closed (or reused) handle."""
    w = native.sig_installed
    if w is None:
        return
    if threading.current_thread() is not threading.main_thread():
        GRAVEYARD.append(w)
        return
    native.sig_installed = None
    prev = native.sig_prev
    while prev in CLOSED_WAKEUPS:  # one of ours, closed since: put back what it replaced
        prev = CLOSED_WAKEUPS.pop(prev)
    try:
        current = signal.set_wakeup_fd(prev)
    except (ValueError, OSError):  # a foreign fd, closed since: none is better than a stale one
        current = signal.set_wakeup_fd(-1)
    if current != w.fileno():  # another was installed over ours since: leave that one,
        signal.set_wakeup_fd(current)
        CLOSED_WAKEUPS[w.fileno()] = prev  # and whoever restores ours gets what ours replaced


def forward_signal_bytes(fd: int, data: bytes) -> None:
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


class SignalWakeup:
    """The backend's side of the signal wakeup."""

    def _start_signal_wakeup(self) -> int:
        try:
            r, w = socket.socketpair()
        except OSError:
            return 1
        r.setblocking(False)
        w.setblocking(False)
        self._sig_r, self._sig_w = r, w
        slot = self._make_slot()
        slot.kind = SIGNAL
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

    def _issue_signal_recv(self, slot: Slot) -> bool:
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
            forward_signal_bytes(prev, bytes(self.ffi.buffer(slot.pin, n)))
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
        g.cap = WAIT_MAX - 1

    def _wait_with_signal_wakeup(self, n: int, handles: Any, ms: int) -> int:
        native = self._native
        if native.sig_installed is None and threading.current_thread() is threading.main_thread():
            # Installed once, at the first blocking wait, and kept until close(): no
            # call per wait. (Off the main thread no signal arrives here: nothing to do.)
            try:
                native.sig_prev = signal.set_wakeup_fd(self._sig_w.fileno(), warn_on_full_buffer=False)
                CLOSED_WAKEUPS.pop(self._sig_w.fileno(), None)  # that number is live again
                native.sig_installed = self._sig_w
            except (ValueError, OSError):
                pass
        return self.api.WSAWaitForMultipleEvents(n, handles, False, ms, False)
