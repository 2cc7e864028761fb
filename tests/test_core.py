"""Core behaviour that is not backend-specific: registry, dispatch, close."""
from __future__ import annotations

import os
import socket
import sys
import textwrap
import time

import pytest

import overlapio
from overlapio.core import registry

needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_default_backend_follows_platform_and_env():
    assert registry.default_backend({}) == ("winsock" if sys.platform == "win32" else "posix")
    assert registry.default_backend({"OVERLAPIO_BACKEND": "mine"}) == "mine"


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(overlapio.UnknownBackendError, match="unknown backend 'nope'; known: posix, winsock"):
        overlapio.Proactor("nope")


def test_env_var_selects_backend(monkeypatch):
    monkeypatch.setenv("OVERLAPIO_BACKEND", "nope")
    with pytest.raises(overlapio.UnknownBackendError):
        overlapio.Proactor()


def test_third_party_backend_through_entry_point(tmp_path, monkeypatch):
    # A package installed beside us that registers a backend in our entry-point group.
    (tmp_path / "thirdparty_io.py").write_text(textwrap.dedent("""
        from overlapio import default_backend, load_backend

        Base = load_backend(default_backend({}))  # this platform's built-in backend

        class Backend(Base):
            name = "thirdparty"

        class Broken(Base):
            name = "broken"

            @classmethod
            def unavailable_reason(cls):
                return "needs a flux capacitor"
    """))
    dist = tmp_path / "thirdparty_io-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-io\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[overlapio.backends]\nthirdparty = thirdparty_io:Backend\nbroken = thirdparty_io:Broken\n"
        "missing = no_such_module:X\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    names = overlapio.backend_names()
    assert names[:2] == ["posix", "winsock"] and {"thirdparty", "broken", "missing"} <= set(names)
    table = overlapio.available_backends()
    assert table["thirdparty"] == (True, "")
    assert table["broken"] == (False, "needs a flux capacitor")
    assert not table["missing"][0] and "no_such_module" in table["missing"][1]
    with overlapio.Proactor("thirdparty") as px:
        assert px.backend_name == "thirdparty"
        assert [op.result for op in px.wait(px.post(7) and 1)] == [7]
    with pytest.raises(overlapio.BackendUnavailable, match="flux capacitor"):
        overlapio.Proactor("broken")


@needs_proc
def test_close_completes_every_pending_op_once_and_leaks_no_fd():
    before = _fds()
    seen: list[overlapio.Op] = []
    px = overlapio.Proactor()
    listener = px.listen(("127.0.0.1", 0))
    ops = [px.accept(listener, callback=seen.append)]
    a = px.connect(listener.getsockname(), callback=seen.append)
    while not (a.done and ops[0].done):
        px.wait(5)
    client = a.result
    server, _ = ops[0].result
    ops = [
        px.recv(client, bytearray(10), callback=seen.append),
        px.recv(server, bytearray(10)),  # pull-style: no callback
        px.send(client, b"x" * (32 * 1024 * 1024), callback=seen.append),  # more than the kernel takes
        px.sleep(60, callback=seen.append),
        px.accept(listener, callback=seen.append),
    ]
    seen.clear()
    assert px.pending == 5
    px.close()
    assert all(op.cancelled for op in ops)
    assert sorted(map(id, seen)) == sorted(id(op) for op in ops if op.callback)  # each callback ran once
    assert ops[2].nbytes > 0  # part of the send went out before the close: nbytes says how much
    assert px.pending == 0
    for s in (listener, client, server):
        assert s.fileno() == -1
    assert _fds() == before
    px.close()  # idempotent
    with pytest.raises(overlapio.ProactorClosedError, match="closed Proactor"):
        px.sleep(1)


def test_callback_errors_propagate_and_keep_later_completions():
    with overlapio.Proactor() as px:
        def boom(op):
            raise ValueError("boom")
        seen = []
        first = px.post(0)  # no callback: wait() returns it
        px.post(1, callback=boom)
        px.post(2, callback=seen.append)
        with pytest.raises(ValueError, match="boom"):
            px.wait(1)
        assert seen == []  # not lost: dispatched by the next call
        assert px.wait(1) == [first]  # nor the op collected before the error
        assert [op.result for op in seen] == [2]
        assert first._inflight is None  # returned: only now may it be resubmitted


def test_an_op_wait_will_return_is_not_surfaced_while_a_callback_of_the_same_batch_runs():
    # One wait hands over a recv without a callback, then runs a post's callback:
    # until wait() returns the recv, it may not be resubmitted.
    with overlapio.Proactor() as px:
        a, b = socket.socketpair()
        a.setblocking(False)
        try:
            b.send(b"x")
            recv = px.recv(a, bytearray(4))
            seen = []

            def check(_):
                with pytest.raises(RuntimeError, match="not surfaced yet"):
                    px.resubmit(recv)
                seen.append(recv.done)

            px.post(None, check)
            assert px.wait(1) == [recv] and seen == [True]
            assert recv._inflight is None and recv.result == 1
        finally:
            a.close()
            b.close()


def test_run_hands_over_ops_without_callback_even_when_a_callback_raises():
    # run() drops ops without a callback (nobody to return them to); one collected in
    # the same round as a callback that raises has still surfaced, so it may be
    # resubmitted (a post may not: that is the error expected here, not "not surfaced").
    with overlapio.Proactor() as px:
        def boom(op):
            raise ValueError("boom")
        first = px.post(0)
        px.post(1, callback=boom)
        with pytest.raises(ValueError, match="boom"):
            px.run()
        with pytest.raises(ValueError, match="accept, recv, send or readable"):
            px.resubmit(first)


def test_close_runs_callbacks_that_read_cancelled_results():
    px = overlapio.Proactor()
    calls = []

    def strict(op):
        calls.append(op)
        op.result  # raises OperationCancelled: must not abort the close

    px.sleep(10, callback=strict)
    px.sleep(10, callback=strict)
    px.close()
    assert len(calls) == 2 and px.closed


def test_close_reraises_a_real_callback_error_after_closing_everything():
    px = overlapio.Proactor()
    listener = px.listen(("127.0.0.1", 0))

    def broken(op):
        raise KeyError("bug in user code")

    px.sleep(10, callback=broken)
    with pytest.raises(KeyError):
        px.close()
    assert px.closed and listener.fileno() == -1


def test_instant_completions_do_not_starve_io():
    # A callback that always submits an op completing at once (zero-length recv)
    # must still let the timer below complete: a dispatch hands over at most
    # _PASSES times the ops that were ready when it began, then the loop polls.
    with overlapio.Proactor() as px:
        a, b = socket.socketpair()
        fired = []
        rounds = [0]

        def again(op):
            rounds[0] += 1
            if not fired:
                px.recv(a, bytearray(0), callback=again)

        px.recv(a, bytearray(0), callback=again)
        px.sleep(0.05, callback=fired.append)
        px.run()
        assert fired and rounds[0] > 1
        a.close(), b.close()


def test_op_repr_and_states():
    with overlapio.Proactor() as px:
        op = px.post("v", tag="t")
        with pytest.raises(RuntimeError, match="still pending"):
            op.exception
        px.wait(1)
        assert op.done and not op.cancelled and op.exception is None
        assert repr(op) == "<Op POST tag='t' result='v'>"
        s = px.sleep(10)
        assert px.cancel(s) is True and px.cancel(s) is False
        assert "error=OperationCancelled" in repr(s)


def test_close_argument_is_checked():
    with overlapio.Proactor() as px:
        with pytest.raises(TypeError, match="close\\(\\) takes a socket"):
            px.close(None)
        assert not px.closed


def test_every_public_name_is_documented():
    import inspect

    missing = []
    for name in overlapio.__all__:
        obj = getattr(overlapio, name)
        if not (callable(obj) or inspect.isclass(obj)):
            continue
        if not inspect.getdoc(obj):
            missing.append(name)
        if inspect.isclass(obj):
            for attr, value in vars(obj).items():
                if attr.startswith("_"):
                    continue
                func = value.__func__ if isinstance(value, (classmethod, staticmethod)) else value
                if (callable(func) or isinstance(func, property)) and not func.__doc__:
                    missing.append(f"{name}.{attr}")
    assert missing == []


def test_strided_buffers_are_refused_at_once():
    with overlapio.Proactor() as px:
        a, b = socket.socketpair()
        strided = memoryview(bytearray(64))[::2]
        with pytest.raises(TypeError, match="contiguous"):
            px.recv(a, strided)
        with pytest.raises(TypeError, match="contiguous"):
            px.send(a, memoryview(b"abcdef")[::2])
        assert px.pending == 0
        op = px.send(a, b"ok")  # still usable
        px.wait(1)
        assert op.result == 2
        a.close(), b.close()


@pytest.mark.skipif(not hasattr(__import__("signal"), "setitimer"), reason="needs setitimer")
def test_post_from_a_signal_handler_wakes_the_wait():
    import signal

    with overlapio.Proactor() as px:
        old = signal.signal(signal.SIGALRM, lambda *a: px.post("from the handler"))
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.1)
            t0 = time.monotonic()
            ops = px.wait(5)
            assert [op.result for op in ops] == ["from the handler"]
            assert time.monotonic() - t0 < 2
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)


def test_close_from_a_callback_mid_dispatch():
    px = overlapio.Proactor()
    seen = []

    def closer(op):
        seen.append(op.tag)
        px.close()

    px.post(1, tag="a", callback=closer)
    px.post(2, tag="b", callback=lambda op: seen.append(op.tag))
    px.wait(1)  # must not raise IndexError from the emptied queue
    assert px.closed and seen == ["a", "b"]


def test_very_long_timers_do_not_break_waiting():
    with overlapio.Proactor() as px:
        long = px.sleep(float("inf"))
        later = px.sleep(40 * 86400)
        assert px.wait(0.01) == []  # no OverflowError from the OS wait
        assert not long.done and not later.done


def test_connect_without_a_socket_to_spare_completes_with_the_error(monkeypatch):
    import errno

    with overlapio.Proactor() as px:
        def no_fds(*args):
            raise OSError(errno.EMFILE, "Too many open files")

        monkeypatch.setattr(px._backend, "socket", no_fds)
        op = px.connect(("127.0.0.1", 9))
        (done,) = px.wait(1)
        assert done is op and isinstance(op.exception, OSError) and op.exception.errno == errno.EMFILE


def test_stop_before_run_makes_run_return():
    with overlapio.Proactor() as px:
        px.sleep(30)
        px.stop()
        t0 = time.monotonic()
        px.run()
        assert time.monotonic() - t0 < 1
        assert px.pending == 1


@pytest.mark.skipif(sys.platform == "win32", reason="SO_REUSEADDR is left off on Windows")
def test_listen_sets_reuse_address_on_posix():
    with overlapio.Proactor() as px:
        s = px.listen(("127.0.0.1", 0))
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        assert not px.listen(("127.0.0.1", 0), reuse_address=False).getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)


def test_callback_and_tag_by_position():
    with overlapio.Proactor() as px:
        a, b = socket.socketpair()
        got = []
        op = px.recv(b, bytearray(4), got.append, "t")
        sent = px.send(a, b"ping", got.append)
        assert px.pending == 1 + (not sent.done)
        while len(got) < 2:
            px.wait(1.0)
        assert got == [sent, op] and op.tag == "t" and op.result == 4 and px.pending == 0
        a.close(), b.close()


def test_a_callback_that_is_not_callable_is_refused_at_once():
    with overlapio.Proactor() as px:
        a, b = socket.socketpair()
        for submit in (lambda: px.recv(b, bytearray(1), "tag"), lambda: px.send(a, b"x", 1),
                       lambda: px.sleep(1, "tag"), lambda: px.post(None, "tag"),
                       lambda: px.connect(("127.0.0.1", 9), a)):
            with pytest.raises(TypeError, match="callback must be callable"):
                submit()
        assert px.pending == 0
        a.close(), b.close()


def test_pending_inside_a_callback_counts_only_what_is_still_pending():
    with overlapio.Proactor() as px:
        seen = []
        px.sleep(0, lambda op: seen.append(px.pending))
        px.sleep(0, lambda op: seen.append(px.pending))
        px.sleep(10)
        px.wait(1.0)
        assert seen == [1, 1]


def test_first_send_on_a_blocking_socket_does_not_block_the_loop():
    # A socket the Proactor has never seen may be blocking; a large send must
    # still return at once and complete as the peer reads.
    with overlapio.Proactor() as px:
        a, b = socket.socketpair()  # blocking
        data = b"x" * (8 << 20)
        sent = px.send(a, data)
        got = 0
        buf = bytearray(1 << 20)
        while got < len(data):
            op = px.recv(b, buf)
            while not op.done:
                px.wait(1.0)
            got += op.result
        while not sent.done:
            px.wait(1.0)
        assert sent.result == len(data)
        a.close(), b.close()


def test_resubmit_resets_every_field_a_new_op_starts_with():
    # resubmit() resets an op's completion fields inline, as recv() sets them for a
    # new op: after an error completion, each must be back at its fresh value.
    from overlapio.core.op import Op, OpKind

    kept = {"kind", "sock", "buf", "tag", "callback", "__weakref__"}
    seen = []
    with overlapio.Proactor() as px:
        a, b = socket.socketpair()
        a.sendall(b"data")
        got = px.recv(b, bytearray(4), seen.append, "t")  # ends with a value
        cancelled = px.recv(b, bytearray(4), seen.append, "t")  # ends with an error
        px.cancel(cancelled)
        sent = px.send(a, b"xy", seen.append, "t")
        while len(seen) < 3:
            px.wait(1)
        assert got.nbytes == 4 and cancelled.cancelled and sent.nbytes == 2
        px.send(a, bytes(16 << 20))  # stays pending: the resubmitted send queues behind it
        for op in (got, cancelled, sent):
            px.resubmit(op)
            fresh = Op(op.kind, op.sock, op.buf, op.tag, op.callback)
            fresh._inflight = px  # (what a submission sets besides __init__'s fields)
            fresh._view = op.buf if op.kind is OpKind.SEND else None
            for name in set(Op.__slots__) - kept - {"_bk"}:  # (_bk: the backend's, once submitted)
                assert getattr(op, name) == getattr(fresh, name), f"resubmit left {name} = {getattr(op, name)!r}"
        px.close(a), px.close(b)


def test_cancelled_timers_do_not_pile_up_in_the_heap():
    # A timeout guarding each op, cancelled when the op wins: 10,000 cancelled 60 s
    # sleeps must not stay queued until their deadlines. The live timers still fire,
    # in deadline order, and every cancelled one surfaces once.
    seen = []
    with overlapio.Proactor() as px:
        live = [px.sleep(0.02, seen.append, "b"), px.sleep(0.01, seen.append, "a")]
        for _ in range(10_000):
            px.cancel(px.sleep(60, seen.append))
        assert len(px._timers) < 300, f"{len(px._timers)} heap entries for 2 live timers"
        while len(seen) < 10_002:
            px.wait(1)
        assert [op.tag for op in seen if not op.cancelled] == ["a", "b"]
        assert sum(op.cancelled for op in seen) == 10_000 and len(set(map(id, seen))) == 10_002
        assert all(op.done and not op.cancelled for op in live)


def test_inline_ops_set_every_field():
    # recv() and send() build their Op inline, not with Op(...): each must still set
    # every slot, or reading a field of a fresh op raises AttributeError.
    from overlapio.core.op import Op

    with overlapio.Proactor() as px:
        a, b = socket.socketpair()
        for op in (px.recv(b, bytearray(1)), px.send(a, b"x")):
            missing = [name for name in Op.__slots__ if name != "__weakref__" and not hasattr(op, name)]
            assert not missing, f"{op.kind.name} op lacks {missing}"
        a.close(), b.close()


def _platform_backend():
    return registry.load_backend(registry.default_backend({}))


def test_closed_socket_checks_of_the_per_message_paths():
    # recv(), send() and resubmit() test the socket's own closed flag first (cheap),
    # then fileno(): a detached socket is refused as closed, while one closed with a
    # makefile() file still open keeps its descriptor and still works.
    with overlapio.Proactor() as px:
        a, b = socket.socketpair()
        done = px.recv(b, bytearray(1))
        a.send(b"x")
        while not px.wait(1):
            pass
        spare = socket.socket()
        socket.close(spare.detach())
        for submit in (lambda: px.recv(spare, bytearray(1)), lambda: px.send(spare, b"x")):
            with pytest.raises(ValueError, match="socket is closed"):
                submit()
        file = b.makefile("rb")
        b.close()  # the descriptor stays open while the file uses it
        got = px.recv(b, bytearray(2))
        sent = px.send(a, b"yz")
        while not (got.done and sent.done):
            px.wait(1)
        assert got.result == 2 and sent.result == 2
        file.close()  # now the descriptor closes
        with pytest.raises(ValueError, match="socket is closed"):
            px.resubmit(done)
        fd = a.detach()
        with pytest.raises(ValueError, match="socket is closed"):
            px.send(a, b"x")
        socket.close(fd)  # (a SOCKET handle on Windows, not a C runtime descriptor)
        assert px.pending == 0


def test_backend_gets_the_ready_queue_in_its_constructor():
    seen = {}

    class Spy(_platform_backend()):
        def __init__(self, complete, ready):
            seen["ready"] = ready
            super().__init__(complete, ready)

    with overlapio.Proactor(backend=Spy) as px:
        assert seen["ready"] is px._ready and px._backend._ready is px._ready


def test_backend_with_the_one_argument_constructor_still_works():
    # Written to the earlier contract: __init__(self, complete). Its fast-path
    # completions must still reach the Proactor's queue.
    class Legacy(_platform_backend()):
        def __init__(self, complete):
            super().__init__(complete)

    with pytest.warns(DeprecationWarning, match=r"\(complete, ready\)"):
        px = overlapio.Proactor(backend=Legacy)
    with px:
        a, b = socket.socketpair()
        buf = bytearray(5)
        ops = [px.send(a, b"hello"), px.recv(b, buf)]
        deadline = time.monotonic() + 5
        while not all(op.done for op in ops) and time.monotonic() < deadline:
            px.wait(0.5)
        assert [op.result for op in ops] == [5, 5] and buf == b"hello"
        px.close(a), px.close(b)


def test_try_send_hands_the_backend_checked_data_only():
    # The core checks try_send's data before the backend sees it: never a str, an
    # array (it gets a byte view of it) or a strided view.
    import array
    got = []

    class Spy(_platform_backend()):
        def try_send(self, sock, data):
            got.append(data)
            return super().try_send(sock, data)

    with overlapio.Proactor(backend=Spy) as px:
        a, b = socket.socketpair()
        assert px.try_send(a, array.array("i", [1, 2])) == 8
        with pytest.raises(TypeError, match="send needs a bytes-like object, not str"):
            px.try_send(a, "text")
        with pytest.raises(TypeError, match="contiguous"):
            px.try_send(a, memoryview(b"abcdef")[::2])
        assert px.try_send(a, array.array("i")) == 0  # empty: never reaches the backend
        assert len(got) == 1 and type(got[0]) is memoryview and got[0].format == "B" and got[0].nbytes == 8
        px.close(a), px.close(b)


def test_timeouts_of_ops_that_finish_first_do_not_pile_up():
    # A timeout on every recv of a busy connection: each op finishes first, and
    # the timer heap may not keep its entry until the 60 s deadline (nor the op
    # and its buffer).
    with overlapio.Proactor() as px:
        a, b = socket.socketpair()
        idle = socket.socketpair()
        live = px.recv(idle[1], bytearray(1), timeout=30)  # the heap's front stays a live entry
        buf = bytearray(1)
        for i in range(5_000):
            a.send(b"x")
            op = px.recv(b, buf, timeout=60)
            while not op.done:
                px.wait(1)
            if i % 2:
                px.resubmit(op, timeout=60)
                a.send(b"y")
                while not op.done:
                    px.wait(1)
        assert len(px._timers) < 300, f"{len(px._timers)} heap entries for one live timer"
        assert not live.done
        px.close(a), px.close(b), px.close(idle[0]), px.close(idle[1])


def _wait_all(px, *ops):
    deadline = time.monotonic() + 5
    while not all(op.done and op._inflight is None for op in ops):
        assert time.monotonic() < deadline, f"not surfaced: {ops}"
        px.wait(0.2)


def test_trace_reports_each_op_submitted_completed_surfaced():
    import re
    lines = []
    with overlapio.Proactor(trace=lines.append) as px:
        name = px.backend_name
        a, b = socket.socketpair()
        r = px.recv(b, bytearray(10), lambda op: None, "in")
        s = px.send(a, b"hello")  # (completes inside the call on most backends)
        _wait_all(px, r, s)
        t = px.recv(b, bytearray(10), timeout=0.01)
        _wait_all(px, t)
        fa, fb = a.fileno(), b.fileno()
        px.close(a), px.close(b)
    ms = r"ms=\d+\.\d{3}"
    expected = {
        1: [rf"submitted #1 recv fd={fb} tag='in' size=10",
            rf"completed #1 recv fd={fb} tag='in' {ms} bytes=5",
            rf"surfaced  #1 recv fd={fb} tag='in' {ms} via=callback bytes=5"],
        2: [rf"submitted #2 send fd={fa} size=5",
            rf"completed #2 send fd={fa} {ms} bytes=5",
            rf"surfaced  #2 send fd={fa} {ms} via=wait bytes=5"],
        3: [rf"submitted #3 recv fd={fb} size=10",
            rf"timeout   #3 recv fd={fb} {ms}",
            rf"completed #3 recv fd={fb} {ms} error=TimeoutError: .*recv on fd {fb} timed out after 0.01 s",
            rf"surfaced  #3 recv fd={fb} {ms} via=wait error=TimeoutError: .*"],
    }
    for number, patterns in expected.items():
        mine = [line for line in lines if f" #{number} " in line]
        assert len(mine) == len(patterns), (number, lines)
        for line, pattern in zip(mine, patterns):
            assert re.fullmatch(rf"overlapio\[{re.escape(name)}\] {pattern}", line), (line, pattern)
    assert len(lines) == sum(map(len, expected.values())), lines


def test_trace_off_installs_nothing():
    # Zero cost when off: the class's own methods and a plain deque, nothing that
    # asks per op whether tracing is on.
    from collections import deque
    from overlapio.core.trace import SUBMITTERS

    with overlapio.Proactor() as px:
        assert type(px._ready) is deque and px._trace is None
        assert not set(SUBMITTERS) & set(vars(px)), "submit methods wrapped without trace="
    with overlapio.Proactor(trace=lambda line: None) as px:
        assert type(px._ready) is not deque and set(SUBMITTERS) <= set(vars(px))
    with pytest.raises(TypeError, match="trace must be a callable"):
        overlapio.Proactor(trace="stderr")


def test_a_trace_that_raises_is_switched_off():
    calls = []

    def broken(line):
        calls.append(line)
        raise OSError("stderr went away")

    with overlapio.Proactor(trace=broken) as px:
        a, b = socket.socketpair()
        with pytest.warns(RuntimeWarning, match="trace callable raised.*tracing is off"):
            r = px.recv(b, bytearray(5))
        s = px.send(a, b"hello")
        _wait_all(px, r, s)
        assert r.result == 5 and len(calls) == 1
        px.close(a), px.close(b)


def test_help_of_the_proactor_reads_clean():
    # help(overlapio.Proactor): no object addresses in signatures, no source
    # comment standing in for a docstring, no undocumented alias, and every
    # public method and dunder it shows documented.
    import pydoc
    import re
    text = pydoc.render_doc(overlapio.Proactor, renderer=pydoc.plaintext)
    assert "object at 0x" not in text
    assert "# --" not in text
    aliases = re.findall(r"^ \|  (\w+ = \w+)\(", text, re.M)  # how pydoc shows `timeout = sleep`
    assert not aliases, f"aliases in help(): {aliases}"
    for name, member in vars(overlapio.Proactor).items():
        if callable(member) and (not name.startswith("_") or name in ("__enter__", "__exit__")):
            assert member.__doc__, f"Proactor.{name} has no docstring"
    assert "close(self, sock: 'Any' = <omitted>)" in text


def test_readable_on_a_backend_without_it_raises_at_once():
    # A backend written before readable() existed: the submit raises, nothing is pending.
    class Older(_platform_backend()):
        readable = overlapio.Backend.readable

    with overlapio.Proactor(backend=Older) as px:
        a, b = socket.socketpair()
        with pytest.raises(NotImplementedError, match="no readable op"):
            px.readable(a)
        assert px.pending == 0
        a.close(), b.close()


def test_optional_ops_a_backend_leaves_out_raise_not_implemented():
    """A backend written before shutdown, datagrams and lists of buffers: the core
    refuses those calls at once (nothing pending), the rest works."""
    import socket as _socket
    from overlapio.backends.posix_selectors import SelectorsBackend

    class Older(SelectorsBackend):
        name = "older"
        multi_buffer = False
        shutdown = overlapio.Backend.shutdown
        recvfrom = overlapio.Backend.recvfrom
        sendto = overlapio.Backend.sendto

    with overlapio.Proactor(Older) as px:
        a, b = _socket.socketpair()
        udp = px.bind(("127.0.0.1", 0))
        for call in (lambda: px.recv(a, [bytearray(1)]), lambda: px.send(a, [b"x"]), lambda: px.shutdown(a),
                     lambda: px.recvfrom(udp, bytearray(1)), lambda: px.sendto(udp, b"x", udp.getsockname())):
            with pytest.raises(NotImplementedError, match="older"):
                call()
        assert px.pending == 0
        op = px.send(a, b"ok")
        px.wait(1)
        assert op.result == 2 and b.recv(2) == b"ok"
        a.close()
        b.close()
