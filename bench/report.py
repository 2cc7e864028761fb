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
from pathlib import Path
from typing import Optional

from . import stats
from .workloads import (BASELINES, INPROC_BASELINES, INPROC_WORKLOADS, NETWORK_WORKLOADS,
                        size_label)

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
            out.append({"workload": w, "config": cfg, "contestant": c, "vs": per_base})
    return out


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
        unit = {"pingpong": "msgs/s", "stream": "chunks/s", "churn": "conns/s"}[w]
        cpu_unit = {"pingpong": "µs/msg", "stream": "µs/64KiB", "churn": "µs/conn"}[w]
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
def plots(res: dict, out_dir: Path) -> tuple[list[str], str]:
    """PNG plots of pingpong throughput and server CPU per message against the
    connection count, one line per contestant, one file per message size.
    Returns (files, note); note explains why there are none."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return [], "plots skipped: matplotlib not installed (pip install matplotlib, or the bench extra)"
    summ = [s for s in res["summary"] if s["workload"] == "pingpong"]
    if not summ:
        return [], "no pingpong results to plot"
    files = []
    for size in sorted({s["size"] for s in summ}):
        rows = [s for s in summ if s["size"] == size]
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
        for name in dict.fromkeys(s["contestant"] for s in rows):
            pts = sorted((s for s in rows if s["contestant"] == name), key=lambda s: s["conns"])
            for ax, metric in zip(axes, ("msgs_per_s", "server_cpu_per_msg_us")):
                xs, ys, lo, hi = [], [], [], []
                for s in pts:
                    v = s["metrics"].get(metric)
                    if v:
                        xs.append(s["conns"])
                        ys.append(v["median"])
                        lo.append(v["median"] - v["min"])
                        hi.append(v["max"] - v["median"])
                if xs:
                    style = "--" if name == "c-epoll" else "-"
                    ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", linestyle=style, capsize=3,
                                label=name)
        axes[0].set_title(f"pingpong {size_label(size)}: throughput")
        axes[0].set_ylabel("round trips per second (median, min–max)")
        axes[1].set_title(f"pingpong {size_label(size)}: server CPU per message")
        axes[1].set_ylabel("server CPU µs per round trip")
        conns = sorted({s["conns"] for s in rows})
        for ax in axes:
            ax.set_xscale("log")
            ax.set_xticks(conns)
            ax.set_xticklabels([f"{c:,}" for c in conns])
            ax.minorticks_off()
            ax.set_xlabel("connections")
            ax.set_ylim(bottom=0)
            ax.grid(True, alpha=0.3)
        axes[1].legend(fontsize=8)
        fig.suptitle(f"overlapio bench {res['meta']['started']}", fontsize=9)
        fig.tight_layout()
        path = out_dir / f"pingpong_{size_label(size)}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        files.append(path.name)
    return files, ""


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
