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

import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import winetools

pytestmark = pytest.mark.wine

CONTRACTS = Path(__file__).with_name("contracts")
_FACT_RE = re.compile(r'\b(?:CHECK|FACT)\(\s*"([a-z0-9_]+)"')
_LINE_RE = re.compile(r"^(PASS|FAIL) ([a-z0-9_]+): ?(.*)$")


def _facts() -> list[tuple[str, str]]:
    cases = []
    for src in sorted(CONTRACTS.glob("*.c")):
        names = _FACT_RE.findall(src.read_text())
        assert len(names) == len(set(names)), "duplicate fact names in %s" % src.name
        cases += [(src.stem, name) for name in names]
    return cases


FACTS = _facts()
PROGRAMS = sorted({program for program, _ in FACTS})


class Run:
    """One program's build and run, parsed."""

    def __init__(self, program: str, build, proc=None, seconds: float = 0.0, error: str = ""):
        self.program, self.build, self.proc, self.seconds = program, build, proc, seconds
        self.error = error
        self.lines: dict[str, tuple[str, str]] = {}
        self.other: list[str] = []           # FAIL setup / FAIL watchdog / stray output
        if proc is not None:
            for line in proc.stdout.splitlines():
                m = _LINE_RE.match(line.strip())
                if m and m.group(2) not in ("setup", "watchdog"):   # not facts
                    self.lines[m.group(2)] = (m.group(1), m.group(3))
                elif line.strip():
                    self.other.append(line.strip())

    def describe(self) -> str:
        if self.build.returncode:
            return "build of %s.c failed:\n%s" % (self.program, self.build.stderr)
        if self.error:
            return "%s.exe: %s" % (self.program, self.error)
        return "%s.exe exited %s after %.1f s\nstdout:\n%s\nstderr (tail):\n%s" % (
            self.program, self.proc.returncode, self.seconds, self.proc.stdout,
            self.proc.stderr[-2000:])


def _build_and_run(program: str, outdir: Path, env) -> Run:
    exe = outdir / (program + ".exe")
    build = winetools.build(CONTRACTS / (program + ".c"), exe)
    if build.returncode:
        return Run(program, build)
    t0 = time.monotonic()
    try:
        proc = winetools.run(exe, env, timeout=60)
    except Exception as exc:  # timeout: the in-program watchdog should prevent this
        return Run(program, build, error=repr(exc))
    return Run(program, build, proc, time.monotonic() - t0)


@pytest.fixture(scope="session")
def contract_runs(wine, tmp_path_factory) -> dict[str, Run]:
    outdir = tmp_path_factory.mktemp("contracts")
    with ThreadPoolExecutor(max_workers=len(PROGRAMS)) as pool:
        runs = pool.map(lambda p: _build_and_run(p, outdir, wine), PROGRAMS)
        return {run.program: run for run in runs}


@pytest.mark.parametrize("program,fact", FACTS, ids=["%s::%s" % c for c in FACTS])
def test_fact(contract_runs, program, fact):
    run = contract_runs[program]
    if fact not in run.lines:
        pytest.fail("fact %s was never reported\n%s" % (fact, run.describe()))
    status, detail = run.lines[fact]
    print("%s %s: %s" % (status, fact, detail))   # measured values, shown with -rA
    assert status == "PASS", "%s: %s" % (fact, detail)


@pytest.mark.parametrize("program", PROGRAMS)
def test_program_clean_exit(contract_runs, program):
    """No setup failure, no watchdog, exit code 0, and no fact it does not declare."""
    run = contract_runs[program]
    assert run.proc is not None, run.describe()
    declared = {f for p, f in FACTS if p == program}
    assert not run.other, run.describe()
    assert set(run.lines) <= declared, "undeclared facts: %s" % (set(run.lines) - declared)
    assert run.proc.returncode == 0, run.describe()
