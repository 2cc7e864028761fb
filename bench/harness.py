"""The measuring machinery: processes, /proc sampling and the run loop.

For each network measurement the harness starts the contestant server as its own
process (waits for its "READY <port> <buffer>" line), then the C load generator as
another process, and samples at the load generator's "START" and "END" lines:
  - the server's CPU time: sum_exec_runtime of all its threads (/proc/<pid>/task/*/
    schedstat, nanoseconds; includes kernel and softirq work done while it runs),
  - the load generator's CPU time, the same way,
  - the whole machine's busy and steal time (/proc/stat),
so start-up, connection set-up and warm-up are outside the window. After "END" the
load generator stops starting messages and waits for the harness before it closes
its sockets, so teardown is outside the window too. Peak RSS is the server's VmHWM.

A window is flagged disturbed when the machine did noticeably more work than the two
processes (other load), or the hypervisor stole time (see bench/stats.py).
"""
from __future__ import annotations

import datetime as _dt
import glob
import json
import os
import platform
import resource
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

from . import stats
from .native import build as native_build
from .progress import Progress
from .workloads import (INPROC_WORKLOADS, NETWORK_WORKLOADS, STATIC_INPROC, STATIC_SERVERS,
                        OVERLAPIO_STYLES, Selection, ServerSpec, Settings, Task, build_plan,
                        estimate_seconds, overlapio_server)

REPO = Path(__file__).resolve().parent.parent
SERVERS_DIR = REPO / "bench" / "servers"
CLK_TCK = os.sysconf("SC_CLK_TCK")
EXIT_UNAVAILABLE = 3
EXIT_NOT_APPLICABLE = 4
WINDOW_SKEW_MAX = 0.05  # harness vs load generator window length, relative


class Unavailable(Exception):
    """A contestant cannot run here (missing library, no compiler, ...)."""


class MeasureError(Exception):
    """A measurement failed (server died, load generator error, timeout)."""


# ----------------------------------------------------------------- /proc readers
def proc_cpu_ns(pid: int) -> int:
    """CPU time of a process (all threads) in ns, from schedstat; falls back to
    /proc/<pid>/stat utime+stime (clock-tick resolution)."""
    total = 0
    found = False
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            with open(path) as f:
                total += int(f.read().split()[0])
            found = True
        except (OSError, ValueError, IndexError):
            pass  # a thread exited between glob and open
    if found and total > 0:
        return total
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1_000_000_000 // CLK_TCK


def proc_status_kib(pid: int, key: str) -> Optional[int]:
    """A 'kB' field of /proc/<pid>/status, e.g. VmHWM (peak RSS) or VmRSS."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def machine_cpu() -> tuple[float, float, int]:
    """(busy seconds, steal seconds, number of CPUs) of the whole machine so far.
    busy = user+nice+system+irq+softirq (guest time is already inside user)."""
    with open("/proc/stat") as f:
        lines = f.read().splitlines()
    v = [int(x) for x in lines[0].split()[1:]]
    v += [0] * (8 - len(v))
    busy = v[0] + v[1] + v[2] + v[5] + v[6]
    ncpu = sum(1 for ln in lines if ln.startswith("cpu") and ln[3:4].isdigit())
    return busy / CLK_TCK, v[7] / CLK_TCK, ncpu


def count_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def raise_nofile(need: int) -> str:
    """Raise the soft RLIMIT_NOFILE (inherited by the processes we start) so that
    1,000+ connections fit; returns a note when it could not be raised enough."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        new = need if hard == resource.RLIM_INFINITY else min(hard, need)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
            soft = new
        except (ValueError, OSError) as e:
            return f"could not raise open-file limit to {need}: {e}"
    if soft != resource.RLIM_INFINITY and soft < need:
        return f"open-file limit is {soft} (< {need}); large connection counts may fail"
    return ""


def child_env() -> dict:
    """Environment for the processes we start: the repo root on PYTHONPATH so that
    `bench` and a source-tree `overlapio` import without installation."""
    env = os.environ.copy()
    pp = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + pp if pp else "")
    return env


# ----------------------------------------------------------------- line reading
class LineReader:
    """Read lines from a pipe with a timeout (select + os.read, own buffer)."""

    def __init__(self, pipe):
        self.fd = pipe.fileno()
        self.buf = b""
        self.eof = False

    def readline(self, timeout: float) -> Optional[str]:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            if self.eof:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out waiting for a line")
            r, _, _ = select.select([self.fd], [], [], left)
            if not r:
                continue
            chunk = os.read(self.fd, 65536)
            if not chunk:
                self.eof = True
            self.buf += chunk
        if b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            return line.decode(errors="replace").strip()
        if self.buf:
            line, self.buf = self.buf, b""
            return line.decode(errors="replace").strip()
        return None  # EOF


def _tail(path: str, n: int = 600) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - n))
            return f.read().decode(errors="replace").strip()
    except OSError:
        return ""


def _kill(p: Optional[subprocess.Popen], grace: float = 2.0) -> None:
    if p is None or p.poll() is not None:
        return
    try:
        p.send_signal(signal.SIGTERM)
        p.wait(grace)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(5)
    except ProcessLookupError:
        pass


# ----------------------------------------------------------------- processes
class Tools:
    """Paths of the native programs (None with a reason when they did not build)."""

    def __init__(self):
        self.loadgen: Optional[Path] = None
        self.echo_epoll: Optional[Path] = None
        self.reasons: dict[str, str] = {}
        self.cc = ""

    @classmethod
    def build(cls) -> "Tools":
        t = cls()
        try:
            t.cc = native_build.compiler_id(native_build.compiler())
        except native_build.BuildError as e:
            t.cc = f"unavailable: {e}"
        for name, res in native_build.build_all().items():
            if isinstance(res, Exception):
                t.reasons[name] = str(res)
            else:
                setattr(t, name, res)
        return t


class ServerProc:
    """One contestant server process, started and ready."""

    def __init__(self, spec: ServerSpec, tools: Tools, bufsize: int, env: dict, timeout: float = 20.0,
                 proto: str = "tcp"):
        udp = ("--proto", "udp") if proto == "udp" else ()
        if spec.native:
            if tools.echo_epoll is None:
                raise Unavailable(tools.reasons.get("echo_epoll", "C echo server not built"))
            argv = [str(tools.echo_epoll), "--port", "0", "--bufsize", str(bufsize), *udp]
        else:
            argv = [sys.executable, str(SERVERS_DIR / spec.script), "--port", "0",
                    "--bufsize", str(bufsize), *spec.args, *udp]
        self.spec = spec
        self.errfile = tempfile.NamedTemporaryFile(prefix="bench-server-", suffix=".err", delete=False)
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.errfile, env=env, cwd=str(REPO))
        self.pid = self.proc.pid
        reader = LineReader(self.proc.stdout)
        try:
            line = reader.readline(timeout)
        except TimeoutError:
            self.stop()
            raise MeasureError(f"{spec.name}: no READY within {timeout:.0f}s; stderr: {self.stderr_tail()}")
        if line is None or not line:
            self.stop()
            raise MeasureError(f"{spec.name}: exited before READY (status {self.proc.returncode}); "
                               f"stderr: {self.stderr_tail()}")
        if line.startswith("UNAVAILABLE"):
            self.stop()
            raise Unavailable(line[len("UNAVAILABLE"):].strip())
        parts = line.split()
        if parts[0] != "READY" or len(parts) < 3:
            self.stop()
            raise MeasureError(f"{spec.name}: unexpected first line {line!r}")
        self.port = int(parts[1])
        self.per_conn_buffer = int(parts[2])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stderr_tail(self) -> str:
        return _tail(self.errfile.name)

    def stop(self) -> None:
        _kill(self.proc)
        if self.proc.stdout:
            self.proc.stdout.close()
        self.errfile.close()
        try:
            os.unlink(self.errfile.name)
        except OSError:
            pass


class Sample:
    """CPU counters at one instant."""

    def __init__(self, server_pid: int, lg_pid: int):
        self.t = time.monotonic()
        self.server_ns = proc_cpu_ns(server_pid)
        self.lg_ns = proc_cpu_ns(lg_pid)
        self.busy, self.steal, self.ncpu = machine_cpu()


def window_metrics(s0: Sample, s1: Sample) -> dict:
    wall = s1.t - s0.t
    srv = (s1.server_ns - s0.server_ns) / 1e9
    lg = (s1.lg_ns - s0.lg_ns) / 1e9
    other, steal, reasons = stats.disturbance(s1.busy - s0.busy, srv + lg, s1.steal - s0.steal,
                                              wall, s1.ncpu)
    return {"wall_s": wall, "server_cpu_s": srv, "loadgen_cpu_s": lg,
            "machine_busy_s": s1.busy - s0.busy, "steal_s": s1.steal - s0.steal,
            "ncpu": s1.ncpu, "other_frac": other, "steal_frac": steal, "disturbed_reasons": reasons}


# ----------------------------------------------------------------- measurements
def _base_record(task: Task) -> dict:
    return {"workload": task.workload, "config": task.config, "contestant": task.contestant,
            "repeat": task.repeat, "size": task.size, "conns": task.conns, "n": task.n,
            "ok": False, "error": None, "flags": [], "disturbed": False}


def run_network(task: Task, spec: ServerSpec, tools: Tools, s: Settings, env: dict) -> dict:
    rec = _base_record(task)
    if tools.loadgen is None:
        raise Unavailable(tools.reasons.get("loadgen", "load generator not built"))
    srv = ServerProc(spec, tools, s.server_bufsize, env, proto="udp" if task.workload == "udp" else "tcp")
    lg = None
    lg_err = tempfile.NamedTemporaryFile(prefix="bench-loadgen-", suffix=".err", delete=False)
    try:
        argv = [str(tools.loadgen), "--port", str(srv.port), "--mode", task.workload,
                "--conns", str(task.conns), "--size", str(task.size),
                "--warmup", str(s.warmup), "--duration", str(s.duration)]
        lg = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=lg_err,
                              env=env)
        reader = LineReader(lg.stdout)

        def expect(word: str, timeout: float) -> None:
            try:
                line = reader.readline(timeout)
            except TimeoutError:
                raise MeasureError(f"load generator: no {word} within {timeout:.0f}s") from None
            if line != word:
                raise MeasureError(f"load generator: expected {word}, got {line!r}; "
                                   f"stderr: {_tail(lg_err.name)}")

        expect("START", 70.0 + s.warmup)  # connect (<= 10 s) + warm-up + cold cap (30 s)
        s0 = Sample(srv.pid, lg.pid)
        expect("END", 30.0 + s.duration)
        s1 = Sample(srv.pid, lg.pid)
        server_alive = srv.alive()
        peak = proc_status_kib(srv.pid, "VmHWM")
        lg.stdin.write(b"\n")
        lg.stdin.flush()
        line = reader.readline(30.0)
        lg.wait(10)
        try:
            res = json.loads(line or "")
        except ValueError:
            raise MeasureError(f"load generator printed {line!r}; stderr: {_tail(lg_err.name)}") from None
    finally:
        _kill(lg)
        lg_err.close()
        os.unlink(lg_err.name)
        srv_tail = srv.stderr_tail()
        srv.stop()

    w = window_metrics(s0, s1)
    msgs = res.get("messages") or 0
    rec.update({
        "ok": msgs > 0,
        "messages": msgs, "bytes": res.get("bytes"), "seconds": res.get("seconds"),
        "msgs_per_s": res.get("msgs_per_s"), "mb_per_s": res.get("mb_per_s"),
        "p50_us": res.get("p50_us"), "p99_us": res.get("p99_us"), "p999_us": res.get("p999_us"),
        "server_cpu_s": w["server_cpu_s"],
        "server_cpu_per_msg_us": w["server_cpu_s"] / msgs * 1e6 if msgs else None,
        "server_util": w["server_cpu_s"] / w["wall_s"] if w["wall_s"] > 0 else None,
        "loadgen_cpu_s": w["loadgen_cpu_s"],
        "loadgen_util": w["loadgen_cpu_s"] / w["wall_s"] if w["wall_s"] > 0 else None,
        "loadgen_cpu_self_s": (res.get("cpu_user_s") or 0) + (res.get("cpu_sys_s") or 0),
        "server_peak_rss_kib": peak,
        "loadgen_errors": res.get("errors_in_window"),
        "connected": res.get("connected"), "alive": res.get("alive"),
        "warmup_s": res.get("warmup_s"), "cold_at_start": res.get("cold_at_start"),
        "window": w,
    })
    # The harness samples CPU when it reads START/END; the load generator counts
    # messages by its own clock. If the harness was delayed (a busy machine), the two
    # windows differ and CPU per message is skewed: treat that as a disturbance too.
    lg_secs = res.get("seconds") or 0
    if lg_secs > 0 and abs(w["wall_s"] - lg_secs) / lg_secs > WINDOW_SKEW_MAX:
        w["disturbed_reasons"].append(
            f"sampling window {w['wall_s']:.3f}s vs load generator {lg_secs:.3f}s")
    if w["disturbed_reasons"]:
        rec["disturbed"] = True
        rec["flags"].append("disturbed: " + "; ".join(w["disturbed_reasons"]))
    if res.get("cold_at_start"):
        rec["flags"].append(f"errors: {res['cold_at_start']} connections had not completed an "
                            f"exchange when the window started (after {res.get('warmup_s')} s)")
    if rec["loadgen_util"] is not None and rec["loadgen_util"] >= stats.CLIENT_SATURATED:
        rec["flags"].append("client-saturated")
    if not server_alive:
        rec["ok"] = False
        rec["error"] = f"server exited during the run; stderr: {srv_tail}"
    elif res.get("errors_in_window") or (res.get("alive") or 0) < (res.get("connected") or 0):
        rec["flags"].append(f"errors: {res.get('errors_in_window')} in window, "
                            f"{res.get('alive')}/{res.get('connected')} connections alive")
    if msgs == 0 and not rec["error"]:
        rec["error"] = f"no messages completed; server stderr: {srv_tail}"
    return rec


def _settle_rss(pid: int, timeout: float = 2.0) -> Optional[int]:
    """VmRSS once it stops moving (two reads 0.1 s apart within 16 KiB)."""
    last = proc_status_kib(pid, "VmRSS")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.1)
        cur = proc_status_kib(pid, "VmRSS")
        if cur is not None and last is not None and abs(cur - last) <= 16:
            return cur
        last = cur
    return last


def run_memory(task: Task, spec: ServerSpec, tools: Tools, s: Settings, env: dict) -> dict:
    rec = _base_record(task)
    if tools.loadgen is None:
        raise Unavailable(tools.reasons.get("loadgen", "load generator not built"))
    srv = ServerProc(spec, tools, task.size, env)
    lg = None
    stages = [s.mem_base_conns, s.mem_base_conns + task.conns]
    rss: dict[int, int] = {}
    try:
        fd0 = count_fds(srv.pid)
        lg = subprocess.Popen([str(tools.loadgen), "--port", str(srv.port), "--mode", "idle",
                               "--stages", ",".join(map(str, stages))],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, env=env)
        reader = LineReader(lg.stdout)
        for want in stages:
            line = reader.readline(30.0) or ""
            if not line.startswith("STAGE"):
                raise MeasureError(f"load generator: expected STAGE, got {line!r}")
            got = int(line.split()[1])
            if got < want:
                raise MeasureError(f"only {got} of {want} connections established")
            deadline = time.monotonic() + 15.0
            while count_fds(srv.pid) < fd0 + want:  # the server has accepted them all
                if time.monotonic() > deadline or not srv.alive():
                    raise MeasureError(f"server accepted {count_fds(srv.pid) - fd0} of {want} "
                                       f"connections; stderr: {srv.stderr_tail()}")
                time.sleep(0.02)
            rss[want] = _settle_rss(srv.pid)
            lg.stdin.write(b"\n")
            lg.stdin.flush()
        reader.readline(30.0)
        lg.wait(10)
        peak = proc_status_kib(srv.pid, "VmHWM")
    finally:
        _kill(lg)
        buf = getattr(srv, "per_conn_buffer", 0)
        srv.stop()
    lo, hi = stages
    per_conn = (rss[hi] - rss[lo]) * 1024 / (hi - lo)
    rec.update({"ok": True, "rss_base_kib": rss[lo], "rss_full_kib": rss[hi], "base_conns": lo,
                "full_conns": hi, "per_conn_bytes": per_conn, "user_buffer_bytes": buf,
                "beyond_buffer_bytes": per_conn - buf, "server_peak_rss_kib": peak})
    return rec


def run_inproc(task: Task, env: dict, timeout: float) -> dict:
    rec = _base_record(task)
    errf = tempfile.NamedTemporaryFile(prefix="bench-inproc-", suffix=".err", delete=False)
    try:
        b0, st0, ncpu = machine_cpu()
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        p = subprocess.Popen([sys.executable, "-m", "bench.inproc", task.workload, task.contestant,
                              "--n", str(task.n)], stdout=subprocess.PIPE, stderr=errf,
                             stdin=subprocess.DEVNULL, env=env, cwd=str(REPO))
        try:
            out, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            raise MeasureError(f"timed out after {timeout:.0f}s")
        wall = time.monotonic() - t0
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        b1, st1, _ = machine_cpu()
        text = out.decode(errors="replace").strip()
        if p.returncode == EXIT_UNAVAILABLE:
            raise Unavailable(text[len("UNAVAILABLE"):].strip())
        if p.returncode == EXIT_NOT_APPLICABLE:
            raise Unavailable("not applicable: " + text[len("NOT_APPLICABLE"):].strip())
        if p.returncode != 0:
            raise MeasureError(f"exit {p.returncode}: {_tail(errf.name)}")
        res = json.loads(text.splitlines()[-1])
    finally:
        errf.close()
        os.unlink(errf.name)
    child_cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    other, steal, reasons = stats.disturbance(b1 - b0, child_cpu, st1 - st0, wall, ncpu)
    rec.update(res)
    rec.update({"ok": True, "window": {"wall_s": wall, "child_cpu_s": child_cpu,
                                       "other_frac": other, "steal_frac": steal}})
    if reasons:
        rec["disturbed"] = True
        rec["flags"].append("disturbed: " + "; ".join(reasons))
    return rec


# ----------------------------------------------------------------- discovery
def probe_server(spec: ServerSpec, env: dict) -> Optional[str]:
    """None when the contestant can run, else the reason it cannot."""
    argv = [sys.executable, str(SERVERS_DIR / spec.script), "--probe", *spec.args]
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, cwd=str(REPO))
    except subprocess.TimeoutExpired:
        return "probe timed out"
    out = (r.stdout or "").strip().splitlines()
    if r.returncode == 0 and out and out[-1] == "OK":
        return None
    for line in out:
        if line.startswith("UNAVAILABLE"):
            return line[len("UNAVAILABLE"):].strip()
    err = (r.stderr or "").strip().splitlines()
    return f"probe failed (exit {r.returncode}): {err[-1] if err else ''}"


_BACKENDS_SNIPPET = """
import json
import overlapio
print(json.dumps({k: [bool(v[0]), str(v[1])] for k, v in overlapio.available_backends().items()}))
"""


def overlapio_backends(env: dict) -> tuple[dict, str]:
    """({backend: (available, reason)}, error) from overlapio.available_backends(),
    asked in a subprocess so a half-written core cannot break the harness."""
    try:
        r = subprocess.run([sys.executable, "-c", _BACKENDS_SNIPPET], capture_output=True,
                           text=True, timeout=60, env=env, cwd=str(REPO))
    except subprocess.TimeoutExpired:
        return {}, "overlapio.available_backends() timed out"
    if r.returncode != 0:
        err = (r.stderr or "").strip().splitlines()
        return {}, f"cannot import overlapio: {err[-1] if err else 'exit ' + str(r.returncode)}"
    try:
        data = json.loads(r.stdout.strip().splitlines()[-1])
        return {k: (bool(v[0]), str(v[1])) for k, v in data.items()}, ""
    except (ValueError, IndexError, AttributeError) as e:
        return {}, f"unexpected available_backends() output: {e}"


def discover(sel: Selection, env: dict, tools: Tools, need_servers: bool, need_inproc: bool):
    """Which contestants can run here. Returns (servers, inproc names, skipped list,
    overlapio backend table)."""
    skipped: list[dict] = []
    backends, err = overlapio_backends(env)
    ov_servers: list[ServerSpec] = []
    ov_inproc: list[str] = []
    if err:
        for name in ("overlapio-posix",):
            if sel.wants_contestant(name):
                skipped.append({"contestant": name, "reason": err})
    for b, (ok, reason) in sorted(backends.items()):
        name = f"overlapio-{b}"
        specs = [spec for spec in (overlapio_server(b, style) for style in OVERLAPIO_STYLES)
                 if sel.wants_contestant(spec.name)]
        if not specs and not sel.wants_contestant(name):
            continue
        if ok:
            ov_servers += specs
            if sel.wants_contestant(name):
                ov_inproc.append(name)
        else:
            skipped.append({"contestant": name, "reason": reason or "backend unavailable"})

    servers: list[ServerSpec] = []
    if need_servers:
        candidates = [STATIC_SERVERS[0]] + ov_servers + list(STATIC_SERVERS[1:])
        for spec in candidates:
            if not sel.wants_contestant(spec.name):
                continue
            if spec.native:
                if tools.echo_epoll is None:
                    skipped.append({"contestant": spec.name,
                                    "reason": tools.reasons.get("echo_epoll", "not built")})
                    continue
                servers.append(spec)
                continue
            why = probe_server(spec, env)
            if why:
                skipped.append({"contestant": spec.name, "reason": why})
            else:
                servers.append(spec)
    inproc: list[str] = []
    if need_inproc:
        for name in ov_inproc + list(STATIC_INPROC):
            if not sel.wants_contestant(name):
                continue
            mod = {"uvloop": "uvloop", "trio": "trio"}.get(name)
            if mod:
                r = subprocess.run([sys.executable, "-c", f"import {mod}"], capture_output=True,
                                   text=True, env=env)
                if r.returncode != 0:
                    if not any(x["contestant"] == name for x in skipped):
                        skipped.append({"contestant": name, "reason": f"{mod} not installed"})
                    continue
            inproc.append(name)
    return servers, inproc, skipped, backends


def machine_info(tools: Tools) -> dict:
    info = {"python": sys.version.split()[0], "implementation": platform.python_implementation(),
            "platform": platform.platform(), "kernel": platform.release(),
            "ncpu": machine_cpu()[2], "cc": tools.cc,
            "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""),
            "loadavg_at_start": os.getloadavg()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    for mod in ("uvloop", "trio"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:
            info[mod] = None
    return info


def overlapio_version() -> str:
    """The version of overlapio measured, and the commit of this checkout if known."""
    try:
        version = subprocess.run([sys.executable, "-c", "import overlapio; print(overlapio.__version__)"],
                                 capture_output=True, text=True, timeout=60, cwd=REPO).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        version = ""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                timeout=10, cwd=REPO).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return " ".join(x for x in (version or "?", f"at {commit}" if commit else "") if x)


# ----------------------------------------------------------------- the run
def _short(rec: dict) -> str:
    if not rec.get("ok"):
        return "FAILED"
    w = rec["workload"]
    if w == "memory":
        return f"{rec['beyond_buffer_bytes']:.0f} B/conn beyond buffer"
    if w in INPROC_WORKLOADS:
        return f"{stats.fmt_num(rec['ops_per_s'])} ops/s"
    if w == "stream":
        return f"{rec['mb_per_s']:.0f} MB/s, {stats.fmt_num(rec['server_cpu_per_msg_us'])} µs CPU/chunk"
    return (f"{stats.fmt_num(rec['msgs_per_s'])} msg/s, "
            f"{stats.fmt_num(rec['server_cpu_per_msg_us'])} µs CPU/msg")


def run(settings: Settings, sel: Selection, progress_stream=None, quiet: bool = False,
        warm: bool = True) -> dict:
    """Run the whole selected suite and return the raw results (records + meta)."""
    started = _dt.datetime.now().astimezone()
    env = child_env()
    notes: list[str] = []
    need = 2 * max([settings.mem_base_conns + settings.mem_conns] + settings.conns) + 256
    note = raise_nofile(need)
    if note:
        notes.append(note)
    want_net = any(sel.wants_workload(w) for w in NETWORK_WORKLOADS + ("memory",))
    want_inproc = any(sel.wants_workload(w) for w in INPROC_WORKLOADS)
    tools = Tools.build() if want_net else Tools()
    if want_net and tools.loadgen is None:
        notes.append("network workloads skipped: load generator not built: "
                     + tools.reasons.get("loadgen", "?"))
        want_net = False
    servers, inproc, skipped, backends = discover(sel, env, tools, want_net, want_inproc)
    by_name = {s.name: s for s in servers}
    plan = build_plan(settings, sel, [s.name for s in servers] if want_net else [], inproc)
    est = estimate_seconds(plan, settings)
    prog = Progress(len(plan), est, stream=progress_stream, quiet=quiet)
    for sk in skipped:
        prog.note(f"skipped {sk['contestant']}: {sk['reason']}")
    for n in notes:
        prog.note(f"note: {n}")
    prog.note(f"{len(plan)} measurements planned, estimated {est / 60:.1f} min")

    # Global warm-up (not recorded): wakes CPU frequency, caches and page cache.
    if warm and want_net and "c-epoll" in by_name and plan:
        ws = Settings(**{**settings.__dict__, "warmup": 0.2, "duration": min(0.5, settings.duration)})
        try:
            prog.update(0, "warm-up (not recorded)")
            run_network(Task("pingpong", "c-epoll", -1, 1024, 10), by_name["c-epoll"], tools, ws, env)
        except (MeasureError, Unavailable, OSError) as e:
            prog.note(f"warm-up failed: {e}")

    records: list[dict] = []
    unavailable_now: dict[str, str] = {}
    inproc_timeout = 60.0 if settings.quick else 600.0
    for i, task in enumerate(plan, 1):
        label = f"r{task.repeat + 1}/{settings.repeats} {task.workload} {task.config} {task.contestant}"
        t_est = estimate_seconds([task], settings)
        # one "unavailable" verdict per contestant and workload: a server without a UDP
        # mode still runs every other workload
        key = (task.workload, task.contestant)
        if key in unavailable_now:
            prog.advance(t_est)
            continue
        prog.update(i, label)
        try:
            if task.workload in NETWORK_WORKLOADS:
                rec = run_network(task, by_name[task.contestant], tools, settings, env)
            elif task.workload == "memory":
                rec = run_memory(task, by_name[task.contestant], tools, settings, env)
            else:
                rec = run_inproc(task, env, inproc_timeout)
        except Unavailable as e:
            unavailable_now[key] = str(e)
            skipped.append({"contestant": task.contestant, "workload": task.workload, "reason": str(e)})
            prog.note(f"skipped {task.contestant} ({task.workload}): {e}")
            prog.advance(t_est)
            continue
        except (MeasureError, OSError, ValueError, KeyError) as e:
            rec = _base_record(task)
            rec["error"] = f"{type(e).__name__}: {e}"
        rec["seq"] = i
        records.append(rec)
        prog.advance(t_est)
        if rec.get("error"):
            prog.note(f"error in {label}: {rec['error'][:300]}")
        prog.update(i, f"{label}: {_short(rec)}")
    prog.finish()
    finished = _dt.datetime.now().astimezone()
    return {
        "meta": {"started": started.isoformat(timespec="seconds"),
                 "finished": finished.isoformat(timespec="seconds"),
                 "elapsed_s": (finished - started).total_seconds(),
                 "settings": settings.__dict__, "only": {"workloads": sel.workloads,
                                                         "contestants": sel.contestants},
                 "machine": machine_info(tools), "overlapio": overlapio_version(), "notes": notes,
                 "overlapio_backends": {k: list(v) for k, v in backends.items()},
                 "servers": [s.name for s in servers], "inproc": inproc,
                 "thresholds": {"other_load_max": stats.OTHER_LOAD_MAX, "steal_max": stats.STEAL_MAX,
                                "spread_max": stats.SPREAD_MAX,
                                "client_saturated": stats.CLIENT_SATURATED}},
        "skipped": skipped,
        "records": records,
    }
