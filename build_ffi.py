"""cffi builder for the Winsock binding: out-of-line ABI mode, no C compiler needed.

setup.py wires this in with ``cffi_modules=["build_ffi.py:ffibuilder"]``; building the
wheel writes ``overlapio/backends/_winsock_ffi.py``, a pure-Python module holding the
pre-parsed cdef (the same on every platform, so one wheel could serve all).

The cdef lives in ``backends/_winsock_cdef.py``. It is loaded by file path, not
imported as ``overlapio.backends._winsock_cdef``: at build time the package is not
installed, and importing it would run ``overlapio/__init__``.

``python build_ffi.py [outdir]`` writes the module to outdir (default: a temp dir)
to check it by hand.
"""

import importlib.util
import os
import sys

import cffi

_HERE = os.path.dirname(os.path.abspath(__file__))


def _load_cdef_module():
    path = os.path.join(_HERE, "backends", "_winsock_cdef.py")
    spec = importlib.util.spec_from_file_location("_overlapio_winsock_cdef", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ffibuilder = cffi.FFI()
ffibuilder.cdef(_load_cdef_module().CDEF)
# None as the source = ABI mode: the generated module dlopen()s the DLLs at run time
ffibuilder.set_source("overlapio.backends._winsock_ffi", None)


if __name__ == "__main__":
    import tempfile

    outdir = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="winsock_ffi_")
    print(ffibuilder.compile(tmpdir=outdir, verbose=True))
