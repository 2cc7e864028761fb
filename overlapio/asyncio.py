"""An asyncio event loop on an overlapio :class:`~overlapio.Proactor` (any backend).

::

    import overlapio.asyncio

    async def main():
        reader, writer = await asyncio.open_connection("127.0.0.1", 7777)
        ...

    overlapio.asyncio.run(main())                   # the platform's default backend
    overlapio.asyncio.run(main(), backend="posix")  # or a name, or a Backend class

``asyncio.Runner(loop_factory=overlapio.asyncio.EventLoop)`` (3.11+),
``asyncio.run(main(), loop_factory=overlapio.asyncio.EventLoop)`` (3.12+) and
``asyncio.set_event_loop_policy(overlapio.asyncio.EventLoopPolicy())`` work too.

How it is built: :class:`EventLoop` subclasses ``asyncio.BaseEventLoop``, which
keeps asyncio's own ready queue, timer heap, executor, exception handler, debug
mode and the generic parts of ``create_connection``/``create_server``/
``start_tls``. Where a selector loop asks its selector for ready descriptors,
this loop calls ``Proactor.wait(timeout)``; every socket operation is an
overlapio op whose completion schedules the code that consumes it. Nothing here
depends on a backend: docs/asyncio.md says what is supported and how it differs
from the stock loops.
"""
from __future__ import annotations

import asyncio
import contextvars
import errno
import functools
import inspect
import logging
import os
import select
import selectors
import signal
import socket
import sys
import threading
import warnings
import weakref
from asyncio import base_events, constants, coroutines, events, futures, protocols, sslproto, transports, trsock
from collections import deque
from typing import Any, Optional

from .core import Op, OpKind, OperationCancelled, Proactor

__all__ = ["EventLoop", "EventLoopPolicy", "new_event_loop", "run", "op_future"]

logger = logging.getLogger(__name__)

_new = object.__new__
_Handle = events.Handle
_copy_context = contextvars.copy_context
_RECV_SIZE = 256 * 1024  # the read buffer of a transport whose protocol is not a BufferedProtocol
_DATAGRAM_SIZE = 64 * 1024  # a datagram transport's receive buffers: the largest UDP datagram fits
_DATAGRAM_RECVS = 2  # recvfrom ops a datagram transport keeps pending (one reads while one is handled)
# Server._attach()/_detach() take the transport from Python 3.13 on.
_SERVER_TAKES_TRANSPORT = len(inspect.signature(base_events.Server._attach).parameters) > 1
_ACCEPT_PAUSE = 1.0  # seconds an accept loop rests after running out of descriptors (as asyncio's loops do)
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


def _unsupported(what: str) -> NotImplementedError:
    return NotImplementedError(f"overlapio's asyncio event loop does not support {what}")


class _OpFuture(asyncio.Future):
    """A future that follows one op; cancelling it asks the Proactor to cancel
    the op at once (``px.cancel``: the op still completes exactly once)."""

    def __init__(self, loop: "EventLoop", op: Optional[Op] = None) -> None:
        super().__init__(loop=loop)
        self._op = op

    def cancel(self, msg: Any = None) -> bool:
        if not super().cancel(msg):
            return False
        op, self._op = self._op, None
        if op is not None and not op.done:
            px = self._loop._px  # type: ignore[attr-defined]
            if not px.closed:
                px.cancel(op)
        return True


class _OpHandle(events.Handle):
    """The handle of a transport's or a server's op: its tag, made once with the op
    (``_args`` is ``(op,)``) and put in the ready queue by each completion of it, as
    a selector loop puts a reader's handle there on each readiness. Its ``_run``
    (what ``_run_once`` calls) is ``Handle._run``, which reports what the callback
    raises. The op's owner sets ``op.tag = None`` once the op is done for good, so
    that op and handle (which refer to each other) go without a cyclic GC. Nothing
    cancels it (it is never handed out): _Selector.select does not look."""

    __slots__ = ()


class _DirectOpHandle(_OpHandle):
    """An _OpHandle whose callback reports its own errors: ``_run`` is the callback
    itself in the handle's context with no Python frame in between (a frame per
    message on the read path)."""

    __slots__ = ("_run",)


class _Selector:
    """What ``BaseEventLoop._run_once`` calls ``select`` on: one ``Proactor.wait``.

    The ops of transports and servers are submitted without a callback and come back
    from ``wait``; each one's handle (its tag) goes to the ready queue, so protocol
    code runs as handles of the loop, in the same iteration. The ops an ``await``
    follows settle their future here. Callbacks of ops the user submitted with one
    run inside ``wait``."""

    def __init__(self, loop: "EventLoop") -> None:
        self._loop = loop

    def select(self, timeout: Optional[float]) -> list:
        loop = self._loop
        try:
            ops = loop._px.wait(timeout)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:  # a callback of an op the user submitted raised
            loop.call_exception_handler({"message": "Exception in an overlapio op callback", "exception": exc})
            return []
        if not ops:
            return []
        if loop._ready or loop._debug:
            self._schedule(ops, 0)
            return []
        # With nothing queued in the loop, the handles of ops run here, in completion
        # order, as _run_once would run them first thing in this iteration (a
        # ready-queue round trip less per message; inline, a call less per select).
        # What they schedule joins this iteration's batch, unless one of them stopped
        # the loop: that waits for the next run (asyncio: a stopped loop runs its
        # current batch and nothing those callbacks schedule), so it is held back
        # until run_forever returns. Out of debug mode only: there every handle is
        # timed as it runs from the queue.
        try:
            for op in ops:
                handle = op.tag
                if type(handle) is _DirectOpHandle or type(handle) is _OpHandle:
                    # (It reports what the callback raises, but SystemExit and KeyboardInterrupt.
                    # A slot's callable called from a local: CPython 3.11 specialises that call.)
                    run = handle._run
                    run()
                else:
                    fut = loop._awaited.pop(op, None)
                    if fut is not None:
                        _settle_future(fut, op)
        except BaseException:
            self._schedule(ops, ops.index(op) + 1)  # the rest run once the loop runs again
            raise
        if loop._stopping:
            ready, held = loop._ready, loop._held_back
            while ready:  # (one popleft at a time: call_soon_threadsafe may append meanwhile)
                held.append(ready.popleft())
        return []

    def _schedule(self, ops: list, start: int) -> None:
        """The handles of ``ops[start:]`` go to the ready queue; awaited ops settle."""
        loop = self._loop
        schedule = loop._ready.append
        for i in range(start, len(ops)):
            op = ops[i]
            handle = op.tag
            if type(handle) is _DirectOpHandle or type(handle) is _OpHandle:
                schedule(handle)
            else:
                fut = loop._awaited.pop(op, None)
                if fut is not None:
                    _settle_future(fut, op)

    def close(self) -> None:
        pass


def _settle_future(fut: asyncio.Future, op: Op) -> None:
    if fut.done():
        return
    exc = op.exception
    if exc is None:
        fut.set_result(op.result)
    else:
        fut.set_exception(exc)


class EventLoop(base_events.BaseEventLoop):
    """An asyncio event loop whose I/O is overlapio ops on its own Proactor.

    ``EventLoop(backend=None)``: ``backend`` is what ``Proactor(backend=...)``
    takes (``None``: ``OVERLAPIO_BACKEND`` or the platform default). The
    Proactor is ``loop.proactor``; ops submitted on it without a callback can be
    awaited in this loop (``n = await px.recv(sock, buf)``).
    """

    def __init__(self, backend: Any = None) -> None:
        try:
            px = Proactor(backend)
        except BaseException:
            self._closed = True  # nothing to close (BaseEventLoop.__del__ looks)
            raise
        super().__init__()
        self._px = px
        self._selector = _Selector(self)
        self._awaited: "dict[Op, asyncio.Future]" = {}  # ops without a callback that an await follows
        self._held_back: deque = deque()  # handles for the next run_forever (see _Selector.select)
        self._accept_ops: "dict[socket.socket, Op]" = {}  # serving listener -> its pending accept
        # Data (or a connection) an op brought in after the sock_* call that submitted
        # it was cancelled: the next call on that socket gets it first.
        self._leftovers: "dict[socket.socket, deque]" = {}
        self._signal_handlers: "dict[int, events.Handle]" = {}
        self._wakeup_prev = -1  # the wakeup descriptor add_signal_handler replaced
        self._wakeup_ours = False  # the self-socket is in the chain of wakeup descriptors
        self._transports: "weakref.WeakSet[Any]" = weakref.WeakSet()  # socket and datagram transports
        self._readiness: "Optional[_ReadinessThread]" = None  # add_reader/add_writer, made at first use
        self._ssock, self._csock = socket.socketpair()
        self._ssock.setblocking(False)
        self._csock.setblocking(False)
        self._internal_fds += 1
        self._self_buf = bytearray(4096)
        self._self_op: Optional[Op] = self._px.recv(self._ssock, self._self_buf, self._on_self_read)

    @property
    def proactor(self) -> Proactor:
        """The :class:`~overlapio.Proactor` this loop runs on."""
        return self._px

    @property
    def backend_name(self) -> str:
        return self._px.backend_name

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} backend={self._px.backend_name} running={self.is_running()} "
                f"closed={self.is_closed()} debug={self.get_debug()}>")

    # -- the loop's own machinery ---------------------------------------------------
    def call_soon(self, /, callback: Any, *args: Any, context: Any = None) -> events.Handle:
        # BaseEventLoop.call_soon with two Python calls fewer out of debug mode: a task
        # woken by a future (a stream's read, per message) is scheduled through here.
        # (self is positional-only, which a bound call never notices: CPython 3.11's C
        # futures pass context= under a name that is not interned, which is matched by
        # comparing it with each parameter that a keyword may name; one fewer here.)
        if self._closed or self._debug:
            return super().call_soon(callback, *args, context=context)  # its checks, its errors
        handle = _new(_Handle)  # Handle.__init__ out of debug mode, inlined (a call fewer)
        if context is None:
            context = _copy_context()
        handle._context = context
        handle._loop = self
        handle._callback = callback
        handle._args = args
        handle._cancelled = False
        handle._repr = None
        handle._source_traceback = None
        self._ready.append(handle)
        return handle

    def _process_events(self, event_list: list) -> None:
        pass  # completions were dispatched inside Proactor.wait()

    def run_forever(self) -> None:
        try:
            super().run_forever()
        finally:
            # What callbacks run inside select() scheduled before one of them
            # stopped the loop (see _Selector.select): first in line next time.
            held = self._held_back
            if held:
                self._ready.extendleft(reversed(held))
                held.clear()

    def _write_to_self(self) -> None:
        # Any thread, or a signal handler: one byte on the self-socket completes the
        # recv op always pending on its other end, which ends Proactor.wait().
        csock = self._csock
        if csock is None:
            return
        try:
            csock.send(b"\0")
        except OSError:
            if self._debug:
                logger.debug("Failed to write a byte to the self-socket", exc_info=True)

    def _on_self_read(self, op: Op) -> None:
        if op.exception is None and op.result and self._self_op is op and not self._px.closed:
            self._px.resubmit(op)
        elif op.exception is not None and not isinstance(op.exception, OperationCancelled):
            self.call_exception_handler({"message": "Error on reading from the event loop self-socket",
                                         "exception": op.exception, "loop": self})

    def _submit_io(self, consume: Any, submit: Any, *operands: Any, reports_errors: bool = False) -> Op:
        """Submit an op for a transport or a server (``submit(*operands, callback,
        tag)``): each of its completions runs ``consume(op)`` as a handle of this loop
        (see _Selector), and ``px.resubmit(op)`` reuses op and handle alike.
        ``reports_errors``: ``consume``, a bound method, catches and reports whatever
        goes wrong in it (see _OpHandle)."""
        handle = (_DirectOpHandle if reports_errors else _OpHandle)(consume, None, self, None)
        op = submit(*operands, None, handle)
        handle._args = (op,)
        if reports_errors:
            # (its function and object rather than the bound method: a call layer fewer per completion)
            handle._run = functools.partial(handle._context.run, consume.__func__, consume.__self__, op)
        return op

    def close(self) -> None:
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self.is_closed():
            return
        try:
            for sig in list(self._signal_handlers):
                self.remove_signal_handler(sig)
            self._self_op = None
            if self._readiness is not None:
                self._readiness.close()  # its thread ends here
                self._readiness = None
            for listener in list(self._accept_ops):
                self._stop_serving(listener)
            self._leftovers.clear()
            self._awaited.clear()  # the close below completes those ops, and no wait() will return them
            for transport in list(self._transports):
                transport._close_at_loop_close()
            self._px.close(self._ssock)
            self._px.close()  # every op still pending completes cancelled
            self._restore_wakeup_fd()  # a backend's own wakeup fd over ours was put back by its close
            csock, self._csock = self._csock, None
            csock.close()
            self._internal_fds -= 1
        finally:
            super().close()

    # -- awaitable ops ----------------------------------------------------------------
    def _follow(self, op: Op) -> asyncio.Future:
        """A future of ``op``'s result (``await op`` in this loop)."""
        if op.callback is not None:
            raise TypeError("await needs an op submitted without a callback; this one's completion goes to "
                            f"{op.callback!r}")
        fut = _OpFuture(self, op)
        if op.done:
            _settle_future(fut, op)
            return fut
        other = self._awaited.get(op)
        if other is not None and not other.done():
            raise RuntimeError(f"{op!r} is already awaited")
        self._awaited[op] = fut
        return fut

    def _submit(self, submit: Any, *args: Any) -> _OpFuture:
        """Submit an op whose completion settles a new future (inside wait())."""
        fut = _OpFuture(self)
        fut._op = submit(*args, self._settle, fut)
        return fut

    def _settle(self, op: Op) -> None:
        fut = op.tag
        if fut.cancelled():
            self._keep_leftover(op)
        elif op.kind is OpKind.RECV and op.sock in self._leftovers and op.exception is None:
            # A cancelled recv's data came in before this recv's: hand over the
            # earlier bytes first and keep these behind them.
            view = memoryview(op.buf).cast("B")
            self._leftovers[op.sock].append(bytes(view[:op.result]))
            early = self._take_leftover(op.sock, view.nbytes)
            view[:len(early)] = early
            fut.set_result(len(early))
        elif op.kind is OpKind.RECVFROM and op.sock in self._leftovers and op.exception is None:
            # A cancelled recvfrom's datagram came in before this one: the earlier first.
            self._keep_leftover(op)
            fut.set_result(self._take_datagram(op.sock, op.buf))
        else:
            _settle_future(fut, op)

    def _keep_leftover(self, op: Op) -> None:
        """An op completed with its result although its sock_* call was cancelled
        (the OS finished it first): keep what it brought for the next call."""
        if op.exception is not None:
            return
        if op.kind is OpKind.RECV and op.result:
            self._leftovers.setdefault(op.sock, deque()).append(bytes(memoryview(op.buf)[:op.result]))
        elif op.kind is OpKind.RECVFROM:
            self._leftovers.setdefault(op.sock, deque()).append((bytes(memoryview(op.buf)[:op.nbytes]),
                                                                 op.result.address))
        elif op.kind is OpKind.ACCEPT:
            self._leftovers.setdefault(op.sock, deque()).append(op.result)

    def _take_leftover(self, sock: socket.socket, limit: int = 0) -> Any:
        queue = self._leftovers.get(sock)
        if not queue:
            return None
        item = queue.popleft()
        if limit and len(item) > limit:
            queue.appendleft(item[limit:])
            item = item[:limit]
        if not queue:
            del self._leftovers[sock]
        return item

    def _take_datagram(self, sock: socket.socket, buf: Any) -> Any:
        """The oldest kept datagram copied into ``buf`` (cut to fit, as the OS
        cuts one): ``(nbytes, address)``, or None if none is kept."""
        item = self._take_leftover(sock)
        if item is None:
            return None
        data, address = item
        view = memoryview(buf).cast("B")
        n = min(len(data), view.nbytes)
        view[:n] = data[:n]
        return n, address

    # -- sock_* coroutines ----------------------------------------------------------------
    def _check_sock(self, sock: socket.socket) -> None:
        base_events._check_ssl_socket(sock)
        if self._debug and sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")

    async def sock_recv(self, sock: socket.socket, n: int) -> bytes:
        self._check_sock(sock)
        early = self._take_leftover(sock, n)
        if early is not None:
            return early
        buf = bytearray(n)
        got = await self._submit(self._px.recv, sock, buf)
        return bytes(buf[:got])

    async def sock_recv_into(self, sock: socket.socket, buf: Any) -> int:
        self._check_sock(sock)
        view = memoryview(buf).cast("B")
        early = self._take_leftover(sock, view.nbytes)
        if early is not None:
            view[:len(early)] = early
            return len(early)
        return await self._submit(self._px.recv, sock, buf)

    async def sock_sendall(self, sock: socket.socket, data: Any) -> None:
        self._check_sock(sock)
        await self._submit(self._px.send, sock, data)

    async def sock_connect(self, sock: socket.socket, address: Any) -> None:
        self._check_sock(sock)
        if sock.family not in (socket.AF_INET, getattr(socket, "AF_INET6", None)):
            raise _unsupported(f"sock_connect on {sock.family!r} sockets (overlapio connects TCP sockets)")
        resolved = await self._ensure_resolved(address, family=sock.family, type=sock.type, proto=sock.proto,
                                               loop=self)
        # px.connect(address, callback, tag, *, sock): the address first, the socket by name
        await self._submit(functools.partial(self._px.connect, sock=sock), resolved[0][4])

    async def sock_accept(self, sock: socket.socket) -> tuple:
        self._check_sock(sock)
        early = self._take_leftover(sock)
        if early is not None:
            return early
        return await self._submit(self._px.accept, sock)

    async def sock_recvfrom(self, sock: socket.socket, bufsize: int) -> Any:
        buf = bytearray(bufsize)
        n, address = await self.sock_recvfrom_into(sock, buf)
        return bytes(buf[:n]), address

    async def sock_recvfrom_into(self, sock: socket.socket, buf: Any, nbytes: int = 0) -> Any:
        self._check_sock(sock)
        view = memoryview(buf).cast("B")
        if nbytes:
            view = view[:nbytes]
        early = self._take_datagram(sock, view)
        if early is not None:
            return early
        n, address = await self._submit(self._px.recvfrom, sock, view)
        return n, address

    async def sock_sendto(self, sock: socket.socket, data: Any, address: Any) -> int:
        self._check_sock(sock)
        resolved = await self._ensure_resolved(address, family=sock.family, type=sock.type, proto=sock.proto,
                                               loop=self)
        return await self._submit(self._px.sendto, sock, data, resolved[0][4])

    # -- transports and servers ---------------------------------------------------------
    def _make_socket_transport(self, sock: socket.socket, protocol: Any, waiter: Any = None, *,
                               extra: Any = None, server: Any = None) -> "_SocketTransport":
        return _SocketTransport(self, sock, protocol, waiter, extra, server)

    def _make_ssl_transport(self, rawsock: socket.socket, protocol: Any, sslcontext: Any, waiter: Any = None, *,
                            server_side: bool = False, server_hostname: Any = None, extra: Any = None,
                            server: Any = None, **timeouts: Any) -> Any:
        # asyncio's own TLS: an SSLProtocol between the socket transport and the
        # application protocol (which gets SSLProtocol's app transport).
        ssl_protocol = sslproto.SSLProtocol(self, protocol, sslcontext, waiter, server_side, server_hostname,
                                            **timeouts)
        _SocketTransport(self, rawsock, ssl_protocol, extra=extra, server=server)
        return ssl_protocol._app_transport

    def _start_serving(self, protocol_factory: Any, sock: socket.socket, sslcontext: Any = None, server: Any = None,
                       backlog: int = 100, ssl_handshake_timeout: Any = None, ssl_shutdown_timeout: Any = None) -> None:
        timeouts = {"ssl_handshake_timeout": ssl_handshake_timeout}
        if sys.version_info >= (3, 11):
            timeouts["ssl_shutdown_timeout"] = ssl_shutdown_timeout

        def on_accept(op: Op) -> None:
            if self._accept_ops.get(sock) is not op:
                # Stopped serving meanwhile: the op completed cancelled, or with a
                # connection the OS had accepted first, which nobody will serve.
                if op.exception is None and not self._px.closed:
                    self._px.close(op.result[0])
                return
            exc = op.exception
            if exc is not None:
                del self._accept_ops[sock]
                if isinstance(exc, OperationCancelled) or sock.fileno() < 0:
                    return
                if isinstance(exc, OSError) and exc.errno in _OUT_OF_RESOURCES:
                    self.call_exception_handler({"message": "socket.accept() out of system resource",
                                                 "exception": exc, "socket": trsock.TransportSocket(sock)})
                    self.call_later(_ACCEPT_PAUSE, accept_next)
                    return
                self.call_exception_handler({"message": "Accept failed on a socket", "exception": exc,
                                             "socket": trsock.TransportSocket(sock)})
                self._stop_serving(sock)
                return
            conn, addr = op.result
            try:
                protocol = protocol_factory()
                if sslcontext is not None:
                    self._make_ssl_transport(conn, protocol, sslcontext, server_side=True, extra={"peername": addr},
                                             server=server, **timeouts)
                else:
                    self._make_socket_transport(conn, protocol, extra={"peername": addr}, server=server)
            except (SystemExit, KeyboardInterrupt):
                self._px.close(conn)
                raise
            except BaseException as exc:
                self._px.close(conn)
                self.call_exception_handler({"message": "Error on transport creation for incoming connection",
                                             "exception": exc})
            self._px.resubmit(op)

        def accept_next() -> None:
            if self.is_closed() or sock.fileno() < 0:
                return
            self._accept_ops[sock] = self._submit_io(on_accept, self._px.accept, sock)

        accept_next()

    def _stop_serving(self, sock: socket.socket) -> None:
        self._accept_ops.pop(sock, None)
        if self._px.closed:
            sock.close()
        else:
            self._px.close(sock)  # the pending accept completes cancelled

    # -- signals ------------------------------------------------------------------------
    def add_signal_handler(self, sig: int, callback: Any, *args: Any) -> None:
        """Run ``callback(*args)`` in the loop when signal ``sig`` arrives (POSIX,
        main thread; as asyncio's Unix loop)."""
        if sys.platform == "win32":
            raise _unsupported("add_signal_handler on Windows (neither do asyncio's Windows loops)")
        if coroutines.iscoroutine(callback) or coroutines.iscoroutinefunction(callback):
            raise TypeError("coroutines cannot be used with add_signal_handler()")
        self._check_signal(sig)
        self._check_closed()
        if not self._signal_handlers:
            # The self-socket becomes the wakeup descriptor while handlers exist; the
            # one it replaces (a backend's own, say) is put back with the last.
            try:
                self._wakeup_prev = signal.set_wakeup_fd(self._csock.fileno())  # only the main thread may
            except (ValueError, OSError) as exc:
                raise RuntimeError(str(exc))
            self._wakeup_ours = True
        self._signal_handlers[sig] = events.Handle(callback, args, self, None)
        try:
            signal.signal(sig, self._handle_signal)
            signal.siginterrupt(sig, False)
        except OSError as exc:
            del self._signal_handlers[sig]
            if not self._signal_handlers:
                self._restore_wakeup_fd()
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig:d} cannot be caught")
            raise

    def _restore_wakeup_fd(self) -> None:
        """Put back the wakeup descriptor ours replaced, if ours is the current one.
        If another was installed over ours since (the Winsock backend installs its
        own at its first blocking wait), leave it: its owner puts ours back when it
        is done, and close() then finishes the job."""
        if not self._wakeup_ours:
            return
        try:
            current = signal.set_wakeup_fd(self._wakeup_prev)
            if current == self._csock.fileno():
                self._wakeup_ours = False
            else:
                signal.set_wakeup_fd(current)
        except (ValueError, OSError) as exc:
            logger.info("restoring the wakeup fd failed: %s", exc)

    def _handle_signal(self, sig: int, frame: Any = None) -> None:
        handle = self._signal_handlers.get(sig)
        if handle is None:
            return
        if handle._cancelled:
            self.remove_signal_handler(sig)
        else:
            self._add_callback_signalsafe(handle)

    def remove_signal_handler(self, sig: int) -> bool:
        if sys.platform == "win32":
            raise _unsupported("remove_signal_handler on Windows")
        self._check_signal(sig)
        if self._signal_handlers.pop(sig, None) is None:
            return False
        handler = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
        try:
            signal.signal(sig, handler)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig:d} cannot be caught")
            raise
        if not self._signal_handlers:
            self._restore_wakeup_fd()
        return True

    def _check_signal(self, sig: int) -> None:
        if not isinstance(sig, int):
            raise TypeError(f"sig must be an int, not {sig!r}")
        if sig not in signal.valid_signals():
            raise ValueError(f"invalid signal number {sig}")

    # -- readiness callbacks ---------------------------------------------------------------
    def add_reader(self, fd: Any, callback: Any, *args: Any) -> None:
        """Run ``callback(*args)`` in the loop whenever ``fd`` (a descriptor or an
        object with ``fileno()``) is readable; replaces an earlier reader of ``fd``."""
        self._readiness_set(0, fd, callback, args)

    def remove_reader(self, fd: Any) -> bool:
        return self._readiness_remove(0, fd)

    def add_writer(self, fd: Any, callback: Any, *args: Any) -> None:
        """Run ``callback(*args)`` in the loop whenever ``fd`` is writable."""
        self._readiness_set(1, fd, callback, args)

    def remove_writer(self, fd: Any) -> bool:
        return self._readiness_remove(1, fd)

    def _readiness_set(self, which: int, fd: Any, callback: Any, args: tuple) -> None:
        self._check_closed()
        fd = _fd_of(fd)
        if coroutines.iscoroutine(callback) or coroutines.iscoroutinefunction(callback):
            raise TypeError(f"coroutines cannot be used as readiness callbacks, not {callback!r}")
        if self._readiness is None:
            self._readiness = _ReadinessThread(self)  # started at the first use only
        self._readiness.set(which, fd, events.Handle(callback, args, self, None))

    def _readiness_remove(self, which: int, fd: Any) -> bool:
        if self.is_closed() or self._readiness is None:
            return False
        return self._readiness.remove(which, _fd_of(fd))

    # -- datagrams -----------------------------------------------------------------------
    async def create_datagram_endpoint(self, protocol_factory: Any, local_addr: Any = None, remote_addr: Any = None,
                                       **kwargs: Any) -> Any:
        """asyncio's ``create_datagram_endpoint`` (every parameter), over this
        loop's recvfrom and sendto ops."""
        self._check_datagrams()  # before a socket is made: a backend without them raises at once
        return await super().create_datagram_endpoint(protocol_factory, local_addr, remote_addr, **kwargs)

    def _check_datagrams(self) -> None:
        for op in ("recvfrom", "sendto"):
            try:
                self._px._check_backend_has(op)
            except NotImplementedError:
                raise _unsupported(f"datagram endpoints on the {self._px.backend_name!r} backend (it has no "
                                   f"{op} op)") from None

    def _make_datagram_transport(self, sock: socket.socket, protocol: Any, address: Any = None, waiter: Any = None,
                                 extra: Any = None) -> "_DatagramTransport":
        self._check_datagrams()
        return _DatagramTransport(self, sock, protocol, address, waiter, extra)

    # -- what this loop does not do --------------------------------------------------------
    async def create_unix_connection(self, *args: Any, **kwargs: Any) -> Any:
        raise _unsupported("create_unix_connection (AF_UNIX sockets)")

    async def create_unix_server(self, *args: Any, **kwargs: Any) -> Any:
        raise _unsupported("create_unix_server (AF_UNIX sockets)")

    async def connect_read_pipe(self, protocol_factory: Any, pipe: Any) -> Any:
        raise _unsupported("connect_read_pipe (pipes)")

    async def connect_write_pipe(self, protocol_factory: Any, pipe: Any) -> Any:
        raise _unsupported("connect_write_pipe (pipes)")

    async def subprocess_exec(self, *args: Any, **kwargs: Any) -> Any:
        raise _unsupported("subprocesses (subprocess_exec, asyncio.create_subprocess_exec)")

    async def subprocess_shell(self, *args: Any, **kwargs: Any) -> Any:
        raise _unsupported("subprocesses (subprocess_shell, asyncio.create_subprocess_shell)")

    def _make_read_pipe_transport(self, *args: Any, **kwargs: Any) -> Any:
        raise _unsupported("pipe transports")

    def _make_write_pipe_transport(self, *args: Any, **kwargs: Any) -> Any:
        raise _unsupported("pipe transports")

    async def _make_subprocess_transport(self, *args: Any, **kwargs: Any) -> Any:
        raise _unsupported("subprocesses")


class _OpTransport:
    """What the stream and the datagram transport share: the socket they close when
    nobody else did, and how a fatal error ends them. The class comes first in each
    transport's bases, so these methods take the place of asyncio's abstract ones."""

    _sock: Optional[socket.socket] = None  # also for __del__ of one whose __init__ failed
    _fatal_message = "Fatal error on transport"

    def __repr__(self) -> str:
        state = "closed" if self._sock is None else "closing" if self._closing else "open"
        fd = self._sock.fileno() if self._sock is not None else -1
        return f"<{type(self).__name__} fd={fd} {state} write_buffer={self.get_write_buffer_size()}>"

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if self._sock is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._sock.close()

    def _close_at_loop_close(self) -> None:
        # The loop is closing under a transport nobody closed: its socket is
        # closed now (asyncio's loops leave that to the garbage collector).
        if self._sock is not None:
            warnings.warn(f"unclosed transport {self!r} closed with its event loop", ResourceWarning, source=self)
            sock, self._sock = self._sock, None
            self._px.close(sock)

    def get_protocol(self) -> Any:
        return self._protocol

    def is_closing(self) -> bool:
        return self._closing

    def abort(self) -> None:
        self._force_close(None)

    def _fatal_error(self, exc: BaseException, message: Optional[str] = None) -> None:
        if isinstance(exc, OSError):
            if self._loop.get_debug():
                logger.debug("%r: %s", self, message or self._fatal_message, exc_info=True)
        else:
            self._loop.call_exception_handler({"message": message or self._fatal_message, "exception": exc,
                                               "transport": self, "protocol": self._protocol})
        self._force_close(exc)


class _SocketTransport(_OpTransport, transports._FlowControlMixin, transports.Transport):
    """A stream transport over overlapio ops: one recv op pending while reading,
    one send op in flight with the rest of the writes buffered behind it."""

    _start_tls_compatible = True
    _sendfile_compatible = constants._SendfileMode.FALLBACK

    def __init__(self, loop: EventLoop, sock: socket.socket, protocol: Any, waiter: Any = None, extra: Any = None,
                 server: Any = None) -> None:
        super().__init__(extra, loop)
        self._extra["socket"] = trsock.TransportSocket(sock)
        for key, get in (("sockname", sock.getsockname), ("peername", sock.getpeername)):
            if key not in self._extra:
                try:
                    self._extra[key] = get()
                except OSError:
                    self._extra[key] = None
        self._sock: Optional[socket.socket] = sock
        self._px = loop._px
        self._try_send = loop._px._backend.try_send  # (see write())
        self._protocol: Any = None
        self._buffered = False
        self.set_protocol(protocol)
        self._server = server
        self._closing = False  # close() or a fatal error: no more reading
        self._conn_lost = 0  # writes refused since the connection was lost (asyncio's warning counter)
        self._lost_called = False
        self._paused = False  # pause_reading()
        # The recv op, kept and resubmitted while the buffer it reads into stays the same
        # (a new one for a new buffer); _recv_pending while it is submitted.
        self._recv_op: Optional[Op] = None
        self._recv_pending = False
        # The protocol the pending recv's data goes straight to (the per-message path of
        # _read); None once anything since the recv was submitted makes that wrong:
        # pause_reading(), close(), a fatal error or set_protocol().
        self._deliver_to: Any = None
        self._own_view: Optional[memoryview] = None  # a Protocol's read buffer
        self._own_part: Optional[memoryview] = None  # its last slice given to data_received (see _read)
        self._own_len = 0  # the length of _own_part; 0: none (a message is never empty)
        self._held: deque = deque()  # bytes (and the end of stream, None) that came while reading was paused
        self._eof = False  # end of stream seen
        self._send_op: Optional[Op] = None
        self._sending = 0  # bytes in the send op in flight
        self._wbuf = bytearray()  # writes behind it
        self._eof_wanted = False  # write_eof(): shut down once the writes are out
        if server is not None:
            server._attach(self) if _SERVER_TAKES_TRANSPORT else server._attach()
        loop._transports.add(self)
        loop.call_soon(self._protocol.connection_made, self)
        loop.call_soon(self._read)
        if waiter is not None:
            loop.call_soon(futures._set_result_unless_cancelled, waiter, None)

    # -- BaseTransport ---------------------------------------------------------------
    def set_protocol(self, protocol: Any) -> None:
        self._protocol = protocol
        self._deliver_to = None
        self._buffered = isinstance(protocol, protocols.BufferedProtocol)

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._deliver_to = None
        if self._send_op is None and not self._wbuf:
            self._conn_lost += 1
            self._loop.call_soon(self._call_connection_lost, None)

    # -- reading -------------------------------------------------------------------
    def is_reading(self) -> bool:
        return not self._paused and not self._closing

    def pause_reading(self) -> None:
        # A recv already submitted stays pending; what it brings is held until
        # resume_reading() (no data_received() while paused).
        if self._closing or self._paused:
            return
        self._paused = True
        self._deliver_to = None
        if self._loop.get_debug():
            logger.debug("%r pauses reading", self)

    def resume_reading(self) -> None:
        if self._closing or not self._paused:
            return
        self._paused = False
        self._loop.call_soon(self._release_held)
        if self._loop.get_debug():
            logger.debug("%r resumes reading", self)

    def _read(self, op: Optional[Op] = None) -> None:
        """Hand what the recv ``op`` brought to the protocol (``None``: nothing came),
        then submit the next read if the transport is reading: one function, so that
        a message costs one call here. It is run straight from the ready queue (see
        _OpHandle) and so reports its own errors.

        A BufferedProtocol is asked for its buffer when the recv completes, just before
        buffer_updated(), as asyncio's loops do: if it gives the very buffer the recv
        went into (a fixed buffer; SSLProtocol), the bytes are there already; else they
        are copied into what it gives (see _recv_buffer)."""
        try:
            protocol = self._deliver_to
            if op is None:
                if self._recv_pending:
                    return
                op = self._recv_op
                buf = protocol = None
            else:
                n = op.nbytes  # a recv's nbytes is its result: 0 for an error and the end of stream
                if n and protocol is not None:
                    # The per-message path.
                    try:
                        if self._buffered:
                            buf = protocol.get_buffer(-1)
                            if buf is op.buf:
                                protocol.buffer_updated(n)
                            else:
                                buf = self._recv_buffer(protocol, _feed_buffered(protocol, buf, op.buf, n))
                        else:
                            buf = op.buf  # (_own_view: a Protocol reads into the transport's buffer)
                            # A slice of a memoryview costs as much as the copy: the last one
                            # is kept while messages keep their size.
                            part = self._own_part
                            if self._own_len != n:  # (an attribute costs less than len(part))
                                part = self._own_part = buf[:n]
                                self._own_len = n
                            protocol.data_received(part.tobytes())  # (bytes(part) costs more)
                    except (SystemExit, KeyboardInterrupt):
                        self._recv_pending = False
                        self._loop.call_soon(self._read)  # reading goes on once the loop runs again
                        raise
                    except BaseException as exc:
                        self._recv_pending = False
                        self._fatal_error(exc, "Fatal error: protocol.buffer_updated() call failed." if self._buffered
                                          else "Fatal error: protocol.data_received() call failed.")
                        return
                    if buf is op.buf and self._deliver_to is protocol:
                        # The usual case: the same protocol reads on into the same buffer,
                        # so the op goes again as it is (no new op, no new handle), and
                        # stays _recv_pending (read by nothing before this returns).
                        try:
                            self._px.resubmit(op)
                            return
                        except (SystemExit, KeyboardInterrupt):
                            self._recv_pending = False
                            raise
                        except BaseException as exc:
                            self._recv_pending = False
                            self._fatal_error(exc, "Fatal read error on socket transport")
                            return
                self._recv_pending = False
                if not n or protocol is None:
                    if not self._received_otherwise(op, n):
                        return
                    buf = None
            # Read on. (_deliver_to still the protocol: nothing since the recv stopped reading.)
            if buf is None or self._deliver_to is not protocol:
                if self._closing or self._paused or self._eof or self._sock is None:
                    return
                protocol = self._protocol
                if self._buffered:
                    try:
                        buf = self._recv_buffer(protocol, protocol.get_buffer(-1))
                    except (SystemExit, KeyboardInterrupt):
                        raise
                    except BaseException as exc:
                        self._fatal_error(exc, "Fatal error: protocol.get_buffer() call failed.")
                        return
                else:
                    buf = self._own_buffer()
            try:
                if op is not None and op.buf is buf:
                    self._px.resubmit(op)
                else:
                    if op is not None:
                        op.tag = None  # done for good: no cycle through its handle
                    self._recv_op = self._loop._submit_io(self._read, self._px.recv, self._sock, buf,
                                                          reports_errors=True)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal read error on socket transport")
                return
            self._recv_pending = True
            self._deliver_to = protocol
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error on socket transport")

    def _own_buffer(self) -> memoryview:
        buf = self._own_view
        if buf is None:
            buf = self._own_view = memoryview(bytearray(_RECV_SIZE))
        return buf

    def _recv_buffer(self, protocol: Any, last: Any) -> Any:
        """The buffer the next recv of a BufferedProtocol goes into, ``last`` being what
        its get_buffer() gave last: its own buffer if get_buffer(-1) gives that same
        object again (the recv then fills it in place), else the transport's (copied
        from at completion), so that a buffer that moves (a view from a changing
        offset, a bytearray it resizes) is never held by a pending recv."""
        buf = protocol.get_buffer(-1)
        if not len(buf):
            raise RuntimeError("get_buffer() returned an empty buffer")
        return buf if buf is last else self._own_buffer()

    def _received_otherwise(self, op: Op, n: int) -> bool:
        """A recv that brought no data for the protocol it was submitted for, while
        reading: an error, the end of stream, data while paused, or data after
        set_protocol() switched protocols. True if reading goes on."""
        if op is not self._recv_op or self._closing:
            return False  # closed meanwhile: what it brought is dropped, as asyncio's loops do
        exc = op.exception
        if exc is not None:
            self._fatal_error(exc, "Fatal read error on socket transport")
            return False
        if n == 0:
            self._held.append(None) if self._paused else self._end_of_stream()
            return False
        # The bytes go to whoever reads next, in order.
        data = bytes(memoryview(op.buf)[:n])
        if self._paused:
            self._held.append(data)
            return False
        self._deliver(data)
        return True

    def _deliver(self, data: bytes) -> None:
        """Hand ``data`` to the current protocol (copied into its buffers for a
        BufferedProtocol)."""
        protocol = self._protocol
        try:
            if not self._buffered:
                protocol.data_received(data)
                return
            _feed_buffered(protocol, protocol.get_buffer(len(data)), data, len(data))
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol failed to take received data.")

    def _release_held(self) -> None:
        while self._held and not self._paused and not self._closing:
            data = self._held.popleft()
            if data is None:
                self._end_of_stream()
                return
            self._deliver(data)
        self._read()

    def _end_of_stream(self) -> None:
        self._eof = True
        if self._loop.get_debug():
            logger.debug("%r received EOF", self)
        try:
            keep_open = self._protocol.eof_received()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.eof_received() call failed.")
            return
        if not keep_open:
            self.close()

    # -- writing -------------------------------------------------------------------
    def get_write_buffer_size(self) -> int:
        return self._sending + len(self._wbuf)

    def write(self, data: Any) -> None:
        # The per-message case first: bytes or a flat memoryview (any format: the OS
        # call counts bytes), nothing queued, the connection up. The backend's
        # try_send takes such data as it is (one call, not Proactor.try_send's two);
        # whatever it raises is made what Proactor.try_send would raise. The type
        # and state tests are those of _write_other, which does everything else.
        kind = type(data)
        if kind is bytes:
            size = len(data)
        elif kind is memoryview and data.c_contiguous:
            size = data.nbytes
        elif kind is bytearray:
            size = len(data)
        else:
            size = 0
        if not size or self._send_op is not None or self._conn_lost or self._wbuf or self._eof_wanted:
            self._write_other(data)
            return
        send = self._try_send  # (a call through a local: LOAD_METHOD is not specialised for an instance attribute)
        try:
            try:
                sent = send(self._sock, data)
            except OSError as exc:
                raise self._px._try_send_failed(self._sock, exc)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal write error on socket transport")
            return
        if sent != size:
            self._send_rest(data, sent)

    def _write_other(self, data: Any) -> None:
        """write() of what its per-message case leaves: other data (empty, a strided
        view, a subclass), a queue, a write_eof(), a lost connection."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__!r}")
        if self._eof_wanted:
            raise RuntimeError("Cannot call write() after write_eof()")
        if self._send_op is None and not self._conn_lost and not self._wbuf:
            # Nothing queued: Proactor.try_send checks and flattens the data (and, for
            # empty data, which it takes none of, still checks the socket).
            try:
                sent = self._px.try_send(self._sock, data)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal write error on socket transport")
                return
            if sent != (data.nbytes if type(data) is memoryview else len(data)):
                self._send_rest(data, sent)
            return
        if not data:
            return
        if self._conn_lost:
            if self._conn_lost >= constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("socket.send() raised exception.")
            self._conn_lost += 1
            return
        self._wbuf += data
        self._maybe_pause_protocol()

    def _send_rest(self, data: Any, sent: int) -> None:
        """What the socket did not take of ``data`` at once goes in a send op."""
        self._wbuf += memoryview(data).cast("B")[sent:]
        self._send_buffered()
        self._maybe_pause_protocol()

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def _send_buffered(self) -> None:
        data, self._wbuf = self._wbuf, bytearray()  # the op owns it now; later writes go to a new one
        self._sending = len(data)
        try:
            self._send_op = self._loop._submit_io(self._on_sent, self._px.send, self._sock, data)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._sending = 0
            self._fatal_error(exc, "Fatal write error on socket transport")

    def _on_sent(self, op: Op) -> None:
        op.tag = None  # done for good: no cycle through its handle
        self._send_op = None
        self._sending = 0
        if self._sock is None or self._conn_lost:
            return  # (closed, or a forced close is on its way with its own exception)
        exc = op.exception
        if exc is not None:
            self._fatal_error(exc, "Fatal write error on socket transport")
            return
        if self._wbuf:
            self._send_buffered()
        self._maybe_resume_protocol()
        if self._send_op is not None or self._wbuf:
            return
        if self._closing:
            self._call_connection_lost(None)
        elif self._eof_wanted:
            self._shutdown_write()

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self._closing or self._eof_wanted:
            return
        self._eof_wanted = True
        if self._send_op is None and not self._wbuf:
            self._sock.shutdown(socket.SHUT_WR)

    def _shutdown_write(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            self._fatal_error(exc, "Fatal error on write_eof")

    # -- the end -------------------------------------------------------------------
    def _force_close(self, exc: Optional[BaseException]) -> None:
        if self._conn_lost:
            return
        self._wbuf.clear()
        self._closing = True
        self._deliver_to = None
        self._conn_lost += 1
        self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc: Optional[BaseException]) -> None:
        if self._lost_called:
            return
        self._lost_called = True
        self._conn_lost = max(self._conn_lost, 1)  # later writes are counted, not sent
        try:
            self._protocol.connection_lost(exc)
        finally:
            sock, self._sock = self._sock, None
            if self._px.closed:
                sock.close()
            else:
                self._px.close(sock)  # ops still pending on it complete cancelled
            # Drop every reference to the protocol and its buffers now: a completion
            # still queued (the recv that close cancelled) must not keep them alive.
            self._protocol = self._deliver_to = None
            for op in (self._recv_op, self._send_op):
                if op is not None:
                    op.tag = None  # a completion still to come is dropped; no cycle through the handle
            self._recv_op = self._send_op = None
            self._own_view = self._own_part = None
            self._own_len = 0
            self._held.clear()
            server, self._server = self._server, None
            if server is not None:
                server._detach(self) if _SERVER_TAKES_TRANSPORT else server._detach()


def _feed_buffered(protocol: Any, buf: Any, data: Any, n: int) -> Any:
    """Copy ``data[:n]`` into the buffers of the BufferedProtocol ``protocol``, ``buf``
    (from its get_buffer()) first, as many as it takes, calling buffer_updated() for
    each; returns the last buffer."""
    view = memoryview(data)[:n]
    while True:
        room = memoryview(buf).cast("B")
        if not room:
            raise RuntimeError("get_buffer() returned an empty buffer")
        k = min(len(room), len(view))
        room[:k] = view[:k]
        del room  # (the protocol may resize its buffer in buffer_updated())
        protocol.buffer_updated(k)
        view = view[k:]
        if not view:
            return buf
        buf = protocol.get_buffer(len(view))


class _DatagramTransport(_OpTransport, transports._FlowControlMixin, transports.DatagramTransport):
    """A datagram transport over overlapio ops: a few recvfrom ops pending while
    open, and one sendto op per datagram sent (the Proactor sends them in order)."""

    _fatal_message = "Fatal error on datagram transport"

    def __init__(self, loop: EventLoop, sock: socket.socket, protocol: Any, address: Any = None, waiter: Any = None,
                 extra: Any = None) -> None:
        super().__init__(extra, loop)
        self._extra["socket"] = trsock.TransportSocket(sock)
        for key, get in (("sockname", sock.getsockname), ("peername", sock.getpeername)):
            if key not in self._extra:
                try:
                    self._extra[key] = get()
                except OSError:
                    self._extra[key] = None
        self._sock: Optional[socket.socket] = sock
        self._px = loop._px
        self._protocol = protocol
        self._address = address  # remote_addr: the only address sendto() takes
        self._closing = False
        self._conn_lost = 0
        self._lost_called = False
        self._recvs: "list[Op]" = []  # the pending recvfrom ops
        self._sending = 0  # bytes in sendto ops not completed yet
        self._sends = 0  # those ops
        loop._transports.add(self)
        loop.call_soon(self._protocol.connection_made, self)
        loop.call_soon(self._start_reading)  # only once connection_made() ran
        if waiter is not None:
            loop.call_soon(futures._set_result_unless_cancelled, waiter, None)

    def set_protocol(self, protocol: Any) -> None:
        self._protocol = protocol

    def get_write_buffer_size(self) -> int:
        return self._sending

    # -- receiving ---------------------------------------------------------------------
    def _start_reading(self) -> None:
        for _ in range(_DATAGRAM_RECVS):
            self._recv_next(bytearray(_DATAGRAM_SIZE))

    def _recv_next(self, buf: bytearray) -> None:
        if self._closing or self._sock is None:
            return
        try:
            self._recvs.append(self._loop._submit_io(self._on_recvfrom, self._px.recvfrom, self._sock, buf))
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal read error on datagram transport")

    def _on_recvfrom(self, op: Op) -> None:
        op.tag = None  # done for good (the next recvfrom is a new op): no cycle through its handle
        if self._sock is None or self._closing:
            return  # closed meanwhile: the datagram is dropped, as asyncio's loops do
        self._recvs.remove(op)
        exc = op.exception
        if exc is not None and not isinstance(exc, OSError):
            self._fatal_error(exc, "Fatal read error on datagram transport")
            return
        try:
            if exc is None:
                self._protocol.datagram_received(bytes(memoryview(op.buf)[:op.nbytes]), op.result.address)
            else:
                self._protocol.error_received(exc)
        except (SystemExit, KeyboardInterrupt):
            self._loop.call_soon(self._recv_next, op.buf)
            raise
        except BaseException as exc:
            # Reported, and receiving goes on, as asyncio's loops do.
            self._report(exc, "Fatal error: protocol.datagram_received() call failed." if op.exception is None
                         else "Fatal error: protocol.error_received() call failed.")
        self._recv_next(op.buf)

    def _report(self, exc: BaseException, message: str) -> None:
        self._loop.call_exception_handler({"message": message, "exception": exc, "transport": self,
                                           "protocol": self._protocol})

    # -- sending -----------------------------------------------------------------------
    def sendto(self, data: Any, addr: Any = None) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__!r}")
        if not data and sys.version_info < (3, 13):
            return  # (asyncio sends an empty datagram from 3.13 on, and nothing before)
        if self._address:
            if addr not in (None, self._address):
                raise ValueError(f"Invalid address: must be None or {self._address}")
            addr = self._address
        elif addr is None:
            addr = self._extra["peername"]  # a socket connected before it was handed over (sock=)
        if self._conn_lost:
            if self._conn_lost >= constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("socket.sendto() raised exception.")
            self._conn_lost += 1
            return
        data = bytes(data)  # the op owns it: the caller may reuse theirs at once
        try:  # (a bad address raises its TypeError/ValueError to the caller)
            self._loop._submit_io(self._on_sent, self._px.sendto, self._sock, data, addr)
        except OSError as exc:
            self._protocol.error_received(exc)
            return
        self._sends += 1
        self._sending += len(data)
        self._maybe_pause_protocol()

    def _on_sent(self, op: Op) -> None:
        op.tag = None  # done for good: no cycle through its handle
        self._sends -= 1
        self._sending -= len(op.buf)
        if self._sock is None or self._conn_lost:
            return  # (closed, or a forced close is on its way with its own exception)
        exc = op.exception
        if isinstance(exc, OSError) and not isinstance(exc, OperationCancelled):
            try:
                self._protocol.error_received(exc)  # (connection refused on a connected socket, say)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc2:
                self._report(exc2, "Fatal error: protocol.error_received() call failed.")
        elif exc is not None and not isinstance(exc, OSError):
            self._fatal_error(exc, "Fatal write error on datagram transport")
            return
        self._maybe_resume_protocol()
        if self._closing and not self._sends:
            self._call_connection_lost(None)

    # -- the end -------------------------------------------------------------------------
    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if not self._sends:  # else the last send's completion ends it
            self._conn_lost += 1
            self._loop.call_soon(self._call_connection_lost, None)

    def _force_close(self, exc: Optional[BaseException]) -> None:
        if self._conn_lost:
            return
        self._closing = True
        self._conn_lost += 1
        self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc: Optional[BaseException]) -> None:
        if self._lost_called:
            return
        self._lost_called = True
        self._conn_lost = max(self._conn_lost, 1)
        try:
            self._protocol.connection_lost(exc)
        finally:
            sock, self._sock = self._sock, None
            if self._px.closed:
                sock.close()
            else:
                self._px.close(sock)  # pending recvfroms (and sends, on abort) complete cancelled
            self._protocol = None
            for op in self._recvs:
                op.tag = None  # their cancelled completions are dropped; no cycle through the handle
            self._recvs.clear()


def _fd_of(fileobj: Any) -> int:
    """The descriptor of ``fileobj`` (an int, or an object with ``fileno()``)."""
    if isinstance(fileobj, int):
        fd = fileobj
    else:
        try:
            fd = int(fileobj.fileno())
        except (AttributeError, TypeError, ValueError):
            raise ValueError(f"Invalid file object: {fileobj!r}") from None
    if fd < 0:
        raise ValueError(f"Invalid file descriptor: {fd}")
    return fd


class _ReadinessThread:
    """``add_reader``/``add_writer``: a selector on a thread of its own (made at
    the first ``add_*`` call), as tornado and pyzmq add readiness to asyncio's
    ProactorEventLoop. The thread waits for readiness on the descriptors the loop
    registered, hands the ready ones to the loop (``call_soon_threadsafe``) and
    waits until the loop ran their callbacks before it selects again, so a
    callback that consumes the data is never reported twice for it. The tables
    belong to the loop thread; the thread reads them under the lock, and a change
    wakes its select to take it."""

    selector_class = selectors.DefaultSelector  # (select() on Windows; tests try that one everywhere)

    def __init__(self, loop: EventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._tables: "tuple[dict[int, events.Handle], dict[int, events.Handle]]" = ({}, {})  # readers, writers
        # Descriptors removed or replaced since the thread last took the tables: it
        # unregisters them first, as their number may now name another file (epoll
        # drops a closed descriptor by itself, and the new one would go unwatched).
        self._removed: "set[int]" = set()
        self._closing = False
        self._go = threading.Event()  # set: the thread may select (the loop ran what it reported)
        self._go.set()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._thread = threading.Thread(target=self._run, name="overlapio-asyncio-readiness", daemon=True)
        self._thread.start()

    # -- the loop thread -------------------------------------------------------------------
    def set(self, which: int, fd: int, handle: events.Handle) -> None:
        if fd not in self._tables[0] and fd not in self._tables[1]:
            self._check(fd)
        with self._lock:
            old = self._tables[which].get(fd)
            self._tables[which][fd] = handle
            if old is not None:
                self._removed.add(fd)
        if old is not None:
            old.cancel()
        self._wake()

    def remove(self, which: int, fd: int) -> bool:
        with self._lock:
            handle = self._tables[which].pop(fd, None)
            if handle is not None:
                self._removed.add(fd)
        if handle is None:
            return False
        handle.cancel()
        self._wake()  # before the caller closes fd: the thread must stop watching it
        return True

    def close(self) -> None:
        with self._lock:
            self._closing = True
            handles = [h for table in self._tables for h in table.values()]
            for table in self._tables:
                table.clear()
        for handle in handles:
            handle.cancel()
        self._go.set()
        self._wake()
        self._thread.join()
        self._wake_r.close()
        self._wake_w.close()

    def _check(self, fd: int) -> None:
        """Raise here, as asyncio's loops do, for a descriptor the thread's selector
        would refuse (closed: EBADF; a regular file under epoll: EPERM)."""
        os.fstat(fd)
        selector = self.selector_class()
        try:
            selector.register(fd, selectors.EVENT_READ)
        finally:
            selector.close()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:  # full: a wake-up is pending anyway
            pass

    def _dispatch(self, ready: list) -> None:
        try:
            for fd, mask, reported in ready:
                for which, flag in ((0, selectors.EVENT_READ), (1, selectors.EVENT_WRITE)):
                    # Only the handle the readiness was seen for: since then an earlier
                    # callback may have removed it, or the descriptor may have been
                    # closed and its number reused, with a new handle that this
                    # readiness says nothing about (it is watched, and reported, anew).
                    handle = self._tables[which].get(fd)
                    if mask & flag and handle is not None and handle is reported[which] and not handle._cancelled:
                        handle._run()
        finally:
            self._go.set()

    # -- the selector thread ---------------------------------------------------------------
    def _run(self) -> None:
        selector = self.selector_class()
        selector.register(self._wake_r, selectors.EVENT_READ)
        watched: "dict[int, int]" = {}  # fd -> events registered in the selector
        closed: "set[int]" = set()  # registered descriptors found closed: left out until removed
        try:
            while True:
                self._go.wait()
                with self._lock:
                    if self._closing:
                        return
                    handles = (dict(self._tables[0]), dict(self._tables[1]))  # what this select watches for
                    removed, self._removed = self._removed, set()
                want = dict.fromkeys(handles[0], selectors.EVENT_READ)
                for fd in handles[1]:
                    want[fd] = want.get(fd, 0) | selectors.EVENT_WRITE
                for fd in removed:  # (maybe another file by now: registered anew below if wanted)
                    closed.discard(fd)
                    if watched.pop(fd, None) is not None:
                        _unregister(selector, fd)
                closed &= want.keys()
                _sync(selector, watched, {fd: mask for fd, mask in want.items() if fd not in closed})
                try:
                    events_ = selector.select()
                except OSError:  # a descriptor closed under select() (select()-based selectors)
                    closed |= _drop_closed(selector, watched)
                    continue
                ready = []
                for key, mask in events_:
                    if key.fileobj is self._wake_r:
                        try:
                            while self._wake_r.recv(4096):
                                pass
                        except OSError:
                            pass
                    else:
                        ready.append((key.fd, mask, (handles[0].get(key.fd), handles[1].get(key.fd))))
                if ready:
                    with self._lock:  # (close() sets _closing under it, then _go: never lost here)
                        if self._closing:
                            return
                        self._go.clear()
                    try:
                        self._loop.call_soon_threadsafe(self._dispatch, ready)
                    except RuntimeError:  # the loop is closed
                        return
        except BaseException as exc:
            try:
                self._loop.call_soon_threadsafe(self._loop.call_exception_handler, {
                    "message": "add_reader/add_writer: the selector thread failed and stopped", "exception": exc})
            except RuntimeError:  # the loop is closed
                pass
        finally:
            selector.close()


def _unregister(selector: selectors.BaseSelector, fd: int) -> None:
    try:
        selector.unregister(fd)
    except (KeyError, ValueError, OSError):
        pass


def _sync(selector: selectors.BaseSelector, watched: "dict[int, int]", want: "dict[int, int]") -> None:
    """Make the selector watch ``want`` (fd -> events); a descriptor the OS
    refuses (closed) is left out."""
    for fd in [fd for fd in watched if fd not in want]:
        del watched[fd]
        _unregister(selector, fd)
    for fd, mask in want.items():
        if watched.get(fd) == mask:
            continue
        try:
            if fd in watched:
                selector.modify(fd, mask)
            else:
                selector.register(fd, mask)
            watched[fd] = mask
        except (KeyError, ValueError, OSError):
            watched.pop(fd, None)
            _unregister(selector, fd)


def _drop_closed(selector: selectors.BaseSelector, watched: "dict[int, int]") -> "set[int]":
    """Unregister the descriptors that were closed; returns them."""
    gone = set()
    for fd in list(watched):
        try:
            select.select([fd], [], [], 0)
        except (OSError, ValueError):
            gone.add(fd)
            del watched[fd]
            _unregister(selector, fd)
    return gone


# -- entry points -------------------------------------------------------------------------
def op_future(op: Op) -> asyncio.Future:
    """A future of ``op``'s result in the running overlapio event loop: what
    ``await op`` waits on. ``op`` must have been submitted without a callback to
    that loop's Proactor (``loop.proactor``). Cancelling the future cancels the
    op as ``Proactor.cancel`` does; whatever the op completes with (a result that
    beat the cancel, or a cancelled send's ``nbytes``) stays on the op."""
    loop = events.get_running_loop()
    if not isinstance(loop, EventLoop):
        raise RuntimeError(f"awaiting an overlapio op needs overlapio's event loop, not {type(loop).__name__} "
                           "(use overlapio.asyncio.run)")
    return loop._follow(op)


def new_event_loop(backend: Any = None) -> EventLoop:
    """A new :class:`EventLoop` on ``backend`` (as ``Proactor(backend)`` takes it)."""
    return EventLoop(backend)


class EventLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """An event-loop policy whose loops are :class:`EventLoop` s on ``backend``:
    ``asyncio.set_event_loop_policy(overlapio.asyncio.EventLoopPolicy())``."""

    def __init__(self, backend: Any = None) -> None:
        super().__init__()
        self._backend = backend

    def new_event_loop(self) -> EventLoop:
        return EventLoop(self._backend)


def run(main: Any, *, backend: Any = None, debug: Optional[bool] = None) -> Any:
    """``asyncio.run(main)`` on an overlapio :class:`EventLoop` over ``backend``
    (a name, a Backend class, or ``None`` for the default): runs the coroutine,
    then cancels the tasks left, finishes async generators and the default
    executor, and closes the loop. Ctrl-C raises ``KeyboardInterrupt`` as
    ``asyncio.run`` does."""
    factory = functools.partial(EventLoop, backend)
    if sys.version_info >= (3, 11):
        with asyncio.Runner(debug=debug, loop_factory=factory) as runner:
            return runner.run(main)
    return _run_310(main, factory, debug)


def _run_310(main: Any, factory: Any, debug: Optional[bool]) -> Any:
    """``asyncio.run`` of Python 3.10 (which has no ``Runner``), on ``factory()``."""
    if events._get_running_loop() is not None:
        raise RuntimeError("overlapio.asyncio.run() cannot be called from a running event loop")
    if not coroutines.iscoroutine(main):
        raise ValueError(f"a coroutine was expected, got {main!r}")
    loop = factory()
    try:
        events.set_event_loop(loop)
        if debug is not None:
            loop.set_debug(debug)
        return loop.run_until_complete(main)
    finally:
        try:
            to_cancel = asyncio.all_tasks(loop)
            for task in to_cancel:
                task.cancel()
            if to_cancel:
                loop.run_until_complete(asyncio.gather(*to_cancel, return_exceptions=True))
                for task in to_cancel:
                    if not task.cancelled() and task.exception() is not None:
                        loop.call_exception_handler({"message": "unhandled exception during overlapio.asyncio.run() "
                                                     "shutdown", "exception": task.exception(), "task": task})
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            events.set_event_loop(None)
            loop.close()
