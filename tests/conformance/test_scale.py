"""Scale, fairness, idleness, cross-thread posts and Ctrl-C."""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from overlapio import Proactor, ProactorClosedError

from .harness import LIMIT, Driver, pair, pairs

# CPU bounds: process_time() counts this process only, so a loaded machine does not
# inflate it; a spinning loop burns about as much CPU as wall time, a sleeping one
# next to nothing. The bounds sit far between the two.


def test_2000_sockets_complete_in_reverse_order(px):
    """1,000 connected pairs, a recv pending on each of the 2,000 sockets. Data is
    sent to them one at a time in reverse order of submission: each time exactly
    the recv of the socket just sent to completes, with its own bytes."""
    drv = Driver(px)
    socks = [s for p in pairs(px, 1000) for s in p]
    peer = {}
    for i in range(0, len(socks), 2):
        peer[socks[i]], peer[socks[i + 1]] = socks[i + 1], socks[i]
    recvs = [px.recv(s, bytearray(8), callback=drv.cb) for s in socks]
    drv.pump(0.05)
    assert not drv.order, f"recvs completed with no data sent: {drv.order[:3]}"
    for i in reversed(range(len(socks))):
        target = recvs[i]
        s = px.send(peer[socks[i]], i.to_bytes(4, "big"))
        drv.wait_for(s, target)
        assert [op for op in drv.order if op.callback is not None] == [target], (
            f"sending to socket #{i} completed {drv.order}")
        assert bytes(target.buf[:target.result]) == i.to_bytes(4, "big")
        drv.order.clear()
    drv.assert_once(recvs)


def test_busy_socket_does_not_starve_others(px):
    """One socket always has data (a chained 64 KiB send/recv stream on the first
    pair made, lowest descriptor/index); 200 other sockets get one message each
    while it runs: every one of them must complete while the busy one still runs."""
    drv = Driver(px)
    hot_a, hot_b = pair(px, drv=drv)
    cold = pairs(px, 200)
    state = {"running": True, "hot": 0}
    chunk = bytes(65536)

    def hot_send(op):
        if state["running"]:
            px.send(hot_a, chunk, callback=hot_send)

    def hot_recv(op):
        state["hot"] += 1
        if state["running"] and op.exception is None:
            px.recv(hot_b, bytearray(65536), callback=hot_recv)

    for _ in range(4):
        px.send(hot_a, chunk, callback=hot_send)
    px.recv(hot_b, bytearray(65536), callback=hot_recv)
    drv.wait_until(lambda: state["hot"] >= 50, what="the busy stream to get going")
    recvs = [px.recv(b, bytearray(8), callback=drv.cb) for _, b in cold]
    hot_at_start = state["hot"]
    for i, (a, _) in enumerate(cold):
        px.send(a, i.to_bytes(4, "big"), callback=drv.cb)
    drv.wait_until(lambda: all(drv.seen[r] for r in recvs), timeout=LIMIT,
                   what="every quiet socket to complete beside a busy one")
    assert state["hot"] > hot_at_start, "the busy socket stopped: nothing was competing"
    for i, r in enumerate(recvs):
        assert bytes(r.buf[:r.result]) == i.to_bytes(4, "big")
    state["running"] = False
    px.close(hot_a)
    px.close(hot_b)


def _cpu_during(fn):
    c0, t0 = time.process_time(), time.monotonic()
    fn()
    return time.process_time() - c0, time.monotonic() - t0


def test_idle_wait_does_not_spin(px):
    drv = Driver(px)
    cpu, wall = _cpu_during(lambda: px.wait(0.5))
    assert wall >= 0.5
    assert cpu < 0.05, f"an idle wait(0.5) used {cpu:.3f} s of CPU"
    # idle with ops pending (a recv with no data, a far timer): the same
    a, b = pair(px, drv=drv)
    px.recv(b, bytearray(10))
    px.sleep(60)
    cpu, wall = _cpu_during(lambda: px.wait(0.5))
    assert cpu < 0.05, f"wait(0.5) with idle ops pending used {cpu:.3f} s of CPU"


def test_posts_from_8_threads(px):
    """8 threads x 10,000 posts: exactly 80,000 completions, each value once, each
    thread's posts in the order it made them; the waiting thread wakes for them."""
    threads, per = 8, 10_000
    got = []
    start = threading.Barrier(threads + 1)

    def poster(t):
        start.wait()
        for i in range(per):
            px.post((t, i))

    workers = [threading.Thread(target=poster, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    start.wait()
    deadline = time.monotonic() + LIMIT * 3
    while len(got) < threads * per and time.monotonic() < deadline:
        got.extend(op.result for op in px.wait(1.0))
    for w in workers:
        w.join()
    got.extend(op.result for op in px.wait(0.1))  # nothing more may come
    assert len(got) == threads * per, f"{len(got)} completions for {threads * per} posts"
    assert len(set(got)) == threads * per
    for t in range(threads):
        mine = [i for (tt, i) in got if tt == t]
        assert mine == list(range(per)), f"thread {t}'s posts surfaced out of order"


def test_post_wakes_a_blocked_wait(px):
    timer = threading.Timer(0.2, lambda: px.post("hi"))
    t0 = time.monotonic()
    timer.start()
    ops = px.wait(LIMIT)
    timer.join()
    assert [op.result for op in ops] == ["hi"]
    assert time.monotonic() - t0 < LIMIT / 2, "the post did not wake the wait"


def test_post_racing_and_after_close(backend):
    """post() racing close(): each post either raises ProactorClosedError or has
    its callback run exactly once; after close every post raises."""
    px = Proactor(backend=backend)
    calls, raised = {}, []
    go = threading.Event()

    def poster():
        go.set()
        for i in range(5_000_000):  # until close() refuses (a bound only so a bug cannot hang)
            try:
                px.post(i, callback=lambda op: calls.__setitem__(op.result, calls.get(op.result, 0) + 1))
            except ProactorClosedError:
                raised.append(i)
                return

    t = threading.Thread(target=poster)
    t.start()
    go.wait()
    time.sleep(0.01)
    px.wait(0)
    px.close()
    t.join()
    assert raised, "post() after close() did not raise ProactorClosedError"
    first_refused = raised[0]
    assert sorted(calls) == list(range(first_refused)), "a post accepted before close was lost or surfaced twice"
    assert set(calls.values()) == {1}
    with pytest.raises(ProactorClosedError, match="closed Proactor"):
        px.post(1)


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs signal.pthread_kill")
@pytest.mark.parametrize("how", ["pthread_kill", "kill", "run"])
def test_ctrl_c_interrupts_blocked_wait(px, how):
    """SIGINT while wait()/run() is blocked: KeyboardInterrupt within ~1 s (bound
    generous for a loaded machine: expected is milliseconds); the Proactor stays
    usable and closes cleanly afterwards."""
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        old = signal.signal(signal.SIGINT, signal.default_int_handler)
    else:
        old = None
    main = threading.main_thread().ident
    assert threading.get_ident() == main, "signals are handled on the main thread only"

    def fire():
        if how == "kill":
            os.kill(os.getpid(), signal.SIGINT)
        else:
            signal.pthread_kill(main, signal.SIGINT)

    pending = px.sleep(60, callback=lambda op: None)
    timer = threading.Timer(0.2, fire)
    t0 = time.monotonic()
    try:
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            if how == "run":
                px.run()
            else:
                px.wait(30)
                px.wait(30)  # in case the first returned on a spurious wakeup
        elapsed = time.monotonic() - t0
    finally:
        timer.join()
        if old is not None:
            signal.signal(signal.SIGINT, old)
    assert elapsed < 1.2, f"KeyboardInterrupt took {elapsed:.2f} s"
    # still usable
    px.post("after")
    assert [op.result for op in px.wait(LIMIT)] == ["after"]
    assert px.cancel(pending) is True
    px.run()
    assert pending.cancelled
