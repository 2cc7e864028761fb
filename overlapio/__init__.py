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
import sys as _sys

# A source checkout run in place (`python -m overlapio`, or the bench harness with the
# repo root on PYTHONPATH) keeps core/ and backends/ beside this folder, not inside it
# as an install does. Find exactly those two there: putting the checkout root on
# __path__ would make setup.py, build_ffi.py, bench/ and tests/ submodules too.
_here = _os.path.dirname(_os.path.abspath(__file__))
_root = _os.path.dirname(_here)


class _CheckoutSubpackages:
    @staticmethod
    def find_spec(fullname: str, path: object = None, target: object = None) -> object:
        if fullname in (__name__ + ".core", __name__ + ".backends"):
            from importlib.machinery import PathFinder

            return PathFinder.find_spec(fullname, [_root])
        return None


if not _os.path.isdir(_os.path.join(_here, "core")) and _os.path.isfile(_os.path.join(_root, "core", "proactor.py")):
    # After the other finders: an editable install maps these names itself.
    _sys.meta_path.append(_CheckoutSubpackages)  # type: ignore[arg-type]

__version__ = "0.1.0"

__all__ = [
    "Backend", "BackendUnavailable", "Datagram", "Op", "OpKind", "OperationCancelled", "OverlapioError", "Proactor",
    "ProactorClosedError", "UnknownBackendError", "ENTRY_POINT_GROUP", "available_backends", "backend_names",
    "default_backend", "load_backend", "__version__",
]

# The names above come from .core on first use, not at `import overlapio`: the
# command line then imports the core inside its Ctrl-C handling (an interrupt while
# starting up ends quietly), and `import overlapio` stays cheap.
_FROM_CORE = frozenset(__all__) - {"__version__"}

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing while starting up
if TYPE_CHECKING:
    from .core import (
        ENTRY_POINT_GROUP,
        Backend,
        BackendUnavailable,
        Datagram,
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
del TYPE_CHECKING


def __getattr__(name: str) -> object:
    if name in _FROM_CORE:
        from . import core

        value = getattr(core, name)
        globals()[name] = value
        return value
    if name in ("core", "backends"):  # subpackages, as attributes before anything imported them
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _FROM_CORE)
