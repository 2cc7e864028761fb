"""Name resolution as an op, and connect by host name (docs/semantics.md,
"resolve"). Lookups of made-up names are scripted (socket.getaddrinfo is
patched for them only), so nothing here depends on the network's DNS."""
from __future__ import annotations

import socket
import threading

import pytest

from . import checks
from .harness import Driver, recv_exactly

_real_getaddrinfo = socket.getaddrinfo


@pytest.fixture
def names(monkeypatch):
    """``names[host] = [sockaddr, ...]`` scripts a lookup (an exception instance
    fails it); ``names.gate`` blocks scripted lookups until set; ``names.threads``
    records the thread of each lookup."""
    class Names(dict):
        gate = threading.Event()
        threads: list = []

    table = Names()
    table.gate.set()

    def fake(host, port, family=0, type=0, proto=0, flags=0):
        if host not in table:
            return _real_getaddrinfo(host, port, family, type, proto, flags)
        table.threads.append(threading.current_thread())
        table.gate.wait(10)
        answer = table[host]
        if isinstance(answer, BaseException):
            raise answer
        return [(socket.AF_INET6 if len(a) == 4 else socket.AF_INET, socket.SOCK_STREAM, 6, "", a)
                for a in answer if not family or family == (socket.AF_INET6 if len(a) == 4 else socket.AF_INET)]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return table


def test_resolve_does_not_block_the_loop(backend):
    checks.check_resolve_does_not_block(backend)


def test_connect_by_name_goes_on_after_a_refusal(backend):
    checks.check_connect_by_name_tries_in_order(backend)


def test_resolve_runs_off_the_loop_and_completes_through_post(px, names):
    drv = Driver(px)
    names["svc.example"] = [("127.0.0.1", 4242)]
    names.gate.clear()
    r = px.resolve("svc.example", 4242, callback=drv.cb)
    t = px.sleep(0.01, callback=drv.cb)
    drv.wait_for(t)  # the loop runs while the lookup blocks
    assert not r.done and drv.seen[r] == 0
    names.gate.set()
    drv.wait_for(r)
    assert r.result == [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 4242))]
    assert names.threads and names.threads[0] is not threading.current_thread()
    real = px.resolve("127.0.0.1", 80, type=socket.SOCK_STREAM)
    drv.wait_for(real)
    assert real.result[0][4] == ("127.0.0.1", 80)


def test_resolve_failure_cancel_timeout_and_close(backend, names):
    names["missing.example"] = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    names["slow.example"] = [("127.0.0.1", 1)]
    with checks.open_proactor(backend) as px:
        drv = Driver(px)
        failed = px.resolve("missing.example", 80)
        drv.wait_for(failed)
        assert isinstance(failed.exception, socket.gaierror), failed
        names.gate.clear()
        cancelled = px.resolve("slow.example", 80, callback=drv.cb)
        assert px.cancel(cancelled) is True and drv.seen[cancelled] == 0
        timed = px.resolve("slow.example", 80, callback=drv.cb, timeout=0.05)
        drv.wait_for(cancelled, timed)
        assert cancelled.cancelled
        assert type(timed.exception) is TimeoutError, timed
        names.gate.set()
        drv.pump(0.1)  # the dropped answers arrive now: nothing surfaces twice
        drv.assert_once([cancelled, timed])
        names.gate.clear()
        at_close = px.resolve("slow.example", 80, callback=drv.cb)
    names.gate.set()
    assert at_close.cancelled and drv.seen[at_close] == 1


def test_connect_by_name_tries_the_addresses_in_order(px, names):
    drv = Driver(px)
    listener = px.listen(("127.0.0.1", 0))
    holder, refused = checks.refused_address(px)
    good = listener.getsockname()
    names["two.example"] = [refused, good]
    acc = px.accept(listener)
    con = px.connect(("two.example", good[1]), timeout=10)
    drv.wait_for(acc, con)
    conn = con.result
    assert conn.getpeername() == good, "connect by name did not go on to the second address"
    drv.wait_for(px.send(conn, b"hi"))
    assert recv_exactly(px, acc.result[0], 2, drv) == b"hi"
    names["none.example"] = [refused]
    failed = px.connect(("none.example", refused[1]))
    drv.wait_for(failed)
    assert isinstance(failed.exception, ConnectionRefusedError), failed
    names["bad.example"] = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    unknown = px.connect(("bad.example", 80))
    drv.wait_for(unknown)
    assert isinstance(unknown.exception, socket.gaierror), unknown
    holder.close()


def test_connect_by_name_cancelled_during_the_lookup(px, names):
    drv = Driver(px)
    names["wait.example"] = [("127.0.0.1", 9)]
    names.gate.clear()
    con = px.connect(("wait.example", 9), callback=drv.cb)
    timed = px.connect(("wait.example", 9), callback=drv.cb, timeout=0.05)
    assert px.cancel(con) is True
    drv.wait_for(con, timed)
    names.gate.set()
    drv.pump(0.1)
    drv.assert_once([con, timed])
    assert con.cancelled and type(timed.exception) is TimeoutError, (con, timed)


def test_resolve_refuses_bad_arguments(px):
    drv = Driver(px)
    for call, exc in [(lambda: px.resolve(123, 80), TypeError), (lambda: px.resolve("x", 70000), ValueError),
                      (lambda: px.resolve("x", 1.5), TypeError), (lambda: px.resolve("x", 80, "inet"), TypeError),
                      (lambda: px.resolve("x", 80, callback=3), TypeError),
                      (lambda: px.connect(("x.example", "80")), ValueError)]:
        with pytest.raises(exc):
            call()
    assert px.pending == 0
    r = px.resolve("127.0.0.1", None)
    drv.wait_for(r)
    assert r.result
