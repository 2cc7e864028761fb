"""The documented command that runs the conformance suite against a third-party
backend registered in the ``overlapio.backends`` entry-point group works."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CONFORMANCE = Path(__file__).resolve().parent / "conformance"


def _install_fake_package(where: Path, body: str) -> None:
    (where / "thirdparty_io.py").write_text(textwrap.dedent(body))
    dist = where / "thirdparty_io-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-io\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[overlapio.backends]\nthirdparty = thirdparty_io:Backend\n")


def _run_suite(where: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(where), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(CONFORMANCE), "--backend", "thirdparty", "-v", "-p", "no:cacheprovider",
         "-k", "test_pending_recvs_complete_in_order or test_zero_length_ops or test_close_socket_cancels"],
        cwd=where, env=env, capture_output=True, text=True, timeout=300)


def test_suite_runs_against_a_registered_backend(tmp_path):
    _install_fake_package(tmp_path, """
        from overlapio import default_backend, load_backend

        class Backend(load_backend(default_backend({}))):
            name = "thirdparty"
    """)
    r = _run_suite(tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 passed" in r.stdout and r.stdout.count("[thirdparty] PASSED") == 3


@pytest.mark.skipif(sys.platform == "win32", reason="the broken backend reaches into the POSIX backend's queues")
def test_suite_fails_a_broken_registered_backend(tmp_path):
    # Pending recvs served newest-first: the suite must say no.
    _install_fake_package(tmp_path, """
        from overlapio import default_backend, load_backend

        class Backend(load_backend(default_backend({}))):
            name = "thirdparty"

            def recv(self, op):
                super().recv(op)
                st = self._socks.get(op.sock)
                if st is not None and len(st.recvs) > 1:
                    st.recvs.rotate(1)
    """)
    r = _run_suite(tmp_path)
    assert r.returncode == 1 and "failed" in r.stdout, r.stdout + r.stderr
