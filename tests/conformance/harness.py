"""Helpers shared by the conformance checks: a leak-checked Proactor, connected
pairs made through the Proactor itself, and a driver that counts every
completion that surfaces (returned by ``wait()`` or passed to a callback).

All waiting is bounded: a backend that loses a completion makes a check fail
with an AssertionError, never hang. Bounds are generous (seconds, where the
expected time is milliseconds) because the machine may be shared and loaded.
"""
from __future__ import annotations

import contextlib
import gc
import os
import socket
import struct
import sys
from collections import Counter
from time import monotonic
from typing import Any, Callable, Iterable, Optional

import overlapio
from overlapio import Op, Proactor

#: the longest any single expected completion may take before a check calls it lost
#: (read at call time: the mutant tests lower it, since there a loss is expected)
LIMIT = 10.0
LOOPBACK = ("127.0.0.1", 0)


# -- descriptors -------------------------------------------------------------------
def fd_snapshot() -> Optional[set]:
    """``{(fd, target)}`` for this process, or None where /proc/self/fd is missing
    (then the leak check is skipped). A target names the object (a socket's inode),
    so a closed-and-reopened number still shows as new."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return None
    out = set()
    for name in names:
        try:
            out.add((int(name), os.readlink(f"/proc/self/fd/{name}")))
        except OSError:
            pass  # the directory handle listdir used, closed since
    return out


def handle_count() -> Optional[int]:
    """Windows: this process's open handles (``GetProcessHandleCount``: sockets,
    events, threads ...), the leak check where there is no /proc/self/fd.
    None elsewhere."""
    if sys.platform != "win32":
        return None
    import ctypes
    from ctypes import wintypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    kernel32.GetCurrentProcess.restype = wintypes.HANDLE
    count = wintypes.DWORD()
    if not kernel32.GetProcessHandleCount(kernel32.GetCurrentProcess(), ctypes.byref(count)):
        raise ctypes.WinError(ctypes.get_last_error())
    return count.value


_handles_warm = False  # the first Proactor loads Winsock's providers: handles it keeps for good


@contextlib.contextmanager
def open_proactor(backend: Any):
    """A Proactor on ``backend`` (a name or a Backend subclass). On leaving it is
    closed, then no descriptor opened meanwhile may still be open (on Windows: no
    more handles open than before)."""
    global _handles_warm
    gc.collect()
    before, handles = fd_snapshot(), handle_count()
    px = Proactor(backend=backend)
    try:
        yield px
    finally:
        px.close()
    gc.collect()
    after = fd_snapshot()
    if before is not None and after is not None:
        leaked = sorted(after - before)
        assert not leaked, f"descriptors still open after Proactor.close(): {leaked}"
    if handles is not None:
        grown = handle_count() - handles
        if _handles_warm:
            assert grown <= 0, f"{grown} handle(s) still open after Proactor.close()"
        _handles_warm = True


# -- completions -------------------------------------------------------------------
class Driver:
    """Submits nothing itself; records every completion that surfaces.

    ``drv.cb`` is a callback that records; ``drv.wait_for(*ops)`` pumps
    ``px.wait()`` (recording what it returns) until each op has surfaced, or fails.
    """

    def __init__(self, px: Proactor) -> None:
        self.px = px
        self.seen: Counter = Counter()  # op -> times it surfaced (identity-hashed)
        self.order: list[Op] = []  # every surfacing, in order
        self.on_complete: Optional[Callable[[Op], None]] = None

    def _record(self, op: Op) -> None:
        self.seen[op] += 1
        self.order.append(op)
        if self.on_complete is not None:
            self.on_complete(op)

    def cb(self, op: Op) -> None:
        self._record(op)

    def pump(self, timeout: float) -> list:
        got = self.px.wait(timeout)
        for op in got:
            self._record(op)
        return got

    def wait_until(self, cond: Callable[[], bool], timeout: Optional[float] = None, what: str = "condition") -> None:
        timeout = LIMIT if timeout is None else timeout
        deadline = monotonic() + timeout
        while not cond():
            left = deadline - monotonic()
            if left <= 0:
                raise AssertionError(f"{what}: not reached within {timeout:g} s")
            self.pump(min(left, 0.25))

    def wait_for(self, *ops: Op, timeout: Optional[float] = None) -> None:
        timeout = LIMIT if timeout is None else timeout

        def all_seen() -> bool:
            return all(self.seen[op] for op in ops)
        try:
            self.wait_until(all_seen, timeout)
        except AssertionError:
            lost = [op for op in ops if not self.seen[op]]
            raise AssertionError(f"completion lost: {lost} did not surface within {timeout:g} s") from None

    def assert_once(self, ops: Iterable[Op]) -> None:
        bad = {op: self.seen[op] for op in ops if self.seen[op] != 1}
        assert not bad, f"ops that did not surface exactly once: {bad}"


# -- sockets -----------------------------------------------------------------------
def pair(px: Proactor, listener: Optional[socket.socket] = None, drv: Optional[Driver] = None):
    """A connected TCP pair ``(client, server)`` made through ``px`` (both owned by
    it). With ``listener`` given it is used (and left open)."""
    own = listener is None
    if own:
        listener = px.listen(LOOPBACK)
    drv = drv or Driver(px)
    acc = px.accept(listener)
    con = px.connect(listener.getsockname())
    drv.wait_for(acc, con)
    if own:
        px.close(listener)
    return con.result, acc.result[0]


def pairs(px: Proactor, n: int, batch: int = 100):
    """``n`` connected pairs through one listener, made ``batch`` at a time."""
    listener = px.listen(LOOPBACK, backlog=batch)
    drv = Driver(px)
    out = []
    try:
        while len(out) < n:
            k = min(batch, n - len(out))
            accs = [px.accept(listener) for _ in range(k)]
            cons = [px.connect(listener.getsockname()) for _ in range(k)]
            drv.wait_for(*accs, *cons, timeout=3 * LIMIT)
            # match each client to its accepted peer by address
            by_addr = {acc.result[1]: acc.result[0] for acc in accs}
            for con in cons:
                c = con.result
                out.append((c, by_addr.pop(c.getsockname())))
    finally:
        px.close(listener)
    return out


def set_linger_reset(sock: socket.socket) -> None:
    """SO_LINGER on with 0 s: the next close sends a reset (RST), not a FIN."""
    fmt = "HH" if sys.platform == "win32" else "ii"  # struct linger: u_short pair on Winsock
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack(fmt, 1, 0))


def reset(px: Proactor, sock: socket.socket) -> None:
    set_linger_reset(sock)
    px.close(sock)


def recv_exactly(px: Proactor, sock: socket.socket, n: int, drv: Optional[Driver] = None,
                 chunk: int = 65536, timeout: Optional[float] = None) -> bytes:
    """Read until ``n`` bytes or end of stream (then fewer)."""
    drv = drv or Driver(px)
    out = bytearray()
    while len(out) < n:
        buf = bytearray(min(chunk, n - len(out)))
        op = px.recv(sock, buf)
        drv.wait_for(op, timeout=timeout)
        k = op.result
        if k == 0:
            break
        out += buf[:k]
    return bytes(out)


def recv_to_eof(px: Proactor, sock: socket.socket, drv: Optional[Driver] = None, chunk: int = 65536,
                timeout: Optional[float] = None) -> bytes:
    drv = drv or Driver(px)
    out = bytearray()
    while True:
        buf = bytearray(chunk)
        op = px.recv(sock, buf)
        drv.wait_for(op, timeout=timeout)
        k = op.result
        if k == 0:
            return bytes(out)
        out += buf[:k]


def payload(n: int, seed: int = 0) -> bytes:
    """``n`` pseudo-random bytes (distinct per seed, so misordering shows)."""
    import random
    return random.Random(seed).randbytes(n)


def backend_class(backend: Any) -> type:
    return backend if isinstance(backend, type) else overlapio.load_backend(backend)


def require(backend: Any, feature: str) -> None:
    """Skip the test if ``backend`` leaves out an optional part of the contract:
    ``"multi_buffer"`` or an optional op method (``"shutdown"``, ``"recvfrom"``...)."""
    import pytest
    cls = backend_class(backend)
    if feature == "multi_buffer":
        missing = not cls.multi_buffer
    else:
        missing = getattr(cls, feature) is getattr(overlapio.Backend, feature)
    if missing:
        pytest.skip(f"backend {getattr(cls, 'name', cls)!r} leaves out the optional {feature!r}")
