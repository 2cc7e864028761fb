"""Binding check: compare a cffi cdef with the real Win64 headers and import libs.

cffi lays the cdef out for the *host* (this Linux box). The cdef is written with
fixed-width types, so the host layout must equal the Win64 one; this module proves it
by turning the cdef into C11 ``_Static_assert``s and compiling them with
``x86_64-w64-mingw32-gcc -fsyntax-only`` against ``<winsock2.h>``/``<mswsock.h>``:

* every typedef: size and alignment (cffi's host numbers), and
  - integer typedefs: same signedness and an integer type on Windows too
    (``uint32_t`` and ``DWORD``=``unsigned long`` are ABI-equal but not
    "compatible" in C, so they are compared by size/sign, not by type identity);
  - other typedefs (pointers, structs, function pointers): the cdef's definition,
    spelled in Windows names, must be ``__builtin_types_compatible_p`` with the SDK's;
* every struct/union: size, alignment, and each field's offset, size and signedness;
* every integer constant's value;
* every function prototype, via ``__typeof__(&f)`` against the cdef's prototype.

Prototypes are rendered from cffi's own pycparser AST (``Parser._parse``), not from the
resolved model, so typedef names survive (``DWORD`` stays ``DWORD`` and resolves to
the SDK's type in the C file). Raw C types written in the cdef are re-spelled with the
host's width (``unsigned long`` -> ``unsigned long long`` on Linux), so a cdef that
uses ``long`` where the SDK has ``LONG`` fails, as it would misbehave under cffi.

Exports are checked against mingw-w64's import libraries (``lib<dll>.a``, read with
``x86_64-w64-mingw32-nm``): they are generated from the real Windows DLLs' export
lists, which is what ``ffi.dlopen`` on Windows sees (Wine's DLLs could differ).

GUID macros are checked through the preprocessor (``gcc -E``): their braced values
cannot be taken apart inside a static assert.
"""

from __future__ import annotations

import copy
import functools
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import cffi
from cffi import model
from pycparser import c_ast, c_generator

# On Windows mingw-w64's own gcc/nm (MSYS2's mingw64) are native; elsewhere the cross tools.
GCC = "gcc" if sys.platform == "win32" else "x86_64-w64-mingw32-gcc"
NM = "nm" if sys.platform == "win32" else "x86_64-w64-mingw32-nm"
HEADERS = ("winsock2.h", "ws2tcpip.h", "mswsock.h", "windows.h")
INSTALL_HINT = ("needs the mingw-w64 cross compiler and Wine: "
                "apt-get install gcc-mingw-w64-x86-64 wine64 wine")

# Raw C scalar types kept as spelled; every other raw integer type is re-spelled by
# its host width (see module doc).
_KEEP = {"void", "char", "float", "double", "_Bool"}
_BY_WIDTH = {(1, True): "signed char", (1, False): "unsigned char",
             (2, True): "short", (2, False): "unsigned short",
             (4, True): "int", (4, False): "unsigned int",
             (8, True): "long long", (8, False): "unsigned long long"}


def toolchain_missing() -> str | None:
    """None when the cross toolchain is usable, else a skip reason."""
    missing = [t for t in (GCC, NM) if shutil.which(t) is None]
    return "%s not found; %s" % (", ".join(missing), INSTALL_HINT) if missing else None


@dataclass
class CheckResult:
    failures: list[str] = field(default_factory=list)
    source: str = ""          # the generated C, for debugging
    n_asserts: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures


class _Gen:
    """Walks one cdef and emits static asserts (and remembers each one's meaning)."""

    def __init__(self, cdef: str):
        self.ffi = cffi.FFI()
        self.ffi.cdef(cdef)
        self.decls = self.ffi._parser._declarations
        self.typedef_names = {k[8:] for k in self.decls if k.startswith("typedef ")}
        # cffi's own parser again, for the unresolved AST (typedef names preserved)
        ast, _, _ = cffi.cparser.Parser()._parse(cdef)
        self.ast_typedefs: dict[str, c_ast.Node] = {}
        self.ast_funcs: dict[str, c_ast.Node] = {}
        started = False
        for node in ast.ext:
            if not started:   # skip cffi's prelude of "typedef int X;" lines
                started = getattr(node, "name", None) == "__dotdotdot__"
                continue
            if isinstance(node, c_ast.Typedef):
                self.ast_typedefs[node.name] = node.type
            elif isinstance(node, c_ast.Decl) and isinstance(node.type, c_ast.FuncDecl):
                self.ast_funcs[node.name] = node.type
        self.lines: list[str] = []

    # -- helpers -------------------------------------------------------------------
    def btype(self, tp):
        with self.ffi._lock:              # cffi's internal API expects the lock held
            return self.ffi._get_cached_btype(tp)

    def sizeof(self, tp) -> int:
        return self.ffi.sizeof(self.btype(tp))

    def alignof(self, tp) -> int:
        return self.ffi.alignof(self.btype(tp))

    def is_int(self, tp) -> bool:
        return isinstance(tp, model.PrimitiveType) and tp.is_integer_type()

    def is_signed(self, tp) -> bool:
        return int(self.ffi.cast(self.btype(tp), -1)) < 0

    def sa(self, cond: str, msg: str) -> None:
        msg = msg.replace("\\", "\\\\").replace('"', "'")
        self.lines.append('_Static_assert(%s, "%s");' % (cond, msg))

    def render(self, node: c_ast.Node) -> str:
        """An AST type node as a C type name, in Windows typedef names."""
        node = copy.deepcopy(node)
        self._respell(node)
        return c_generator.CGenerator().visit(c_ast.Typename(None, [], None, node))

    def _respell(self, node: c_ast.Node) -> None:
        if isinstance(node, c_ast.TypeDecl):
            node.declname = None
        elif isinstance(node, (c_ast.Struct, c_ast.Union)):
            if node.name is None:
                raise ValueError("cannot name an anonymous struct/union in C")
            node.decls = None            # refer by tag to the SDK's definition
        elif isinstance(node, c_ast.IdentifierType):
            name = " ".join(node.names)
            if name not in self.typedef_names and name not in _KEEP:
                width = self.ffi.sizeof(name)
                signed = int(self.ffi.cast(name, -1)) < 0
                node.names = _BY_WIDTH[(width, signed)].split()
        for _, child in node.children():
            self._respell(child)

    def c_name(self, st) -> str:
        """How C spells a cffi struct type (by tag, else by its typedef)."""
        if not st.name.startswith("$"):
            return "%s %s" % (st.kind, st.name)
        for key, (tp, _) in self.decls.items():
            if key.startswith("typedef ") and tp is st:
                return key[8:]
        raise ValueError("anonymous struct without typedef: %r" % st)

    # -- emitters ------------------------------------------------------------------
    def layout(self, cname: str, tp) -> None:
        self.sa("sizeof(%s) == %d" % (cname, self.sizeof(tp)),
                "sizeof(%s) == %d (cdef)" % (cname, self.sizeof(tp)))
        self.sa("_Alignof(%s) == %d" % (cname, self.alignof(tp)),
                "_Alignof(%s) == %d (cdef)" % (cname, self.alignof(tp)))

    def integer_kind(self, cexpr_type: str, tp, what: str) -> None:
        # __builtin_classify_type: 1 = integer type class in GCC
        self.sa("__builtin_classify_type((%s)0) == 1" % cexpr_type,
                "%s is an integer type (cdef: %s)" % (what, tp._get_c_name()))
        sign = "<" if self.is_signed(tp) else ">"
        self.sa("((%s)-1 %s (%s)0)" % (cexpr_type, sign, cexpr_type),
                "%s is %s (cdef: %s)" % (what, "signed" if sign == "<" else "unsigned",
                                         tp._get_c_name()))

    def typedef(self, name: str, tp) -> None:
        if isinstance(tp, model.StructOrUnion) and tp.fldnames is None:
            pass                          # opaque: no layout to compare
        else:
            self.layout(name, tp)
        if self.is_int(tp):
            self.integer_kind(name, tp, "typedef " + name)
        else:
            try:
                spelled = self.render(self.ast_typedefs[name])
            except ValueError:
                return
            self.sa("__builtin_types_compatible_p(%s, %s)" % (name, spelled),
                    "typedef %s is %s" % (name, spelled))

    def struct(self, tp) -> None:
        if tp.fldnames is None:
            return                        # opaque (only used through pointers)
        cname = self.c_name(tp)
        self.layout(cname, tp)
        for fname, ftp, bitsize, _ in tp.enumfields():
            if bitsize >= 0:
                raise ValueError("bitfields are not checked: %s.%s" % (cname, fname))
            member = "((%s *)0)->%s" % (cname, fname)
            off = self.ffi.offsetof(self.btype(tp), fname)
            self.sa("__builtin_offsetof(%s, %s) == %d" % (cname, fname, off),
                    "offsetof(%s, %s) == %d (cdef)" % (cname, fname, off))
            self.sa("sizeof(%s) == %d" % (member, self.sizeof(ftp)),
                    "sizeof(%s.%s) == %d (cdef)" % (cname, fname, self.sizeof(ftp)))
            if self.is_int(ftp):
                self.integer_kind("__typeof__(%s)" % member, ftp, "%s.%s" % (cname, fname))

    def constant(self, name: str, value: int) -> None:
        lit = "%dLL" % value if -(1 << 63) <= value < (1 << 63) else "%dULL" % value
        if value == -(1 << 63):
            lit = "(-9223372036854775807LL - 1)"
        self.sa("(%s) == %s" % (name, lit), "%s == %d (cdef)" % (name, value))

    def function(self, name: str) -> None:
        spelled = self.render(c_ast.PtrDecl([], self.ast_funcs[name]))
        self.sa("__builtin_types_compatible_p(__typeof__(&%s), %s)" % (name, spelled),
                "prototype of %s is %s" % (name, spelled))

    def generate(self) -> str:
        for key in sorted(self.decls):
            kind, _, name = key.partition(" ")
            tp = self.decls[key][0]
            if kind == "typedef":
                self.typedef(name, tp)
            elif kind in ("struct", "union", "anonymous"):
                self.struct(tp)
            elif kind == "macro":
                self.constant(name, tp)
            elif kind == "function":
                self.function(name)
            elif kind == "constant":      # static const with a value
                self.constant(name, self.ffi._parser._int_constants[name])
            else:
                raise ValueError("binding check does not handle %r" % key)
        head = ["/* generated by tests/windows/bindcheck.py: the cdef vs the SDK */"]
        head += ["#include <%s>" % h for h in HEADERS]
        return "\n".join(head + [""] + self.lines) + "\n"


_ASSERT_RE = re.compile(r"static assertion failed: \"(.*)\"")
_ERROR_RE = re.compile(r"error: (.*)")


def _compile(source: str, extra: tuple[str, ...] = ("-fsyntax-only",)) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "bindcheck.c")
        path.write_text(source)
        return subprocess.run([GCC, "-std=c11", *extra, str(path)],
                              capture_output=True, text=True, timeout=120)


@functools.lru_cache(maxsize=None)
def import_lib_exports(dll: str) -> frozenset[str]:
    """Names exported by ``<dll>.dll`` per mingw-w64's import library."""
    lib = subprocess.run([GCC, "-print-file-name=lib%s.a" % dll],
                         capture_output=True, text=True, check=True).stdout.strip()
    if not Path(lib).is_file():
        raise FileNotFoundError("no import library for %s (%s)" % (dll, lib))
    out = subprocess.run([NM, "-g", lib], capture_output=True, text=True, check=True).stdout
    return frozenset(m.group(1) for m in re.finditer(r" I __imp_(\w+)$", out, re.M))


def check_exports(function_names: set[str], dlls: dict[str, list[str]]) -> list[str]:
    """Each cdef function is listed in DLLS exactly once, under a DLL exporting it."""
    failures = []
    listed: dict[str, str] = {}
    for dll, names in dlls.items():
        exports = import_lib_exports(dll)
        for name in names:
            if name in listed:
                failures.append("export: %s listed under both %s and %s"
                                % (name, listed[name], dll))
            listed[name] = dll
            if name not in exports:
                owners = [d for d in ("ws2_32", "mswsock", "kernel32")
                          if name in import_lib_exports(d)]
                failures.append("export: %s is not exported by %s.dll (found in: %s)"
                                % (name, dll, ", ".join(owners) or "none checked"))
            if name not in function_names:
                failures.append("export: %s is in DLLS but not declared in the cdef" % name)
    for name in sorted(function_names - set(listed)):
        failures.append("export: %s is declared but not in DLLS" % name)
    return failures


def check_guids(guids: dict[str, tuple]) -> list[str]:
    """Each ``name -> (data1, data2, data3, data4 bytes)`` equals the SDK macro."""
    if not guids:
        return []
    # a marker that is not itself a macro, then the macro to expand
    body = "\n".join("overlapio_guid_%s %s overlapio_end" % (name, name) for name in guids)
    proc = _compile('#include <winsock2.h>\n#include <mswsock.h>\n' + body + "\n", ("-E", "-P"))
    if proc.returncode:
        return ["guid: preprocessor failed: %s" % proc.stderr.strip()]
    failures = []
    for name, (d1, d2, d3, d4) in guids.items():
        m = re.search(r"overlapio_guid_%s (.*?)overlapio_end" % name, proc.stdout, re.S)
        nums = [int(x, 16) for x in re.findall(r"0x[0-9a-fA-F]+", m.group(1))] if m else []
        want = [d1, d2, d3, *d4]
        if nums != want:
            failures.append("guid: %s is %s in the SDK, cdef module says %s"
                            % (name, [hex(x) for x in nums], [hex(x) for x in want]))
    return failures


def check(cdef: str, dlls: dict[str, list[str]], guids: dict[str, tuple] | None = None
          ) -> CheckResult:
    """Run every check; the result lists each failed fact (empty when all hold)."""
    gen = _Gen(cdef)
    source = gen.generate()
    result = CheckResult(source=source, n_asserts=len(gen.lines))
    proc = _compile(source)
    for line in proc.stderr.splitlines():
        m = _ASSERT_RE.search(line)
        if m:
            result.failures.append("assert: " + m.group(1))
        elif _ERROR_RE.search(line):   # e.g. an unknown type/constant name
            result.failures.append("compile: " + _ERROR_RE.search(line).group(1))
    if proc.returncode and not result.failures:
        result.failures.append("compile: gcc failed: " + proc.stderr.strip()[-2000:])
    functions = {k[9:] for k in gen.decls if k.startswith("function ")}
    result.failures += check_exports(functions, dlls)
    result.failures += check_guids(guids or {})
    return result
