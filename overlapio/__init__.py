"""overlapio: one completion-based socket I/O interface for every OS.

Submit an operation, get its completion later: natively on Windows (overlapped
Winsock with event objects, through cffi) and by emulation on POSIX (the stdlib
``selectors`` module)::

    import overlapio

    with overlapio.Proactor() as px:
        listener = px.listen(("127.0.0.1", 7777))
        px.accept(listener)
        for op in px.wait():
            conn, peer = op.result
"""
from .core import (
    ENTRY_POINT_GROUP,
    Backend,
    BackendUnavailable,
    Op,
    OpKind,
    OperationCancelled,
    OverlapioError,
    Proactor,
    ProactorClosedError,
    UnknownBackendError,
    available_backends,
    backend_names,
    default_backend,
    load_backend,
)

__version__ = "0.1.0"

__all__ = [
    "Backend", "BackendUnavailable", "Op", "OpKind", "OperationCancelled", "OverlapioError", "Proactor",
    "ProactorClosedError", "UnknownBackendError", "ENTRY_POINT_GROUP", "available_backends", "backend_names",
    "default_backend", "load_backend", "__version__",
]
