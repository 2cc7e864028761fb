"""The backends the asyncio tests run the overlapio event loop on: ``posix`` and
``uring`` where they are available, and the Windows backend over its scripted Winsock
stand-in (tests/windows/standin.py) off Windows, ``winsock`` on Windows.
``OVERLAPIO_BACKEND=NAME`` runs them on that backend alone instead (a registry
name such as ``uring``, or a key of tests/conformance/backends.py's
EXTRA_BACKENDS), as it does for the conformance suite."""
from __future__ import annotations

import os
import sys

import overlapio

_TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _TESTS not in sys.path:  # under pytest tests/conftest.py put it there; a child process needs it
    sys.path.append(_TESTS)

from conformance.backends import EXTRA_BACKENDS, choose  # noqa: E402


def loop_backends() -> "list[tuple[str, object, str | None]]":
    """``(id, what EventLoop(backend) takes, skip reason or None)`` for each."""
    if os.environ.get("OVERLAPIO_BACKEND", "").strip():
        return [(c.name, c.spec, c.skip) for c in choose(None, None)]
    out = []
    registry = overlapio.available_backends()
    for name in ("posix", "uring", "winsock"):
        if name in registry and registry[name][0]:
            out.append((name, name, None))
    if "winsock-standin" in EXTRA_BACKENDS:
        try:
            cls = EXTRA_BACKENDS["winsock-standin"]()
            reason = cls.unavailable_reason()
        except Exception as exc:  # shown as the skip reason
            cls, reason = None, f"the Winsock stand-in could not be loaded: {exc!r}"
        out.append(("winsock-standin", cls, reason))
    return out
