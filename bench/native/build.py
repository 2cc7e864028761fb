"""Build the C programs (loadgen.c, echo_epoll.c) with the system C compiler.

`build(name)` compiles bench/native/<name>.c with `$CC` (default `cc`) and -O2 into a
cache directory (`$OVERLAPIO_BENCH_CACHE`, default ~/.cache/overlapio-bench), keyed by a
hash of the source, the compiler's identity and the flags, so an edited source or a
different compiler gives a fresh binary and an unchanged one is not rebuilt.
Raises BuildError (with the compiler's message) when there is no compiler or the build
fails; the harness turns that into "skipped: <reason>" for the C contestant.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
FLAGS = ("-O2", "-Wall", "-std=gnu11")
PROGRAMS = ("loadgen", "echo_epoll")


class BuildError(RuntimeError):
    pass


def cache_dir() -> Path:
    env = os.environ.get("OVERLAPIO_BENCH_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "overlapio-bench"


def compiler() -> str:
    cc = os.environ.get("CC", "cc")
    path = shutil.which(cc.split()[0])
    if not path:
        raise BuildError(f"no C compiler ({cc!r} not found on PATH)")
    return cc


def compiler_id(cc: str) -> str:
    try:
        out = subprocess.run(cc.split() + ["--version"], capture_output=True, text=True, timeout=30)
        return (out.stdout or out.stderr).splitlines()[0].strip()
    except (OSError, subprocess.SubprocessError, IndexError) as e:
        raise BuildError(f"{cc} --version failed: {e}") from e


def build(name: str, cache: Path | None = None) -> Path:
    if name not in PROGRAMS:
        raise ValueError(f"unknown program {name!r}")
    src = HERE / f"{name}.c"
    cc = compiler()
    ident = compiler_id(cc)
    h = hashlib.sha256()
    h.update(src.read_bytes())
    h.update(ident.encode())
    h.update(" ".join(FLAGS).encode())
    out_dir = (cache or cache_dir()) / h.hexdigest()[:16]
    out = out_dir / name
    if out.is_file() and os.access(out, os.X_OK):
        return out
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".{name}.{os.getpid()}.tmp"
    cmd = cc.split() + list(FLAGS) + ["-o", str(tmp), str(src)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as e:
        raise BuildError(f"{' '.join(cmd)}: {e}") from e
    if r.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise BuildError(f"{' '.join(cmd)} failed:\n{r.stderr.strip()[-2000:]}")
    os.replace(tmp, out)  # atomic: concurrent builders never see a half-written binary
    return out


def build_all(cache: Path | None = None) -> dict[str, Path | BuildError]:
    res: dict[str, Path | BuildError] = {}
    for name in PROGRAMS:
        try:
            res[name] = build(name, cache)
        except BuildError as e:
            res[name] = e
    return res


if __name__ == "__main__":
    for k, v in build_all().items():
        print(f"{k}: {v}")
