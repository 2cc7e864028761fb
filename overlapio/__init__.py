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
import os as _os

# In a source checkout run in place (`python -m overlapio` or `python -m pytest` from
# the repo root), core/ and backends/ sit beside this folder, not inside it as they
# are once installed: let the subpackages resolve there.
_root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if not _os.path.isdir(_os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "core")) and _os.path.isfile(
    _os.path.join(_root, "core", "proactor.py")
):
    __path__.append(_root)  # type: ignore[name-defined]

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
