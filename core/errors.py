"""One error taxonomy for every backend.

I/O failures surface as the ``OSError`` subclasses a Python user already knows
(``ConnectionResetError``, ``ConnectionRefusedError``, ``TimeoutError`` ...), and
the same situation gives the same class on every backend: all normalisation of
platform error codes happens here, in :func:`os_error`, and nowhere else.
Programming errors (a closed proactor, a read-only recv buffer) are raised at
once by the call that made them, as ``TypeError``/``ValueError``/
:class:`ProactorClosedError`.
"""
from __future__ import annotations

import errno
import os

__all__ = [
    "OverlapioError",
    "ProactorClosedError",
    "OperationCancelled",
    "BackendUnavailable",
    "UnknownBackendError",
    "os_error",
    "normalize",
    "send_after_shutdown",
]


class OverlapioError(Exception):
    """Base class of the errors overlapio itself defines (not of I/O errors)."""


class ProactorClosedError(OverlapioError, RuntimeError):
    """An operation was submitted to (or posted to) a closed Proactor."""


class OperationCancelled(OSError):
    """The outcome of an op that was cancelled, or aborted because its socket
    or its Proactor was closed, before it could complete.

    ``errno`` is ``ECANCELED`` (Windows' ERROR_OPERATION_ABORTED, 995, maps here).
    A cancelled send may already have transferred part of its data: see
    ``Op.nbytes``.
    """

    def __init__(self, why: str = "operation cancelled") -> None:
        super().__init__(errno.ECANCELED, why)


class BackendUnavailable(OverlapioError):
    """The named backend exists but cannot run on this machine; ``str()`` says why."""


class UnknownBackendError(OverlapioError, LookupError):
    """No backend of that name is built in or registered through the entry-point group."""


# Windows error codes (Winsock WSAE* and Win32 ERROR_*) that a completion can carry.
_WIN_CLASSES: dict[int, tuple[type[OSError], int]] = {
    10054: (ConnectionResetError, errno.ECONNRESET),  # WSAECONNRESET
    10053: (ConnectionResetError, errno.ECONNABORTED),  # WSAECONNABORTED: the stack gave up the connection
    10052: (ConnectionResetError, errno.ENETRESET),  # WSAENETRESET
    64: (ConnectionResetError, errno.ECONNRESET),  # ERROR_NETNAME_DELETED: peer reset under an overlapped op
    10058: (ConnectionResetError, errno.EPIPE),  # WSAESHUTDOWN: send after shutdown
    10061: (ConnectionRefusedError, errno.ECONNREFUSED),  # WSAECONNREFUSED
    1225: (ConnectionRefusedError, errno.ECONNREFUSED),  # ERROR_CONNECTION_REFUSED
    1234: (ConnectionRefusedError, errno.ECONNREFUSED),  # ERROR_PORT_UNREACHABLE
    10060: (TimeoutError, errno.ETIMEDOUT),  # WSAETIMEDOUT
    121: (TimeoutError, errno.ETIMEDOUT),  # ERROR_SEM_TIMEOUT
    1236: (ConnectionResetError, errno.ECONNABORTED),  # ERROR_CONNECTION_ABORTED
    10057: (OSError, errno.ENOTCONN),  # WSAENOTCONN: send/recv on a socket that was never connected
    10051: (OSError, errno.ENETUNREACH),  # WSAENETUNREACH
    1231: (OSError, errno.ENETUNREACH),  # ERROR_NETWORK_UNREACHABLE
    10065: (OSError, errno.EHOSTUNREACH),  # WSAEHOSTUNREACH
    1232: (OSError, errno.EHOSTUNREACH),  # ERROR_HOST_UNREACHABLE
    10048: (OSError, errno.EADDRINUSE),  # WSAEADDRINUSE
    10049: (OSError, errno.EADDRNOTAVAIL),  # WSAEADDRNOTAVAIL
    10040: (OSError, errno.EMSGSIZE),  # WSAEMSGSIZE: a datagram too large to send
}

# Codes that mean "this op was aborted", whichever OS produced them.
_WIN_CANCELLED = {995, 1223}  # ERROR_OPERATION_ABORTED, ERROR_CANCELLED

# POSIX errno values folded into the class their Windows twin gets, so that a peer
# that vanished mid-send is ConnectionResetError on every backend (Linux says EPIPE
# on the second send after a reset, Windows says WSAECONNRESET/WSAECONNABORTED).
_POSIX_CLASSES: dict[int, type[OSError]] = {
    errno.EPIPE: ConnectionResetError,
    errno.ECONNABORTED: ConnectionResetError,
    errno.ECONNRESET: ConnectionResetError,
    errno.ENETRESET: ConnectionResetError,
    errno.ECONNREFUSED: ConnectionRefusedError,
    errno.ETIMEDOUT: TimeoutError,
    errno.ECANCELED: OperationCancelled,
}


def os_error(code: int, *, windows: bool = False, what: str = "") -> OSError:
    """The exception for a platform error code: an errno, or with ``windows=True``
    a Winsock/Win32 code as returned by WSAGetLastError/WSAGetOverlappedResult."""
    if windows:
        if code in _WIN_CANCELLED:
            return OperationCancelled(what or "operation aborted")
        cls, eno = _WIN_CLASSES.get(code, (OSError, 0))
        msg = f"{what}: " if what else ""
        exc = cls(eno or code, f"{msg}{_strerror(eno) if eno else 'Windows error'} [WinError {code}]")
        exc.winerror = code  # type: ignore[attr-defined]
        return exc
    cls = _POSIX_CLASSES.get(code, OSError)
    if cls is OperationCancelled:
        return OperationCancelled(what or "operation cancelled")
    text = _strerror(code)
    return cls(code, f"{what}: {text}" if what else text)


def send_after_shutdown() -> BrokenPipeError:
    """What a send (or ``try_send``) on a socket whose sending side this program
    shut down with ``Proactor.shutdown`` fails with, on every backend. Not a
    ``ConnectionResetError``: the peer did nothing wrong."""
    return BrokenPipeError(errno.EPIPE, "send after shutdown(SHUT_WR) of this socket")


def normalize(exc: OSError) -> OSError:
    """Give an ``OSError`` raised by the socket module the class :func:`os_error`
    would give its errno (``BrokenPipeError`` becomes ``ConnectionResetError``)."""
    cls = _POSIX_CLASSES.get(exc.errno or -1)
    if cls is None or type(exc) is cls or cls is OperationCancelled:
        return exc
    new = cls(exc.errno, exc.strerror)
    new.__cause__ = exc
    return new


def _strerror(code: int) -> str:
    try:
        return os.strerror(code)
    except ValueError:
        return f"error {code}"
