"""The built wheel: one top-level package, the generated cffi module, and a
working install."""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    (whl,) = out.glob("overlapio-*.whl")
    return whl


@pytest.mark.slow
def test_wheel_installs_only_the_overlapio_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"overlapio"}
    for needed in ("overlapio/py.typed", "overlapio/lines.py", "overlapio/core/proactor.py",
                   "overlapio/backends/posix_selectors.py",
                   "overlapio/backends/winsock/_ffi.py", "overlapio/backends/winsock/backend.py"):
        assert needed in names
    entry_points = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "overlapio = overlapio.__main__:main" in entry_points


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="runs the POSIX demo")
def test_installed_wheel_runs_the_demo(wheel, tmp_path):
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                        str(wheel)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    # -S: no site-packages, so neither an editable install nor the source tree can
    # stand in for what the wheel put in `target`.
    env = dict(os.environ, PYTHONPATH=str(target))
    r = subprocess.run([sys.executable, "-S", "-c",
                        "import overlapio, sys; assert overlapio.__file__.startswith(sys.argv[1]); "
                        "from overlapio.cli import main; sys.exit(main(['demo', '--interval', '0']))", str(target)],
                       capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "demo ok: 3 of 3 messages came back intact" in r.stdout


@pytest.mark.slow
def test_installed_wheel_runs_an_example(wheel, tmp_path):
    """examples/ run on what the wheel installs (http_get.py also uses overlapio.lines)."""
    import functools
    import http.server
    import threading

    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                        str(wheel)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    (tmp_path / "page.txt").write_text("served\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.func.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = dict(os.environ, PYTHONPATH=str(target))  # -S: only what the wheel installed
        r = subprocess.run([sys.executable, "-S", str(ROOT / "examples" / "http_get.py"),
                            f"http://127.0.0.1:{server.server_address[1]}/page.txt"],
                           capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    finally:
        server.shutdown()
        server.server_close()
    assert r.returncode == 0, r.stderr
    assert r.stdout == "served\n" and r.stderr == "HTTP/1.0 200 OK\n"


# help(overlapio) lists the package's own modules: neither the checkout's setup.py,
# build_ffi.py, bench/ nor tests/ (they are not part of the package).
_HELP = ("import overlapio, pydoc, sys; "
         "print(overlapio.__path__); print(overlapio.Proactor('posix').backend_name); "
         "print(pydoc.render_doc(overlapio, renderer=pydoc.plaintext))")


def _package_contents(doc: str) -> set[str]:
    lines = doc.split("PACKAGE CONTENTS", 1)[1].splitlines()[1:]
    names = set()
    for line in lines:
        if not line.strip():
            break
        names.add(line.split()[0])
    return names


@pytest.mark.parametrize("layout", ["installed", "checkout in place"])
def test_help_lists_only_the_package_modules(layout, tmp_path):
    env = dict(os.environ)
    flags = []
    if layout == "checkout in place":
        # No site-packages: overlapio comes from the source tree alone.
        flags, env["PYTHONPATH"] = ["-S"], str(ROOT)
    r = subprocess.run([sys.executable, *flags, "-c", _HELP], capture_output=True, text=True, timeout=60,
                       env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    path_line, backend, doc = r.stdout.split("\n", 2)
    assert backend == "posix"
    assert str(ROOT) + "'" not in path_line, path_line  # the checkout root is not on the package path
    contents = _package_contents(doc)
    own = {f.stem for f in (ROOT / "overlapio").glob("*.py") if f.stem != "__init__"}
    assert contents and contents <= own | {"core (package)", "backends (package)"}, contents


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX paths")
def test_installed_wheel_bench_help_works_and_running_says_how(wheel, tmp_path):
    # The wheel does not carry the benchmark suite: --help still explains the command,
    # running it says where the suite is, and a `bench` package in the current
    # directory is not taken for it.
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                        str(wheel)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    decoy = tmp_path / "bench"
    decoy.mkdir()
    (decoy / "__init__.py").write_text("print('DECOY BENCH IMPORTED')\n")
    (decoy / "cli.py").write_text("def main(argv=None, **kw):\n    print('DECOY BENCH RAN')\n    return 0\n")
    env = dict(os.environ, PYTHONPATH=str(target))

    def overlapio(*args):
        return subprocess.run([sys.executable, "-S", "-c", "import sys; from overlapio.cli import main; "
                               "sys.exit(main(sys.argv[1:]))", *args],
                              capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)

    r = overlapio("bench", "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: overlapio bench")
    assert "pip install -e '.[bench]'" in r.stdout
    r = overlapio("bench", "--list")
    assert r.returncode == 1
    assert "DECOY" not in r.stdout + r.stderr
    assert r.stderr.startswith("overlapio: error: the benchmark suite is not installed")
    assert len(r.stderr.splitlines()) == 1
