"""post() from a signal handler, landing anywhere in post(), close() and the
collection of posts: no deadlock, every post completes once or is refused."""
from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not hasattr(__import__("signal"), "SIGUSR1"), reason="needs SIGUSR1")

CHILD = Path(__file__).resolve().parent / "_signal_post.py"


def test_post_from_a_signal_handler_anywhere_in_post_or_close(backend):
    if isinstance(backend, type):
        where = os.path.dirname(inspect.getfile(backend))
        argv = ["--class", where, backend.__module__, backend.__qualname__]
    else:
        argv = [backend]
    try:
        r = subprocess.run([sys.executable, str(CHILD), *argv], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("a signal handler's post() deadlocked (the child did not finish in 60 s)")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("ok: "), r.stdout + r.stderr
