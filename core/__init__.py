"""The completion core: Op, Proactor, timers, errors, the Backend contract and
the backend registry. Installed as ``overlapio.core``."""
from .backend import Backend
from .errors import (
    BackendUnavailable,
    OperationCancelled,
    OverlapioError,
    ProactorClosedError,
    UnknownBackendError,
)
from .op import Datagram, Op, OpKind
from .proactor import Proactor
from .registry import ENTRY_POINT_GROUP, available_backends, backend_names, default_backend, load_backend

__all__ = [
    "Backend", "BackendUnavailable", "Datagram", "OperationCancelled", "OverlapioError", "ProactorClosedError",
    "UnknownBackendError", "Op", "OpKind", "Proactor", "ENTRY_POINT_GROUP", "available_backends",
    "backend_names", "default_backend", "load_backend",
]
