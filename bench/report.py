"""Turning raw records into results: per-contestant summaries (medians with min-max
over the usable repeats), ratios against the baselines, the Markdown report,
results.json and the PNG plots.

Flags in the tables (details per repeat are in results.json):
  D<k>  k repeats were disturbed by other load on the machine (excluded from the
        medians when at least two clean repeats remain; see bench/stats.py)
  S     repeats spread more than 25% around the median (max-min)/median
  C     the load generator used >= 90% of a core in most repeats: the client may be
        the limit; compare server CPU per message rather than messages/s
  E<k>  k repeats failed or saw connection errors
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Optional

from . import stats
from .workloads import (BASELINES, INPROC_BASELINES, INPROC_WORKLOADS, LOOP_PREFIX, NETWORK_WORKLOADS,
                        SAME_SERVER_LOOPS, parse_size, size_label)

NET_METRICS = ("msgs_per_s", "mb_per_s", "p50_us", "p99_us", "server_cpu_per_msg_us",
               "server_util", "loadgen_util", "server_peak_rss_kib")
MEM_METRICS = ("rss_base_kib", "rss_full_kib", "per_conn_bytes", "user_buffer_bytes",
               "beyond_buffer_bytes", "server_peak_rss_kib")
INPROC_METRICS = ("ops_per_s", "cpu_per_op_us", "init_s", "dispatch_s", "total_s", "peak_rss_kib")
RATIO_METRICS = ("msgs_per_s", "server_cpu_per_msg_us")
INPROC_RATIO_METRICS = ("ops_per_s", "cpu_per_op_us")


def _metrics_for(workload: str):
    if workload in NETWORK_WORKLOADS:
        return NET_METRICS, "msgs_per_s"
    if workload == "memory":
        return MEM_METRICS, "per_conn_bytes"
    return INPROC_METRICS, "ops_per_s"


def summarize_records(records: list[dict]) -> list[dict]:
    """One summary per (workload, config, contestant), in first-run order."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["workload"], r["config"], r["contestant"]), []).append(r)
    order = {w: i for i, w in enumerate(NETWORK_WORKLOADS + ("memory",) + INPROC_WORKLOADS)}
    keys = sorted(groups, key=lambda k: (order.get(k[0], 99), groups[k][0].get("size") or 0,
                                         groups[k][0].get("conns") or 0))
    out = []
    for key in keys:
        runs = groups[key]
        metrics, primary = _metrics_for(key[0])
        used = stats.usable_runs(runs)
        summ = {m: stats.summarize(r.get(m) for r in used) for m in metrics}
        ok = [r for r in runs if r.get("ok")]
        n_dist = sum(1 for r in ok if r.get("disturbed"))
        n_err = sum(1 for r in runs if not r.get("ok")) + sum(
            1 for r in ok if any(f.startswith("errors") for f in r.get("flags", [])))
        n_sat = sum(1 for r in ok if "client-saturated" in r.get("flags", []))
        sp = stats.spread(summ.get(primary))
        flags = []
        if n_dist:
            flags.append(f"D{n_dist}")
        if sp is not None and sp > stats.SPREAD_MAX:
            flags.append("S")
        if ok and n_sat * 2 > len(ok):
            flags.append("C")
        if n_err:
            flags.append(f"E{n_err}")
        out.append({"workload": key[0], "config": key[1], "contestant": key[2],
                    "size": runs[0].get("size"), "conns": runs[0].get("conns"), "n": runs[0].get("n"),
                    "repeats": len(runs), "used": len(used), "used_repeats": [r["repeat"] for r in used],
                    "metrics": summ, "spread": sp, "flags": flags,
                    "errors": [r["error"] for r in runs if r.get("error")]})
    return out


def compute_ratios(records: list[dict]) -> list[dict]:
    """Ratios of each contestant to each baseline present, per workload configuration,
    paired by repeat (same pass) over the usable repeats of both."""
    groups: dict[tuple, dict[str, list[dict]]] = {}
    for r in records:
        if r["workload"] == "memory":
            continue
        groups.setdefault((r["workload"], r["config"]), {}).setdefault(r["contestant"], []).append(r)
    first_seen = {}
    for r in records:
        first_seen.setdefault(r["contestant"], len(first_seen))
    out = []
    for (w, cfg), by_c in groups.items():
        usable = {c: stats.usable_runs(runs) for c, runs in by_c.items()}
        if w in INPROC_WORKLOADS:
            rat = stats.ratios_for_group(usable, INPROC_BASELINES, INPROC_RATIO_METRICS)
        else:
            rat = stats.ratios_for_group(usable, BASELINES, RATIO_METRICS)
        for c, per_base in sorted(rat.items(), key=lambda kv: first_seen[kv[0]]):
            out.append({"workload": w, "config": cfg, "contestant": c, "vs": per_base,
                        "same_server": same_server_ratios(c, usable)})
    return out


def same_server_ratios(contestant: str, usable: dict[str, list[dict]]) -> dict:
    """For ``overlapio-loop-<server>``: its ratios to ``<loop>-<server>`` on each of
    SAME_SERVER_LOOPS that ran in the configuration, paired by repeat; else {}."""
    if not contestant.startswith(LOOP_PREFIX):
        return {}
    server = contestant[len(LOOP_PREFIX):]
    bases = [f"{loop}-{server}" for loop in SAME_SERVER_LOOPS if f"{loop}-{server}" in usable]
    group = {b: usable[b] for b in bases}
    group[contestant] = usable[contestant]
    return stats.ratios_for_group(group, bases, RATIO_METRICS).get(contestant, {})


def build_results(raw: dict) -> dict:
    res = dict(raw)
    res["summary"] = summarize_records(raw["records"])
    res["ratios"] = compute_ratios(raw["records"])
    return res


# ----------------------------------------------------------------- Markdown
def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _m(s: dict, name: str, digits: int = 3, range_: bool = True, scale: float = 1.0) -> str:
    v = s["metrics"].get(name)
    if not v:
        return "-"
    if scale != 1.0:
        v = {**v, "median": v["median"] * scale, "min": v["min"] * scale, "max": v["max"] * scale}
    return stats.fmt_summary(v, digits, range_)


def _pct(s: dict, name: str) -> str:
    v = s["metrics"].get(name)
    return "-" if not v else f"{v['median'] * 100:.0f}%"


def _ratio(r: Optional[dict]) -> str:
    if not r:
        return "-"
    if r["n"] < 2:
        return f"{r['median']:.2f}"
    return f"{r['median']:.2f} ({r['min']:.2f}–{r['max']:.2f})"


def markdown(res: dict) -> str:
    meta = res["meta"]
    mach = meta["machine"]
    st = meta["settings"]
    out = [f"# overlapio benchmark results — {meta['started']}", ""]
    out.append(f"Mode: {'quick' if st['quick'] else 'full'}; repeats {st['repeats']}; "
               f"window {st['duration']} s after {st['warmup']} s warm-up; elapsed "
               f"{meta['elapsed_s'] / 60:.1f} min.  ")
    out.append(f"Machine: {mach.get('cpu_model', '?')}, {mach['ncpu']} CPUs, Linux {mach['kernel']}, "
               f"Python {mach['python']}, cc: {mach['cc'] or '-'}, uvloop {mach.get('uvloop') or '-'}, "
               f"trio {mach.get('trio') or '-'}; load average at start "
               f"{', '.join(f'{x:.2f}' for x in mach['loadavg_at_start'])}.")
    if meta.get("overlapio"):
        out.append(f"overlapio: {meta['overlapio']}.")
    if mach.get("glibc_tunables"):
        out.append(f"GLIBC_TUNABLES was set: `{mach['glibc_tunables']}`.")
    out.append("")
    out.append("Values are medians over the usable repeats with (min–max); contestants "
               "interleaved within each repeat. Server CPU = the server process's CPU time "
               "(user+sys incl. softirq) over the measured window ÷ messages.")
    out.append("")
    if res["skipped"]:
        out.append("Skipped:")
        seen = set()
        for sk in res["skipped"]:
            k = (sk["contestant"], sk.get("workload"), sk["reason"])
            if k in seen:
                continue
            seen.add(k)
            where = f" ({sk['workload']})" if sk.get("workload") else ""
            out.append(f"- {sk['contestant']}{where}: {sk['reason']}")
        out.append("")
    for n in meta.get("notes", []):
        out.append(f"Note: {n}")
    summ = res["summary"]

    for w in NETWORK_WORKLOADS:
        rows = [s for s in summ if s["workload"] == w]
        if not rows:
            continue
        unit = {"pingpong": "msgs/s", "stream": "chunks/s", "churn": "conns/s", "udp": "datagrams/s"}[w]
        cpu_unit = {"pingpong": "µs/msg", "stream": "µs/64KiB", "churn": "µs/conn", "udp": "µs/datagram"}[w]
        header = ["config", "contestant", unit]
        if w == "stream":
            header.append("MB/s")
        header += ["p50 µs", "p99 µs", f"server CPU {cpu_unit}", "server CPU", "client CPU",
                   "peak RSS MiB", "n", "flags"]
        table = []
        for s in rows:
            row = [s["config"], s["contestant"], _m(s, "msgs_per_s")]
            if w == "stream":
                row.append(_m(s, "mb_per_s", 4))
            row += [_m(s, "p50_us", range_=False), _m(s, "p99_us", range_=False),
                    _m(s, "server_cpu_per_msg_us"), _pct(s, "server_util"), _pct(s, "loadgen_util"),
                    _m(s, "server_peak_rss_kib", range_=False, scale=1 / 1024),
                    f"{s['used']}/{s['repeats']}", " ".join(s["flags"])]
            table.append(row)
        out += [f"## {w}", "", _table(header, table), ""]

    rat = [r for r in res["ratios"] if r["workload"] in NETWORK_WORKLOADS]
    if rat:
        bases = [b for b in BASELINES if any(b in r["vs"] for r in rat)]
        header = ["workload", "config", "contestant"]
        for b in bases:
            header += [f"msgs/s ÷ {b}", f"CPU/msg ÷ {b}"]
        table = []
        for r in rat:
            row = [r["workload"], r["config"], r["contestant"]]
            for b in bases:
                v = r["vs"].get(b, {})
                row += [_ratio(v.get("msgs_per_s")), _ratio(v.get("server_cpu_per_msg_us"))]
            table.append(row)
        out += ["## Ratios (paired by repeat, same run)", "",
                "Throughput ratio > 1 and CPU ratio < 1 mean better than the baseline.", "",
                _table(header, table), ""]
        same = [r for r in rat if r.get("same_server")]
        if same:
            header = ["workload", "config", "contestant"]
            for loop in SAME_SERVER_LOOPS:
                header += [f"msgs/s ÷ {loop}", f"CPU/msg ÷ {loop}"]
            table = []
            for r in same:
                server = r["contestant"][len(LOOP_PREFIX):]
                row = [r["workload"], r["config"], r["contestant"]]
                for loop in SAME_SERVER_LOOPS:
                    v = r["same_server"].get(f"{loop}-{server}", {})
                    row += [_ratio(v.get("msgs_per_s")), _ratio(v.get("server_cpu_per_msg_us"))]
                table.append(row)
            out += ["## The same asyncio server on each loop (paired by repeat)", "",
                    f"`{LOOP_PREFIX}<server>` ÷ `<loop>-<server>`: the same server code on overlapio's "
                    "event loop and on the other loop.", "", _table(header, table), ""]

    mem = [s for s in summ if s["workload"] == "memory"]
    if mem:
        header = ["contestant", "RSS @base MiB", "RSS @base+N MiB", "per conn B", "user buffer B",
                  "beyond buffer B", "n", "flags"]
        table = [[s["contestant"], _m(s, "rss_base_kib", range_=False, scale=1 / 1024),
                  _m(s, "rss_full_kib", range_=False, scale=1 / 1024), _m(s, "per_conn_bytes"),
                  _m(s, "user_buffer_bytes", range_=False), _m(s, "beyond_buffer_bytes"),
                  f"{s['used']}/{s['repeats']}", " ".join(s["flags"])] for s in mem]
        first = mem[0]
        out += [f"## Memory: {first['conns']} idle connections, each with a pending receive", "",
                f"per conn = (RSS with {st['mem_base_conns'] + st['mem_conns']} − RSS with "
                f"{st['mem_base_conns']} connections) ÷ {st['mem_conns']}; beyond buffer = per conn − "
                f"the server's own per-connection receive buffer ({size_label(st['mem_bufsize'])} where "
                "the server keeps one). Kernel socket memory is not in RSS.", "",
                _table(header, table), ""]

    inp = [s for s in summ if s["workload"] in INPROC_WORKLOADS]
    if inp:
        rat_i = {(r["workload"], r["contestant"]): r["vs"] for r in res["ratios"]
                 if r["workload"] in INPROC_WORKLOADS}
        header = ["workload", "contestant", "ops/s", "CPU µs/op", "init s", "dispatch s",
                  "peak RSS MiB", "÷ asyncio", "÷ uvloop", "n", "flags"]
        table = []
        for s in inp:
            vs = rat_i.get((s["workload"], s["contestant"]), {})
            table.append([s["workload"] + f" ({s['n']:,})", s["contestant"], _m(s, "ops_per_s"),
                          _m(s, "cpu_per_op_us"), _m(s, "init_s", range_=False),
                          _m(s, "dispatch_s", range_=False),
                          _m(s, "peak_rss_kib", range_=False, scale=1 / 1024),
                          _ratio(vs.get("asyncio", {}).get("ops_per_s")),
                          _ratio(vs.get("uvloop", {}).get("ops_per_s")),
                          f"{s['used']}/{s['repeats']}", " ".join(s["flags"])])
        out += ["## In-process", "", "ops/s ratios: > 1 is faster than the baseline. ops/s and CPU cover "
                "scheduling + dispatch only (not interpreter or loop start-up); CPU includes the "
                "producer thread for post. timers' total cannot be shorter than its last "
                "deadline (n/1000 ms).", "",
                _table(header, table), ""]

    errs = [(s["workload"], s["config"], s["contestant"], e) for s in summ for e in s["errors"]]
    if errs:
        out += ["## Errors", ""]
        out += [f"- {w} {c} {n}: {e[:300]}" for w, c, n, e in errs]
        out.append("")
    out += ["Flags: D<k> = k repeats disturbed by other load (excluded when ≥ 2 clean remain); "
            "S = repeats spread > 25%; C = load generator ≥ 90% of a core (client-bound: compare "
            "CPU per message); E<k> = k repeats failed or saw connection errors.", ""]
    return "\n".join(out)


# ----------------------------------------------------------------- plots
# overlapio's lines are drawn strong; the others muted, asyncio-buffered (the main
# baseline) a little darker than the rest.
_STRONG = ("#0b4f9c", "#c2185b", "#00796b")
_MUTED = {"asyncio-buffered": "#555555", "c-epoll": "#8d6e63", "uvloop-protocol": "#9575cd",
          "selectors-raw": "#4db6ac", "asyncio-protocol": "#e6a064", "asyncio-streams": "#e57373",
          "trio": "#aed581"}
_MARKERS = "osD^v<>ph*"


def _style(name: str, index: int, overlapio_index: int) -> dict:
    if name.startswith("overlapio"):
        return {"color": _STRONG[overlapio_index % len(_STRONG)], "linewidth": 2.8, "markersize": 7,
                "marker": "o", "zorder": 10, "alpha": 1.0}
    return {"color": _MUTED.get(name, "#b0bec5"), "linewidth": 1.6 if name == "asyncio-buffered" else 1.2,
            "markersize": 4.5, "marker": _MARKERS[(index + 1) % len(_MARKERS)], "zorder": 5,
            "alpha": 0.95 if name == "asyncio-buffered" else 0.8,
            "linestyle": "--" if name == "c-epoll" else "-"}


def plot_caption(meta: dict) -> str:
    """The machine, the versions and the run, for a figure's title."""
    mach = meta.get("machine", {})
    st = meta.get("settings", {})
    parts = [f"{mach.get('cpu_model', '?')}, {mach.get('ncpu', '?')} CPUs, Linux {mach.get('kernel', '?')}",
             f"Python {mach.get('python', '?')}"]
    if meta.get("overlapio"):
        parts.append(f"overlapio {meta['overlapio']}")
    parts += [f"{mod} {mach[mod]}" for mod in ("uvloop", "trio") if mach.get(mod)]
    if mach.get("cc"):
        parts.append(f"cc {str(mach['cc']).split()[-1]}")
    run = f"run of {str(meta.get('started', '?'))[:16].replace('T', ' ')}"
    if st:
        run += (f" ({'quick' if st.get('quick') else 'full'}: {st.get('repeats')} repeats × "
                f"{st.get('duration')} s, median and min–max)")
    return " · ".join(parts) + "\n" + run


def plots(res: dict, out_dir: Path) -> tuple[list[str], str]:
    """PNG plots of pingpong, one file per message size: round trips per second
    against the connection count; server CPU per round trip against the connection
    count from 10 connections up (a log scale, so the close lines stay apart); and
    server CPU per round trip at one connection, whose values are several times
    higher (one wakeup per message) and would squeeze the others into a thin band.
    Returns (files, note); note explains why there are none."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    except ImportError:
        return [], "plots skipped: matplotlib not installed (pip install matplotlib, or the bench extra)"
    summ = [s for s in res["summary"] if s["workload"] == "pingpong"]
    if not summ:
        return [], "no pingpong results to plot"
    caption = plot_caption(res.get("meta", {}))
    plain = FuncFormatter(lambda v, _pos: f"{v:,.0f}" if v >= 10 else f"{v:g}")
    files = []
    for size in sorted({s["size"] for s in summ}):
        rows = [s for s in summ if s["size"] == size]
        names = list(dict.fromkeys(s["contestant"] for s in rows))
        names.sort(key=lambda n: not n.startswith("overlapio"))  # overlapio first in the legend
        conns = sorted({s["conns"] for s in rows})
        many = [c for c in conns if c > 1]
        single = 1 in conns
        widths = [1.0] + ([1.0] if many else []) + ([0.62] if single else [])
        fig, axes = plt.subplots(1, len(widths), figsize=(5.2 * sum(widths) + 1.0, 5.4),
                                 gridspec_kw={"width_ratios": widths}, squeeze=False)
        axes = list(axes[0])
        ax_tp = axes.pop(0)
        ax_cpu = axes.pop(0) if many else None
        ax_one = axes.pop(0) if single else None
        label = re.sub(r"(\d)([KM]?i?B)$", r"\1 \2", size_label(size))  # "1 KiB"

        def point(s: dict, metric: str):
            v = s["metrics"].get(metric)
            return None if not v else (v["median"], v["median"] - v["min"], v["max"] - v["median"])

        n_over = 0
        dodge = {n: 1.0 + 0.05 * (i - (len(names) - 1) / 2) / max(1, len(names) - 1) * 2
                 for i, n in enumerate(names)}  # spread the error bars of one x a little
        for i, name in enumerate(names):
            style = _style(name, i, n_over)
            n_over += name.startswith("overlapio")
            pts = sorted((s for s in rows if s["contestant"] == name), key=lambda s: s["conns"])
            for ax, metric, keep in ((ax_tp, "msgs_per_s", conns), (ax_cpu, "server_cpu_per_msg_us", many)):
                if ax is None:
                    continue
                data = [(s["conns"] * dodge[name], p) for s in pts if s["conns"] in keep
                        for p in [point(s, metric)] if p]
                if data:
                    ax.errorbar([x for x, _ in data], [p[0] for _, p in data],
                                yerr=[[p[1] for _, p in data], [p[2] for _, p in data]], capsize=2.5,
                                label=name if ax is ax_tp else None, **style)
        if ax_one is not None:
            bars = [(name, point(s, "server_cpu_per_msg_us")) for name in names for s in rows
                    if s["contestant"] == name and s["conns"] == 1]
            bars = [(n, p) for n, p in bars if p]
            ys = range(len(bars))
            ax_one.barh(list(ys), [p[0] for _, p in bars], xerr=[[p[1] for _, p in bars], [p[2] for _, p in bars]],
                        color=[_style(n, names.index(n), 0)["color"] for n, _ in bars], capsize=2.5,
                        alpha=0.9, error_kw={"elinewidth": 1})
            ax_one.set_yticks(list(ys))
            ax_one.set_yticklabels([n for n, _ in bars], fontsize=8)
            for tick, (n, _) in zip(ax_one.get_yticklabels(), bars):
                if n.startswith("overlapio"):
                    tick.set_fontweight("bold")
            ax_one.invert_yaxis()
            ax_one.set_title("1 connection: server CPU\nper round trip (lower is better)", fontsize=10)
            ax_one.set_xlabel("µs of server CPU per round trip")
            ax_one.grid(True, axis="x", alpha=0.3)
        ax_tp.set_title("round trips per second\n(higher is better)", fontsize=10)
        ax_tp.set_ylabel("round trips per second")
        ax_tp.set_ylim(bottom=0)
        ax_tp.yaxis.set_major_formatter(plain)
        if ax_cpu is not None:
            ax_cpu.set_title(f"server CPU per round trip, {many[0]:,}–{many[-1]:,} connections\n"
                             "(lower is better; log scale)", fontsize=10)
            ax_cpu.set_ylabel("µs of server CPU per round trip")
            ax_cpu.set_yscale("log")
            ax_cpu.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax_cpu.yaxis.set_major_formatter(plain)
            ax_cpu.yaxis.set_minor_formatter(NullFormatter())
        for ax, ticks in ((ax_tp, conns), (ax_cpu, many)):
            if ax is None:
                continue
            ax.set_xscale("log")
            ax.set_xticks(ticks)
            ax.set_xticklabels([f"{c:,}" for c in ticks])
            ax.minorticks_off() if ax is ax_tp else ax.xaxis.set_minor_locator(plt.NullLocator())
            ax.set_xlim(ticks[0] / 1.6, ticks[-1] * 1.6)
            ax.set_xlabel("connections (each: send a message, read it back, repeat)")
            ax.grid(True, alpha=0.3, which="major")
        handles, labels = ax_tp.get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 8), fontsize=8.5, frameon=False)
        fig.suptitle(f"Echo ping-pong with {label} messages: one round trip = {label} sent and the same "
                     f"{label} read back\n{caption}", fontsize=9.5)
        fig.tight_layout(rect=(0, 0.07, 1, 1))
        path = out_dir / f"pingpong_{size_label(size)}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        files.append(path.name)
    return files, ""


def _number(text: str) -> float:
    """The inverse of stats.fmt_num: '12.6k' -> 12600.0, '1.90M' -> 1900000.0."""
    text = text.strip()
    scale = {"k": 1e3, "M": 1e6}.get(text[-1:], 1.0)
    return float(text[:-1] if scale != 1.0 else text) * scale


def _summary_cell(text: str) -> Optional[dict]:
    m = re.fullmatch(r"\s*([\d.]+[kM]?)(?: \(([\d.]+[kM]?)–([\d.]+[kM]?)\))?\s*", text)
    if not m:
        return None
    med = _number(m.group(1))
    lo, hi = (_number(m.group(2)), _number(m.group(3))) if m.group(2) else (med, med)
    return {"median": med, "min": lo, "max": hi, "n": 2 if m.group(2) else 1}


def results_from_markdown(text: str) -> dict:
    """What :func:`plots` needs, read back from a results.md (for a run whose
    results.json was not kept): the pingpong medians and ranges as the tables show
    them (three significant digits), the machine and the run settings."""
    meta: dict = {"machine": {}, "settings": {}}
    m = re.search(r"^# overlapio benchmark results — (\S+)", text, re.M)
    if m:
        meta["started"] = m.group(1)
    m = re.search(r"^Mode: (\w+); repeats (\d+); window ([\d.]+) s", text, re.M)
    if m:
        meta["settings"] = {"quick": m.group(1) == "quick", "repeats": int(m.group(2)),
                            "duration": float(m.group(3))}
    m = re.search(r"^Machine: (.*), (\d+) CPUs, Linux (\S+), Python (\S+), cc: (.*?), uvloop (\S+), "
                  r"trio (\S+);", text, re.M)
    if m:
        meta["machine"] = {"cpu_model": m.group(1), "ncpu": int(m.group(2)), "kernel": m.group(3),
                           "python": m.group(4), "cc": m.group(5),
                           "uvloop": None if m.group(6) == "-" else m.group(6),
                           "trio": None if m.group(7) == "-" else m.group(7)}
    m = re.search(r"^overlapio: (.*)\.$", text, re.M)
    if m:
        meta["overlapio"] = m.group(1)
    summary = []
    section = re.search(r"^## pingpong\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    lines = section.group(1).splitlines() if section else []
    header = next((ln for ln in lines if ln.startswith("| config")), None)
    if header:
        cols = [c.strip() for c in header.strip("|").split("|")]
        for ln in lines:
            cells = [c.strip() for c in ln.strip("|").split("|")]
            if len(cells) != len(cols) or not re.fullmatch(r"\d+[KMG]?i?B x\d+", cells[0]):
                continue
            row = dict(zip(cols, cells))
            size_text, conns = row["config"].split(" x")
            summary.append({"workload": "pingpong", "config": row["config"], "contestant": row["contestant"],
                            "size": parse_size(size_text), "conns": int(conns),
                            "metrics": {"msgs_per_s": _summary_cell(row["msgs/s"]),
                                        "server_cpu_per_msg_us": _summary_cell(row["server CPU µs/msg"])}})
    return {"meta": meta, "summary": summary}


def main(argv: Optional[list] = None) -> int:
    """``python -m bench.report RESULTS [--out DIR]``: draw the plots again from a
    results.json (or, when only that was kept, a results.md)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.report",
                                     description="Draw the pingpong plots again from recorded results.")
    parser.add_argument("results", type=Path, help="a results.json, or a results.md")
    parser.add_argument("--out", type=Path, help="where the PNGs go (default: beside RESULTS)")
    parser.add_argument("--overlapio", metavar="VERSION",
                        help="the overlapio version (and commit) measured, for results that do not say")
    a = parser.parse_args(argv)
    try:
        text = a.results.read_text()
    except OSError as exc:
        parser.error(f"cannot read {a.results}: {exc.strerror}")
    res = json.loads(text) if a.results.suffix == ".json" else results_from_markdown(text)
    if not res.get("summary"):
        parser.error(f"no pingpong results in {a.results}")
    if a.overlapio:
        res.setdefault("meta", {})["overlapio"] = a.overlapio
    out = a.out or a.results.parent
    out.mkdir(parents=True, exist_ok=True)
    files, note = plots(res, out)
    print(note or "wrote " + ", ".join(str(out / f) for f in files))
    return 1 if note else 0


def write_all(res: dict, out_dir: Path, make_plots: bool = True) -> dict:
    """Write results.json, results.md and the plots; returns {kind: path or note}."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    if make_plots:
        files, note = plots(res, out_dir)
        res["plots"] = files
        if note:
            res["meta"].setdefault("notes", []).append(note)
    md = markdown(res)
    (out_dir / "results.md").write_text(md + "\n")
    with open(out_dir / "results.json", "w") as f:
        json.dump(res, f, indent=1, default=str)
    written["json"] = str(out_dir / "results.json")
    written["md"] = str(out_dir / "results.md")
    written["markdown"] = md
    return written


if __name__ == "__main__":
    raise SystemExit(main())
