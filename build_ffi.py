"""cffi builders.

``ffibuilder``: the Winsock binding, out-of-line ABI mode, no C compiler needed.
Building the wheel writes ``overlapio/backends/winsock/_ffi.py``, a pure-Python
module holding the pre-parsed cdef (the same on every platform, so one wheel
could serve all).

``uring_ffibuilder`` (Linux only): the io_uring backend's C half, API mode, so it
needs a C compiler and ``<linux/io_uring.h>``. The extension is *optional*: if it
cannot be compiled, the install goes on without it and the ``uring`` backend
says it is unavailable and why.

setup.py wires both in with ``cffi_modules``. The cdefs live in
``backends/winsock/cdef.py`` and ``backends/uring_cdef.py``. They are loaded by file
path, not imported as ``overlapio.backends...``: at build time the package is not
installed, and importing it would run ``overlapio/__init__``.

``python build_ffi.py [outdir]`` writes the Winsock module to outdir (default: a
temp dir) to check it by hand; ``python build_ffi.py --uring [outdir]`` compiles
the io_uring extension there.
"""

import importlib.util
import os
import sys

import cffi

_HERE = os.path.dirname(os.path.abspath(__file__))


def _load_cdef_module(*path):
    filename = os.path.join(_HERE, "backends", *path) + ".py"
    spec = importlib.util.spec_from_file_location("_overlapio_" + "_".join(path), filename)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ffibuilder = cffi.FFI()
ffibuilder.cdef(_load_cdef_module("winsock", "cdef").CDEF)
# None as the source = ABI mode: the generated module dlopen()s the DLLs at run time
ffibuilder.set_source("overlapio.backends.winsock._ffi", None)

_uring = _load_cdef_module("uring_cdef")
uring_ffibuilder = cffi.FFI()
uring_ffibuilder.cdef(_uring.CDEF)
# optional=True: a failed compile (no compiler, no io_uring header) is a warning,
# not a failed install; the backend then reports itself unavailable.
uring_ffibuilder.set_source("overlapio.backends._uring_ffi", _uring.SOURCE, optional=True)


if __name__ == "__main__":
    import tempfile

    args = sys.argv[1:]
    builder = ffibuilder
    if args[:1] == ["--uring"]:
        builder = uring_ffibuilder
        args = args[1:]
    outdir = args[0] if args else tempfile.mkdtemp(prefix="overlapio_ffi_")
    print(builder.compile(tmpdir=outdir, verbose=True))
