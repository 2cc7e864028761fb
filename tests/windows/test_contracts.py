"""Layer 2: the Winsock behaviours the backend relies on, pinned under Wine.

Each contracts/*.c program prints one ``PASS name: detail`` / ``FAIL name: detail``
line per fact. Fact names are collected from the sources (``CHECK("name"`` /
``FACT("name")``), so every fact is its own test result, and a fact that never
printed (crash, watchdog) fails with the program's output instead of vanishing.

Programs are built once per session into pytest's tmp dir and run concurrently (they
only use loopback sockets on ephemeral ports). Every wait inside them is bounded and
a watchdog ends each program, so nothing here can hang.

These facts are measured under Wine; where Windows documents something else (closing
a socket with a pending WSARecv), the program asserts only what both agree on and
records Wine's codes in the detail text.
"""

from __future__ import annotations

import pytest

from programs import FACTS, PROGRAMS

pytestmark = pytest.mark.wine


@pytest.mark.parametrize("program,fact", FACTS, ids=["%s::%s" % c for c in FACTS])
def test_fact(wine_runs, program, fact):
    run = wine_runs[program]
    if fact not in run.lines:
        pytest.fail("fact %s was never reported\n%s" % (fact, run.describe()))
    status, detail = run.lines[fact]
    print("%s %s: %s" % (status, fact, detail))   # measured values, shown with -rA
    assert status == "PASS", "%s: %s" % (fact, detail)


@pytest.mark.parametrize("program", PROGRAMS)
def test_program_clean_exit(wine_runs, program):
    """No setup failure, no watchdog, exit code 0, and no fact it does not declare."""
    run = wine_runs[program]
    assert run.proc is not None, run.describe()
    declared = {f for p, f in FACTS if p == program}
    assert not run.other, run.describe()
    assert set(run.lines) <= declared, "undeclared facts: %s" % (set(run.lines) - declared)
    assert run.proc.returncode == 0, run.describe()
