"""Find backends by name: the built-ins, plus any third-party package that
registers one in the ``overlapio.backends`` entry-point group::

    [project.entry-points."overlapio.backends"]
    mybackend = "mypkg.backend:MyBackend"

``OVERLAPIO_BACKEND`` overrides the platform default.
"""
from __future__ import annotations

import importlib
import os
import sys
from importlib.metadata import entry_points
from typing import Optional

from .backend import Backend
from .errors import BackendUnavailable, UnknownBackendError

__all__ = ["ENTRY_POINT_GROUP", "backend_names", "load_backend", "available_backends", "default_backend"]

ENTRY_POINT_GROUP = "overlapio.backends"

_BUILTINS = {
    "posix": "overlapio.backends.posix_selectors:SelectorsBackend",
    "winsock": "overlapio.backends.winsock:WinsockBackend",
    "uring": "overlapio.backends.uring:UringBackend",  # Linux io_uring; never the default (yet)
}


def _specs() -> dict[str, str]:
    specs = dict(_BUILTINS)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        specs.setdefault(ep.name, ep.value)
    return specs


def backend_names() -> list[str]:
    """Every backend name known here, built-in first, available or not."""
    return list(_specs())


def _import(name: str, spec: str) -> type[Backend]:
    module, _, attr = spec.partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except Exception as exc:  # a broken third-party package must not break the others
        raise BackendUnavailable(f"backend {name!r} failed to load ({spec}): {exc}") from exc
    return cls


def load_backend(name: str) -> type[Backend]:
    """The backend class called ``name``.

    Raises :class:`UnknownBackendError` for a name nobody registered and
    :class:`BackendUnavailable` (with the reason) when it cannot run here.
    """
    specs = _specs()
    if name not in specs:
        raise UnknownBackendError(f"unknown backend {name!r}; known: {', '.join(specs)}")
    cls = _import(name, specs[name])
    reason = cls.unavailable_reason()
    if reason:
        raise BackendUnavailable(f"backend {name!r} is unavailable here: {reason}")
    return cls


def available_backends() -> dict[str, tuple[bool, str]]:
    """``{name: (available, reason)}`` for every known backend; reason is ``""``
    when available."""
    out: dict[str, tuple[bool, str]] = {}
    for name, spec in _specs().items():
        try:
            reason = _import(name, spec).unavailable_reason()
        except BackendUnavailable as exc:
            reason = str(exc)
        out[name] = (not reason, reason or "")
    return out


def default_backend(env: Optional[dict] = None) -> str:
    """``OVERLAPIO_BACKEND`` if set, else ``winsock`` on Windows and ``posix`` elsewhere."""
    env = os.environ if env is None else env
    chosen = env.get("OVERLAPIO_BACKEND", "").strip()
    if chosen:
        return chosen
    return "winsock" if sys.platform == "win32" else "posix"
