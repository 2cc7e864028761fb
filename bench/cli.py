"""Command line of the benchmark suite: `python -m bench` or `overlapio bench`.

`main(argv) -> int` parses the options, runs the selected measurements through
bench.harness, and writes results.json, results.md (also printed) and plots.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import sys
from pathlib import Path
from typing import Optional, Sequence

from .workloads import (ALL_WORKLOADS, SelectionError, Settings, parse_int_list, parse_only,
                        parse_size)

EPILOG = """\
selection (--only):
  Each --only takes a comma-separated list of names or shell-style globs and may be
  repeated. Names are workloads (%(workloads)s) or contestants
  (c-epoll, overlapio-<backend>, overlapio-<backend>-plain, asyncio-protocol,
  asyncio-buffered, asyncio-streams,
  uvloop-protocol, trio, selectors-raw; in-process: asyncio, uvloop, trio,
  overlapio-<backend>). A contestant name also selects its family: "asyncio" means
  asyncio and every asyncio-*, "overlapio" every backend. Workload names narrow the
  workloads, contestant names narrow the contestants.

examples:
  %(prog)s --quick                          whole suite, about 5 minutes
  %(prog)s --quick --only pingpong          quick pingpong, every contestant
  %(prog)s --only pingpong --only overlapio-posix,asyncio-buffered,c-epoll
  %(prog)s --only 'pingpong,uvloop*,c-*' --sizes 64,1K --conns 1,100
  %(prog)s --only timers,post,opcost        in-process workloads only
  %(prog)s --list                           what would run here, and why not
"""


def build_parser(prog: str = "python -m bench") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="overlapio benchmark suite: echo servers driven by a C load generator "
                    "(ping-pong, stream, connection churn, idle memory) and in-process "
                    "event-loop costs (timers, cross-thread post, op cost), against asyncio, "
                    "uvloop, trio and a C epoll reference. Method: docs/benchmarks.md.",
        epilog=EPILOG % {"workloads": ", ".join(ALL_WORKLOADS), "prog": prog.ljust(15)},
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="short run (< 3 min): 1 KiB pingpong at 1/10/100 conns, 1 KiB UDP ping-pong at 10 peers, 3 repeats of "
                        "0.5 s, 100k in-process ops, one memory pass")
    p.add_argument("--only", action="append", metavar="NAMES",
                   help="restrict to these workloads/contestants (see below); repeatable")
    p.add_argument("--repeats", type=int, metavar="N", help="passes over everything (default 5, quick 3)")
    p.add_argument("--duration", type=float, metavar="S",
                   help="measured window per network run, seconds (default 3, quick 0.5)")
    p.add_argument("--warmup", type=float, metavar="S",
                   help="warm-up before each window, seconds (default 1, quick 0.25)")
    p.add_argument("--sizes", metavar="LIST", help="pingpong message sizes, e.g. 64,1K,64K")
    p.add_argument("--conns", metavar="LIST", help="pingpong connection counts, e.g. 1,10,100,1000")
    p.add_argument("--ops", type=int, metavar="N",
                   help="operation count of the in-process workloads (default 1,000,000; quick 100,000)")
    p.add_argument("--out", metavar="DIR", help="output directory (default bench/results/<timestamp>/)")
    p.add_argument("--no-plots", action="store_true", help="do not draw PNG plots")
    p.add_argument("--list", action="store_true", help="list contestants and their availability, then exit")
    p.add_argument("--quiet", action="store_true", help="no progress line; still prints the table")
    return p


def settings_from_args(a: argparse.Namespace) -> Settings:
    s = Settings.for_mode(a.quick)
    if a.repeats is not None:
        if a.repeats < 1:
            raise SelectionError("--repeats must be >= 1")
        s.repeats = a.repeats
        s.mem_repeats = min(s.mem_repeats, a.repeats)
    if a.duration is not None:
        if a.duration <= 0:
            raise SelectionError("--duration must be > 0")
        s.duration = a.duration
    if a.warmup is not None:
        if a.warmup < 0:
            raise SelectionError("--warmup must be >= 0")
        s.warmup = a.warmup
    if a.sizes:
        s.sizes = [parse_size(x) for x in a.sizes.split(",") if x.strip()]
    if a.conns:
        s.conns = parse_int_list(a.conns, "connection count")
    if a.ops is not None:
        if a.ops < 1:
            raise SelectionError("--ops must be >= 1")
        s.inproc_n = {k: a.ops for k in s.inproc_n}
    return s


def default_out_dir() -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(__file__).resolve().parent / "results" / stamp


def _list(sel) -> int:
    from . import harness
    env = harness.child_env()
    tools = harness.Tools.build()
    servers, inproc, skipped, backends = harness.discover(sel, env, tools, True, True)
    print("load generator:", tools.loadgen or f"unavailable: {tools.reasons.get('loadgen')}")
    print("overlapio backends:", ", ".join(f"{k}={'yes' if v[0] else 'no (' + v[1] + ')'}"
                                           for k, v in backends.items()) or "-")
    print("server contestants:", ", ".join(s.name for s in servers) or "-")
    print("in-process contestants:", ", ".join(inproc) or "-")
    for sk in skipped:
        print(f"skipped {sk['contestant']}: {sk['reason']}")
    return 0


def main(argv: Optional[Sequence[str]] = None, prog: str = "python -m bench") -> int:
    """Run the suite; ``prog`` is the command shown in help and errors."""
    parser = build_parser(prog)
    a = parser.parse_args(list(argv) if argv is not None else None)
    try:
        s = settings_from_args(a)
        sel = parse_only(a.only)
    except SelectionError as e:
        parser.error(str(e))  # exits with status 2
    if not sys.platform.startswith("linux"):
        # /proc sampling, epoll in the C programs: the harness itself is Linux-only
        # (the library is not; run its tests on other platforms instead).
        print("python -m bench needs Linux (/proc and epoll); this is " + sys.platform,
              file=sys.stderr)
        return 2
    if a.list:
        return _list(sel)

    from . import harness, report
    out_dir = Path(a.out) if a.out else default_out_dir()
    try:
        raw = harness.run(s, sel, quiet=a.quiet)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    res = report.build_results(raw)
    written = report.write_all(res, out_dir, make_plots=not a.no_plots)
    print(written["markdown"])
    print(f"results: {written['json']}, {written['md']}"
          + (f"; plots: {', '.join(res.get('plots', []))}" if res.get("plots") else ""),
          file=sys.stderr)
    for n in res["meta"].get("notes", []):
        if n.startswith("plots skipped"):
            print(n, file=sys.stderr)
    if not any(r.get("ok") for r in res["records"]):
        print("no measurement succeeded", file=sys.stderr)
        return 1
    return 0
