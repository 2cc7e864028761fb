"""overlapio's own promises about its asyncio loop, on every backend: awaitable
ops and their cancel guarantee, flow control, write_eof, sock_* cancel keeping
data, signals, and clear errors for what is not supported."""
from __future__ import annotations

import asyncio
import contextvars
import errno
import inspect
import os
import signal
import socket
import sys
import time

import pytest

import overlapio
import overlapio.asyncio as oa
from aio_support import loop_backends

PARAMS = [pytest.param(spec, id=name, marks=[pytest.mark.skip(reason=skip)] if skip else [])
          for name, spec, skip in loop_backends()]


@pytest.fixture(params=PARAMS)
def run(request):
    spec = request.param

    def run_main(coro):
        return oa.run(coro, backend=spec)
    run_main.spec = spec
    return run_main


def _pair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


def test_await_op_gives_result_and_error(run):
    async def main():
        px = asyncio.get_running_loop().proactor
        a, b = _pair()
        try:
            buf = bytearray(10)
            op = px.recv(a, buf)
            b.send(b"hello")
            assert await op == 5 and buf[:5] == b"hello"
            assert await op == 5  # a done op awaits at once
            assert await px.send(a, b"xyz") == 3
            listener = px.listen(("127.0.0.1", 0))
            port = listener.getsockname()[1]
            px.close(listener)
            with pytest.raises(ConnectionRefusedError):
                await px.connect(("127.0.0.1", port))
            with pytest.raises(TypeError, match="without a callback"):
                await px.recv(a, bytearray(1), lambda op: None)
        finally:
            a.close()
            b.close()
    run(main())


def test_await_op_outside_overlapio_loop_says_so():
    async def main():
        with overlapio.Proactor() as px:
            await px.sleep(0)
    with pytest.raises(RuntimeError, match="overlapio's event loop"):
        asyncio.run(main())


def test_cancelled_await_cancels_the_op_and_a_send_reports_what_went_out(run):
    async def main():
        px = asyncio.get_running_loop().proactor
        a, b = _pair()
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        try:
            op = px.recv(a, bytearray(10))
            task = asyncio.ensure_future(op)
            await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            for _ in range(100):  # it completes exactly once, cancelled (nothing arrived)
                if op.done:
                    break
                await asyncio.sleep(0.01)
            assert op.cancelled
            data = os.urandom(8 << 20)  # far more than the socket buffers take
            op = px.send(a, data)
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(op, 0.2)
            for _ in range(100):
                if op.done:
                    break
                await asyncio.sleep(0.01)
            assert op.cancelled and 0 < op.nbytes < len(data)
            received = bytearray()
            while True:  # the peer gets exactly data[:op.nbytes]
                try:
                    chunk = b.recv(1 << 20)
                except BlockingIOError:
                    if len(received) >= op.nbytes:
                        break
                    await asyncio.sleep(0.01)
                    continue
                received += chunk
            assert bytes(received) == data[:op.nbytes]
        finally:
            a.close()
            b.close()
    run(main())


def test_cancelled_sock_recv_loses_no_data(run):
    """Data that arrived before a sock_recv's cancel took effect goes to the next
    sock_recv on the socket (on a backend where the recv wins the race)."""
    async def main():
        loop = asyncio.get_running_loop()
        a, b = _pair()
        try:
            for i in range(20):
                task = asyncio.create_task(loop.sock_recv(a, 100))
                await asyncio.sleep(0)
                b.send(b"%d," % i)
                time.sleep(0.005)  # the OS may finish the recv before the cancel
                task.cancel()
                got = b""
                try:
                    got = await task
                except asyncio.CancelledError:
                    pass
                while not got.endswith(b"%d," % i):
                    got += await asyncio.wait_for(loop.sock_recv(a, 100), 5)
                assert got.endswith(b"%d," % i)
        finally:
            a.close()
            b.close()
    run(main())


class _Collect(asyncio.Protocol):
    def __init__(self):
        self.data = bytearray()
        self.events = []
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.data += data
        self.events.append(("data", len(data)))

    def eof_received(self):
        self.events.append(("eof",))

    def pause_writing(self):
        self.events.append(("pause_writing", self.transport.get_write_buffer_size()))

    def resume_writing(self):
        self.events.append(("resume_writing", self.transport.get_write_buffer_size()))

    def connection_lost(self, exc):
        self.lost.set_result(exc)


def test_flow_control_and_write_eof(run):
    async def main():
        loop = asyncio.get_running_loop()
        server_side = []
        server = await loop.create_server(lambda: server_side.append(_Collect()) or server_side[-1], "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport, client = await loop.create_connection(_Collect, "127.0.0.1", port)
        await asyncio.sleep(0.05)
        peer = server_side[0]
        # Reading paused on the server side: nothing reaches data_received, so the
        # client's writes pile up until pause_writing at the high-water mark ...
        peer.transport.pause_reading()
        assert not peer.transport.is_reading()
        transport.set_write_buffer_limits(high=64 * 1024, low=16 * 1024)
        chunk = os.urandom(32 * 1024)
        sent = bytearray()
        while not any(e[0] == "pause_writing" for e in client.events) and len(sent) < 64 << 20:
            transport.write(chunk)
            sent += chunk
            await asyncio.sleep(0)
        pause = [e for e in client.events if e[0] == "pause_writing"]
        assert pause and pause[0][1] > 64 * 1024
        await asyncio.sleep(0.1)
        assert peer.data == b"", "data_received while reading was paused"
        # ... and resume_writing at the low-water mark once the server reads again.
        transport.write_eof()
        peer.transport.resume_reading()
        assert await asyncio.wait_for(peer.lost, 10) is None
        resume = [e for e in client.events if e[0] == "resume_writing"]
        assert resume and resume[0][1] <= 16 * 1024
        assert peer.data == sent  # every byte, in order, then the end of stream (write_eof after the queue)
        assert peer.events[-1] == ("eof",)
        assert await asyncio.wait_for(client.lost, 10) is None  # the server closed after eof_received
        assert transport.get_extra_info("peername") == ("127.0.0.1", port)
        assert isinstance(transport.get_extra_info("socket"), asyncio.trsock.TransportSocket)
        server.close()
        await server.wait_closed()
    run(main())


def test_unsupported_features_raise_not_implemented_naming_them(run):
    async def main():
        loop = asyncio.get_running_loop()
        a, b = _pair()
        try:
            for coro, name in [
                (asyncio.create_subprocess_exec(sys.executable, "-c", "pass"), "subprocess"),
                (loop.connect_read_pipe(asyncio.Protocol, os.fdopen(os.pipe()[0])), "pipes"),
                (asyncio.open_unix_connection("/nonexistent"), "AF_UNIX"),
            ]:
                with pytest.raises(NotImplementedError, match=name):
                    await asyncio.wait_for(coro, 5)
        finally:
            a.close()
            b.close()
    run(main())


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_add_signal_handler(run):
    async def main():
        loop = asyncio.get_running_loop()
        await asyncio.sleep(0.01)  # a blocking wait first (a backend may install its own wakeup fd then)
        before = signal.set_wakeup_fd(-1)
        signal.set_wakeup_fd(before)
        got = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR1, got.set_result, "usr1")
        try:
            loop.call_later(0.05, os.kill, os.getpid(), signal.SIGUSR1)
            assert await asyncio.wait_for(got, 5) == "usr1"
        finally:
            assert loop.remove_signal_handler(signal.SIGUSR1)
        # The last handler gone: the wakeup descriptor from before is back.
        assert signal.set_wakeup_fd(before) == before
        with pytest.raises(TypeError):
            loop.add_signal_handler(signal.SIGUSR1, main)
    run(main())


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.Runner is new in 3.11")
def test_policy_and_runner_and_threadsafe(run):
    asyncio.set_event_loop_policy(oa.EventLoopPolicy(run.spec))
    try:
        loop = asyncio.new_event_loop()
        assert isinstance(loop, oa.EventLoop)
        loop.close()
    finally:
        asyncio.set_event_loop_policy(None)
    with asyncio.Runner(loop_factory=lambda: oa.EventLoop(run.spec)) as runner:
        async def main():
            loop = asyncio.get_running_loop()
            fut = loop.create_future()
            loop.run_in_executor(None, lambda: (time.sleep(0.05), loop.call_soon_threadsafe(fut.set_result, 1)))
            info = await loop.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)
            return await asyncio.wait_for(fut, 5), bool(info), type(loop).__name__
        assert runner.run(main()) == (1, True, "EventLoop")


def test_sendfile_fallback_and_connect_accepted_socket(run):
    async def main():
        import tempfile
        loop = asyncio.get_running_loop()
        got = bytearray()
        done = loop.create_future()

        class Sink(asyncio.Protocol):
            def data_received(self, data):
                got.extend(data)

            def eof_received(self):
                done.set_result(None)

        server = await loop.create_server(Sink, "127.0.0.1", 0)
        transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", server.sockets[0].getsockname()[1])
        data = os.urandom(3 << 20)
        with tempfile.TemporaryFile() as f:
            f.write(data)
            f.seek(0)
            assert await loop.sendfile(transport, f) == len(data)
        transport.write_eof()
        await asyncio.wait_for(done, 10)
        assert got == data
        transport.close()
        a, b = _pair()
        accepted, _ = await loop.connect_accepted_socket(asyncio.Protocol, a)
        accepted.write(b"hi")
        b.setblocking(True)
        assert b.recv(10) == b"hi"
        accepted.close()
        b.close()
        server.close()
        await server.wait_closed()
    run(main())


def test_call_soon_keeps_asyncio_behaviour(run):
    # EventLoop.call_soon makes its Handle itself out of debug mode: the same handle
    # as BaseEventLoop.call_soon's, in order, in the caller's context (or the one given).
    var = contextvars.ContextVar("var", default="unset")

    async def main():
        loop = asyncio.get_running_loop()
        seen = []
        var.set("caller")
        other = contextvars.copy_context()
        other.run(var.set, "given")
        handles = [loop.call_soon(lambda i: seen.append((i, var.get())), i) for i in range(3)]
        handles.append(loop.call_soon(lambda: seen.append(("given", var.get())), context=other))
        handles.append(loop.call_soon(callback=lambda: seen.append(("keyword", var.get()))))  # as asyncio allows
        handles[1].cancel()
        assert all(type(h) is asyncio.Handle and h._source_traceback is None for h in handles)
        assert "<lambda>" in repr(handles[0])
        await asyncio.sleep(0)
        assert seen == [(0, "caller"), (2, "caller"), ("given", "given"), ("keyword", "caller")]
        def kinds(fn):
            return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]
        assert kinds(loop.call_soon) == kinds(asyncio.BaseEventLoop.call_soon)[1:]  # (self aside)
        loop.set_debug(True)
        try:
            assert loop.call_soon(seen.clear)._source_traceback  # debug mode: asyncio's own call_soon
        finally:
            loop.set_debug(False)
    run(main())
    loop = oa.EventLoop(run.spec)
    loop.close()
    with pytest.raises(RuntimeError, match="closed"):
        loop.call_soon(print)


def test_write_fails_as_proactor_try_send_does(run):
    # write() hands flat data to the backend's try_send itself: what that raises
    # must still be what Proactor.try_send raises (ENOTCONN on a socket that was never
    # connected, ValueError for a socket closed under the transport).
    async def main():
        loop = asyncio.get_running_loop()
        seen = []
        loop.set_exception_handler(lambda loop, context: seen.append(context))

        class Writer(asyncio.Protocol):
            def __init__(self, before):
                self.before = before
                self.lost = loop.create_future()

            def connection_made(self, transport):
                self.before()
                transport.write(memoryview(b"hello"))

            def connection_lost(self, exc):
                self.lost.set_result(exc)

        for make, before, check in [
            (lambda: socket.socket(), lambda: None,
             lambda exc: isinstance(exc, OSError) and exc.errno == errno.ENOTCONN and not seen),
            (_pair, "close", lambda exc: isinstance(exc, ValueError) and "closed" in str(exc)
             and seen[-1]["message"] == "Fatal write error on socket transport"),
        ]:
            socks = make()
            sock = socks[0] if isinstance(socks, tuple) else socks
            sock.setblocking(False)
            protocol = Writer(sock.close if before == "close" else before)
            await loop.connect_accepted_socket(lambda: protocol, sock)
            exc = await asyncio.wait_for(protocol.lost, 5)
            assert check(exc), (exc, seen)
            for s in socks if isinstance(socks, tuple) else (socks,):
                s.close()
    run(main())


@pytest.mark.skipif(sys.version_info < (3, 12), reason="asyncio.run(loop_factory=) is new in 3.12")
def test_asyncio_run_with_loop_factory(run):
    async def main():
        return type(asyncio.get_running_loop()).__name__
    assert asyncio.run(main(), loop_factory=lambda: oa.EventLoop(run.spec)) == "EventLoop"


def test_protocol_error_goes_to_the_exception_handler_and_closes(run):
    async def main():
        loop = asyncio.get_running_loop()
        seen = []
        loop.set_exception_handler(lambda loop, context: seen.append(context))
        lost = loop.create_future()

        class Broken(asyncio.Protocol):
            def data_received(self, data):
                raise ValueError("boom")

            def connection_lost(self, exc):
                lost.set_result(exc)

        server = await loop.create_server(Broken, "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
        writer.write(b"x")
        exc = await asyncio.wait_for(lost, 5)
        assert isinstance(exc, ValueError)
        assert seen and seen[0]["message"] == "Fatal error: protocol.data_received() call failed."
        assert isinstance(seen[0]["exception"], ValueError)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # the server side closed
        writer.close()
        server.close()
        await server.wait_closed()
    run(main())


def test_debug_mode_reports_slow_callbacks(run, caplog):
    async def main():
        loop = asyncio.get_running_loop()
        assert loop.get_debug()
        loop.slow_callback_duration = 0.05
        loop.call_soon(time.sleep, 0.1)
        await asyncio.sleep(0.01)
    with caplog.at_level("WARNING", logger="asyncio"):
        oa.run(main(), backend=run.spec, debug=True)
    assert any("Executing" in r.getMessage() and "took" in r.getMessage() for r in caplog.records)


class _Buffered(asyncio.BufferedProtocol):
    """Collects what it reads; get_buffer gives the same buffer until ``fresh`` is set."""

    def __init__(self):
        self.data = bytearray()
        self.buf = bytearray(64)
        self.fresh = False
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def get_buffer(self, sizehint):
        if self.fresh:
            self.buf = bytearray(64)
        return self.buf

    def buffer_updated(self, nbytes):
        self.data += self.buf[:nbytes]

    def connection_lost(self, exc):
        pass


def test_transport_reads_with_one_recv_op_and_loses_nothing_around_it(run):
    # The per-message path: one recv op per transport, resubmitted while get_buffer()
    # gives the same buffer, a new one for a new buffer. Pausing and resuming with
    # that recv pending, or switching protocols, must still deliver every byte in order.
    async def main():
        loop = asyncio.get_running_loop()
        a, b = _pair()
        transport, proto = await loop.connect_accepted_socket(_Buffered, a)
        await asyncio.sleep(0.01)

        async def exchange(data):
            b.send(data)
            for _ in range(200):
                await asyncio.sleep(0.005)
                if proto.data.endswith(data):
                    return

        first = transport._recv_op
        sent = bytearray()
        for i in range(20):
            msg = bytes([i]) * 10
            sent += msg
            await exchange(msg)
        assert transport._recv_op is first  # resubmitted, never replaced
        proto.fresh = True
        sent += b"new buffer"
        await exchange(b"new buffer")
        assert transport._recv_op is not first
        proto.fresh = False
        # paused and resumed while the recv is pending: what it brings still comes, in order
        transport.pause_reading()
        transport.resume_reading()
        sent += b"after resume"
        await exchange(b"after resume")
        assert proto.data == sent
        # set_protocol while the recv is pending: the next bytes go to the new protocol
        other = _Buffered()
        transport.set_protocol(other)
        b.send(b"to the other one")
        for _ in range(200):
            await asyncio.sleep(0.005)
            if other.data:
                break
        assert other.data == b"to the other one" and proto.data == sent
        transport.close()
        b.close()
        await asyncio.sleep(0.01)
    run(main())


class _Moving(asyncio.BufferedProtocol):
    """Gives a view from where its data ends; its consumer takes the data out
    (``del``: the buffer must not be held by a pending recv) and starts over."""

    def __init__(self):
        self.buf = bytearray(64)
        self.end = 0
        self.taken = bytearray()

    def get_buffer(self, sizehint):
        return memoryview(self.buf)[self.end:]

    def buffer_updated(self, nbytes):
        self.end += nbytes

    def take(self):
        self.taken += self.buf[:self.end]
        del self.buf[:self.end]  # BufferError if a recv still holds a view of it
        self.buf.extend(bytes(64 - len(self.buf)))
        self.end = 0


def test_buffered_protocol_whose_buffer_moves_between_messages(run):
    # asyncio's loops call get_buffer() and buffer_updated() back to back: bytes must
    # land where get_buffer() points when they are handed over, not where it pointed
    # when the recv was submitted.
    async def main():
        loop = asyncio.get_running_loop()
        a, b = _pair()
        transport, proto = await loop.connect_accepted_socket(_Moving, a)
        sent = bytearray()
        for i in range(10):
            msg = bytes([65 + i]) * (5 + i)
            sent += msg
            b.send(msg)
            for _ in range(400):
                await asyncio.sleep(0.005)
                if proto.end >= len(msg):
                    break
            proto.take()
        assert proto.taken == sent
        transport.close()
        b.close()
        await asyncio.sleep(0.01)
    run(main())


def _stop_inside_a_callback(loop):
    """What runs when, around a data_received() that schedules callbacks and stops
    the loop: a stopped loop runs its current batch, not what that batch schedules."""
    log = []

    class Proto(asyncio.Protocol):
        def data_received(self, data):
            log.append(("data", bytes(data)))
            loop.call_soon(log.append, "scheduled before stop")
            loop.stop()
            loop.call_soon(log.append, "scheduled after stop")

    a, b = _pair()
    try:
        transport, _ = loop.run_until_complete(loop.connect_accepted_socket(Proto, a))
        b.send(b"x")
        loop.run_forever()  # stopped by data_received
        log.append("run_forever returned")
        loop.call_soon(log.append, "scheduled between runs")
        loop.call_soon(loop.stop)
        loop.run_forever()
        transport.close()
        loop.run_until_complete(asyncio.sleep(0.01))
    finally:
        b.close()
        loop.close()
    return log


def test_stop_inside_data_received_runs_nothing_it_scheduled_until_the_next_run(run):
    # Completions run inside the loop's select() when nothing is queued ahead of
    # them; what they schedule must still wait for the next run once one of them
    # stopped the loop, and then come first, as on asyncio's own loop.
    expected = _stop_inside_a_callback(asyncio.new_event_loop())
    assert expected == [("data", b"x"), "run_forever returned", "scheduled before stop",
                        "scheduled after stop", "scheduled between runs"]
    assert _stop_inside_a_callback(oa.EventLoop(run.spec)) == expected


def test_keyboard_interrupt_in_one_data_received_loses_no_other_completion(run):
    # Two transports' recvs complete in one wait; the first data_received raises
    # KeyboardInterrupt out of the loop. The other's data must still arrive.
    class Proto(asyncio.Protocol):
        interrupt = [True]

        def __init__(self):
            self.data = b""

        def data_received(self, data):
            self.data += data
            if self.interrupt[0]:
                self.interrupt[0] = False
                raise KeyboardInterrupt

    loop = oa.EventLoop(run.spec)
    pairs = [_pair(), _pair()]
    try:
        protos = [loop.run_until_complete(loop.connect_accepted_socket(Proto, a))[1] for a, _ in pairs]
        for _, b in pairs:
            b.send(b"hello")
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(asyncio.sleep(5))

        async def wait():
            for _ in range(400):
                await asyncio.sleep(0.005)
                if all(p.data == b"hello" for p in protos):
                    return
        loop.run_until_complete(wait())
        assert [p.data for p in protos] == [b"hello", b"hello"]
    finally:
        for a, b in pairs:
            a.close()
            b.close()
        loop.close()


def test_keyboard_interrupt_in_data_received_leaves_the_transport_reading(run):
    class Proto(asyncio.Protocol):
        def __init__(self):
            self.data = bytearray()
            self.interrupt = True

        def data_received(self, data):
            self.data += data
            if self.interrupt:
                self.interrupt = False
                raise KeyboardInterrupt

    loop = oa.EventLoop(run.spec)
    a, b = _pair()
    try:
        transport, proto = loop.run_until_complete(loop.connect_accepted_socket(Proto, a))
        b.send(b"one")
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(asyncio.sleep(5))
        b.send(b"two")

        async def wait():
            for _ in range(400):
                await asyncio.sleep(0.005)
                if proto.data == b"onetwo":
                    return
        loop.run_until_complete(wait())
        assert proto.data == b"onetwo"
        transport.close()
        loop.run_until_complete(asyncio.sleep(0.01))
    finally:
        b.close()
        loop.close()


def test_closed_transport_goes_without_a_cyclic_gc(run):
    # Op and handle refer to each other: a closed transport (its read buffer, the
    # data it sent) must not wait for the cyclic GC to be freed.
    import gc
    import weakref

    class Buf(bytearray):
        pass

    class Proto(_Buffered):
        def __init__(self):
            super().__init__()
            self.buf = Buf(64)

    async def main():
        loop = asyncio.get_running_loop()
        a, b = _pair()
        transport, proto = await loop.connect_accepted_socket(Proto, a)
        transport.write(b"x" * 100)
        b.send(b"hello")
        for _ in range(400):
            await asyncio.sleep(0.005)
            if proto.data == b"hello":
                break
        assert proto.data == b"hello"
        refs = weakref.ref(transport), weakref.ref(proto.buf)
        transport.close()
        del transport, proto
        await asyncio.sleep(0.05)
        b.close()
        return refs

    gc.collect()
    gc.disable()
    try:
        refs = run(main())
        assert [r() for r in refs] == [None, None]
    finally:
        gc.enable()
