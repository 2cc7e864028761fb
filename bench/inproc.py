"""In-process workloads: the cost of an event loop's core, without sockets.

Run by the harness as its own process, one (workload, contestant) per process:
    python -m bench.inproc WORKLOAD CONTESTANT --n N
and prints one JSON line; or "UNAVAILABLE <reason>" (exit 3) when the contestant's
library is missing, or "NOT_APPLICABLE <reason>" (exit 4) when it has no equivalent.

Workloads (all counts are `--n`):
  timers  libuv's million_timers: schedule N one-shot timeouts, the i-th due after
          1 + i // 1000 ms (so 1,000 distinct deadlines for N = 1,000,000), then run
          until all fired. Reports init (scheduling) and dispatch seconds; rate is
          N / total. The last deadline puts a floor of N/1000 ms on total.
          overlapio: px.sleep(d, callback); asyncio/uvloop: loop.call_later.
          trio: not applicable (no callback timers; a task per timer measures tasks).
  post    libuv's million_async: another thread posts N completions one by one; the
          loop thread runs a callback for each. Rate = N / (time from the producer's
          start until the N-th callback). overlapio: px.post(i, callback) from the
          thread; asyncio/uvloop: call_soon_threadsafe; trio: TrioToken.run_sync_soon.
  opcost  submit and complete one trivial op, N times in a chain (each completion's
          callback submits the next), so every op goes through the whole
          submit -> complete -> dispatch path. overlapio: px.post from the loop thread;
          asyncio/uvloop: a Future with a done-callback, resolved at once; trio:
          trio.lowlevel.checkpoint() (one trip through the scheduler).

Contestants: overlapio-<backend>, asyncio, uvloop, trio.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import threading
import time

EXIT_UNAVAILABLE = 3
EXIT_NOT_APPLICABLE = 4

WORKLOADS = ("timers", "post", "opcost")
CONTESTANTS = ("asyncio", "uvloop", "trio")  # plus overlapio-<backend>


def _now():
    """(wall, process CPU) at one instant: both are taken around the measured part only,
    so loop creation and imports are outside ops/s and CPU per op."""
    return time.perf_counter(), time.process_time()


class Unavailable(Exception):
    pass


class NotApplicable(Exception):
    pass


# ---------------------------------------------------------------- overlapio
def _proactor(backend):
    try:
        import overlapio
        return overlapio.Proactor(backend=backend)
    except Exception as e:
        raise Unavailable(f"overlapio.Proactor(backend={backend!r}): {type(e).__name__}: {e}")


def ov_timers(backend, n):
    px = _proactor(backend)
    count = 0

    def cb(op):
        nonlocal count
        count += 1

    t0 = _now()
    timeout = 0
    sleep = px.sleep
    for i in range(n):
        if i % 1000 == 0:
            timeout += 1
        sleep(timeout / 1000.0, callback=cb)
    t1 = _now()
    px.run()
    t2 = _now()
    px.close()
    assert count == n, f"{count} of {n} timers fired"
    return t0, t1, t2


def ov_post(backend, n):
    px = _proactor(backend)
    count = 0
    keep = None

    def noop(op):
        pass

    def cb(op):
        nonlocal count
        count += 1
        if count == n:
            px.cancel(keep)  # let run() return...
            px.stop()        # ...or stop it outright

    keep = px.sleep(3600.0, callback=noop)  # keeps run() alive until the last post

    def producer():
        post = px.post
        for i in range(n):
            post(i, callback=cb)

    th = threading.Thread(target=producer)
    t0 = _now()
    th.start()
    px.run()
    t2 = _now()
    th.join()
    px.close()
    assert count == n, f"{count} of {n} posts completed"
    return t0, t0, t2


def ov_opcost(backend, n):
    px = _proactor(backend)
    count = 0
    post = px.post

    def cb(op):
        nonlocal count
        count += 1
        if count < n:
            post(None, callback=cb)

    t0 = _now()
    post(None, callback=cb)
    px.run()
    t2 = _now()
    px.close()
    assert count == n, f"{count} of {n} ops completed"
    return t0, t0, t2


# ---------------------------------------------------------------- asyncio / uvloop
def _loop(name):
    import asyncio
    if name == "uvloop":
        try:
            import uvloop
        except ImportError as e:
            raise Unavailable(f"uvloop not installed ({e})")
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def aio_timers(name, n):
    loop = _loop(name)
    done = loop.create_future()
    count = 0

    def cb():
        nonlocal count
        count += 1
        if count == n:
            done.set_result(None)

    t0 = _now()
    timeout = 0
    call_later = loop.call_later
    for i in range(n):
        if i % 1000 == 0:
            timeout += 1
        call_later(timeout / 1000.0, cb)
    t1 = _now()
    loop.run_until_complete(done)
    t2 = _now()
    loop.close()
    return t0, t1, t2


def aio_post(name, n):
    loop = _loop(name)
    done = loop.create_future()
    count = 0

    def cb():
        nonlocal count
        count += 1
        if count == n:
            done.set_result(None)

    def producer():
        cst = loop.call_soon_threadsafe
        for _ in range(n):
            cst(cb)

    th = threading.Thread(target=producer)
    t0 = _now()
    th.start()
    loop.run_until_complete(done)
    t2 = _now()
    th.join()
    loop.close()
    return t0, t0, t2


def aio_opcost(name, n):
    loop = _loop(name)
    done = loop.create_future()
    count = 0
    create_future = loop.create_future

    def cb(fut):
        nonlocal count
        count += 1
        if count < n:
            f = create_future()
            f.add_done_callback(cb)
            f.set_result(None)
        else:
            done.set_result(None)

    t0 = _now()
    f = create_future()
    f.add_done_callback(cb)
    f.set_result(None)
    loop.run_until_complete(done)
    t2 = _now()
    loop.close()
    return t0, t0, t2


# ---------------------------------------------------------------- trio
def _trio():
    try:
        import trio
        return trio
    except ImportError as e:
        raise Unavailable(f"trio not installed ({e})")


def trio_timers(n):
    _trio()
    raise NotApplicable("trio has no callback timers; a task per timer would measure task spawning")


def trio_post(n):
    trio = _trio()
    times = {}

    async def main():
        token = trio.lowlevel.current_trio_token()
        ev = trio.Event()
        count = 0

        def cb():
            nonlocal count
            count += 1
            if count == n:
                ev.set()

        def producer():
            rss = token.run_sync_soon
            for _ in range(n):
                rss(cb)

        th = threading.Thread(target=producer)
        times["t0"] = _now()
        th.start()
        await ev.wait()
        times["t2"] = _now()
        th.join()

    trio.run(main)
    return times["t0"], times["t0"], times["t2"]


def trio_opcost(n):
    trio = _trio()
    times = {}

    async def main():
        checkpoint = trio.lowlevel.checkpoint
        times["t0"] = _now()
        for _ in range(n):
            await checkpoint()
        times["t2"] = _now()

    trio.run(main)
    return times["t0"], times["t0"], times["t2"]


def run(workload: str, contestant: str, n: int) -> dict:
    if workload not in WORKLOADS:
        raise ValueError(f"unknown workload {workload!r}")
    if contestant.startswith("overlapio-"):
        fn = {"timers": ov_timers, "post": ov_post, "opcost": ov_opcost}[workload]
        args = (contestant[len("overlapio-"):], n)
    elif contestant in ("asyncio", "uvloop"):
        fn = {"timers": aio_timers, "post": aio_post, "opcost": aio_opcost}[workload]
        args = (contestant, n)
    elif contestant == "trio":
        fn = {"timers": trio_timers, "post": trio_post, "opcost": trio_opcost}[workload]
        args = (n,)
    else:
        raise ValueError(f"unknown contestant {contestant!r}")
    t0, t1, t2 = fn(*args)
    total = t2[0] - t0[0]
    cpu = t2[1] - t0[1]  # process-wide: includes the producer thread of "post"
    return {
        "workload": workload, "contestant": contestant, "n": n,
        "total_s": total, "init_s": t1[0] - t0[0], "dispatch_s": t2[0] - t1[0],
        "ops_per_s": n / total if total > 0 else None,
        "cpu_s": cpu,
        "cpu_per_op_us": cpu / n * 1e6,
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.inproc", description=__doc__.splitlines()[0])
    p.add_argument("workload", choices=WORKLOADS)
    p.add_argument("contestant")
    p.add_argument("--n", type=int, default=1_000_000)
    a = p.parse_args(argv)
    try:
        res = run(a.workload, a.contestant, a.n)
    except Unavailable as e:
        print(f"UNAVAILABLE {e}", flush=True)
        return EXIT_UNAVAILABLE
    except NotApplicable as e:
        print(f"NOT_APPLICABLE {e}", flush=True)
        return EXIT_NOT_APPLICABLE
    print(json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
