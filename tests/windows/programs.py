"""Building and running the Windows programs under Wine: the contract programs
(contracts/*.c, one ``PASS``/``FAIL`` line per fact) and the stand-in's C twin
(twin.c, one ``ROW`` line per table step). Used by the tests (conftest.py's
``wine_runs``) and by facts_doc.py, so both see the same runs.
"""
from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import facts_table
import winetools

HERE = Path(__file__).parent
CONTRACTS = HERE / "contracts"
TWIN = "twin"
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


def source(program: str) -> Path:
    return HERE / "twin.c" if program == TWIN else CONTRACTS / (program + ".c")


class Run:
    """One program's build and run, parsed."""

    def __init__(self, program: str, build, proc=None, seconds: float = 0.0, error: str = ""):
        self.program, self.build, self.proc, self.seconds = program, build, proc, seconds
        self.error = error
        self.lines: dict[str, tuple[str, str]] = {}
        self.other: list[str] = []           # FAIL setup / FAIL watchdog / stray output
        self.rows: dict = {}                 # the twin's ROW lines
        self.ended: list[str] = []           # the twin's scenarios that ran to their end
        if proc is not None:
            rows, rest = facts_table.parse_rows(proc.stdout)
            self.rows = rows
            for line in rest:
                m = _LINE_RE.match(line)
                if m and m.group(2) not in ("setup", "watchdog"):   # not facts
                    self.lines[m.group(2)] = (m.group(1), m.group(3))
                elif line.startswith("END "):
                    self.ended.append(line[4:])
                else:
                    self.other.append(line)

    def complete(self) -> bool:
        """Built, ran, exited 0 with nothing unexpected; the twin: every scenario ended."""
        if self.proc is None or self.proc.returncode or self.other:
            return False
        return self.program != TWIN or self.ended == [sc.name for sc in facts_table.SCENARIOS]

    def describe(self) -> str:
        if self.build.returncode:
            return "build of %s failed:\n%s" % (source(self.program).name, self.build.stderr)
        if self.error:
            return "%s.exe: %s" % (self.program, self.error)
        return "%s.exe exited %s after %.1f s\nstdout:\n%s\nstderr (tail):\n%s" % (
            self.program, self.proc.returncode, self.seconds, self.proc.stdout,
            self.proc.stderr[-2000:])


def build_and_run(program: str, outdir: Path, env) -> Run:
    exe = outdir / (program + ".exe")
    build = winetools.build(source(program), exe)
    if build.returncode:
        return Run(program, build)
    args = []
    if program == TWIN:   # the table, as the twin reads it
        (outdir / "table.txt").write_text(facts_table.script())
        args = ["table.txt"]
    t0 = time.monotonic()
    try:
        proc = winetools.run(exe, env, timeout=60, args=args)
    except Exception as exc:  # timeout: the in-program watchdog should prevent this
        return Run(program, build, error=repr(exc))
    return Run(program, build, proc, time.monotonic() - t0)


def run_all(env, outdir: Path) -> dict[str, Run]:
    """Every contract program and the twin, concurrently (loopback, ephemeral ports)."""
    names = PROGRAMS + [TWIN]
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        return {run.program: run for run in pool.map(lambda p: build_and_run(p, outdir, env), names)}
