"""Ctrl-C anywhere in the loop loses nothing (semantics.md §8).

The sweep: small scenarios (a stream both ways, accept and connect, cancel,
timers, posts, close, reading when readable) are driven through ``wait()`` and
through ``run()``. A ``sys.settrace`` hook simulates SIGINT landing at one line of overlapio's core or
backend code while ``wait()``/``run()`` runs: it calls the SIGINT handler that is
installed, with that line's frame, so whatever the handler raises surfaces at
that line. The loop is then resumed until the scenario is done, and the checks
are: every op surfaced exactly once per submission, every stream arrived byte for
byte, and the interrupt came out as exactly one ``KeyboardInterrupt``. Every
``STRIDE``-th line event of a clean run is hit (later occurrences too: the fifth
recv, a partial send), then each line those missed at its first occurrence: every
line the scenario runs is hit at least once.

The stress test fires real SIGINTs at random moments during a 20 MiB transfer.
"""
from __future__ import annotations

import gc
import os
import random
import signal
import socket
import sys
import threading
import time
from collections import Counter
from time import monotonic
from typing import Any, Callable, Optional

import pytest

import overlapio
import overlapio.backends
import overlapio.core
from overlapio import Proactor

from .harness import LIMIT, LOOPBACK, pair, payload

pytestmark = pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs signal.pthread_kill")

#: whose lines are injected: the core and the built-in backends (a stand-in's
#: Winsock, like the real DLLs, is not Python code a signal can land in)
OURS = tuple(os.path.dirname(os.path.abspath(m.__file__)) + os.sep for m in (overlapio.core, overlapio.backends))
STRIDE = 13  # every STRIDE-th line event is injected too, besides every line's first
#: backends the sweep and the storm leave out (they take seconds per backend), and why
SWEEP_SKIPS = {"winsock-standin-wineclose": "the same Python lines as winsock-standin (only the stand-in's "
                                            "close codes differ)"}
SMALL_BUF = 8192  # socket buffers small enough that sends go out in parts


# -- injection --------------------------------------------------------------------
class Injector:
    """A ``sys.settrace`` hook counting the line events of overlapio's code while
    ``active``; at the event numbered ``at_index``, or the first one at
    ``at_line`` (``(filename, lineno)``), it calls the installed SIGINT handler
    with that frame. ``lines`` maps every line seen to the index of its first
    event."""

    def __init__(self, at_index: int = -1, at_line: Optional[tuple] = None) -> None:
        self.at_index = at_index
        self.at_line = at_line
        self.active = False
        self.count = 0
        self.fired: Optional[tuple] = None
        self.lines: dict = {}

    def __enter__(self) -> "Injector":
        sys.settrace(self._call)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.settrace(None)

    def _call(self, frame: Any, event: str, arg: Any) -> Any:
        return self._line if frame.f_code.co_filename.startswith(OURS) else None

    def _line(self, frame: Any, event: str, arg: Any) -> Any:
        if event == "line" and self.active and self.fired is None:
            where = (frame.f_code.co_filename, frame.f_lineno)
            n = self.count
            self.count += 1
            self.lines.setdefault(where, n)
            if n == self.at_index or where == self.at_line:
                self.fired = where
                signal.getsignal(signal.SIGINT)(signal.SIGINT, frame)  # raises here, or defers
        return self._line


# -- scenarios ----------------------------------------------------------------------
class Scenario:
    """Ops are submitted with their handler as ``tag``; each surfaces through
    :meth:`surface` (as the callback, or returned by ``wait()``)."""

    def __init__(self, px: Proactor, mode: str) -> None:
        self.px = px
        self.mode = mode
        self.submitted: Counter = Counter()
        self.surfaced: Counter = Counter()
        self._n = 0

    def sub(self, submit: Callable[..., Any], *args: Any, handler: Callable[[Any], None],
            callback: Optional[bool] = None, **kw: Any) -> Any:
        """Submit with a callback if ``callback`` (in run mode: always), without
        one if it is False, else every other time."""
        self._n += 1
        with_cb = callback or self.mode == "run" or (callback is None and self._n % 2)
        op = submit(*args, self.surface if with_cb else None, handler, **kw)
        self.submitted[op] += 1
        return op

    def resub(self, op: Any) -> None:
        self.submitted[op] += 1
        self.px.resubmit(op)

    def surface(self, op: Any) -> None:
        self.surfaced[op] += 1  # (checked against submitted at the end: posts count theirs after the fact)
        assert op.done, f"{op!r} surfaced before it completed"
        op.tag(op)

    def check_once(self) -> None:
        bad = {op: (self.submitted[op], self.surfaced[op]) for op in self.submitted
               if self.surfaced[op] != self.submitted[op]}
        assert not bad, f"ops not surfaced once per submission (submitted, surfaced): {bad}"

    def setup(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def done(self) -> bool:
        raise NotImplementedError

    def check(self) -> None:
        self.check_once()


def _small_buffers(*socks: socket.socket) -> None:
    for s in socks:  # (a small receive buffer too would add TCP's delayed-ACK stalls)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUF)


class Stream(Scenario):
    """a sends 48 KiB in three send ops over small socket buffers (they go out in
    parts); b reads with two recv ops in flight, each resubmitted; a is closed once
    its sends are done, so b ends with two ends of stream."""

    SIZE = 48 * 1024

    def setup(self) -> None:
        self.a, self.b = pair(self.px)
        _small_buffers(self.a, self.b)
        self.data = payload(self.SIZE, seed=3)
        self.got = bytearray()
        self.sent = 0
        self.eofs = 0

    def start(self) -> None:
        third = self.SIZE // 3
        for i in range(3):
            self.sub(self.px.send, self.a, self.data[i * third:(i + 1) * third], handler=self.on_sent)
        for _ in range(2):  # (both surface the same way: the bytes are appended in surfacing order)
            self.sub(self.px.recv, self.b, bytearray(4096), handler=self.on_recv, callback=False)

    def on_sent(self, op: Any) -> None:
        assert op.result == len(op.buf)
        self.sent += 1
        if self.sent == 3:
            self.px.close(self.a)

    def on_recv(self, op: Any) -> None:
        n = op.result
        if n == 0:
            self.eofs += 1
            return
        self.got += op.buf[:n]
        self.resub(op)

    def done(self) -> bool:
        return self.eofs == 2

    def check(self) -> None:
        super().check()
        assert self.got == self.data, f"stream damaged: {len(self.got)} of {len(self.data)} bytes, " \
                                      f"first difference at {_diff(self.got, self.data)}"


class AcceptConnect(Scenario):
    """Three accepts pending on a listener, three connects to it."""

    K = 3

    def setup(self) -> None:
        self.listener = self.px.listen(LOOPBACK)
        self.accepted: list = []
        self.connected: list = []

    def start(self) -> None:
        address = self.listener.getsockname()
        for _ in range(self.K):
            self.sub(self.px.accept, self.listener, handler=lambda op: self.accepted.append(op.result))
        for _ in range(self.K):
            self.sub(self.px.connect, address, handler=lambda op: self.connected.append(op.result))

    def done(self) -> bool:
        return len(self.accepted) == self.K and len(self.connected) == self.K

    def check(self) -> None:
        super().check()
        assert sorted(peer for _, peer in self.accepted) == sorted(s.getsockname() for s in self.connected)


class Cancel(Scenario):
    """Three recvs pending on an idle socket; a sleep's handler cancels the first
    two and sends ten bytes, then the peer closes. Each recv completes once:
    cancelled, or with data (a cancel may come too late), or at end of stream;
    the ten bytes arrive whole, in order."""

    def setup(self) -> None:
        self.a, self.b = pair(self.px)
        self.recvs: list = []

    def start(self) -> None:
        self.recvs = [self.sub(self.px.recv, self.b, bytearray(16), handler=_nothing) for _ in range(3)]
        self.sub(self.px.sleep, 0, handler=self.on_tick)

    def on_tick(self, op: Any) -> None:
        assert self.px.cancel(self.recvs[0]) and self.px.cancel(self.recvs[1])
        self.sub(self.px.send, self.a, b"0123456789", handler=lambda op: self.px.close(self.a))

    def done(self) -> bool:
        return sum(self.surfaced.values()) == 5

    def check(self) -> None:
        super().check()
        data = b"".join(bytes(r.buf[:r.result]) for r in self.recvs if not r.cancelled)
        assert data == b"0123456789", (data, self.recvs)


class Timers(Scenario):
    """Sleeps of 0 to 2 ms, one cancelled by a handler; a recv whose timeout runs
    out, and one whose data comes first."""

    def setup(self) -> None:
        self.a, self.b = pair(self.px)
        self.order: list = []

    def start(self) -> None:
        px = self.px
        for ms in (2, 0, 1):
            self.sub(px.sleep, ms / 1000, handler=lambda op, ms=ms: self.order.append(ms))
        self.victim = self.sub(px.sleep, 5.0, handler=_nothing)
        self.sub(px.sleep, 0, handler=lambda op: px.cancel(self.victim))
        self.late = self.sub(px.recv, self.a, bytearray(8), handler=_nothing, timeout=0.003)
        px.try_send(self.a, b"hello")
        self.early = self.sub(px.recv, self.b, bytearray(8), handler=_nothing, timeout=5.0)

    def done(self) -> bool:
        return sum(self.surfaced.values()) == 7

    def check(self) -> None:
        super().check()
        assert sorted(self.order) == [0, 1, 2]  # (their order: test_timers.py; a loaded machine may blur 1 ms)
        assert self.victim.cancelled
        assert isinstance(self.late.exception, TimeoutError)
        assert self.early.result == 5


class Posts(Scenario):
    """Another thread posts 0..9; the handlers of the first five post 100 + i
    from the loop's own thread. (A sleep keeps run() going until the last post.)"""

    N = 10

    def setup(self) -> None:
        self.values: list = []
        self.thread = threading.Thread(target=self._poster)

    def _poster(self) -> None:
        for i in range(self.N):
            self.sub(self.px.post, i, handler=self.on_post, callback=False)  # (all surface alike: order is checked)
            time.sleep(0.0001)

    def start(self) -> None:
        self.keep = self.sub(self.px.sleep, LIMIT, handler=_nothing, callback=True)
        self.thread.start()

    def on_post(self, op: Any) -> None:
        v = op.result
        self.values.append(v)
        if v < 5:
            self.sub(self.px.post, 100 + v, handler=self.on_post)
        if len(self.values) == self.N + 5:
            self.px.cancel(self.keep)

    def done(self) -> bool:
        return len(self.values) == self.N + 5 and self.surfaced[self.keep] == 1

    def check(self) -> None:
        self.thread.join()
        super().check()
        assert [v for v in self.values if v < 100] == list(range(self.N))
        assert sorted(v for v in self.values if v >= 100) == [100, 101, 102, 103, 104]


class Close(Scenario):
    """A handler closes a socket with two recvs pending; a later one closes the
    Proactor with a recv, a send (too big for the socket buffers) and a sleep
    pending: each of them completes cancelled, once, its callback run by close()."""

    def setup(self) -> None:
        self.a, self.b = pair(self.px)
        self.c, self.d = pair(self.px)
        _small_buffers(self.c, self.d)

    def start(self) -> None:
        px = self.px
        # (every op has a callback: close() drops the completions nobody can wait() for)
        for _ in range(2):
            self.sub(px.recv, self.b, bytearray(16), handler=_nothing, callback=True)
        self.sub(px.recv, self.d, bytearray(16), handler=_nothing, callback=True)
        self.sub(px.send, self.d, b"x" * (1 << 20), handler=_nothing, callback=True)
        self.sub(px.sleep, LIMIT, handler=_nothing, callback=True)
        self.sub(px.sleep, 0, handler=lambda op: px.close(self.b), callback=True)
        self.sub(px.sleep, 0.002, handler=lambda op: px.close(), callback=True)

    def done(self) -> bool:
        return self.px.closed

    def check(self) -> None:
        super().check()
        victims = [op for op in self.submitted if op.tag is _nothing]
        assert len(victims) == 5 and all(op.cancelled for op in victims), victims


class Readable(Scenario):
    """b reads only once told there is something to read (a readable op, then a
    recv into a fresh buffer, then the readable op resubmitted); a sends 12 KiB
    in three sends, then closes: b gets every byte, then end of stream."""

    SIZE = 12 * 1024

    def setup(self) -> None:
        self.a, self.b = pair(self.px)
        self.data = payload(self.SIZE, seed=7)
        self.got = bytearray()
        self.sent = 0
        self.eof = False

    def start(self) -> None:
        third = self.SIZE // 3
        for i in range(3):
            self.sub(self.px.send, self.a, self.data[i * third:(i + 1) * third], handler=self.on_sent)
        self.ready = self.sub(self.px.readable, self.b, handler=self.on_readable, callback=False)

    def on_sent(self, op: Any) -> None:
        assert op.result == len(op.buf)
        self.sent += 1
        if self.sent == 3:
            self.px.close(self.a)

    def on_readable(self, op: Any) -> None:
        assert op.result is None
        self.sub(self.px.recv, self.b, bytearray(2048), handler=self.on_recv, callback=False)

    def on_recv(self, op: Any) -> None:
        n = op.result
        if n == 0:
            self.eof = True
            return
        self.got += op.buf[:n]
        self.resub(self.ready)

    def done(self) -> bool:
        return self.eof

    def check(self) -> None:
        super().check()
        assert self.got == self.data, f"stream damaged: {len(self.got)} of {len(self.data)} bytes, " \
                                      f"first difference at {_diff(self.got, self.data)}"


SCENARIOS = [Stream, AcceptConnect, Cancel, Timers, Posts, Close, Readable]


def _nothing(op: Any) -> None:
    pass


def _diff(a: bytes, b: bytes) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


# -- the driver ------------------------------------------------------------------------
class _Watchdog:
    """Stops a run() that outlives its deadline (a lost op would keep it blocked)."""

    def __init__(self) -> None:
        self._px: Optional[Proactor] = None
        self._until = 0.0
        self._cv = threading.Condition()
        threading.Thread(target=self._loop, daemon=True).start()

    def arm(self, px: Optional[Proactor], until: float = 0.0) -> None:
        with self._cv:
            self._px, self._until = px, until
            self._cv.notify()

    def _loop(self) -> None:
        with self._cv:
            while True:
                if self._px is None:
                    self._cv.wait()
                    continue
                left = self._until - monotonic()
                if left > 0:
                    self._cv.wait(left)
                    continue
                self._px.stop()
                self._px = None


_WATCHDOG: Optional[_Watchdog] = None


def play(backend: Any, scenario: type, mode: str, inj: Injector, limit: float = LIMIT) -> None:
    """One scenario, interrupted where ``inj`` says, resumed after every
    KeyboardInterrupt until done; then every check."""
    global _WATCHDOG
    _WATCHDOG = _WATCHDOG or _Watchdog()
    px = Proactor(backend=backend)
    try:
        sc = scenario(px, mode)
        sc.setup()
        px.wait(0)  # (the SIGINT guard is set up by a Proactor's first safe point)
        sc.start()
        kis = 0
        deadline = monotonic() + limit
        with inj:
            while not sc.done():
                assert monotonic() < deadline, f"not done within {limit:g} s (an op was lost?) after a " \
                                               f"KeyboardInterrupt at {_where(inj.fired)}"
                inj.active = True
                got: list = []
                try:
                    if mode == "wait":
                        got = px.wait(0.05)
                    else:
                        _WATCHDOG.arm(px, deadline)
                        px.run()
                except KeyboardInterrupt:
                    kis += 1
                finally:
                    inj.active = False
                    _WATCHDOG.arm(None)
                for op in got:
                    sc.surface(op)
        if not px.closed:
            try:
                assert px.wait(0) == []
            except KeyboardInterrupt:
                kis += 1
        sc.check()
        # The interrupt surfaced exactly once; one that came as the wait()/run() that
        # closed the Proactor returned has no safe point left (documented).
        expected = 0 if inj.fired is None else 1
        late = px.closed and getattr(px, "_ki", None) is True
        assert kis == expected or (kis == 0 and late), \
            f"{kis} KeyboardInterrupts for {expected} injected at {_where(inj.fired)}"
    finally:
        px.close()


def _where(where: Optional[tuple]) -> str:
    if where is None:
        return "nowhere"
    return f"{os.path.relpath(where[0])}:{where[1]}"


def _sweep(backend: Any, scenario: type, mode: str) -> tuple[int, int]:
    """Inject at every STRIDE-th line event of a clean run, then at the first
    occurrence of each line those missed (three times: a path a run may not take);
    returns (runs, lines covered)."""
    probe = Injector()
    play(backend, scenario, mode, probe)
    hit: set = set()
    runs = 0

    def inject(inj: Injector) -> None:
        nonlocal runs
        runs += 1
        try:
            play(backend, scenario, mode, inj)
        except AssertionError as exc:
            raise AssertionError(f"{scenario.__name__} via {mode}(), KeyboardInterrupt at "
                                 f"{_where(inj.fired)}: {exc}") from exc
        if inj.fired is not None:
            hit.add(inj.fired)

    for n in range(STRIDE // 2, probe.count, STRIDE):
        inject(Injector(at_index=n))
    for _ in range(3):
        for line in [line for line in probe.lines if line not in hit]:
            inject(Injector(at_line=line))
    # A path that depends on timing (the stand-in's kernel thread, a timer that is
    # due or not) may not come back in three tries; a few such lines are let go.
    missed = set(probe.lines) - hit
    assert len(missed) <= len(probe.lines) // 20, f"lines never interrupted: {sorted(map(_where, missed))}"
    return runs, len(hit)


@pytest.mark.parametrize("mode", ["wait", "run"])
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.__name__ for s in SCENARIOS])
def test_keyboard_interrupt_at_every_line_loses_nothing(backend_name, backend, scenario, mode):
    """The sweep (module doc): a KeyboardInterrupt injected at each line of the
    loop's code, and every STRIDE-th line event; after each, the scenario runs to
    its end with every op surfaced once and every byte in place."""
    if backend_name in SWEEP_SKIPS:
        pytest.skip(SWEEP_SKIPS[backend_name])
    runs, lines = _sweep(backend, scenario, mode)
    assert runs and lines


def test_keyboard_interrupt_in_a_callback_is_raised_at_once(px):
    """A signal landing in a callback (the caller's code) raises there, at once."""
    px.wait(0)
    seen: list = []

    def callback(op):
        try:
            signal.getsignal(signal.SIGINT)(signal.SIGINT, sys._getframe())
        except KeyboardInterrupt:
            seen.append("raised")
        nested()

    def nested():  # what a callback calls is the caller's code too
        try:
            signal.getsignal(signal.SIGINT)(signal.SIGINT, sys._getframe())
        except KeyboardInterrupt:
            seen.append("raised in nested")

    px.sleep(0, callback)
    px.run()
    assert seen == ["raised", "raised in nested"]
    assert px._ki is False


def test_keyboard_interrupt_outside_the_loop_is_raised_at_once(px):
    """Core code called from the main program, not from wait()/run(): as before."""
    px.wait(0)
    with pytest.raises(KeyboardInterrupt):
        signal.getsignal(signal.SIGINT)(signal.SIGINT, sys._getframe())
    a, b = pair(px)
    frames: list = []
    tracer = lambda frame, event, arg: frames.append(frame) if frame.f_code is Proactor.recv.__code__ else None
    sys.settrace(tracer)
    try:
        op = px.recv(b, bytearray(4))
    finally:
        sys.settrace(None)
    with pytest.raises(KeyboardInterrupt):
        signal.getsignal(signal.SIGINT)(signal.SIGINT, frames[0])
    px.cancel(op)
    px.run()


def test_the_guard_is_python_default_handler_otherwise(backend):
    """The handler is installed only over Python's default one, at the first
    wait(); a handler of the caller's stays; the last close() puts the default back."""
    gc.collect()  # (a Proactor some earlier test dropped unclosed releases it when collected)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with Proactor(backend=backend) as px:
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # not before a wait
        px.wait(0)
        ours = signal.getsignal(signal.SIGINT)
        assert ours is not signal.default_int_handler
        with Proactor(backend=backend) as px2:
            px2.wait(0)
            assert signal.getsignal(signal.SIGINT) is ours
        assert signal.getsignal(signal.SIGINT) is ours  # px still uses it
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

    def mine(signum, frame):
        raise KeyboardInterrupt
    old = signal.signal(signal.SIGINT, mine)
    try:
        with Proactor(backend=backend) as px:
            px.wait(0)
            assert signal.getsignal(signal.SIGINT) is mine
        assert signal.getsignal(signal.SIGINT) is mine
    finally:
        signal.signal(signal.SIGINT, old)


def _immune_here(handler: Callable[..., Any]) -> Callable[..., Any]:
    """``handler``, except that a signal landing in this file's code (the test's
    driver and callbacks, where a KeyboardInterrupt would break the test, not the
    loop) is ignored: only the loop's own resilience is put to the test."""
    here = os.path.abspath(__file__)

    def immune(signum: int, frame: Any) -> None:
        f = frame
        while f is not None:
            name = f.f_code.co_filename
            if name == here:
                return
            if name.startswith(OURS):
                break
            f = f.f_back
        handler(signum, frame)
    return immune


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["wait", "run"])
def test_20_mib_under_a_storm_of_sigints(backend_name, backend, mode):
    """20 MiB from one socket to another of the same Proactor while another thread
    sends SIGINT to the main thread at random moments (every 0-0.3 ms), the loop
    resumed after each KeyboardInterrupt: every byte arrives, in order, and every
    op surfaces once per submission. (Signals that land in this test's own code
    are ignored: see _immune_here.)"""
    if backend_name.startswith("winsock-standin"):
        # Its Winsock is Python: a real signal can land inside it (and the handler
        # then re-enter it), where the real DLL runs no bytecode. The sweep covers
        # the Windows backend's own lines.
        pytest.skip("the stand-in's Winsock is Python code a real signal can land in")
    size = 20 << 20
    data = payload(size, seed=11)
    view = memoryview(data)
    chunk = 16 * 1024  # (many rounds: more places for a signal to land)
    with Proactor(backend=backend) as px:
        a, b = pair(px)  # (its wait() sets the SIGINT guard up)
        got = bytearray()
        sent = [0]
        eof = [False]
        submitted: Counter = Counter()
        surfaced: Counter = Counter()

        def send_next():
            off = sent[0]
            submitted[px.send(a, view[off:off + chunk], on_sent)] += 1

        def on_sent(op):
            surfaced[op] += 1
            assert op.result == len(op.buf)
            sent[0] += len(op.buf)
            if sent[0] < size:
                send_next()
            else:
                px.close(a)

        def on_recv(op):
            surfaced[op] += 1
            n = op.result
            if n == 0:
                eof[0] = True
                return
            got.extend(op.buf[:n])
            submitted[op] += 1
            px.resubmit(op)

        main = threading.main_thread().ident
        stop = threading.Event()
        fired = [0]

        def storm():
            rnd = random.Random(5)
            while not stop.wait(rnd.random() * 0.0003):
                signal.pthread_kill(main, signal.SIGINT)
                fired[0] += 1

        send_next()
        submitted[px.recv(b, bytearray(chunk), on_recv)] += 1
        installed = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, _immune_here(installed))
        kis = 0
        t = threading.Thread(target=storm, daemon=True)
        progress, last = -1, monotonic()
        t.start()
        try:
            while not eof[0]:
                if len(got) != progress:
                    progress, last = len(got), monotonic()
                assert monotonic() - last < LIMIT, f"stalled at {len(got)} of {size} bytes"
                try:
                    if mode == "wait":
                        px.wait(0.1)
                    else:
                        px.run()
                except KeyboardInterrupt:
                    kis += 1
        finally:
            stop.set()
            t.join()
            time.sleep(0.01)  # a SIGINT still on its way lands here, ignored
            try:
                px.wait(0)  # one deferred as the last call returned (else close() would raise it)
            except KeyboardInterrupt:
                kis += 1
            signal.signal(signal.SIGINT, installed)
        print(f"{fired[0]} SIGINTs, {kis} KeyboardInterrupts")
        assert fired[0] > 50, f"only {fired[0]} SIGINTs fired"
        assert kis > 10, f"only {kis} of {fired[0]} SIGINTs became KeyboardInterrupts"
        assert len(got) == size and got == data, f"stream damaged at byte {_diff(got, data)} of {len(got)}"
        bad = {op: (n, surfaced[op]) for op, n in submitted.items() if surfaced[op] != n}
        assert not bad, f"ops not surfaced once per submission (submitted, surfaced): {bad}"
