"""Fast tests of the benchmark harness itself (bench/): statistics, ratios, the
disturbance flag, option parsing, the run plan, the C programs' build, and two tiny
end-to-end ping-pong measurements. Not a benchmark: nothing here checks speed."""
from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import cli, harness, inproc, report, stats  # noqa: E402
from bench import workloads as workloads_module  # noqa: E402
from bench.native import build as native_build  # noqa: E402
from bench.progress import Progress  # noqa: E402
from bench.workloads import (STATIC_SERVERS, Selection, SelectionError, Settings, Task,  # noqa: E402
                             build_plan, contestant_matches, overlapio_server, parse_only, parse_size)

HAVE_CC = shutil.which("cc") is not None
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux /proc and epoll")


def _uring_reason():
    import overlapio

    ok, reason = overlapio.available_backends().get("uring", (False, "unknown backend"))
    return None if ok else reason


needs_uring = pytest.mark.skipif(_uring_reason() is not None, reason=f"uring unavailable: {_uring_reason()}")


# ----------------------------------------------------------------- stats
def test_summarize_median_min_max():
    s = stats.summarize([3.0, 1.0, 2.0, None, 10.0])
    assert s == {"median": 2.5, "min": 1.0, "max": 10.0, "n": 4}
    assert stats.summarize([5]) == {"median": 5.0, "min": 5.0, "max": 5.0, "n": 1}
    assert stats.summarize([None, None]) is None
    assert stats.summarize([]) is None


def test_spread():
    assert stats.spread(stats.summarize([90, 100, 110])) == pytest.approx(0.2)
    assert stats.spread(stats.summarize([100])) is None  # one repeat: no spread
    assert stats.spread(None) is None


def test_disturbance_clean_and_flagged():
    # 1 s window, 2 CPUs: our processes used 1.9 CPU-s of 1.95 busy -> clean.
    other, steal, reasons = stats.disturbance(1.95, 1.9, 0.0, 1.0, 2)
    assert other == pytest.approx(0.025) and steal == 0 and reasons == []
    # 0.6 CPU-s of someone else's work on a 2-CPU machine = 30% -> disturbed.
    other, _, reasons = stats.disturbance(1.6, 1.0, 0.0, 1.0, 2)
    assert other == pytest.approx(0.3)
    assert len(reasons) == 1 and "other load" in reasons[0]
    # hypervisor steal is its own reason
    _, steal, reasons = stats.disturbance(1.0, 1.0, 0.2, 1.0, 2)
    assert steal == pytest.approx(0.1) and any("steal" in r for r in reasons)
    # own CPU above machine busy (tick rounding) never goes negative
    other, _, reasons = stats.disturbance(0.9, 1.0, 0.0, 1.0, 2)
    assert other == 0 and reasons == []
    # threshold is a parameter
    assert stats.disturbance(1.3, 1.0, 0.0, 1.0, 2, other_max=0.2)[2] == []


def _run(contestant, repeat, **kw):
    base = {"workload": "pingpong", "config": "1KiB x10", "contestant": contestant, "repeat": repeat,
            "size": 1024, "conns": 10, "n": None, "ok": True, "disturbed": False, "flags": [],
            "error": None}
    base.update(kw)
    return base


def test_usable_runs_drops_disturbed_only_if_two_clean_remain():
    runs = [_run("a", 0), _run("a", 1, disturbed=True), _run("a", 2), _run("a", 3, ok=False)]
    assert [r["repeat"] for r in stats.usable_runs(runs)] == [0, 2]
    runs = [_run("a", 0), _run("a", 1, disturbed=True), _run("a", 2, disturbed=True)]
    assert [r["repeat"] for r in stats.usable_runs(runs)] == [0, 1, 2]


def test_paired_ratio_pairs_by_repeat():
    a = [_run("a", 0, msgs_per_s=200.0), _run("a", 1, msgs_per_s=300.0), _run("a", 2, msgs_per_s=50.0)]
    b = [_run("b", 0, msgs_per_s=100.0), _run("b", 1, msgs_per_s=100.0), _run("b", 3, msgs_per_s=1.0)]
    r = stats.paired_ratio(a, b, "msgs_per_s")
    assert r == {"median": 2.5, "min": 2.0, "max": 3.0, "n": 2}  # repeats 2 and 3 are unpaired
    assert stats.paired_ratio(a, [_run("b", 0, msgs_per_s=0.0)], "msgs_per_s") is None


def test_ratios_for_group_against_present_baselines():
    groups = {
        "x": [_run("x", 0, msgs_per_s=150.0, cpu=5.0), _run("x", 1, msgs_per_s=120.0, cpu=6.0)],
        "asyncio-buffered": [_run("asyncio-buffered", 0, msgs_per_s=100.0, cpu=10.0),
                             _run("asyncio-buffered", 1, msgs_per_s=100.0, cpu=10.0)],
    }
    out = stats.ratios_for_group(groups, ["asyncio-buffered", "c-epoll"], ["msgs_per_s", "cpu"])
    assert set(out) == {"x"}  # no self-ratio, and c-epoll did not run
    assert out["x"]["asyncio-buffered"]["msgs_per_s"]["median"] == pytest.approx(1.35)
    assert out["x"]["asyncio-buffered"]["cpu"]["max"] == pytest.approx(0.6)


def test_summarize_records_flags_and_medians():
    recs = [_run("a", i, msgs_per_s=v, server_cpu_per_msg_us=10.0, loadgen_util=0.95,
                 flags=["client-saturated"]) for i, v in enumerate([100.0, 200.0, 300.0])]
    recs[1]["disturbed"] = True
    recs.append(_run("b", 0, ok=False, error="boom"))
    summ = {s["contestant"]: s for s in report.summarize_records(recs)}
    a = summ["a"]
    assert a["used"] == 2 and a["metrics"]["msgs_per_s"]["median"] == 200.0  # 100 and 300
    assert "D1" in a["flags"] and "S" in a["flags"] and "C" in a["flags"]
    assert summ["b"]["flags"] == ["E1"] and summ["b"]["errors"] == ["boom"]


def test_markdown_renders_tables():
    recs = []
    for rep in range(2):
        for name, v in (("asyncio-buffered", 1000.0), ("c-epoll", 2000.0)):
            recs.append(_run(name, rep, msgs_per_s=v, server_cpu_per_msg_us=1e6 / v, p50_us=50.0,
                             p99_us=90.0, server_util=0.5, loadgen_util=0.5, server_peak_rss_kib=2048))
    raw = {"meta": {"started": "t", "elapsed_s": 1.0, "notes": [],
                    "settings": Settings.for_mode(True).__dict__,
                    "machine": {"ncpu": 2, "kernel": "k", "python": "3", "cc": "cc",
                                "loadavg_at_start": (0.0, 0.0, 0.0)}},
           "skipped": [{"contestant": "trio", "reason": "trio not installed"}], "records": recs}
    md = report.markdown(report.build_results(raw))
    assert "## pingpong" in md and "trio: trio not installed" in md
    row = next(ln for ln in md.splitlines() if ln.startswith("| pingpong | 1KiB x10 | c-epoll"))
    assert "2.00" in row and "0.50" in row  # 2x the throughput, half the CPU per message


def test_overlapio_loop_servers_are_compared_with_the_same_server_on_each_loop():
    recs = []
    for rep in range(2):
        for name, cpu in (("asyncio-streams", 20.0), ("uvloop-streams", 8.0), ("overlapio-loop-streams", 10.0),
                          ("asyncio-buffered", 7.0), ("uvloop-protocol", 5.0)):
            recs.append(_run(name, rep, msgs_per_s=1e6 / cpu, server_cpu_per_msg_us=cpu + rep, p50_us=50.0,
                             p99_us=90.0, server_util=0.5, loadgen_util=0.5, server_peak_rss_kib=2048))
    raw = {"meta": {"started": "t", "elapsed_s": 1.0, "notes": [],
                    "settings": Settings.for_mode(True).__dict__,
                    "machine": {"ncpu": 2, "kernel": "k", "python": "3", "cc": "cc",
                                "loadavg_at_start": (0.0, 0.0, 0.0)}},
           "skipped": [], "records": recs}
    res = report.build_results(raw)
    same = {r["contestant"]: r["same_server"] for r in res["ratios"]}
    assert set(same["overlapio-loop-streams"]) == {"asyncio-streams", "uvloop-streams"}
    assert same["overlapio-loop-streams"]["asyncio-streams"]["server_cpu_per_msg_us"]["min"] == pytest.approx(0.5)
    assert same["asyncio-streams"] == {}  # only overlapio's loop is compared server by server
    section = report.markdown(res).split("## The same asyncio server on each loop")[1]
    row = next(ln for ln in section.splitlines() if ln.startswith("| pingpong | 1KiB x10 | overlapio-loop-streams"))
    cells = row.strip(" |").split(" | ")
    assert cells[4] == "0.51 (0.50–0.52)" and cells[6] == "1.24 (1.22–1.25)"  # CPU/msg ÷ asyncio, ÷ uvloop


def test_a_server_unavailable_for_one_workload_still_runs_the_others(monkeypatch):
    """asyncio-buffered has no UDP mode: every repeat of its pingpong must still run."""
    spec = next(s for s in STATIC_SERVERS if s.name == "asyncio-buffered")
    monkeypatch.setattr(harness.Tools, "build", classmethod(lambda cls: _tools_with_loadgen(cls)))
    monkeypatch.setattr(harness, "discover", lambda *a: ([spec], [], [], {}))

    def fake_run(task, spec, tools, settings, env):
        if task.workload == "udp":
            raise harness.Unavailable("this contestant has no UDP echo server")
        return {**harness._base_record(task), "ok": True, "msgs_per_s": 1.0, "server_cpu_per_msg_us": 1.0}

    monkeypatch.setattr(harness, "run_network", fake_run)
    settings = Settings(repeats=3, sizes=[1024], conns=[10], udp_sizes=[64], udp_conns=[1])
    raw = harness.run(settings, Selection(workloads=["udp", "pingpong"], contestants=None), quiet=True, warm=False)
    assert sorted(r["repeat"] for r in raw["records"] if r["workload"] == "pingpong") == [0, 1, 2]
    assert [(s["workload"], s["contestant"]) for s in raw["skipped"]] == [("udp", "asyncio-buffered")]


def _tools_with_loadgen(cls):
    tools = cls()
    tools.loadgen = "loadgen"
    return tools


def _pingpong_results() -> dict:
    """Two contestants at 1, 10 and 100 connections, two repeats each, as a run records them."""
    recs = []
    for rep in range(2):
        for conns in (1, 10, 100):
            for name, cpu in (("overlapio-posix", 9.0), ("asyncio-buffered", 10.0)):
                cpu_here = cpu * (4 if conns == 1 else 1) + rep
                recs.append(_run(name, rep, config=f"1KiB x{conns}", conns=conns, msgs_per_s=12345.0 * conns ** 0.5,
                                 server_cpu_per_msg_us=cpu_here, p50_us=50.0, p99_us=90.0, server_util=0.5,
                                 loadgen_util=0.5, server_peak_rss_kib=2048))
    raw = {"meta": {"started": "2026-01-02T03:04:05+00:00", "elapsed_s": 60.0, "notes": [],
                    "settings": Settings.for_mode(True).__dict__, "overlapio": "0.1.0 at abc1234",
                    "machine": {"cpu_model": "Some CPU", "ncpu": 2, "kernel": "6.1", "python": "3.11.7",
                                "cc": "cc (Debian 12.2.0-14) 12.2.0", "uvloop": "0.19.0", "trio": None,
                                "loadavg_at_start": (0.0, 0.0, 0.0)}},
           "skipped": [], "records": recs}
    return report.build_results(raw)


def test_results_read_back_from_markdown_for_the_plots():
    res = _pingpong_results()
    back = report.results_from_markdown(report.markdown(res))
    assert back["meta"]["machine"]["python"] == "3.11.7" and back["meta"]["machine"]["trio"] is None
    assert back["meta"]["overlapio"] == "0.1.0 at abc1234" and back["meta"]["settings"]["repeats"] == 3
    want = {(s["contestant"], s["conns"]): s["metrics"] for s in res["summary"]}
    got = {(s["contestant"], s["conns"]): s["metrics"] for s in back["summary"]}
    assert set(got) == set(want) and len(got) == 6
    for key, metrics in want.items():
        for m in ("msgs_per_s", "server_cpu_per_msg_us"):
            for k in ("median", "min", "max"):
                assert got[key][m][k] == pytest.approx(metrics[m][k], rel=0.005), (key, m, k)
    caption = report.plot_caption(back["meta"])
    for part in ("Some CPU, 2 CPUs, Linux 6.1", "Python 3.11.7", "overlapio 0.1.0 at abc1234", "uvloop 0.19.0",
                 "cc 12.2.0", "2026-01-02 03:04"):
        assert part in caption


def test_plots_are_drawn_from_results_and_from_markdown(tmp_path):
    pytest.importorskip("matplotlib")
    res = _pingpong_results()
    files, note = report.plots(res, tmp_path)
    assert note == "" and files == ["pingpong_1KiB.png"]
    assert (tmp_path / files[0]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "results.md").write_text(report.markdown(res))
    assert report.main([str(tmp_path / "results.md"), "--out", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "pingpong_1KiB.png").exists()
    with pytest.raises(SystemExit):
        report.main([str(tmp_path / "nothing.md")])


# ----------------------------------------------------------------- parsing and plan
def test_parse_only_kinds_families_globs():
    sel = parse_only(["pingpong", "overlapio-posix,asyncio-buffered"])
    assert sel.workloads == ["pingpong"]
    assert sel.wants_workload("pingpong") and not sel.wants_workload("timers")
    assert sel.wants_contestant("asyncio-buffered") and not sel.wants_contestant("asyncio-protocol")
    sel = parse_only(["asyncio"])  # a family
    assert sel.workloads is None
    assert all(sel.wants_contestant(n) for n in ("asyncio", "asyncio-streams", "asyncio-protocol"))
    assert not sel.wants_contestant("uvloop-protocol")
    sel = parse_only(["timers,post", "uvloop*"])
    assert sel.workloads == ["timers", "post"] and sel.wants_contestant("uvloop")
    assert contestant_matches("overlapio-posix", "overlapio")
    assert not contestant_matches("trio", "tri")
    assert parse_only(None).wants_contestant("anything")
    with pytest.raises(SelectionError, match="matches nothing"):
        parse_only(["pingpongg"])


def test_parse_size():
    assert [parse_size(x) for x in ("64", "1K", "64KiB", "1M")] == [64, 1024, 65536, 1 << 20]
    with pytest.raises(SelectionError):
        parse_size("lots")


def test_cli_arguments():
    a = cli.build_parser().parse_args(["--quick", "--only", "pingpong", "--sizes", "64,1K",
                                       "--conns", "1,100", "--repeats", "2", "--duration", "0.2"])
    s = cli.settings_from_args(a)
    assert s.quick and s.sizes == [64, 1024] and s.conns == [1, 100]
    assert s.repeats == 2 and s.duration == 0.2 and s.mem_repeats == 1
    full = cli.settings_from_args(cli.build_parser().parse_args([]))
    assert not full.quick and full.conns == [1, 10, 100, 1000] and full.sizes == [64, 1024, 65536]
    for bad in (["--only", "nosuch"], ["--conns", "0"], ["--repeats", "0"], ["--sizes", "x"]):
        with pytest.raises(SystemExit) as e:
            cli.main(bad)
        assert e.value.code == 2


def test_plan_interleaves_contestants_within_each_repeat():
    s = Settings(repeats=3, sizes=[1024], conns=[1, 10])
    names = ["a", "b", "c"]
    plan = build_plan(s, parse_only(["pingpong"]), names, ["asyncio"])
    assert len(plan) == 3 * 2 * 3 and all(t.workload == "pingpong" for t in plan)
    # repeats are whole passes: all of repeat r before any of repeat r+1
    assert [t.repeat for t in plan] == sorted(t.repeat for t in plan)
    # within one configuration of one repeat, every contestant runs once, back to back
    firsts = []
    for r in range(3):
        block = [t.contestant for t in plan if t.repeat == r and t.conns == 1]
        assert sorted(block) == names
        firsts.append(block[0])
    assert len(set(firsts)) == 3  # the order rotates between repeats
    inproc = build_plan(s, parse_only(["timers"]), names, ["asyncio", "uvloop"])
    assert {t.workload for t in inproc} == {"timers"} and inproc[0].n == s.inproc_n["timers"]


def test_progress_plain_lines_when_not_a_tty():
    buf = io.StringIO()
    p = Progress(2, 10.0, stream=buf)
    p.update(1, "pingpong x1 c-epoll")
    p.note("skipped trio: missing")
    p.finish()
    lines = buf.getvalue().splitlines()
    assert lines[0].startswith("[1/2]") and "c-epoll" in lines[0] and "\r" not in buf.getvalue()
    assert lines[1] == "skipped trio: missing"


def test_inproc_workloads_asyncio():
    n = 3000
    t = inproc.run("timers", "asyncio", n)
    # libuv's million_timers schedule: the last of n timers is due after 1 + (n-1)//1000 ms
    assert t["n"] == n and t["total_s"] >= (1 + (n - 1) // 1000) / 1000
    assert t["init_s"] > 0 and t["ops_per_s"] == pytest.approx(n / t["total_s"])
    for w in ("post", "opcost"):
        r = inproc.run(w, "asyncio", n)
        assert r["ops_per_s"] > 0 and r["cpu_s"] > 0 and r["dispatch_s"] == r["total_s"]
    with pytest.raises(ValueError):
        inproc.run("timers", "nosuchloop", 10)


# ----------------------------------------------------------------- native + end to end
@pytest.mark.skipif(not HAVE_CC, reason="no C compiler")
def test_c_programs_compile(tmp_path):
    for name in native_build.PROGRAMS:
        path = native_build.build(name, cache=tmp_path)
        assert path.is_file() and path.stat().st_size > 0
        assert native_build.build(name, cache=tmp_path) == path  # cached, not rebuilt
    r = subprocess.run([str(native_build.build("loadgen", cache=tmp_path))], capture_output=True)
    assert r.returncode == 2 and b"usage" in r.stderr


def _check_pingpong_record(rec, duration):
    assert rec["ok"], rec.get("error")
    assert rec["messages"] > 100
    assert rec["seconds"] == pytest.approx(duration, rel=0.2)
    assert rec["msgs_per_s"] == pytest.approx(rec["messages"] / rec["seconds"], rel=1e-3)
    assert 0 < rec["p50_us"] <= rec["p99_us"] <= rec["p999_us"]
    assert 0 < rec["server_cpu_per_msg_us"] < 10_000
    assert 0 < rec["server_util"] <= 1.2 and 0 < rec["loadgen_util"] <= 1.2
    assert rec["server_peak_rss_kib"] > 0
    assert rec["window"]["wall_s"] == pytest.approx(duration, rel=0.2)
    assert rec["cold_at_start"] == 0 and rec["warmup_s"] >= 0.19  # every conn warmed first
    # the harness's window and the load generator's own count agree roughly
    assert rec["loadgen_cpu_s"] == pytest.approx(rec["loadgen_cpu_self_s"], abs=0.08)
    json.dumps(rec)  # serializable


@linux_only
@pytest.mark.skipif(not HAVE_CC, reason="no C compiler")
@pytest.mark.parametrize("contestant", ["c-epoll", "asyncio-buffered", "overlapio-loop-buffered",
                                        "overlapio-loop-streams",
                                        pytest.param("overlapio-uring", marks=needs_uring),
                                        pytest.param("overlapio-uring-plain", marks=needs_uring)])
def test_end_to_end_pingpong(contestant):
    tools = harness.Tools.build()
    assert tools.loadgen is not None, tools.reasons
    spec = next((s for s in STATIC_SERVERS if s.name == contestant), None)
    if spec is None:
        backend, _, style = contestant.removeprefix("overlapio-").partition("-")
        spec = overlapio_server(backend, style or "fast")
    s = Settings(warmup=0.2, duration=0.8)
    rec = harness.run_network(Task("pingpong", contestant, 0, 1024, 1), spec, tools, s,
                              harness.child_env())
    _check_pingpong_record(rec, 0.8)


@linux_only
@pytest.mark.skipif(not HAVE_CC, reason="no C compiler")
@pytest.mark.parametrize("contestant", ["c-epoll", "overlapio-posix", "asyncio-protocol",
                                        pytest.param("overlapio-uring", marks=needs_uring)])
def test_end_to_end_udp_pingpong(contestant):
    from bench.workloads import overlapio_server
    tools = harness.Tools.build()
    spec = overlapio_server(contestant.removeprefix("overlapio-")) if contestant.startswith("overlapio-") else \
        next(s for s in STATIC_SERVERS if s.name == contestant)
    s = Settings(warmup=0.2, duration=0.8)
    rec = harness.run_network(Task("udp", contestant, 0, 64, 10), spec, tools, s, harness.child_env())
    _check_pingpong_record(rec, 0.8)
    assert rec["loadgen_errors"] == 0, "datagrams were lost on loopback"


@linux_only
@pytest.mark.skipif(not HAVE_CC, reason="no C compiler")
def test_a_server_without_a_udp_mode_is_unavailable_for_udp():
    tools = harness.Tools.build()
    spec = next(s for s in STATIC_SERVERS if s.name == "asyncio-buffered")
    with pytest.raises(harness.Unavailable, match="no UDP echo server"):
        harness.run_network(Task("udp", spec.name, 0, 64, 1), spec, tools, Settings(warmup=0.1, duration=0.2),
                            harness.child_env())


@linux_only
@pytest.mark.skipif(not HAVE_CC, reason="no C compiler")
def test_memory_per_connection_against_c_server():
    # The C server mallocs and touches one 4 KiB buffer per connection and little else,
    # so RSS per connection must come out at about the buffer size.
    tools = harness.Tools.build()
    spec = next(s for s in STATIC_SERVERS if s.name == "c-epoll")
    s = Settings(mem_base_conns=20, mem_conns=200, mem_bufsize=4096)
    rec = harness.run_memory(Task("memory", "c-epoll", 0, 4096, 200), spec, tools, s,
                             harness.child_env())
    assert rec["ok"] and rec["user_buffer_bytes"] == 4096
    assert 4096 <= rec["per_conn_bytes"] < 4096 + 1024
    assert rec["beyond_buffer_bytes"] == pytest.approx(rec["per_conn_bytes"] - 4096)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_instructions_per_message_orders_the_servers():
    # Counted, not timed: the hand-written selectors loop must come out cheaper per
    # message than asyncio, and both in a plausible range for CPython.
    from bench import instructions

    valgrind = shutil.which("valgrind")
    raw = instructions.per_message(instructions.spec_named("selectors-raw"), 2, 30, 1024, valgrind)
    aio = instructions.per_message(instructions.spec_named("asyncio-buffered"), 2, 30, 1024, valgrind)
    assert 1_000 < raw < aio < 200_000, (raw, aio)


@pytest.mark.slow
@needs_uring
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_instructions_per_message_on_uring_both_styles():
    # A server blocked in io_uring_enter runs no other thread under valgrind: each
    # run must still end by itself (--exit-after) and write its counts. A recv op
    # and a send op per message cost more than a resubmitted recv and try_send.
    from bench import instructions

    valgrind = shutil.which("valgrind")
    fast = instructions.per_message(instructions.spec_named("overlapio-uring"), 2, 30, 1024, valgrind)
    plain = instructions.per_message(instructions.spec_named("overlapio-uring-plain"), 2, 30, 1024, valgrind)
    assert 1_000 < fast < plain < 200_000, (fast, plain)


def test_instructions_contestant_names():
    from bench import instructions

    plain = instructions.spec_named("overlapio-uring-plain")
    assert plain.script == "overlapio_echo.py" and plain.args == ("--backend", "uring", "--style", "plain")
    assert instructions.spec_named("overlapio-posix").args == ("--backend", "posix")
    with pytest.raises(SystemExit, match="unknown server 'overlapio-uring-bogus'"):
        instructions.spec_named("overlapio-uring-bogus")
    names = instructions.default_names()
    assert names[:2] == ["overlapio-posix", "overlapio-posix-plain"] and names[-2:] == list(instructions.DEFAULT_OTHERS)
    assert ("overlapio-uring-plain" in names) == (_uring_reason() is None)


def test_each_asyncio_server_is_offered_on_every_loop():
    # asyncio-buffered stays the main baseline; its server and the streams one run on
    # stock asyncio, uvloop and overlapio's event loop, under names of one pattern.
    from bench import instructions

    specs = {s.name: s for s in STATIC_SERVERS}
    for kind, script in (("buffered", "asyncio_buffered.py"), ("streams", "asyncio_streams.py")):
        for prefix, loop in (("asyncio", None), ("uvloop", "uvloop"), ("overlapio-loop", "overlapio")):
            spec = specs[f"{prefix}-{kind}"]
            assert spec.script == script and spec.args == (() if loop is None else ("--loop", loop))
    assert "asyncio-buffered" in workloads_module.BASELINES
    assert [s.name for s in map(instructions.spec_named, instructions.LOOP_SERVERS)] == \
        list(instructions.LOOP_SERVERS)
    sel = parse_only(["overlapio-loop"])  # the family: both servers on overlapio's loop
    assert sel.wants_contestant("overlapio-loop-buffered") and sel.wants_contestant("overlapio-loop-streams")
    assert not sel.wants_contestant("overlapio-posix") and not sel.wants_contestant("asyncio-buffered")
    assert instructions.ratio_pairs(["asyncio-streams", "uvloop-streams", "overlapio-loop-streams"]) == \
        [("overlapio-loop-streams", "asyncio-streams"), ("overlapio-loop-streams", "uvloop-streams")]


def test_instructions_loops_option_is_exclusive_with_names(capsys):
    from bench import instructions

    with pytest.raises(SystemExit) as e:
        instructions.main(["--loops", "asyncio-buffered"])
    assert e.value.code == 2 and "either --loops or NAMEs" in capsys.readouterr().err


def test_discover_offers_both_overlapio_styles_per_backend():
    tools = harness.Tools()
    servers, _, _, backends = harness.discover(parse_only(["overlapio-posix-plain"]), harness.child_env(), tools,
                                               True, False)
    assert [s.name for s in servers] == ["overlapio-posix-plain"]
    assert servers[0].args[-2:] == ("--style", "plain")


def test_instructions_cli_rejects_bad_input(capsys):
    from bench import instructions

    with pytest.raises(SystemExit) as e:
        instructions.main(["--conns", "0"])
    assert e.value.code == 2 and "at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="unknown server 'nginx'"):
        instructions.spec_named("nginx")
    with pytest.raises(SystemExit, match="native code"):
        instructions.spec_named("c-epoll")


def test_overlapio_bench_server_echoes_every_byte_when_replies_do_not_fit():
    # The bench server replies with try_send and falls back to a send op when the
    # socket takes only part of a reply; a client that writes 8 MiB before it reads
    # anything forces that path many times. Every byte must come back, in order.
    import random
    import socket
    import threading

    server = subprocess.Popen([sys.executable, str(REPO / "bench" / "servers" / "overlapio_echo.py"),
                               "--port", "0", "--bufsize", "65536"],
                              stdout=subprocess.PIPE, env=harness.child_env(), text=True)
    try:
        line = server.stdout.readline().split()
        assert line and line[0] == "READY", line
        data = random.Random(1).randbytes(8 << 20)
        with socket.socket() as c:
            # a small receive buffer, so that the server's replies back up on its side
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            c.settimeout(30)
            c.connect(("127.0.0.1", int(line[1])))
            errors = []

            def write():
                try:
                    c.sendall(data)
                except OSError as exc:
                    errors.append(exc)

            writer = threading.Thread(target=write, daemon=True)
            writer.start()
            writer.join(0.5)  # the server's replies back up meanwhile
            got = bytearray()
            while len(got) < len(data):
                chunk = c.recv(1 << 20)
                assert chunk, f"the server closed after {len(got)} of {len(data)} bytes"
                got += chunk
            writer.join(30)
            assert not errors, errors
        assert got == data, "the echo is not the bytes sent"
    finally:
        server.kill()
        server.wait()
