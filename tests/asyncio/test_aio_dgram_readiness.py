"""The loop's datagram endpoints, sock_recvfrom/sock_sendto and add_reader/
add_writer, on every backend, beyond what CPython's tests check: an echo through
create_datagram_endpoint, flow control, close/abort, the NotImplementedError of
a backend without datagram ops, readiness callbacks on the loop thread, and
nothing left behind (descriptors, threads) once the loop is closed."""
from __future__ import annotations

import asyncio
import os
import socket
import sys
import threading
import time

import pytest

import overlapio.asyncio as oa
from overlapio.backends.posix_selectors import SelectorsBackend
from overlapio.core.backend import Backend
from aio_support import loop_backends

PARAMS = [pytest.param(spec, id=name, marks=[pytest.mark.skip(reason=skip)] if skip else [])
          for name, spec, skip in loop_backends()]


def _has_datagram_ops(spec) -> bool:
    loop = oa.EventLoop(spec)
    try:
        loop._check_datagrams()
        return True
    except NotImplementedError:
        return False
    finally:
        loop.close()


@pytest.fixture(params=PARAMS)
def spec(request):
    return request.param


@pytest.fixture
def dgram_spec(spec):
    if not _has_datagram_ops(spec):
        pytest.skip("this backend has no datagram ops (test_no_datagram_ops_raises_naming_the_op covers it)")
    return spec


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else -1


class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data.upper(), addr)


class Collect(asyncio.DatagramProtocol):
    def __init__(self):
        self.got = asyncio.Queue()
        self.errors = []
        self.lost = asyncio.get_running_loop().create_future()
        self.paused = self.resumed = 0

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.got.put_nowait((data, addr))

    def error_received(self, exc):
        self.errors.append(exc)

    def connection_lost(self, exc):
        self.lost.set_result(exc)

    def pause_writing(self):
        self.paused += 1

    def resume_writing(self):
        self.resumed += 1


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_datagram_echo_connected_and_not(dgram_spec, host):
    fds = _open_fds()

    async def main():
        loop = asyncio.get_running_loop()
        server, _ = await loop.create_datagram_endpoint(Echo, local_addr=(host, 0))
        address = server.get_extra_info("sockname")
        assert server.get_extra_info("peername") is None
        # connected: sendto(data) goes to remote_addr
        client, proto = await loop.create_datagram_endpoint(Collect, remote_addr=address[:2])
        assert client.get_extra_info("peername")[:2] == address[:2]
        assert isinstance(client.get_extra_info("socket"), asyncio.trsock.TransportSocket)
        with pytest.raises(ValueError, match="Invalid address"):
            client.sendto(b"x", (host, 9))
        sent = [os.urandom(n) for n in (1, 100, 1400, 9000, 60000)]
        for data in sent:
            client.sendto(data)
        for data in sent:
            got, addr = await asyncio.wait_for(proto.got.get(), 10)
            assert got == data.upper() and addr[:2] == address[:2]
        # not connected: sendto(data, addr), and the reply's sender address
        other, proto2 = await loop.create_datagram_endpoint(Collect, local_addr=(host, 0))
        for i in range(50):
            other.sendto(b"n%d" % i, address)
        got = [await asyncio.wait_for(proto2.got.get(), 10) for _ in range(50)]
        assert sorted(d for d, _ in got) == sorted(b"N%d" % i for i in range(50))  # loopback loses none
        for t in (client, other, server):
            t.close()
        assert await asyncio.wait_for(proto.lost, 10) is None
        assert await asyncio.wait_for(proto2.lost, 10) is None
    oa.run(main(), backend=dgram_spec)
    assert _open_fds() == fds


def test_datagram_flow_control_close_and_abort(dgram_spec):
    async def main():
        loop = asyncio.get_running_loop()
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink.bind(("127.0.0.1", 0))
        try:
            t, p = await loop.create_datagram_endpoint(Collect, remote_addr=sink.getsockname())
            t.set_write_buffer_limits(high=250, low=0)
            for _ in range(3):
                t.sendto(b"x" * 100)
            # the sends are ops until their completions are handled: counted until then
            assert t.get_write_buffer_size() == 300 and p.paused == 1
            t.sendto(b"x" * 70000)  # too large for UDP: the send's error goes to error_received()
            t.close()  # waits for them
            assert t.is_closing()
            assert await asyncio.wait_for(p.lost, 10) is None
            assert p.resumed == 1 and t.get_write_buffer_size() == 0
            assert [sink.recv(200) for _ in range(3)] == [b"x" * 100] * 3
            assert len(p.errors) == 1 and isinstance(p.errors[0], OSError), p.errors
            t.sendto(b"after close")  # counted, not sent, as asyncio does
            t2, p2 = await loop.create_datagram_endpoint(Collect, remote_addr=sink.getsockname())
            t2.abort()
            assert await asyncio.wait_for(p2.lost, 10) is None
            assert t2.get_extra_info("socket").fileno() == -1
        finally:
            sink.close()
    oa.run(main(), backend=dgram_spec)


def test_sock_recvfrom_sendto_and_cancel(dgram_spec):
    async def main():
        loop = asyncio.get_running_loop()
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for s in (a, b):
                s.setblocking(False)
                s.bind(("127.0.0.1", 0))
            assert await loop.sock_sendto(a, b"hello", ("localhost", b.getsockname()[1])) == 5  # a name resolves
            assert await asyncio.wait_for(loop.sock_recvfrom(b, 100), 10) == (b"hello", a.getsockname())
            buf = bytearray(10)
            await loop.sock_sendto(a, b"0123456789abc", b.getsockname())
            assert await asyncio.wait_for(loop.sock_recvfrom_into(b, buf, 4), 10) == (4, a.getsockname())
            assert buf[:4] == b"0123"  # the rest of that datagram is gone, as with recvfrom_into
            # a cancelled sock_recvfrom loses no datagram: the next call gets it
            task = asyncio.ensure_future(loop.sock_recvfrom(b, 100))
            await asyncio.sleep(0)  # its recvfrom op is pending
            a.sendto(b"one", b.getsockname())  # a backend may complete the op with it before the cancel lands
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await loop.sock_sendto(a, b"two", b.getsockname())
            got = [await asyncio.wait_for(loop.sock_recvfrom(b, 100), 10) for _ in range(2)]
            assert [d for d, _ in got] == [b"one", b"two"]
        finally:
            a.close()
            b.close()
    oa.run(main(), backend=dgram_spec)


class _NoDatagrams(SelectorsBackend):
    """The POSIX backend without its optional datagram ops (as a backend that never had them)."""
    recvfrom = Backend.recvfrom
    sendto = Backend.sendto


@pytest.mark.skipif(sys.platform == "win32", reason="built on the POSIX backend")
def test_no_datagram_ops_raises_naming_the_op():
    fds = _open_fds()

    async def main():
        loop = asyncio.get_running_loop()
        with pytest.raises(NotImplementedError, match="datagram endpoints.*no recvfrom op"):
            await asyncio.wait_for(loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                                 local_addr=("127.0.0.1", 0)), 5)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        try:
            with pytest.raises(NotImplementedError, match="recvfrom"):
                await asyncio.wait_for(loop.sock_recvfrom(s, 10), 5)
            with pytest.raises(NotImplementedError, match="sendto"):
                await asyncio.wait_for(loop.sock_sendto(s, b"x", s.getsockname()), 5)
        finally:
            s.close()
    oa.run(main(), backend=_NoDatagrams)
    assert _open_fds() == fds  # the endpoint made no socket


def _readiness_threads() -> int:
    return sum(t.name == "overlapio-asyncio-readiness" for t in threading.enumerate())


def test_add_reader_and_writer_on_a_socketpair(spec):
    fds, threads = _open_fds(), threading.active_count()
    loop = oa.EventLoop(spec)
    r, w = socket.socketpair()
    r.setblocking(False)
    w.setblocking(False)
    try:
        assert _readiness_threads() == 0  # nothing until the first add_*
        assert not loop.remove_reader(r)
        seen = []

        def on_readable(tag):
            seen.append((tag, threading.get_ident(), r.recv(100)))
            if len(seen) == 2:
                loop.stop()

        loop.add_reader(r, on_readable, "first")
        loop.add_reader(r.fileno(), on_readable, "second")  # replaces the first
        w.send(b"ab")
        loop.call_later(0.2, w.send, b"cd")
        loop.call_later(10, loop.stop)
        loop.run_forever()
        me = threading.get_ident()
        assert seen == [("second", me, b"ab"), ("second", me, b"cd")]
        assert loop.remove_reader(r) and not loop.remove_reader(r)
        writes = []
        loop.add_writer(w, lambda: (writes.append(threading.get_ident()), loop.stop()))
        loop.call_later(10, loop.stop)
        loop.run_forever()
        assert writes == [me]
        assert loop.remove_writer(w.fileno()) and not loop.remove_writer(w)
        # a reader that removes itself and closes its descriptor; another keeps working
        r2, w2 = socket.socketpair()
        got = []

        def closing_reader():
            assert loop.remove_reader(r2)
            r2.close()
            w.send(b"!")

        loop.add_reader(r2, closing_reader)
        loop.add_reader(r, lambda: (got.append(r.recv(10)), loop.stop()))
        w2.send(b"x")
        loop.call_later(10, loop.stop)
        loop.run_forever()
        w2.close()
        assert got == [b"!"] and r2.fileno() == -1
        loop.add_writer(w, lambda: None)
        assert _readiness_threads() == 1
        with pytest.raises(TypeError, match="coroutines"):
            loop.add_reader(r, asyncio.sleep)
        with pytest.raises(ValueError):
            loop.add_reader(-1, print)
    finally:
        loop.close()
        r.close()
        w.close()
    assert not loop.remove_reader(r) and not loop.remove_writer(w)
    with pytest.raises(RuntimeError, match="closed"):
        loop.add_reader(r, print)
    assert _readiness_threads() == 0 and threading.active_count() == threads
    assert _open_fds() == fds


@pytest.mark.skipif(sys.platform == "win32", reason="select() takes sockets only on Windows")
def test_add_reader_on_a_pipe(spec):
    async def main():
        loop = asyncio.get_running_loop()
        rfd, wfd = os.pipe()
        try:
            done = loop.create_future()
            loop.add_reader(rfd, lambda: done.done() or done.set_result(os.read(rfd, 10)))
            os.write(wfd, b"pipe")
            assert await asyncio.wait_for(done, 10) == b"pipe"
            assert loop.remove_reader(rfd)
        finally:
            os.close(rfd)
            os.close(wfd)
    oa.run(main(), backend=spec)


@pytest.mark.parametrize("selector", ["DefaultSelector", "SelectSelector"])  # SelectSelector: as on Windows
def test_a_descriptor_closed_while_registered_stops_no_other(spec, selector, monkeypatch):
    import selectors
    monkeypatch.setattr(oa._ReadinessThread, "selector_class", getattr(selectors, selector))
    loop = oa.EventLoop(spec)
    r1, w1 = socket.socketpair()
    r2, w2 = socket.socketpair()
    try:
        loop.add_reader(r1, lambda: None)
        loop.run_until_complete(asyncio.sleep(0.05))  # the thread selects on r1
        r1.close()  # without remove_reader
        got = []
        loop.add_reader(r2, lambda: (got.append(r2.recv(10)), loop.stop()))
        w2.send(b"x")
        loop.call_later(10, loop.stop)
        loop.run_forever()
        assert got == [b"x"]
    finally:
        loop.close()
        for s in (r1, w1, r2, w2):
            s.close()


def test_datagram_received_raising_is_reported_and_receiving_goes_on(dgram_spec):
    class Raising(Collect):
        def datagram_received(self, data, addr):
            super().datagram_received(data, addr)
            if data == b"boom":
                raise ValueError("boom")

    async def main():
        loop = asyncio.get_running_loop()
        seen = []
        loop.set_exception_handler(lambda loop, ctx: seen.append(ctx))
        transport, proto = await loop.create_datagram_endpoint(Raising, local_addr=("127.0.0.1", 0))
        addr = transport.get_extra_info("sockname")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for data in (b"boom", b"after"):
                s.sendto(data, addr)
                assert (await asyncio.wait_for(proto.got.get(), 5))[0] == data
        assert not transport.is_closing()
        assert [type(ctx["exception"]) for ctx in seen] == [ValueError]
        transport.close()
        assert await proto.lost is None
    oa.run(main(), backend=dgram_spec)


@pytest.mark.parametrize("selector", ["DefaultSelector", "SelectSelector"])
@pytest.mark.parametrize("removed", [True, False])
def test_add_reader_on_a_reused_descriptor_number(spec, selector, removed, monkeypatch):
    # The thread watches fd N; N is closed (after remove_reader or not) and a new
    # socket gets number N before the thread looks at its tables again: it must
    # watch the new one (epoll drops a closed descriptor on its own).
    import selectors
    monkeypatch.setattr(oa._ReadinessThread, "selector_class", getattr(selectors, selector))
    loop = oa.EventLoop(spec)
    r1, w1 = socket.socketpair()
    socks = [r1, w1]
    try:
        loop.add_reader(r1, lambda: None)
        loop.run_until_complete(asyncio.sleep(0.05))  # the thread selects on r1
        if not removed:
            # r1 closed under select(): the thread finds it closed (select()) before the reuse
            fd = r1.fileno()
            r1.close()
            loop._readiness._wake()  # select() again, on the closed r1
            loop.run_until_complete(asyncio.sleep(0.05))
        thread = loop._readiness
        thread._go.clear()  # the thread stops before its next look at the tables
        if removed:
            loop.remove_reader(r1)
            fd = r1.fileno()
            r1.close()
        time.sleep(0.05)
        for _ in range(50):
            r2, w2 = socket.socketpair()
            socks += [r2, w2]
            if r2.fileno() == fd:
                break
        assert r2.fileno() == fd
        got = []
        # A readiness the thread saw for r1 (its select() can report the descriptor
        # closed under it) must not reach r2's callback: a second report of r2 would
        # find nothing to read (None here; non-blocking, so that it fails, not hangs).
        r2.setblocking(False)

        def on_readable():
            try:
                got.append(r2.recv(10))
            except BlockingIOError:
                got.append(None)
                return
            loop.stop()

        loop.add_reader(r2, on_readable)
        thread._go.set()
        w2.send(b"x")
        loop.call_later(5, loop.stop)
        loop.run_forever()
        assert got == [b"x"]
    finally:
        loop.close()
        for s in socks:
            s.close()


def test_add_reader_on_a_descriptor_the_selector_refuses_raises(spec, tmp_path):
    loop = oa.EventLoop(spec)
    try:
        r, w = socket.socketpair()
        loop.add_reader(r, lambda: None)  # (the selector thread made now does not take r's number later)
        loop.remove_reader(r)
        fd = r.fileno()
        r.close()
        w.close()
        with pytest.raises(OSError):
            loop.add_reader(fd, lambda: None)
        import selectors
        if hasattr(selectors, "EpollSelector") and oa._ReadinessThread.selector_class is selectors.EpollSelector:
            with open(tmp_path / "f", "w") as f:
                with pytest.raises(PermissionError):
                    loop.add_reader(f, lambda: None)
    finally:
        loop.close()


def test_selector_thread_failure_is_reported(spec, monkeypatch):
    import selectors

    class Failing(selectors.SelectSelector):
        def select(self, timeout=None):
            raise RuntimeError("select broke")

    monkeypatch.setattr(oa._ReadinessThread, "selector_class", Failing)
    loop = oa.EventLoop(spec)
    seen = []
    loop.set_exception_handler(lambda loop, ctx: seen.append(ctx))
    r, w = socket.socketpair()
    try:
        loop.add_reader(r, lambda: None)
        for _ in range(100):
            loop.run_until_complete(asyncio.sleep(0.01))
            if seen:
                break
        assert [str(ctx["exception"]) for ctx in seen] == ["select broke"]
    finally:
        loop.close()
        r.close()
        w.close()
