"""The classic overlapped-event example programs, on the completion API.

``EchoServer`` and ``HelloClient`` attach to a :class:`~overlapio.Proactor` and
drive themselves with callbacks, so one Proactor can run a server, many clients,
or both (``overlapio demo``). Unlike the original example, the server serves many
clients at once and applies backpressure: it submits a client's next read only
once the echo of the previous data is fully sent, so a client that sends but never
reads holds the server to one buffer's worth of memory. An idle client holds no
buffer at all: the server waits for its data with a readable op (the zero-byte
receive) and reads into a buffer from a pool shared by every client.
"""
from __future__ import annotations

import socket
import sys
from typing import Callable, Optional, TextIO

from .buffers import BufferPool
from .core import OperationCancelled, Op, Proactor

HELLO = b"Hello World"
CHUNK = 64 * 1024  # the server's receive buffers (pooled: held only while a client's data is handled)
ACCEPT_RETRY_DELAY = 0.1  # seconds, after an accept failed (e.g. out of descriptors)
ECHO_TIMEOUT = 5.0  # seconds without a byte of an awaited echo before the client gives up


def _say(out: Optional[TextIO], prefix: str, text: str) -> None:
    if out is not None:
        print(prefix + text, file=out, flush=True)


def format_address(address: tuple) -> str:
    """``host:port``, with an IPv6 host in brackets: ``[::1]:7777``."""
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def hello_message(size: int) -> bytes:
    """``size`` bytes: "Hello World" padded with NULs (or cut), as the example sends."""
    return HELLO[:size].ljust(size, b"\0")


class EchoServer:
    """Accepts clients; prints ``Client Connected !`` and, for each ``size``-byte
    message received, ``Data Recv Len = <size>``; with ``echo`` sends every byte
    back."""

    def __init__(self, px: Proactor, listener: socket.socket, *, size: int = 100, echo: bool = False,
                 out: Optional[TextIO] = sys.stdout, prefix: str = "") -> None:
        self.px = px
        self.listener = listener
        self.size = size
        self.echo = echo
        self.out = out
        self.prefix = prefix
        self.clients = 0  # connected now
        self.served = 0  # connected so far
        self.bytes_received = 0
        self.pool = BufferPool(CHUNK)
        self._accept = px.accept(listener, callback=self._on_accept)

    def _say(self, text: str) -> None:
        _say(self.out, self.prefix, text)

    def stop(self) -> None:
        """Stop accepting (connected clients are served until they leave)."""
        self.px.close(self.listener)

    def _on_accept(self, op: Op) -> None:
        try:
            conn, _addr = op.result
        except OperationCancelled:
            return  # the listener was closed
        except OSError as exc:
            # Out of descriptors, say: retrying at once would spin; try again shortly.
            self._say(f"accept failed: {exc}")
            self.px.sleep(ACCEPT_RETRY_DELAY, callback=self._rearm)
            return
        self.clients += 1
        self.served += 1
        self._say("Client Connected !")
        _Connection(self, conn).read()
        self._rearm()

    def _rearm(self, _op: Optional[Op] = None) -> None:
        if self.listener.fileno() >= 0:
            self._accept = self.px.accept(self.listener, callback=self._on_accept)


class _Connection:
    """One client of an EchoServer: wait until it sends, read, (echo,) wait again.

    Idle, it costs a readable op and no buffer; a pooled buffer is held from the
    read until its bytes are echoed (or counted, without echo)."""

    __slots__ = ("server", "conn", "waiter", "buf", "partial")

    def __init__(self, server: EchoServer, conn: socket.socket) -> None:
        self.server = server
        self.conn = conn
        self.waiter: Optional[Op] = None  # the readable op, resubmitted for each read
        self.buf: Optional[bytearray] = None  # the pooled buffer, while its bytes are in use
        self.partial = 0  # bytes of the current message seen so far

    def read(self) -> None:
        self.waiter = self.server.px.readable(self.conn, callback=self._on_readable)

    def _on_readable(self, op: Op) -> None:
        if op.exception is not None:
            self._failed(op.exception)
            return
        self.buf = self.server.pool.take()
        self.server.px.recv(self.conn, self.buf, callback=self._on_recv)  # completes at once: the data is there

    def _on_recv(self, op: Op) -> None:
        server = self.server
        try:
            n = op.result
        except OSError as exc:
            self._failed(exc)
            return
        if n == 0:
            if self.partial:
                server._say(f"Data Recv Len = {self.partial}")
            self._close()
            return
        server.bytes_received += n
        whole, self.partial = divmod(self.partial + n, server.size)
        for _ in range(whole):
            server._say(f"Data Recv Len = {server.size}")
        if server.echo:
            # The reply goes out at once if the socket takes it all (the usual case);
            # the rest goes as a send op, and the next read waits for it: that is the
            # backpressure.
            view = memoryview(self.buf)
            try:
                sent = server.px.try_send(self.conn, view[:n])
            except OSError:
                self._close()
                return
            if sent < n:
                server.px.send(self.conn, view[sent:n], callback=self._on_sent)
                return
        self._next()

    def _on_sent(self, op: Op) -> None:
        if op.exception is not None:
            self._close()
        else:
            self._next()

    def _next(self) -> None:
        """The buffer's bytes are used: it goes back to the pool, and we wait for
        more. (Even after a full buffer: a client that then fell silent would
        otherwise pin one.)"""
        self._release()
        self.server.px.resubmit(self.waiter)

    def _release(self) -> None:
        if self.buf is not None:
            self.server.pool.give(self.buf)
            self.buf = None

    def _failed(self, exc: BaseException) -> None:
        if not isinstance(exc, OperationCancelled):
            self.server._say(f"Client Error ! ({getattr(exc, 'strerror', None) or exc})")
        self._close()

    def _close(self) -> None:
        self._release()
        server = self.server
        server.clients -= 1
        server._say("Client Disconnected !")
        if not server.px.closed:
            server.px.close(self.conn)


class HelloClient:
    """Connects, then every ``interval`` seconds sends a ``size``-byte "Hello World"
    message and prints ``Send Data ! Len = <size>``, ``count`` times (0: until
    stopped). With ``echo``, reads each message back and checks every byte, and
    fails with ``TimeoutError`` after ``echo_timeout`` seconds (0: never) without a
    byte of it: a server that does not echo never answers.

    ``done(client)`` is called once it has finished or failed (``client.error``).
    """

    def __init__(self, px: Proactor, address: tuple, *, size: int = 100, interval: float = 1.0, count: int = 0,
                 echo: bool = False, echo_timeout: float = ECHO_TIMEOUT, out: Optional[TextIO] = sys.stdout,
                 prefix: str = "", done: Optional[Callable[["HelloClient"], None]] = None) -> None:
        self.px = px
        self.address = address
        self.message = hello_message(size)
        self.interval = interval
        self.count = count
        self.echo = echo
        self.echo_timeout = echo_timeout or None  # per recv: the silence allowed, not the whole echo's time
        self.out = out
        self.prefix = prefix
        self.done = done
        self.sent = 0
        self.echoed = 0
        self.error: Optional[BaseException] = None
        self.finished = False
        self.sock: Optional[socket.socket] = None
        self.buf = bytearray(size)
        self.got = 0
        px.connect(address, callback=self._on_connect)

    def _say(self, text: str) -> None:
        _say(self.out, self.prefix, text)

    def _on_connect(self, op: Op) -> None:
        try:
            self.sock = op.result
        except OSError as exc:
            self._finish(exc)
            return
        try:
            peer = self.sock.getpeername()
        except OSError:  # already reset by the peer: the first send will say so
            peer = self.address
        self._say(f"connected to {format_address(peer)}")
        self._send()

    def _send(self) -> None:
        self.px.send(self.sock, self.message, callback=self._on_sent)

    def _on_sent(self, op: Op) -> None:
        try:
            op.result
        except OSError as exc:
            self._finish(exc)
            return
        self.sent += 1
        self._say(f"Send Data ! Len = {len(self.message)}")
        if self.echo:
            self.got = 0
            self.px.recv(self.sock, self.buf, callback=self._on_recv, timeout=self.echo_timeout)
        else:
            self._next()

    def _on_recv(self, op: Op) -> None:
        try:
            n = op.result
        except TimeoutError:
            self._finish(TimeoutError(f"no echo for {self.echo_timeout:g} s: is the server running with --echo?"))
            return
        except OSError as exc:
            self._finish(exc)
            return
        if n == 0:
            self._finish(ConnectionResetError("the server closed the connection before echoing everything"))
            return
        self.got += n
        if self.got < len(self.buf):
            self.px.recv(self.sock, memoryview(self.buf)[self.got:], callback=self._on_recv,
                         timeout=self.echo_timeout)
            return
        if self.buf != self.message:
            self._finish(ValueError("the echo differs from what was sent"))
            return
        self.echoed += 1
        self._say(f"Echo OK ! Len = {len(self.message)}")
        self._next()

    def _next(self) -> None:
        if self.count and self.sent >= self.count:
            self._finish(None)
        else:
            self.px.sleep(self.interval, callback=lambda _op: None if self.finished else self._send())

    def _finish(self, error: Optional[BaseException]) -> None:
        if self.finished:
            return
        self.finished = True
        self.error = error
        if self.sock is not None and not self.px.closed:
            self.px.close(self.sock)
        if self.done is not None:
            self.done(self)
