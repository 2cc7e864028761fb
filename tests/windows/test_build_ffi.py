"""build_ffi.py: the out-of-line ABI-mode module is generated from the same cdef.

Host-only (no compiler: ABI mode emits pure Python). The wheel build itself
(``pip wheel .``) is not run here: it needs build isolation and takes seconds.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_module_matches_inline_ffi(tmp_path):
    build = _load("_overlapio_build_ffi", ROOT / "build_ffi.py")
    out = Path(build.ffibuilder.compile(tmpdir=str(tmp_path)))
    assert out == tmp_path / "overlapio" / "backends" / "winsock" / "_ffi.py"
    generated = _load("_overlapio_winsock_ffi", out).ffi
    inline = _load("_overlapio_cdef", ROOT / "backends" / "winsock" / "cdef.py").make_ffi()
    for ctype in ("OVERLAPPED", "WSABUF", "GUID", "struct sockaddr_in6",
                  "struct sockaddr_storage", "LPFN_ACCEPTEX", "SOCKET", "DWORD"):
        assert generated.sizeof(ctype) == inline.sizeof(ctype), ctype
        assert generated.alignof(ctype) == inline.alignof(ctype), ctype
    assert generated.offsetof("OVERLAPPED", "hEvent") == 24
    # (cffi refuses dlopen(None) on Windows)
    assert generated.dlopen("kernel32.dll" if sys.platform == "win32" else None).WSA_IO_PENDING == 997
