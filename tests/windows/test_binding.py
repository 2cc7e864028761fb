"""Layer 1: backends/winsock/cdef.py checked against the real Win64 SDK headers.

See bindcheck.py for what is compared and how. The broken-cdef cases prove the check
can fail: each plants one mistake the check must report.

The module itself is loaded by file path (as build_ffi.py does), so these tests run
without the overlapio package being importable.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import bindcheck

ROOT = Path(__file__).resolve().parents[2]
GUID_NAMES = ("WSAID_ACCEPTEX", "WSAID_CONNECTEX", "WSAID_GETACCEPTEXSOCKADDRS")

needs_toolchain = pytest.mark.skipif(bindcheck.toolchain_missing() is not None,
                                     reason=bindcheck.toolchain_missing() or "")


def _load_cdef():
    spec = importlib.util.spec_from_file_location(
        "_winsock_cdef_under_test", ROOT / "backends" / "winsock" / "cdef.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cdefmod = _load_cdef()
GUIDS = {name: tuple(getattr(cdefmod, name)) for name in GUID_NAMES}
# every integer constant of the cdef (its ``#define`` lines)
CONSTANT_NAMES = re.findall(r"^#define (\w+) ", cdefmod.CDEF, re.M)


# --- host-only sanity (no toolchain needed) -------------------------------------

def test_public_names_and_constants():
    # (cffi refuses dlopen(None) on Windows)
    lib = cdefmod.make_ffi().dlopen("kernel32.dll" if sys.platform == "win32" else None)
    assert CONSTANT_NAMES and all(isinstance(getattr(lib, name), int) for name in CONSTANT_NAMES)
    assert lib.INVALID_SOCKET == 2**64 - 1 and lib.SOCKET_ERROR == -1
    assert lib.WSA_MAXIMUM_WAIT_EVENTS == 64
    assert cdefmod.WSAID_ACCEPTEX.bytes_le == bytes.fromhex("f17d36b5accbcf1195ca00805f48a192")
    assert set(cdefmod.DLLS) == {"ws2_32", "kernel32"}


def test_make_ffi_gives_win64_layouts_on_this_host():
    ffi = cdefmod.make_ffi()
    # the numbers the backend depends on; bindcheck proves them against the SDK
    assert ffi.sizeof("OVERLAPPED") == 32 and ffi.offsetof("OVERLAPPED", "hEvent") == 24
    assert ffi.sizeof("WSABUF") == 16 and ffi.offsetof("WSABUF", "buf") == 8
    assert ffi.sizeof("SOCKET") == 8 and ffi.sizeof("DWORD") == 4
    assert ffi.alignof("struct in6_addr") == 2
    guid = ffi.new("GUID *", cdefmod.WSAID_CONNECTEX.as_init())
    assert bytes(ffi.buffer(guid)) == cdefmod.WSAID_CONNECTEX.bytes_le
    # constants are reachable from any opened lib (cffi refuses dlopen(None) on Windows)
    lib = ffi.dlopen("kernel32.dll" if sys.platform == "win32" else None)
    assert lib.WSA_IO_PENDING == 997 and lib.INVALID_SOCKET == 2**64 - 1


# --- the binding check against mingw-w64's headers --------------------------------

@pytest.mark.wine
@needs_toolchain
def test_cdef_matches_sdk():
    result = bindcheck.check(cdefmod.CDEF, cdefmod.DLLS, GUIDS)
    assert result.ok, "\n".join(result.failures)
    src = result.source
    # coverage: every function, constant and struct really was asserted
    for names in cdefmod.DLLS.values():
        for fn in names:
            assert "__typeof__(&%s)" % fn in src
    for name in CONSTANT_NAMES:
        assert "(%s) ==" % name in src
    for cname in ("struct _OVERLAPPED", "struct _WSABUF", "struct _GUID",
                  "struct sockaddr_in6", "LPFN_ACCEPTEX", "LPFN_CONNECTEX"):
        assert cname in src


def _swap(old: str, new: str, cdef: str | None = None) -> str:
    cdef = cdefmod.CDEF if cdef is None else cdef
    assert old in cdef, old
    return cdef.replace(old, new)


def _dlls_with(moved: str, src: str, dst: str) -> dict:
    dlls = {k: list(v) for k, v in cdefmod.DLLS.items()}
    dlls[src].remove(moved)
    dlls[dst].append(moved)
    return dlls


# name -> (cdef, dlls, guids, a substring one reported failure must contain)
BROKEN = {
    "dword_unsigned_long": (_swap("typedef uint32_t DWORD;", "typedef unsigned long DWORD;"),
                            None, None, "sizeof(DWORD) == 8"),
    "socket_32bit": (_swap("typedef uint64_t SOCKET;", "typedef uint32_t SOCKET;"),
                     None, None, "sizeof(SOCKET) == 4"),
    "cancelioex_in_ws2_32": (None, _dlls_with("CancelIoEx", "kernel32", "ws2_32"), None,
                             "CancelIoEx is not exported by ws2_32"),
    "wsabuf_fields_swapped": (_swap("    char *buf;\n} WSABUF;", "} WSABUF;",
                                    _swap("    ULONG len;", "    char *buf;\n    ULONG len;")),
                              None, None, "offsetof(struct _WSABUF, buf) == 0"),
    "in6_addr_align_4": (_swap("u_short Word[8];", "uint32_t Word[4];"), None, None,
                         "_Alignof(struct in6_addr) == 4"),
    "af_inet6_linux_value": (_swap("#define AF_INET6 23", "#define AF_INET6 10"), None,
                             None, "AF_INET6 == 10"),
    "wsarecv_flags_by_value": (_swap("DWORD *lpNumberOfBytesRecvd, DWORD *lpFlags,",
                                     "DWORD *lpNumberOfBytesRecvd, DWORD lpFlags,"),
                               None, None, "prototype of WSARecv"),
    "wrong_guid": (None, None, dict(GUIDS, WSAID_CONNECTEX=(0x25A207B8,) + GUIDS[
        "WSAID_CONNECTEX"][1:]), "WSAID_CONNECTEX"),
}


@pytest.fixture(scope="module")
def broken_results():
    """All broken variants checked concurrently (each is a ~1.5 s gcc run)."""
    if bindcheck.toolchain_missing():
        pytest.skip(bindcheck.toolchain_missing())

    def run(item):
        name, (cdef, dlls, guids, _) = item
        return name, bindcheck.check(cdef or cdefmod.CDEF, dlls or cdefmod.DLLS,
                                     guids or GUIDS)

    with ThreadPoolExecutor(max_workers=len(BROKEN)) as pool:
        return dict(pool.map(run, BROKEN.items()))


@pytest.mark.wine
@pytest.mark.parametrize("variant", sorted(BROKEN))
def test_broken_cdef_is_caught(broken_results, variant):
    result = broken_results[variant]
    expected = BROKEN[variant][3]
    assert not result.ok, "the check passed a broken cdef (%s)" % variant
    assert any(expected in f for f in result.failures), (
        "expected a failure mentioning %r, got:\n%s" % (expected, "\n".join(result.failures)))
