"""``Proactor``: submit ops, get their completions.

It owns one backend, the queue of finished Ops, the timer heap and the queue of
posts from other threads. Completions are consumed either way, same engine:

- pull: ``for op in px.wait(timeout): ...`` (ops without a callback are returned)
- push: ``px.recv(sock, buf, callback=on_recv); px.run()``
"""
from __future__ import annotations

import errno
import heapq
import inspect
import itertools
import socket
import sys
import warnings
import weakref
from threading import get_ident
from collections import deque
from time import monotonic
from typing import Any, Callable, Optional

from . import interrupts
from .backend import Backend
from .errors import OperationCancelled, ProactorClosedError, normalize
from .op import _PENDING, Callback, Op, OpKind, new_op
from .registry import default_backend, load_backend
from .resolver import Resolver
from .trace import Tracer

__all__ = ["Proactor"]

_SOCKET_TYPE = socket.socket
# The per-message paths test a socket.socket's own record of being closed, its
# _closed (set by close(), detach() and leaving a with block): one slot read, where
# fileno() is a call CPython 3.11 does not specialise on a subclass of _socket.socket
# (~400 instructions). Once set, _check_sock asks fileno() itself (close() leaves the
# descriptor open while a makefile() file still uses it).
# On Windows SO_REUSEADDR lets a second socket bind a port in use (as in
# socket.create_server, it is left off there; TIME_WAIT does not block a bind).
_REUSEADDR_IS_SAFE = sys.platform != "win32"
_MAX_POLL = 86400.0  # seconds: the longest single OS wait
_PASSES = 4  # a dispatch hands over at most 4x the ops ready when it began (see _dispatch)
_COMPACT_MIN = 128  # timer heap size below which it is never rebuilt without its dead entries (see _push_timer)
_ACCEPTCONN = getattr(socket, "SO_ACCEPTCONN", None)  # (None where the OS cannot say: accept() then trusts)
_PEEK = socket.MSG_PEEK | getattr(socket, "MSG_DONTWAIT", 0)


class _Timeout:
    """The record of one submission's ``timeout=``. While that submission is in
    flight it is the op's ``_inflight`` (in place of the Proactor, which it names):
    every submission writes ``_inflight`` anyway, so a resubmit kills the last
    submission's timer at no cost, and an op without a timeout pays nothing.
    ``error`` is the TimeoutError once the timer has fired (the op's cancel is
    then under way)."""

    __slots__ = ("proactor", "seconds", "error")

    def __init__(self, proactor: Any, seconds: float) -> None:
        self.proactor = proactor
        self.seconds = seconds
        self.error: Optional[TimeoutError] = None


def _owner(op: Op) -> Any:
    """The Proactor ``op`` is in flight in, or None once it surfaced."""
    inflight = op._inflight
    return inflight.proactor if type(inflight) is _Timeout else inflight


_GUARD_UNSET = object()  # Proactor._ki before the first safe point


class _Omitted:
    """close()'s "no argument" marker (close(None) is a mistake, not "close the
    Proactor"); its repr is what help() shows."""

    def __repr__(self) -> str:
        return "<omitted>"


_NO_SOCK = _Omitted()

_SEND, _RECV, _ACCEPT, _CONNECT, _SLEEP, _POST, _READABLE = (
    OpKind.SEND, OpKind.RECV, OpKind.ACCEPT, OpKind.CONNECT, OpKind.SLEEP, OpKind.POST, OpKind.READABLE,
)
_SHUTDOWN, _RECVFROM, _SENDTO, _RESOLVE = OpKind.SHUTDOWN, OpKind.RECVFROM, OpKind.SENDTO, OpKind.RESOLVE
_DGRAM = socket.SOCK_DGRAM
_SHUT_WR = socket.SHUT_WR  # (in the class body, `socket` is the method)
_MAX_BUFFERS = 1024  # buffers per multi-buffer op: IOV_MAX on Linux and the BSDs


class Proactor:
    """A completion-based I/O engine over one backend.

    ``Proactor(backend=None, *, trace=None)`` uses ``OVERLAPIO_BACKEND`` or the
    platform default (``winsock`` on Windows, ``posix`` elsewhere); ``backend`` may
    also be a name or a :class:`~overlapio.core.backend.Backend` subclass. Use it
    as a context manager, or call :meth:`close`. ``trace``, a callable taking one
    ``str``, gets a line for each op event (submitted, completed, surfaced, and a
    cancel or timeout asked for), with the op's kind, socket, bytes, the backend
    and the milliseconds since submission: ``trace=lambda line: print(line,
    file=sys.stderr)``. Without it, tracing costs nothing.

    Every submit method returns the :class:`Op` at once; the op completes exactly
    once, later, and surfaces only from :meth:`wait` or :meth:`run` (never inside
    the call that submitted it). Each also takes ``callback`` (called with the Op
    once it completes; without one, :meth:`wait` returns the Op) and ``tag``
    (anything, kept on ``op.tag``), by name or by position after the operands:
    ``px.recv(sock, buf, on_recv)``. A Proactor is used from one thread; only
    :meth:`post` and :meth:`stop` may be called from others.

    The I/O ops (:meth:`accept`, :meth:`connect`, :meth:`recv`, :meth:`send`,
    :meth:`readable`, :meth:`resubmit`) also take ``timeout`` (seconds, or ``None``): if the op is
    still pending then, it is cancelled and completes with ``TimeoutError``;
    if it finished first, its result stands. It covers that one submission
    only: ``px.recv(sock, buf, on_recv, timeout=3.0)``.
    """

    def __init__(self, backend: str | type[Backend] | None = None, *,
                 trace: Optional[Callable[[str], Any]] = None) -> None:
        cls = load_backend(backend or default_backend()) if not isinstance(backend, type) else backend
        # trace: one line per op event (see overlapio.core.trace). Off, nothing of it
        # is installed and the per-message path never asks.
        self._trace = None if trace is None else Tracer(trace, cls.name)
        self._ready: deque[Op] = deque() if self._trace is None else self._trace.queue
        # The timer heap: (deadline, submission number, op, timeout) entries; timeout
        # is None for a sleep, else the _Timeout of the op's timeout=. An entry whose
        # op is done, or whose op was submitted again since, is dead (see _armed).
        self._timers: list[tuple[float, int, Op, Optional[_Timeout]]] = []
        self._compact_at = _COMPACT_MIN
        self._seq = itertools.count()
        self._posted: "deque[tuple[Op, Any]]" = deque()  # (post op, its value), from any thread
        self._wake_sent = False
        self._pending = 0  # ops submitted (and posts collected) not yet dispatched
        self._closed = False
        self._close_done = False  # close() ran to its end (one cut short by Ctrl-C runs again)
        self._stopping = False
        self._polling = False  # inside backend.poll() (a signal handler may post then)
        # True once a KeyboardInterrupt was deferred (core/interrupts.py), raised at the
        # next safe point. It starts truthy: the first safe point sets the SIGINT guard
        # up instead, so that costs no test of its own.
        self._ki: Any = _GUARD_UNSET
        self._guarded: Any = None  # a user of the SIGINT guard: its release (None: not asked yet; False: not one)
        self._owned: "weakref.WeakSet[socket.socket]" = weakref.WeakSet()
        self._connect_socks: set[Op] = set()  # connect ops whose socket connect() made
        # Ops the core runs itself (resolve, a connect by host name): op -> what cancels it
        self._cancel_hooks: "dict[Op, Callable[[Op], None]]" = {}
        self._resolver: Optional[Resolver] = None  # started by the first resolve()
        self._thread = get_ident()  # the thread that waits (set again by wait() and run())
        self._backend: Backend = _make_backend(cls, self._complete, self._ready)
        self.backend_name: str = cls.name
        self._has_readable = cls.readable is not Backend.readable  # (a backend written before it has none)
        if self._trace is not None:
            self._trace.install(self)

    def __enter__(self) -> Proactor:
        """``with Proactor() as px:`` -- the Proactor itself."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the Proactor (see :meth:`close`), also when the block raised."""
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"pending={self.pending}"
        return f"<Proactor backend={self.backend_name} {state}>"

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    @property
    def pending(self) -> int:
        """Ops submitted and not yet completed (posts excluded)."""
        return self._pending - len(self._ready)  # every op in _ready (posts too) is counted in _pending

    # -- sockets -----------------------------------------------------------------
    def socket(self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM, proto: int = 0) -> socket.socket:
        """A new socket prepared for this backend (non-blocking on POSIX,
        overlapped on Windows). The Proactor closes it when it is closed itself."""
        self._check_open()
        sock = self._backend.socket(family, type, proto)
        self._owned.add(sock)
        return sock

    def listen(self, address: tuple, backlog: int = 128, *, reuse_address: bool = True,
               dualstack: bool = False) -> socket.socket:
        """A socket bound to ``address`` (``(host, port)``; port 0 picks a free
        one, see ``getsockname()``) and listening, ready for :meth:`accept`.
        ``dualstack=True`` (an IPv6 address, usually ``"::"``) takes IPv4
        clients too; their addresses come as IPv4-mapped IPv6
        (``("::ffff:127.0.0.1", port, 0, 0)``).

        Raises ``OSError`` at once if the address is in use or cannot be bound.
        """
        family = _family_of(address)
        sock = self.socket(family)
        try:
            if dualstack:
                _dualstack(sock)
            if reuse_address and _REUSEADDR_IS_SAFE:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            self._backend.listen(sock, backlog)
        except BaseException:
            sock.close()
            raise
        return sock

    # -- ops ---------------------------------------------------------------------
    def accept(self, listener: socket.socket, callback: Optional[Callback] = None, tag: Any = None,
               timeout: Optional[float] = None) -> Op:
        """Accept one connection on ``listener``; value ``(conn, address)``.

        ``conn`` is prepared for this backend and owned by the Proactor. A client
        that resets before it is accepted never fails the accept: the backend
        skips it, or (POSIX/Linux) hands it over and its first recv reports
        ``ConnectionResetError``.
        """
        self._check_sock(listener)
        _check_callback(callback)
        if _ACCEPTCONN is not None and not listener.getsockopt(socket.SOL_SOCKET, _ACCEPTCONN):
            # (else it would fail, or pend forever, only once a peer shows up)
            raise ValueError("accept needs a listening socket (made by listen(), or listen() called on it)")
        op = self._op(_ACCEPT, listener, tag, callback)
        self._count_in(op, timeout)
        self._backend.accept(op)
        return op

    def connect(self, address: tuple, callback: Optional[Callback] = None, tag: Any = None,
                timeout: Optional[float] = None, *, sock: Optional[socket.socket] = None) -> Op:
        """Connect to ``address`` (``(host, port)``); value: the connected socket.

        Without ``sock`` a new socket is made (and closed again if the connect
        fails). Given a datagram socket, it sets the socket's peer (``recv``
        and ``send`` then work on it, one datagram each) and completes at once.

        A host name is looked up first with :meth:`resolve` (off the loop's
        thread); a failed lookup completes the op with ``socket.gaierror``. The
        addresses are then tried in the order the lookup gave, one at a time
        (no Happy Eyeballs), each with a new socket; the op completes with the
        first that connects, or with the last one's error. With ``sock`` given,
        only the first address of its family is tried. Cancel and ``timeout=``
        end the lookup or the attempt under way.
        """
        self._check_open()
        _check_callback(callback)
        if sock is not None:
            self._check_sock(sock)
        if timeout is not None:
            _seconds("timeout", timeout)  # a bad timeout raises before anything happens
        if _needs_lookup(address):
            return self._connect_by_name(address, callback, tag, timeout, sock)
        sock_made = sock is None
        try:
            resolved = _resolve(address, sock.family if sock is not None else 0)
            if sock_made:
                sock = self.socket(_family_of(resolved))
        except OSError as exc:  # an unknown host, or out of descriptors: I/O errors, so a completion
            op = self._op(_CONNECT, sock, tag, callback)
            self._pending += 1
            self._complete(op, None, exc)
            return op
        op = self._op(_CONNECT, sock, tag, callback)
        if sock.type == _DGRAM:  # a datagram socket only records its peer: nothing to wait for
            self._pending += 1
            try:
                sock.connect(resolved)
            except OSError as exc:
                self._complete(op, None, normalize(exc))
            else:
                self._complete(op, sock, None)
            return op
        if sock_made:
            self._connect_socks.add(op)
        self._count_in(op, timeout)
        self._backend.connect(op, resolved)
        return op

    def _connect_by_name(self, address: tuple, callback: Optional[Callback], tag: Any,
                         timeout: Optional[float], sock: Optional[socket.socket]) -> Op:
        """connect() to a host name: a resolve op, then numeric connects in turn;
        ``op`` (what the caller holds) completes with the outcome. Its cancel hook
        cancels whichever inner op is under way, whose completion then ends it."""
        port = address[1]
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an int in 0..65535, not {port!r}")
        op = self._op(_CONNECT, sock, tag, callback)
        self._count_in(op, timeout)
        inner: list = [None]  # the resolve or connect op under way

        def finish(value: Any, error: Optional[BaseException]) -> None:
            self._cancel_hooks.pop(op, None)
            if value is not None:
                op.sock = value
            self._complete(op, value, error)

        def attempt(addresses: list, i: int, error: Optional[BaseException]) -> None:
            if i == len(addresses) or (sock is not None and i):
                finish(None, error or OSError(errno.EADDRNOTAVAIL, f"no address of {address[0]!r} to try"))
                return
            inner[0] = self.connect(addresses[i], lambda c: connected(c, addresses, i), sock=sock)

        def connected(c: Op, addresses: list, i: int) -> None:
            if op.done:  # closed meanwhile: a socket made for it has nobody to go to
                if c.exception is None and sock is None:
                    self.close(c.result)
                return
            if c.exception is None:
                finish(c.result, None)
            elif isinstance(c.exception, OperationCancelled):
                finish(None, c.exception)
            else:
                attempt(addresses, i + 1, c.exception)

        def resolved(r: Op) -> None:
            if op.done:
                return
            if r.exception is not None:
                finish(None, r.exception)
                return
            addresses: list = []
            for info in r.result:
                if info[4] not in addresses:
                    addresses.append(info[4])
            attempt(addresses, 0, None)

        inner[0] = self.resolve(address[0], address[1], sock.family if sock is not None else 0,
                                socket.SOCK_STREAM, callback=resolved)
        self._cancel_hooks[op] = lambda _: self.cancel(inner[0])
        return op

    def resolve(self, host: Optional[str], port: Any, family: int = 0, type: int = 0, proto: int = 0,
                flags: int = 0, callback: Optional[Callback] = None, tag: Any = None,
                timeout: Optional[float] = None) -> Op:
        """Look ``host`` up without blocking the loop: ``socket.getaddrinfo(host,
        port, family, type, proto, flags)`` runs on a small pool of worker
        threads and its answer comes back through :meth:`post`. Value: the list
        ``getaddrinfo`` returns, ``(family, type, proto, canonname, sockaddr)``
        tuples in its order; a failed lookup completes with ``socket.gaierror``.
        Cancel (and ``timeout=``) completes it at once; the lookup itself cannot
        be interrupted and its answer is dropped."""
        self._check_open()
        _check_callback(callback)
        if host is not None and not isinstance(host, str):
            raise TypeError(f"resolve needs a host name (str), not {host.__class__.__name__}")
        if port is not None and not isinstance(port, (int, str)) or isinstance(port, bool):
            raise TypeError(f"resolve needs a port (int or service name), not {port.__class__.__name__}")
        if isinstance(port, int) and not 0 <= port <= 65535:
            raise ValueError(f"port must be an int in 0..65535, not {port!r}")
        for name, value in (("family", family), ("type", type), ("proto", proto), ("flags", flags)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"resolve's {name} must be an int, not {value!r}")
        op = self._op(_RESOLVE, None, tag, callback)
        op.buf = (host, port)
        self._count_in(op, timeout)
        if self._resolver is None:
            self._resolver = Resolver()

        def deliver(value: Any, error: Optional[BaseException]) -> None:  # on a worker thread
            try:
                self.post((value, error), self._resolved, op)
            except ProactorClosedError:
                pass  # close() completed the op

        job = self._resolver.submit((host, port, family, type, proto, flags), deliver)

        def cancel(_: Op) -> None:
            Resolver.cancel(job)
            del self._cancel_hooks[op]
            self._complete(op, None, OperationCancelled("resolve cancelled"))

        self._cancel_hooks[op] = cancel
        return op

    def _resolved(self, post: Op) -> None:
        """A lookup's answer, posted by its worker (the post's tag is the resolve op)."""
        op = post.tag
        if not op.done:
            self._cancel_hooks.pop(op, None)
            value, error = post.result
            self._complete(op, value, error)

    def recv(self, sock: socket.socket, buf: Any, callback: Optional[Callback] = None, tag: Any = None,
             timeout: Optional[float] = None) -> Op:
        """Receive into the writable buffer ``buf``; value ``n`` with the data in
        ``buf[:n]``. ``0`` is end of stream, except for an empty ``buf``, which
        completes with 0 at once and reads nothing.

        Several pending recvs on one socket complete in submission order with the
        bytes in stream order. Do not resize ``buf`` while the op is pending.

        ``buf`` may be a list of writable buffers (at most 1024): one receive
        fills them in order (``recvmsg_into``; one WSARecv with several WSABUFs)
        and ``n`` counts the bytes over all of them.
        """
        if self._closed or type(sock) is not _SOCKET_TYPE or sock._closed:
            self._check_sock(sock)  # the full checks, for their messages
        if callback is not None and not callable(callback):
            _check_callback(callback)
        kind = type(buf)  # the common cases, checked without making a view:
        if kind is memoryview and not buf.readonly and buf.c_contiguous:
            size = buf.nbytes
        elif kind is bytearray:
            size = len(buf)
        elif kind is list:  # several buffers: off the per-message path
            return self._submit_vector(_RECV, sock, buf, callback, tag, timeout)
        else:
            size = _writable_size(buf)
        # Op(...), inlined: this and send() are the per-message path.
        op = new_op()
        op.kind = _RECV; op.sock = sock; op.buf = buf; op.tag = tag; op.callback = callback
        op.nbytes = 0; op._value = _PENDING; op._error = None; op._inflight = self; op._view = None; op._bk = None
        if timeout is not None:
            self._arm(op, timeout)
        self._pending += 1
        if size:
            self._backend.recv(op)
        else:
            self._complete(op, 0, None)
        return op

    def send(self, sock: socket.socket, data: Any, callback: Optional[Callback] = None, tag: Any = None,
             timeout: Optional[float] = None) -> Op:
        """Send all of ``data`` (any bytes-like object); value ``len(data)`` in
        bytes, once every byte was handed to the OS.

        Several pending sends on one socket go out in submission order, never
        interleaved. Do not modify ``data`` while the op is pending.

        ``data`` may be a list of bytes-like objects (at most 1024): they go out
        in order as one op (``sendmsg``; one WSASend with several WSABUFs), the
        value and ``nbytes`` counting bytes over all of them.
        """
        if self._closed or type(sock) is not _SOCKET_TYPE or sock._closed:
            self._check_sock(sock)
        if callback is not None and not callable(callback):
            _check_callback(callback)
        kind = type(data)
        if (kind is memoryview and data.c_contiguous and data.itemsize == 1 and data.ndim == 1) or kind is bytes \
                or kind is bytearray:
            view = data  # already flat bytes
        elif kind is list:  # several buffers: off the per-message path
            return self._submit_vector(_SEND, sock, data, callback, tag, timeout)
        else:
            view = _byte_view(data)
        op = new_op()  # Op(...), inlined (see recv)
        op.kind = _SEND; op.sock = sock; op.buf = data; op.tag = tag; op.callback = callback
        op.nbytes = 0; op._value = _PENDING; op._error = None; op._inflight = self; op._view = view; op._bk = None
        if timeout is not None:
            self._arm(op, timeout)
        self._pending += 1
        if len(view):
            self._backend.send(op)
        else:
            self._complete(op, 0, None)
        return op

    def readable(self, sock: socket.socket, callback: Optional[Callback] = None, tag: Any = None,
                 timeout: Optional[float] = None) -> Op:
        """Complete (value ``None``) once ``sock``, a connected stream socket, has
        something to read: data, end of stream, or an error such as a reset. It
        reads nothing and holds no buffer: the next :meth:`recv` gets the data (or
        the 0 of end of stream, or the error). A reset may also complete this op
        itself with ``ConnectionResetError`` (Windows may report it there).

        The zero-byte receive of overlapped servers (a 0-byte ``WSARecv`` on
        Windows, readiness on POSIX, ``IORING_OP_POLL_ADD`` with io_uring): wait
        here, then read into a buffer taken from a pool shared by all
        connections (``overlapio.buffers.BufferPool``), so that an idle
        connection pins no buffer::

            def on_readable(op):
                if op.exception:
                    px.close(sock)
                else:  # the data is there: this recv completes at once
                    px.recv(sock, pool.take(), on_recv)  # give the buffer back once used

        It is also the ``add_reader``-style hook that libraries written against
        readiness (pyzmq, tornado) need. Several may be pending on one socket:
        each completes. Cancel it, give it ``timeout=`` or :meth:`resubmit` it as
        any op. Meant for a socket with no recv pending (a pending recv may take
        the data first; this op still completes).
        """
        self._check_sock(sock)
        _check_callback(callback)
        if not self._has_readable:
            raise NotImplementedError(f"the {self.backend_name} backend has no readable op")
        op = self._op(_READABLE, sock, tag, callback)
        self._count_in(op, timeout)
        self._backend.readable(op)
        return op

    def shutdown(self, sock: socket.socket, how: int = _SHUT_WR, callback: Optional[Callback] = None,
                 tag: Any = None, timeout: Optional[float] = None) -> Op:
        """Half-close: shut the sending side of the connected stream socket
        ``sock`` down once every send submitted on it before this call has
        completed, so the peer reads all of that data and then end of stream,
        while ``sock`` still receives. Value ``None``.

        A send submitted after it (and a ``try_send``) fails with
        ``BrokenPipeError``. Cancelled while it still waits for earlier sends,
        it shuts nothing down. Only ``socket.SHUT_WR`` is taken: what a
        read-side shutdown does to pending and later recvs differs between
        stacks (close the socket instead).
        """
        self._check_sock(sock)
        _check_callback(callback)
        if how != socket.SHUT_WR or type(how) is bool:
            raise ValueError(f"shutdown takes how=socket.SHUT_WR only, not {how!r}")
        if sock.type != socket.SOCK_STREAM:
            raise ValueError("shutdown needs a stream (TCP) socket")
        self._check_backend_has("shutdown")
        op = self._op(_SHUTDOWN, sock, tag, callback)
        op.buf = how
        self._count_in(op, timeout)
        self._backend.shutdown(op)
        return op

    def bind(self, address: tuple, *, reuse_address: bool = False, dualstack: bool = False) -> socket.socket:
        """A datagram (UDP) socket bound to ``address`` (``(host, port)``, numeric;
        port 0 picks a free one), ready for :meth:`recvfrom` and :meth:`sendto`:
        the datagram twin of :meth:`listen`, ``dualstack`` included. Raises
        ``OSError`` at once if the address is in use or cannot be bound."""
        sock = self.socket(_family_of(address), _DGRAM)
        try:
            if dualstack:
                _dualstack(sock)
            if reuse_address and _REUSEADDR_IS_SAFE:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
        except BaseException:
            self.close(sock)
            raise
        return sock

    def recvfrom(self, sock: socket.socket, buf: Any, callback: Optional[Callback] = None, tag: Any = None,
                 timeout: Optional[float] = None) -> Op:
        """Receive one datagram into the writable, non-empty buffer ``buf``; value
        a :class:`~overlapio.Datagram` ``(nbytes, address)``, the data in
        ``buf[:nbytes]``. A datagram larger than ``buf`` completes with the bytes
        that fit and ``op.result.truncated`` True (the rest is dropped).

        One completion is one datagram, never coalesced or split; several
        recvfroms pending on one socket complete in submission order. An ICMP
        error caused by an earlier send (port unreachable) never fails it.
        """
        self._check_sock(sock)
        _check_callback(callback)
        if sock.type != _DGRAM:
            raise ValueError("recvfrom needs a datagram (UDP) socket, not a stream socket (use recv)")
        if not _writable_size(buf):
            raise ValueError("recvfrom needs a non-empty buffer (an empty one would drop a datagram)")
        self._check_backend_has("recvfrom")
        op = self._op(_RECVFROM, sock, tag, callback)
        op.buf = buf
        self._count_in(op, timeout)
        self._backend.recvfrom(op)
        return op

    def sendto(self, sock: socket.socket, data: Any, address: tuple, callback: Optional[Callback] = None,
               tag: Any = None, timeout: Optional[float] = None) -> Op:
        """Send ``data`` (any bytes-like object, empty too) as one datagram to the
        numeric ``address`` (``(host, port)`` of the socket's family; resolve
        names first); value ``len(data)``. Several pending sendtos on one socket
        go out in submission order. A datagram too large for the protocol fails
        with ``OSError`` (``EMSGSIZE``)."""
        self._check_sock(sock)
        _check_callback(callback)
        if sock.type != _DGRAM:
            raise ValueError("sendto needs a datagram (UDP) socket, not a stream socket (use send)")
        kind = type(data)
        view = data if kind is bytes or kind is bytearray else _byte_view(data)
        address = _numeric_address(sock.family, address)
        self._check_backend_has("sendto")
        op = self._op(_SENDTO, sock, tag, callback)
        op.buf = data
        op._view = (view, address)
        self._count_in(op, timeout)
        self._backend.sendto(op)
        return op

    def _check_backend_has(self, method: str) -> None:
        if getattr(type(self._backend), method) is getattr(Backend, method):
            raise NotImplementedError(f"the {self.backend_name!r} backend has no {method} op")

    def try_send(self, sock: socket.socket, data: Any) -> int:
        """Send what the OS takes at once, without waiting and without an op;
        returns how many bytes of ``data`` went out: all of them, some (send the
        rest with :meth:`send`), or 0.

        0 also while a :meth:`send` is still pending on ``sock`` (so the stream
        keeps submission order) and for empty ``data``; never retry in a loop:
        hand what is left to :meth:`send`, whose completion says when it is out.
        The count is in bytes, so slice a byte view with it. A broken connection
        raises its ``OSError`` at once (``ConnectionResetError`` for a reset or a
        peer that went away, as a send op would complete); bad arguments raise as
        for :meth:`send`. Use it on a connected socket, not while its connect is
        pending. No completion, no callback: the echo-style fast path, where most
        replies fit the socket buffer (libuv's ``uv_try_write``)::

            sent = px.try_send(sock, view[:n])
            if sent < n:
                px.send(sock, view[sent:n], on_sent)
        """
        if self._closed or type(sock) is not _SOCKET_TYPE:
            self._check_sock(sock)
        # The backend gets bytes, a bytearray or a contiguous memoryview. (Unlike send(),
        # no flat view is needed: one OS call takes any C-contiguous buffer and counts
        # bytes; every attribute read here is paid per message.)
        kind = type(data)
        if kind is memoryview:
            if not data.c_contiguous:
                data = _byte_view(data)  # (its TypeError)
        elif kind is not bytes and kind is not bytearray:
            data = _byte_view(data)
        try:
            n = self._backend.try_send(sock, data) if data else 0  # (checked: true means not empty)
        except OSError as exc:
            error = self._try_send_failed(sock, exc)
            if error is exc:
                raise
            raise error from exc
        if n:
            return n
        self._check_sock(sock)  # nothing went out, perhaps without an OS call: the checks it would make
        return 0

    def _try_send_failed(self, sock: socket.socket, exc: OSError) -> BaseException:
        """What try_send raises where the backend's try_send raised ``exc`` (the
        event loop's transports call the backend's directly): a closed socket fails in
        the OS call, so the socket checks' error comes first, as the other ops say it;
        else the error a send op would complete with."""
        self._check_sock(sock)
        return _not_connected(sock, exc)

    def resubmit(self, op: Op, timeout: Optional[float] = None) -> Op:
        """Submit a finished accept, recv, send or readable op once more, as it was: same
        socket, buffer (or data), callback and tag. Returns ``op``, pending again;
        it completes exactly once more, like a new op.

        Allowed once the op's completion has surfaced (its callback ran, or
        :meth:`wait` returned it); its previous result is then gone. A loop of
        recvs into one buffer costs no new Op per message (the completion-port
        habit of reusing an OVERLAPPED)::

            def on_recv(op):
                if op.nbytes:
                    consume(buf[:op.nbytes])
                    px.resubmit(op)

        Raises ``RuntimeError`` for an op still pending or not yet surfaced,
        ``ValueError`` for a connect, sleep or post op (their operands are not
        kept) and for a closed socket, ``ProactorClosedError`` once the Proactor
        is closed, ``TypeError`` for what is not an Op. Leave the op's ``sock``
        and ``buf`` as they were submitted (they are checked then). ``timeout``
        arms a timeout for this submission; the previous submission's does not
        carry over.
        """
        try:
            if op.kind is _RECV and op._inflight is None and timeout is None:
                # The per-message path: _resubmit_any, inlined for a recv without a timeout.
                buf = op.buf
                buftype = type(buf)
                size = buf.nbytes if buftype is memoryview else len(buf) if buftype is bytearray else \
                    _writable_size(buf) if buftype is not list else len(_vector(buf, True))
                if self._closed or type(op.sock) is not _SOCKET_TYPE or op.sock._closed:
                    self._check_sock(op.sock)  # (a subclass may close without the flag: the full check)
                # A new Op's fields, as recv() sets them (tests/test_core.py checks all are reset);
                # _inflight = self also kills the last submission's timeout, if any.
                op.nbytes = 0; op._value = _PENDING; op._error = None; op._inflight = self; op._bk = None
                self._pending += 1
                if size:
                    self._backend.recv(op)
                else:
                    self._complete(op, 0, None)
                return op
        except AttributeError:  # (a try costs nothing until it catches)
            if not isinstance(op, Op):
                raise TypeError(f"resubmit takes an Op, not {type(op).__name__}") from None
            raise
        return self._resubmit_any(op, op.kind, timeout)

    def _resubmit_any(self, op: Op, kind: OpKind, timeout: Optional[float]) -> Op:
        if op._inflight is not None:
            state = "is still pending" if not op.done else "has completed but not surfaced yet"
            if _owner(op) is not self:
                state += " in another Proactor"
            raise RuntimeError(f"resubmit needs an op whose completion surfaced; {op!r} {state}")
        if kind is not _RECV and kind is not _SEND and kind is not _ACCEPT and kind is not _READABLE:
            raise ValueError(f"resubmit takes an accept, recv, send or readable op, not a {kind.name.lower()} op")
        self._check_sock(op.sock)
        data = op.buf
        view = None
        if kind is _RECV:
            if type(data) is list:  # a list of buffers: the backend gets their views again
                view = _vector(data, True)
                size = len(view)
            else:
                size = _writable_size(data)
        elif kind is _SEND:
            view = data if type(data) is bytes or type(data) is bytearray else \
                _byte_view(data) if type(data) is not list else _vector(data, False)
            size = len(view)
        else:
            size = 1
        if timeout is not None:
            _seconds("timeout", timeout)  # (before the op changes)
        op.nbytes = 0; op._value = _PENDING; op._error = None; op._inflight = self; op._bk = None
        op._view = view
        self._count_in(op, timeout)
        if not size:
            self._complete(op, 0, None)
        elif kind is _RECV:
            self._backend.recv(op)
        elif kind is _SEND:
            self._backend.send(op)
        elif kind is _READABLE:
            self._backend.readable(op)
        else:
            self._backend.accept(op)
        return op

    def _submit_vector(self, kind: OpKind, sock: socket.socket, bufs: list, callback: Optional[Callback],
                       tag: Any, timeout: Optional[float]) -> Op:
        """recv()/send() of a list of buffers (already past their socket and
        callback checks): the backend gets them as ``op._view``, a tuple."""
        if not self._backend.multi_buffer:
            raise NotImplementedError(f"the {self.backend_name!r} backend takes no list of buffers")
        view = _vector(bufs, kind is _RECV)
        op = self._op(kind, sock, tag, callback)
        op.buf = bufs
        op._view = view
        self._count_in(op, timeout)
        if not len(view):
            self._complete(op, 0, None)  # only empty buffers: nothing to do, as for one empty buffer
        elif kind is _RECV:
            self._backend.recv(op)
        else:
            self._backend.send(op)
        return op

    def sleep(self, seconds: float, callback: Optional[Callback] = None, tag: Any = None) -> Op:
        """A timer op that completes (value ``None``) no earlier than ``seconds``
        from now, on the monotonic clock. Equal deadlines complete in submission
        order. To bound another op, give that op a ``timeout=`` instead."""
        self._check_open()
        _seconds("sleep", seconds)
        _check_callback(callback)
        op = self._op(_SLEEP, None, tag, callback)
        self._pending += 1
        self._push_timer((monotonic() + seconds, next(self._seq), op, None))
        return op

    def post(self, value: Any = None, callback: Optional[Callback] = None, tag: Any = None) -> Op:
        """Complete an op with ``value`` on the Proactor's thread. Safe to call from
        any thread and from a signal handler; wakes a blocked :meth:`wait`. Raises
        :class:`ProactorClosedError` once the Proactor is closed; a post racing
        :meth:`close` either raises or has its callback run (by ``close()`` at
        the latest), exactly once."""
        _check_callback(callback)
        if self._closed:
            raise ProactorClosedError("post() on a closed Proactor")
        op = self._op(_POST, None, tag, callback)
        # No lock: a signal handler may post while this thread is in post() or
        # close(), and would wait forever for a lock its own thread holds. A deque
        # append (and remove) is atomic; close() sets _closed before it collects.
        entry = (op, value)  # the value becomes the result on the Proactor's thread
        posted = self._posted
        posted.append(entry)
        if self._closed:
            # close() began meanwhile; its last collection may have run before the
            # append. Still queued: take it back (it will never complete) and refuse.
            try:
                posted.remove(entry)
            except ValueError:
                return op  # collected: close() runs its callback
            raise ProactorClosedError("post() on a closed Proactor")
        # The Proactor's own thread is not blocked in poll() while it runs this,
        # and its next step collects the post: only other threads must wake it
        # (and a signal handler, which runs on this thread *during* a poll).
        if not self._wake_sent and (self._polling or get_ident() != self._thread):
            self._wake_sent = True
            self._backend.wakeup()
        return op

    def cancel(self, op: Op) -> bool:
        """Ask for ``op`` to be cancelled. Returns False if it is already done (its
        result stands) or is a post. A pending op completes exactly once: as
        cancelled, or with its real result if that was already there (data that
        arrived is never lost to a cancel).

        Raises ``ValueError`` for an op in flight in another Proactor (nothing is
        changed, in either), ``TypeError`` for what is not an Op."""
        self._check_open()
        if not isinstance(op, Op):
            raise TypeError(f"cancel takes an Op, not {type(op).__name__}")
        owner = _owner(op)
        if owner is not self:
            if owner is None:  # surfaced (so done), or never submitted
                return False
            raise ValueError(f"cancel of {op!r}, which was submitted to another Proactor ({owner!r})")
        if op.done or op.kind is _POST:
            return False
        if self._trace is not None:
            self._trace.cancelling(op, "cancel")
        if op.kind is _SLEEP:
            self._complete(op, None, OperationCancelled("sleep cancelled"))  # its heap entry is dead now
        else:
            timer = op._inflight
            if type(timer) is _Timeout and timer.error is None:
                op._inflight = self  # the caller cancelled first: not a timeout, and the timer is dead
            self._cancel_io(op)
        return True

    def _cancel_io(self, op: Op) -> None:
        hook = self._cancel_hooks.get(op) if self._cancel_hooks else None
        if hook is None:
            self._backend.cancel(op)
        else:
            hook(op)

    def close(self, sock: Any = _NO_SOCK) -> None:
        """``close(sock)``: close ``sock``, first completing each op pending on it as
        cancelled; the peer sees an orderly close. Closing a closed socket does
        nothing.

        ``close()``: close the Proactor. Every pending op completes exactly once
        (cancelled) and callbacks are run; sockets the Proactor made are closed;
        no descriptor is left open. Idempotent; a close() cut short by an exception
        (Ctrl-C) is finished by the next call.
        """
        if sock is not _NO_SOCK:
            if not isinstance(sock, socket.socket):
                raise TypeError(f"close() takes a socket, not {type(sock).__name__} (call close() with no argument to close the Proactor)")
            self._owned.discard(sock)
            if self._closed:
                sock.close()
            else:
                self._backend.close_socket(sock)  # also after a sock.close(): its ops still complete
            return
        if self._close_done:
            return
        self._closed = True  # before the posts are collected (see post())
        try:
            hooked, self._cancel_hooks = list(self._cancel_hooks), {}
            for op in hooked:  # resolves and connects by name: their inner ops end with the backend
                if not op.done:
                    self._complete(op, None, OperationCancelled("proactor closed"))
            if self._resolver is not None:
                self._resolver.close()
            self._backend.close()
            for _, _, op, seconds in self._timers:
                if seconds is None and not op.done:
                    self._complete(op, None, OperationCancelled("proactor closed"))
            self._timers.clear()
            self._collect_posts()  # posts made before the close still complete, with their value
            for owned in list(self._owned):
                owned.close()
            self._close_done = True
        finally:
            try:
                self._dispatch_at_close()
            finally:
                self._release_guard()

    def stop(self) -> None:
        """Make :meth:`run` return after the completions at hand (or the next
        :meth:`run`, if none is running). Thread-safe."""
        self._stopping = True
        self._backend.wakeup()

    # -- consuming completions -----------------------------------------------------
    def wait(self, timeout: Optional[float] = None) -> list[Op]:
        """Block until at least one op has completed, or ``timeout`` seconds passed.

        Returns the completed ops that have no callback, in completion order, and
        runs the callbacks of those that have one. With nothing pending it still
        waits (a post from another thread can arrive). An exception raised by a
        callback propagates; the completions not yet handed over (those it would have
        returned included) stay for the next call.
        """
        if self._closed:  # (a call fewer per wait than _check_open alone)
            self._check_open()
        self._thread = get_ident()
        deadline = None if timeout is None else monotonic() + max(timeout, 0.0)
        ready = self._ready
        while True:
            # Step at least once, even for timeout=0: posts and due timers are
            # collected there.
            remaining = None if deadline is None else max(deadline - monotonic(), 0.0)
            self._step(remaining)
            if ready:
                break
            if remaining is not None and monotonic() >= deadline:
                return []
        if not self._ki and self._trace is None:  # (a traced queue reports each popleft)
            # Where no op ready has a callback, _dispatch would only move each one to
            # out: done here at once, without its pass per op.
            out = list(ready)  # (a Python signal handler may complete an op meanwhile: it waits)
            for op in out:
                if op.callback is not None:
                    break
                op._inflight = None  # surfaced: returned below
            else:
                n = len(out)
                if len(ready) == n:
                    ready.clear()
                else:
                    for op in out:
                        ready.popleft()
                self._pending -= n
                return out
            # A callback to run: _dispatch hands them over, none surfaced before it.
            for early in out:
                if early is op:
                    break
                early._inflight = self  # (as submitted: a timeout's record is dead once the op is done)
        out = []
        try:
            self._dispatch(out)
            if self._ki:  # deferred meanwhile: raised with the ops of out kept, as for a callback's
                self._interrupt_point()
        except BaseException:
            if self._closed:  # the callback closed the Proactor: nothing will return them
                for op in out:
                    op._inflight = None
            else:
                # A callback raised: the ops collected for this call go back to the front
                # of the queue (and count as pending again), so the next call returns them.
                self._ready.extendleft(reversed(out))
                self._pending += len(out)
            raise
        for op in out:
            op._inflight = None
        return out

    def run(self) -> None:
        """Dispatch completions to their callbacks until no op is pending, or
        :meth:`stop` is called. Ops without a callback just complete (see
        ``op.done``)."""
        self._check_open()
        self._thread = get_ident()
        sink: list[Op] = []
        while (self._pending or self._posted) and not self._stopping:
            self._step(None)
            try:
                self._dispatch(sink)
            finally:
                if sink:  # ops without a callback: done, and nobody to hand them to
                    for op in sink:
                        op._inflight = None
                    sink.clear()
        self._stopping = False
        if self._ki:  # deferred in the last round (each earlier one is raised by the next step)
            self._interrupt_point()

    # -- internals -----------------------------------------------------------------
    def _interrupt_point(self) -> None:
        """A safe point of the loop, reached with ``_ki`` set: raise the
        KeyboardInterrupt deferred since the last one; the first time, set up the
        SIGINT guard too."""
        deferred = self._ki is True
        self._ki = False
        if self._guarded is None:
            self._guarded = interrupts.guard(self)
        if deferred:
            raise KeyboardInterrupt

    def _release_guard(self) -> None:
        """close() is done: stop using the SIGINT guard, and raise what it deferred
        after the last safe point of a wait()/run() (none is left to raise it)."""
        if self._guarded:
            self._guarded()
            self._guarded = False
        if self._ki is True:
            self._ki = False
            raise KeyboardInterrupt

    def _op(self, kind: OpKind, sock: Any, tag: Any, callback: Optional[Callback]) -> Op:
        """A new op of this Proactor, for the kinds not on the per-message path."""
        op = Op(kind, sock, None, tag, callback)
        op._inflight = self
        return op

    def _complete(self, op: Op, value: Any, error: Optional[BaseException]) -> None:
        """The backend's (and the core's) one way to finish an op (a successful
        recv or send may take the fast path that Backend describes). A failure
        leaves ``_value`` unset: Op.result and Op.exception test it first."""
        kind = op.kind
        if error is None:
            op._value = value
        else:
            timer = op._inflight
            if type(timer) is _Timeout and timer.error is not None and isinstance(error, OperationCancelled):
                error = timer.error  # cancelled because its timeout ran out
            if kind is _SEND and type(error) is ConnectionResetError:
                error = _not_connected(op.sock, error)
            op._error = error
        if kind is _ACCEPT or kind is _CONNECT:
            self._settle_socket(op)
        self._ready.append(op)

    def _settle_socket(self, op: Op) -> None:
        """Sockets an accept or connect op leaves behind: the Proactor owns accepted
        ones, and closes the one connect() made if the connect failed."""
        if op.kind is _ACCEPT:
            if op._error is None:
                self._owned.add(op._value[0])
            return
        if op in self._connect_socks:
            self._connect_socks.discard(op)
            if op._error is not None:
                op.sock.close()  # nobody else has it

    def _step(self, timeout: Optional[float]) -> None:
        """One poll of the backend (not blocking while completions wait), then
        due timers and posts."""
        if self._ready:
            timeout = 0.0
        timers = self._timers
        if timers:
            now = monotonic()
            while timers and not self._armed(timers[0]):  # dead entries must not shorten the wait
                heapq.heappop(timers)
            if timers:
                until = timers[0][0] - now
                if until <= 0:
                    timeout = 0.0
                elif timeout is None or until < timeout:
                    timeout = until
        if self._posted:
            timeout = 0.0
        if timeout is not None and timeout > _MAX_POLL:
            timeout = _MAX_POLL  # OS waits overflow past ~24 days; waking once a day costs nothing
        self._polling = True
        try:
            if self._ki:  # a safe point: nothing half done, nothing in hand
                self._interrupt_point()
            self._backend.poll(timeout)
        finally:
            self._polling = False
        if timers:
            now = monotonic()
            while timers and timers[0][0] <= now:
                entry = heapq.heappop(timers)
                if not self._armed(entry):
                    continue
                if entry[3] is None:  # a sleep
                    self._complete(entry[2], None, None)
                else:
                    self._time_out(entry[2], entry[3])
        if self._wake_sent or self._posted:
            self._wake_sent = False  # cleared before draining: a racing post() wakes us again
            self._collect_posts()

    # -- timers ------------------------------------------------------------------
    def _count_in(self, op: Op, timeout: Optional[float]) -> None:
        """The last step before the backend gets ``op``: arm this submission's
        ``timeout=`` (if any; a bad one raises with nothing counted) and count the op
        pending. (recv() and send() do the same inline: the per-message path.)"""
        if timeout is not None:
            self._arm(op, timeout)
        self._pending += 1

    def _arm(self, op: Op, seconds: Any) -> None:
        """Arm ``timeout=`` for this submission of ``op``, before it goes to the
        backend (a bad ``seconds`` raises first, and nothing is submitted)."""
        _seconds("timeout", seconds)
        timer = op._inflight = _Timeout(self, seconds)  # this submission's record (see _Timeout)
        self._push_timer((monotonic() + seconds, next(self._seq), op, timer))

    @staticmethod
    def _armed(entry: tuple) -> bool:
        """True while a heap entry still has work to do: its op is not done and, for
        a timeout, the op is still in the submission that armed it."""
        op = entry[2]
        if op._value is not _PENDING or op._error is not None:
            return False
        return entry[3] is None or op._inflight is entry[3]

    def _push_timer(self, entry: tuple) -> None:
        timers = self._timers
        if len(timers) >= self._compact_at:
            # Rebuild without dead entries (sleeps cancelled, ops that finished before
            # their timeout), or a timeout per op would grow the heap until the
            # deadlines pass. Amortised O(1) per push; the heap stays within twice
            # its live entries.
            timers[:] = [e for e in timers if self._armed(e)]
            heapq.heapify(timers)
            self._compact_at = max(_COMPACT_MIN, 2 * len(timers))
        heapq.heappush(timers, entry)

    def _time_out(self, op: Op, timer: _Timeout) -> None:
        """The op's timeout ran out first: cancel it, and have the cancellation
        complete it with a ``TimeoutError`` (see :meth:`_complete`)."""
        fd = f" on fd {op.sock.fileno()}" if op.sock is not None else ""
        tag = f" (tag {op.tag!r})" if op.tag is not None else ""
        what = f"{op.kind.name.lower()}{fd}{tag}"
        timer.error = TimeoutError(errno.ETIMEDOUT, f"{what} timed out after {timer.seconds:g} s")
        if self._trace is not None:
            self._trace.cancelling(op, "timeout")
        self._cancel_io(op)

    def _collect_posts(self) -> None:
        posted = self._posted
        while posted:
            op, value = posted.popleft()
            op._value = value
            self._pending += 1  # counted here, on the Proactor's thread, as dispatch uncounts it
            self._ready.append(op)

    def _dispatch(self, out: list[Op]) -> None:
        """Hand over ready ops, in completion order, until none is left or
        ``_PASSES`` times as many as were ready at the start went. The ops that
        callbacks complete at once (an eager send, say) go out without a poll in
        between, while a chain of instant completions cannot starve I/O."""
        ready = self._ready
        for _ in range(_PASSES * len(ready)):
            if not ready:  # all done (or a callback closed the Proactor)
                break
            op = ready.popleft()  # (a method call CPython specialises; a bound method it does not)
            self._pending -= 1  # at once: a callback may read pending, or wait itself
            callback = op.callback
            if callback is None:
                out.append(op)  # surfaced when wait() returns it (or run() drops it)
            else:
                op._inflight = None
                callback(op)

    def _dispatch_at_close(self) -> None:
        # Callbacks run one last time; one that reads the cancelled result or
        # tries to submit again must not abort the close of the rest.
        first_error: Optional[BaseException] = None
        while self._ready:
            op = self._ready.popleft()
            self._pending -= 1
            op._inflight = None
            if op.callback is None:
                continue
            try:
                op.callback(op)
            except (OperationCancelled, ProactorClosedError):
                pass
            except Exception as exc:  # re-raised once everything is closed
                first_error = first_error or exc
        if first_error is not None:
            raise first_error

    def _check_open(self) -> None:
        if self._closed:
            raise ProactorClosedError("operation on a closed Proactor")

    def _check_sock(self, sock: Any) -> None:
        if self._closed:
            raise ProactorClosedError("operation on a closed Proactor")
        if not isinstance(sock, socket.socket):
            raise TypeError(f"expected a socket.socket, not {type(sock).__name__}")
        if sock.fileno() < 0:
            raise ValueError("the socket is closed")


def _make_backend(cls: "type[Backend]", complete: Any, ready: "deque[Op]") -> Backend:
    """``cls(complete, ready)``; a backend written for the one-argument constructor
    of earlier releases gets the ready queue set after construction instead."""
    try:
        inspect.signature(cls).bind(complete, ready)
    except TypeError:  # __init__(self, complete): the old contract
        warnings.warn(f"{cls.__qualname__}.__init__ takes only `complete`; backends now take "
                      "`(complete, ready)` (see overlapio.core.backend)", DeprecationWarning, stacklevel=3)
        backend = cls(complete)
        backend._ready = ready
        return backend
    except ValueError:  # no signature to read (a C type): try the current contract
        pass
    return cls(complete, ready)



def _not_connected(sock: socket.socket, error: OSError) -> OSError:
    """A send's ``ConnectionResetError`` on a socket that was never connected
    (Linux says EPIPE there, as for a peer that went away) becomes what it is:
    ``OSError(ENOTCONN)``. Only failed sends pay for the check (a peek that reads
    nothing: only an unconnected stream socket answers ENOTCONN)."""
    if type(error) is not ConnectionResetError:
        return error
    try:
        sock.recv(1, _PEEK)
    except OSError as exc:
        if exc.errno == errno.ENOTCONN:
            new = OSError(errno.ENOTCONN, "send on a socket that is not connected")
            new.__cause__ = error
            return new
    return error


def _seconds(what: str, seconds: Any) -> None:
    """Raise if ``seconds`` is not a duration (for sleep and timeout=)."""
    if not isinstance(seconds, (int, float)) or seconds != seconds:
        raise TypeError(f"{what} needs a number of seconds, not {seconds!r}")
    if seconds < 0:
        raise ValueError(f"{what} needs seconds >= 0, not {seconds!r}")


def _check_callback(callback: Any) -> None:
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None, not {type(callback).__name__} "
                        "(callback and tag follow the operands: recv(sock, buf, callback, tag))")


def _writable_size(buf: Any) -> int:
    """The byte size of a writable buffer; ``TypeError`` for anything else."""
    try:
        view = memoryview(buf)
    except TypeError:
        raise TypeError(f"recv needs a writable buffer (bytearray, memoryview, array), not {type(buf).__name__}") from None
    if view.readonly:
        raise TypeError(f"recv needs a writable buffer (bytearray, memoryview, array), not read-only {type(buf).__name__}")
    if not view.c_contiguous:
        raise TypeError("recv needs a contiguous buffer, not a strided view")
    return view.nbytes


def _byte_view(data: Any) -> memoryview:
    """A flat byte view of any bytes-like object; ``TypeError`` for anything else."""
    try:
        view = memoryview(data)
    except TypeError:
        raise TypeError(f"send needs a bytes-like object, not {type(data).__name__}") from None
    if not view.c_contiguous:
        raise TypeError("send needs contiguous data, not a strided view")
    return view if view.itemsize == 1 and view.ndim == 1 else view.cast("B")


def _vector(bufs: list, writable: bool) -> tuple:
    """A list of buffers as the tuple of flat byte views a backend gets."""
    if not bufs:
        raise ValueError(f"{'recv' if writable else 'send'} needs at least one buffer, not an empty list")
    if len(bufs) > _MAX_BUFFERS:
        raise ValueError(f"at most {_MAX_BUFFERS} buffers per op, not {len(bufs)}")
    views = []
    for buf in bufs:
        if writable:
            _writable_size(buf)  # its checks and messages
            view = memoryview(buf)
            view = view if view.itemsize == 1 and view.ndim == 1 else view.cast("B")
        else:
            view = _byte_view(buf)
        if view.nbytes:
            views.append(view)
    return tuple(views)


def _dualstack(sock: socket.socket) -> None:
    """IPv4 and IPv6 on one IPv6 socket (IPV6_V6ONLY off: the default on Linux,
    not on Windows or the BSDs)."""
    if sock.family != socket.AF_INET6:
        raise ValueError("dualstack needs an IPv6 address (such as '::')")
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)


def _numeric_address(family: int, address: Any) -> tuple:
    """``address`` if it is a numeric ``(host, port)`` (or IPv6 4-tuple) of
    ``family``; else ``TypeError``/``ValueError`` (no name is looked up here)."""
    if type(address) is not tuple or len(address) not in ((2, 4) if family == socket.AF_INET6 else (2,)):
        raise TypeError(f"expected an address tuple (host, port), not {address!r}")
    host, port = address[0], address[1]
    if type(host) is not str:
        raise TypeError(f"the host must be a str, not {type(host).__name__}")
    if type(port) is not int or not 0 <= port <= 65535:
        raise ValueError(f"port must be an int in 0..65535, not {port!r}")
    if len(address) == 4:  # checked here: a backend packing it must not fail after the op is counted
        flowinfo, scope_id = address[2], address[3]
        if type(flowinfo) is not int or not 0 <= flowinfo <= 0xFFFFF:
            raise ValueError(f"flowinfo must be an int in 0..0xFFFFF, not {flowinfo!r}")
        if type(scope_id) is not int or not 0 <= scope_id <= 0xFFFFFFFF:
            raise ValueError(f"scope_id must be an int in 0..2**32-1, not {scope_id!r}")
    try:
        socket.inet_pton(family, host.partition("%")[0] if family == socket.AF_INET6 else host)
    except (OSError, UnicodeError):
        name = "IPv6" if family == socket.AF_INET6 else "IPv4"
        raise ValueError(f"expected a numeric {name} address for this socket, not {host!r} "
                         "(resolve host names first)") from None
    return address


def _family_of(address: Any) -> int:
    if isinstance(address, tuple) and len(address) == 4:
        return socket.AF_INET6
    host = address[0] if isinstance(address, tuple) and address else ""
    return socket.AF_INET6 if isinstance(host, str) and ":" in host else socket.AF_INET


def _needs_lookup(address: Any) -> bool:
    """True for ``(name, port)``: a host that is a non-empty name, not a numeric
    address (those connect() resolves on the spot, without a lookup)."""
    if not (isinstance(address, tuple) and len(address) in (2, 4)) or not isinstance(address[0], str):
        return False
    host = address[0].partition("%")[0]
    if not host:
        return False
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
            return False
        except (OSError, UnicodeError):  # (a name IDNA cannot encode fails in the lookup, as a completion)
            pass
    return True


def _resolve(address: Any, family: int) -> tuple:
    """``(host, port)`` to a numeric address; raises ``socket.gaierror`` when the host
    is unknown and ``ValueError`` for a malformed address."""
    if not (isinstance(address, tuple) and len(address) in (2, 4)):
        raise ValueError(f"address must be (host, port), not {address!r}")
    host, port = address[0], address[1]
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an int in 0..65535, not {port!r}")
    try:
        infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    except UnicodeError as exc:  # a name no lookup can find: an I/O outcome like any unknown host
        raise socket.gaierror(socket.EAI_NONAME, f"host name {host!r} cannot be looked up: {exc}") from None
    return infos[0][4]


interrupts.register((Proactor.wait, Proactor.run), (Proactor._dispatch, Proactor._dispatch_at_close))
