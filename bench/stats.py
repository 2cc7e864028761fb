"""Pure statistics for the benchmark suite: medians with min-max, spread, the
disturbance test for one measured window, and ratios against baselines.

Kept free of I/O so tests/test_bench.py can check it directly.
"""
from __future__ import annotations

import statistics
from typing import Iterable, Optional

# A window is "disturbed" when CPU time not spent by the two processes we started
# exceeds this share of the whole machine (all cores) over the window...
OTHER_LOAD_MAX = 0.10
# ...or when the hypervisor stole more than this share (a VM's neighbours).
STEAL_MAX = 0.05
# A contestant's repeats are "spread" when (max - min) / median exceeds this.
SPREAD_MAX = 0.25
# The load generator is "saturated" above this share of one core: the client,
# not the server, may have been the limit (compare server CPU per message then).
CLIENT_SATURATED = 0.90


def _clean(xs: Iterable[Optional[float]]) -> list[float]:
    return [float(x) for x in xs if x is not None]


def summarize(xs: Iterable[Optional[float]]) -> Optional[dict]:
    """Median, min, max and count of the non-None values; None if there are none."""
    v = _clean(xs)
    if not v:
        return None
    return {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v)}


def spread(summary: Optional[dict]) -> Optional[float]:
    """(max - min) / median, the relative width of the repeats."""
    if not summary or summary["n"] < 2 or summary["median"] == 0:
        return None
    return (summary["max"] - summary["min"]) / abs(summary["median"])


def disturbance(busy_s: float, own_s: float, steal_s: float, wall_s: float, ncpu: int,
                other_max: float = OTHER_LOAD_MAX, steal_max: float = STEAL_MAX):
    """Judge one measured window.

    busy_s: CPU-seconds the whole machine was busy (all cores, from /proc/stat:
            user+nice+system+irq+softirq; steal excluded).
    own_s:  CPU-seconds of the processes we ran (server + load generator), from
            their sum_exec_runtime, which includes softirq work done while they run.
    Returns (other_frac, steal_frac, reasons) where the fractions are shares of the
    machine's capacity (wall_s * ncpu) and reasons is a list of strings (empty = clean).
    """
    cap = wall_s * max(1, ncpu)
    if cap <= 0:
        return 0.0, 0.0, ["empty window"]
    other = max(0.0, busy_s - own_s) / cap
    steal = max(0.0, steal_s) / cap
    reasons = []
    if other > other_max:
        reasons.append(f"other load {other:.0%} of machine")
    if steal > steal_max:
        reasons.append(f"steal {steal:.0%}")
    return other, steal, reasons


def usable_runs(runs: list[dict]) -> list[dict]:
    """The repeats a summary is computed from: the successful ones, minus those
    flagged disturbed, as long as at least two undisturbed ones remain (otherwise
    all successful ones are kept and the summary carries the flag)."""
    ok = [r for r in runs if r.get("ok")]
    clean = [r for r in ok if not r.get("disturbed")]
    return clean if len(clean) >= 2 else ok


def paired_ratio(a_runs: list[dict], b_runs: list[dict], metric: str) -> Optional[dict]:
    """Ratio a/b of one metric, paired by repeat (both measured in the same pass,
    minutes apart at most), summarized over the repeats both have."""
    a = {r["repeat"]: r.get(metric) for r in a_runs}
    b = {r["repeat"]: r.get(metric) for r in b_runs}
    vals = []
    for rep in sorted(set(a) & set(b)):
        x, y = a[rep], b[rep]
        if x is None or y is None or y == 0:
            continue
        vals.append(x / y)
    return summarize(vals)


def ratios_for_group(groups: dict[str, list[dict]], baselines: Iterable[str],
                     metrics: Iterable[str]) -> dict:
    """groups: contestant -> usable runs of one workload configuration.
    Returns {contestant: {baseline: {metric: summary}}} for each baseline present."""
    out: dict = {}
    metrics = list(metrics)
    for base in baselines:
        if base not in groups:
            continue
        for name, runs in groups.items():
            if name == base:
                continue  # 1.00 by definition
            for m in metrics:
                s = paired_ratio(runs, groups[base], m)
                if s is not None:
                    out.setdefault(name, {}).setdefault(base, {})[m] = s
    return out


def fmt_num(x: Optional[float], digits: int = 3) -> str:
    """Compact human number: 57300 -> '57.3k', 1.234 -> '1.23', None -> '-'."""
    if x is None:
        return "-"
    if x == 0:
        return "0"
    ax = abs(x)
    if ax >= 1e6:
        return f"{x / 1e6:.{max(0, digits - 1 - (ax >= 1e7) - (ax >= 1e8))}f}M"
    if ax >= 1e4:
        return f"{x / 1e3:.{max(0, digits - 2 - (ax >= 1e5))}f}k"
    if ax >= 100:
        return f"{x:.0f}"
    if ax >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def fmt_summary(s: Optional[dict], digits: int = 3, range_: bool = True) -> str:
    if not s:
        return "-"
    med = fmt_num(s["median"], digits)
    if not range_ or s["n"] < 2:
        return med
    return f"{med} ({fmt_num(s['min'], digits)}–{fmt_num(s['max'], digits)})"
