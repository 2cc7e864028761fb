"""Installing where the io_uring extension cannot be compiled: the install
succeeds, overlapio works, and the ``uring`` backend says why it is missing."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sys.platform.startswith("linux"),
                                 reason="the io_uring extension is only ever built on Linux")]


def test_install_with_a_compiler_that_fails(tmp_path):
    # A copy without build products: setuptools builds in the source tree and would
    # pack an extension that an earlier build (with a compiler) left in build/.
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "*.so", "__pycache__", ".hypothesis", "results"))
    out = tmp_path / "wheel"
    env = dict(os.environ, CC="false", CXX="false")  # `false`: a compiler that fails every time
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "-q", "-w", str(out)],
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr
    (whl,) = out.glob("overlapio-*.whl")
    names = zipfile.ZipFile(whl).namelist()
    assert not [n for n in names if "_uring_ffi" in n], names
    assert "overlapio/backends/winsock/_ffi.py" in names and "overlapio/backends/uring.py" in names

    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(whl)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    env = dict(os.environ, PYTHONPATH=str(target))
    env.pop("OVERLAPIO_BACKEND", None)
    code = ("import overlapio, sys; assert overlapio.__file__.startswith(sys.argv[1]); "
            "ok, why = overlapio.available_backends()['uring']; print(ok, why); "
            "from overlapio.cli import main; sys.exit(main(['backends']) or main(['demo', '--interval', '0']))")
    r = subprocess.run([sys.executable, "-S", "-c", code, str(target)],
                       capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0]
    assert first.startswith("False ") and "not built" in first and "C compiler" in first, r.stdout
    assert "uring" in r.stdout and "demo ok: 3 of 3 messages came back intact" in r.stdout
