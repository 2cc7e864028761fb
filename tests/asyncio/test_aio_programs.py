"""Whole asyncio programs on overlapio's loop: the streams echo program (100
connections x 1 MiB, random chunking) byte-exact on the stock loop and on every
backend, and Ctrl-C stopping ``overlapio.asyncio.run`` as it stops ``asyncio.run``."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest

import overlapio.asyncio as oa
from aio_support import loop_backends
from echo_streams import echo_run

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BACKENDS = loop_backends()
LOOPS = [pytest.param(None, id="stock")] + [
    pytest.param(spec, id=f"overlapio-{name}", marks=[pytest.mark.skip(reason=skip)] if skip else [])
    for name, spec, skip in BACKENDS
]


def _fds() -> "set[str] | None":
    try:
        return set(os.listdir("/proc/self/fd"))
    except OSError:
        return None


@pytest.mark.parametrize("spec", LOOPS)
def test_streams_echo_100_connections_1mib_random_chunks(spec):
    before = _fds()
    if spec is None:
        results = asyncio.run(echo_run(100, 1 << 20, seed=7))
    else:
        results = oa.run(echo_run(100, 1 << 20, seed=7), backend=spec)
    assert len(results) == 100
    assert [n for n, _ in results] == [1 << 20] * 100
    assert all(ok for _, ok in results), [i for i, (_, ok) in enumerate(results) if not ok]
    if before is not None:
        assert _fds() - before == set(), "descriptors left open"


def test_echo_program_runs_from_the_command_line():
    out = subprocess.run([sys.executable, os.path.join(HERE, "echo_streams.py"), "--connections", "5",
                          "--size", "100000"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "5 connections, 500000 bytes echoed, 0 mismatched" in out.stdout


CHILD = r'''
import asyncio, os, sys
sys.path[:0] = [{tests!r}, os.path.dirname({tests!r})]
import overlapio.asyncio as oa
from aio_support import loop_backends

spec = dict((n, s) for n, s, _ in loop_backends())[{backend!r}]
state = {{"cancelled": 0}}

async def guarded(coro_fn):
    try:
        await coro_fn()
    except asyncio.CancelledError:
        state["cancelled"] += 1
        raise

async def main():
    async def handle(r, w):
        await guarded(lambda: r.read())
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    asyncio.create_task(guarded(lambda: asyncio.sleep(3600)))
    asyncio.get_running_loop().call_later(0.2, lambda: print("ready", flush=True))
    await guarded(lambda: reader.read())

before = len(os.listdir("/proc/self/fd"))
try:
    if {plain!r}:  # no Runner: Python's own SIGINT handler raises inside the loop's wait
        loop = oa.EventLoop(spec)
        try:
            loop.run_until_complete(main())
        finally:
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.gather(*asyncio.all_tasks(loop), return_exceptions=True))
            loop.close()
    else:
        oa.run(main(), backend=spec)
except KeyboardInterrupt:
    after = len(os.listdir("/proc/self/fd"))
    print("KeyboardInterrupt", state["cancelled"], before, after, flush=True)
    sys.exit(0)
print("no KeyboardInterrupt", flush=True)
sys.exit(1)
'''


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd") or sys.platform == "win32",
                    reason="counts descriptors in /proc/self/fd and sends SIGINT")
@pytest.mark.parametrize("plain", [False, True], ids=["run", "run_until_complete"])
@pytest.mark.parametrize("name,spec,skip", BACKENDS, ids=[b[0] for b in BACKENDS])
def test_ctrl_c_stops_run_like_asyncio_run(name, spec, skip, plain):
    """Through overlapio.asyncio.run (asyncio's Runner cancels the main task), and
    with a bare run_until_complete (Python's handler raises KeyboardInterrupt out
    of the loop's wait)."""
    if skip:
        pytest.skip(skip)
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(tests=HERE, backend=name, plain=plain)], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        time.sleep(0.1)
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 0, (out, err)
    word, cancelled, before, after = out.split()
    assert word == "KeyboardInterrupt"
    # main's read, the sleeping task and the server's handler were all cancelled ...
    assert int(cancelled) == 3, out
    # ... and every socket (listener, both ends, the loop's own) is closed again.
    assert int(after) == int(before), out
    assert took < 5, took
