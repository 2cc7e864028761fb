"""Which backends the conformance suite runs against.

By default: every backend ``overlapio.available_backends()`` reports available
here (built-ins and those registered in the ``overlapio.backends`` entry-point
group), plus every entry of :data:`EXTRA_BACKENDS`. On Linux the built-ins
include ``uring`` whenever its extension was compiled and the kernel lets this
process make a ring (``overlapio backends`` says why not, and so does the skip).

Narrowing / extending, from the command line:

- ``pytest tests/conformance --backend NAME`` (or env ``OVERLAPIO_BACKEND=NAME``):
  only that backend. NAME is a registry name or a key of ``EXTRA_BACKENDS``.
- ``pytest tests/conformance --backend-class pkg.module:Attr``: only that class;
  ``Attr`` is a ``Backend`` subclass or a zero-argument callable returning one
  (imported with the current directory on ``sys.path``, so from the repository
  root ``--backend-class tests.windows.standin:make_backend`` works with
  ``python -m pytest``).

From code: add to :data:`EXTRA_BACKENDS` (a name -> zero-argument factory
returning a ``Backend`` subclass). The factory is called once per session; if it
raises, every test of that backend is skipped with the error as reason. The
Windows stand-in is registered there this way (see below).

A backend the Proactor gets as a class is used as is (``Proactor(backend=cls)``);
its ``unavailable_reason()`` is honoured (a reason skips its tests).
"""
from __future__ import annotations

import importlib
import os
import select
import sys
from dataclasses import dataclass
from typing import Callable, Optional, Union

import overlapio

def _standin(attr: str) -> "Callable[[], type]":
    def factory() -> type:
        here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "windows")
        if here not in sys.path:
            sys.path.insert(0, here)
        return getattr(importlib.import_module("standin"), attr)
    return factory


#: name -> zero-argument callable returning a Backend subclass. See the module doc.
#: Off Windows the Windows backend's real state machine runs the whole suite over the
#: scripted Winsock stand-in (tests/windows/standin.py), in its Windows-documented
#: mode and in Wine's close behaviour (on Linux: it plays Winsock over Linux sockets);
#: on Windows the real backend runs it instead.
EXTRA_BACKENDS: "dict[str, Callable[[], type]]" = {} if not sys.platform.startswith("linux") else {
    "winsock-standin": _standin("StandInWinsockBackend"),
    "winsock-standin-wineclose": _standin("WineCloseStandInBackend"),
}
#: Where the POSIX backend polls with epoll, its ``selectors`` fallback (the poller
#: of macOS and the BSDs) runs the suite too.
if hasattr(select, "epoll"):
    EXTRA_BACKENDS["posix-selectors"] = lambda: importlib.import_module(
        "overlapio.backends.posix_selectors").SelectorsFallbackBackend


@dataclass(frozen=True)
class BackendChoice:
    """One parametrisation of the suite."""

    name: str  # the test id, and the ``backend_name`` fixture
    spec: "Union[str, type, None]"  # what ``Proactor(backend=...)`` gets
    skip: Optional[str] = None  # a reason to skip every test of it


def _load_attr(target: str) -> type:
    module, _, attr = target.partition(":")
    if not module or not attr:
        raise ValueError(f"--backend-class wants MODULE:ATTR, not {target!r}")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return _as_class(obj, target)


def _as_class(obj: object, where: str) -> type:
    if not isinstance(obj, type):
        obj = obj()  # a factory
    if not (isinstance(obj, type) and issubclass(obj, overlapio.Backend)):
        raise TypeError(f"{where} did not give an overlapio.Backend subclass but {obj!r}")
    return obj


def _from_class(name: str, factory: Callable[[], object]) -> BackendChoice:
    try:
        cls = _as_class(factory, name)
    except Exception as exc:  # shown as the skip reason
        return BackendChoice(name, None, f"backend {name!r} could not be loaded: {exc!r}")
    reason = cls.unavailable_reason()
    return BackendChoice(name, cls, f"backend {name!r} is unavailable here: {reason}" if reason else None)


def choose(option_name: Optional[str], option_class: Optional[str]) -> "list[BackendChoice]":
    """The backends to run, from ``--backend``/``--backend-class``/``OVERLAPIO_BACKEND``.

    Raises ``LookupError`` for a name nobody knows (a usage error, not a skip).
    """
    if option_class:
        cls = _load_attr(option_class)  # a broken target is a usage error: let it raise
        name = getattr(cls, "name", "") or cls.__name__
        return [_from_class(name, cls)]
    registry = overlapio.available_backends()
    wanted = option_name or os.environ.get("OVERLAPIO_BACKEND", "").strip() or None
    if wanted is not None:
        if wanted in EXTRA_BACKENDS:
            return [_from_class(wanted, EXTRA_BACKENDS[wanted])]
        if wanted not in registry:
            raise LookupError(f"unknown backend {wanted!r}; known: {', '.join([*registry, *EXTRA_BACKENDS])}")
        ok, reason = registry[wanted]
        return [BackendChoice(wanted, wanted, None if ok else f"backend {wanted!r} is unavailable here: {reason}")]
    out = [BackendChoice(name, name) for name, (ok, _) in registry.items() if ok]
    out += [_from_class(name, factory) for name, factory in EXTRA_BACKENDS.items()]
    return out
