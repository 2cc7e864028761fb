"""The ``overlapio`` command, run as real subprocesses."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from cliproc import Server, run

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="uses SIGINT and /proc")


def _no_traceback(proc_out: str) -> None:
    assert "Traceback" not in proc_out, proc_out


def test_demo_exchanges_and_exits_zero():
    r = run("demo", "--count", "3", "--interval", "0.05")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("[client] Send Data ! Len = 100") == 3
    assert r.stdout.count("[server] Data Recv Len = 100") == 3
    assert r.stdout.count("[server] Client Connected !") == 1
    assert "demo ok: 3 of 3 messages came back intact" in r.stdout


def test_classic_server_and_client_output():
    with Server() as srv:
        r = run("client", "--port", str(srv.port), "--count", "3", "--interval", "0.05")
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines().count("Send Data ! Len = 100") == 3
        code, out, err = srv.interrupt()
    assert code == 130
    _no_traceback(err)
    lines = out.splitlines()
    assert lines.count("Client Connected !") == 1
    assert lines.count("Data Recv Len = 100") == 3


def test_echo_client_checks_bytes_with_many_clients():
    with Server("--echo", "--quiet") as srv:
        r = run("client", "--port", str(srv.port), "--count", "4", "--interval", "0.01", "--clients", "20",
                "--echo", "--size", "3000")
        assert r.returncode == 0, r.stderr
        assert "done: 80 messages sent, 80 echoes checked" in r.stdout
        assert r.stdout.count("Echo OK ! Len = 3000") == 80


def test_server_max_clients_exits_by_itself():
    with Server("--max-clients", "2", "--quiet") as srv:
        # It ends by itself: the start line does not tell to press Ctrl-C.
        assert "Ctrl-C" not in srv.listen_line and srv.listen_line.endswith("; exits after 2 clients")
        for _ in range(2):
            assert run("client", "--port", str(srv.port), "--count", "1", "-q").returncode == 0
        assert srv.proc.wait(timeout=10) == 0
        out, err = srv.proc.communicate()
    # -q: nothing but the final summary (stderr, as every quiet line).
    assert out == b""
    assert err.decode() == "done: 2 clients served, 200 bytes received\n"


def test_server_prints_a_final_summary_on_ctrl_c_too():
    with Server() as srv:
        assert srv.listen_line.endswith("; Ctrl-C to stop")
        run("client", "--port", str(srv.port), "--count", "1")
        code, out, err = srv.interrupt()
    assert code == 130
    assert out.splitlines()[-1] == "done: 1 client served, 100 bytes received"
    assert err == "overlapio: interrupted\n"


def test_echo_checks_detect_a_wrong_echo():
    # A server that answers with other bytes: the client must notice and fail.
    lsock = socket.create_server(("127.0.0.1", 0))
    port = lsock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "overlapio", "client", "--port", str(port), "--count", "1",
                             "--echo"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    conn, _ = lsock.accept()
    data = b""
    while len(data) < 100:
        data += conn.recv(100)
    conn.sendall(b"X" * 100)
    out, err = proc.communicate(timeout=20)
    conn.close()
    lsock.close()
    assert proc.returncode == 1
    assert "the echo differs from what was sent" in err
    _no_traceback(err)


@pytest.mark.parametrize("args, code, message", [
    (["client", "--port", "70000"], 2, "invalid port 70000"),
    (["client", "--port", "http"], 2, "invalid port 'http'"),
    (["server", "--size", "0"], 2, "must be at least 1"),
    (["client", "--interval", "soon"], 2, "invalid number of seconds"),
    (["server", "--backend", "nope"], 2, "unknown backend 'nope'"),
    (["demo", "--backend", "winsock"], 2, "backend 'winsock' is unavailable here"),
])
def test_bad_input_is_one_line_error(args, code, message):
    r = run(*args)
    assert r.returncode == code
    assert message in r.stderr
    _no_traceback(r.stderr)


def test_port_in_use():
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    try:
        r = run("server", "--port", str(port))
    finally:
        blocker.close()
    assert r.returncode == 1
    assert r.stderr.strip() == f"overlapio: error: cannot listen on 127.0.0.1:{port}: address already in use"


def test_connection_refused():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    r = run("client", "--port", str(port), "--count", "1")
    assert r.returncode == 1
    assert f"127.0.0.1:{port}: connection refused" in r.stderr
    _no_traceback(r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1


def test_host_not_found():
    r = run("client", "--host", "no-such-host.invalid", "--count", "1")
    assert r.returncode == 1
    assert "no-such-host.invalid:7777: host not found" in r.stderr
    _no_traceback(r.stderr)


def test_ctrl_c_stops_client_promptly():
    with Server() as srv:
        proc = subprocess.Popen([sys.executable, "-m", "overlapio", "client", "--port", str(srv.port)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == f"connected to 127.0.0.1:{srv.port}"
        assert proc.stdout.readline().strip() == "Send Data ! Len = 100"  # now sleeping until the next send
        start = time.monotonic()
        proc.send_signal(2)
        out, err = proc.communicate(timeout=10)
        assert time.monotonic() - start < 3
        assert proc.returncode == 130
        assert err.strip() == "overlapio: interrupted"
        # The client closed its socket: the server saw it leave.
        code, sout, _ = srv.interrupt()
        assert "Client Disconnected !" in sout


def test_backends_lists_default_and_reasons():
    r = run("backends")
    assert r.returncode == 0
    lines = dict(line.split(None, 1) for line in r.stdout.splitlines())
    assert lines["posix"].startswith("available") and "(default)" in lines["posix"]
    assert lines["winsock"].startswith("unavailable: ") and "Windows" in lines["winsock"]


def test_backends_honours_env_default():
    env = dict(os.environ, OVERLAPIO_BACKEND="winsock")
    r = run("backends", env=env)
    assert "(default)" in dict(line.split(None, 1) for line in r.stdout.splitlines())["winsock"]


@pytest.mark.parametrize("cmd", ["server", "client", "demo", "backends"])
def test_help_documents_every_option(cmd):
    from overlapio.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[cmd]
    r = run(cmd, "--help")
    assert r.returncode == 0
    for action in sub._actions:
        for flag in action.option_strings:
            assert flag in r.stdout
        assert action.help, f"{cmd} {action.option_strings} has no help"


def test_no_command_prints_help():
    r = run()
    assert r.returncode == 2
    assert "overlapio demo" in r.stdout


def test_python_m_and_console_script_agree():
    import shutil

    exe = shutil.which("overlapio")
    if exe is None:
        pytest.skip("the console script is not on PATH (package not installed)")
    r = subprocess.run([exe, "backends"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout == run("backends").stdout


def test_server_out_of_descriptors_retries_without_spinning():
    import resource

    def few_fds():
        resource.setrlimit(resource.RLIMIT_NOFILE, (16, 16))

    with Server(preexec_fn=few_fds) as srv:
        clients = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(20)]
        time.sleep(1.0)
        code, out, err = srv.interrupt()
        for c in clients:
            c.close()
    assert code == 130
    failures = out.count("accept failed")
    # It retries every 0.1 s: about 10 in that second, not thousands.
    assert 1 <= failures <= 20, failures
    assert "Client Connected !" in out


def test_output_into_a_closed_pipe_is_not_a_traceback():
    with Server() as srv:
        proc = subprocess.Popen([sys.executable, "-m", "overlapio", "client", "--port", str(srv.port),
                                 "--interval", "0.01", "--count", "200"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        proc.stdout.readline()
        proc.stdout.close()  # like `| head -1`
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=20) == 141
    _no_traceback(err)


def test_bench_subcommand_reaches_the_benchmark_suite():
    r = run("bench", "--list")
    assert r.returncode == 0, r.stderr
    assert "server contestants:" in r.stdout and "overlapio-posix" in r.stdout
    r = run("bench", "--only", "no-such-workload")
    assert r.returncode != 0
    _no_traceback(r.stderr)


def _decoy_bench(where) -> None:
    """A `bench` package in ``where`` that says so if it is ever imported."""
    pkg = where / "bench"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("print('DECOY BENCH IMPORTED')\n")
    (pkg / "cli.py").write_text("def main(argv=None, **kw):\n    print('DECOY BENCH RAN')\n    return 0\n")


def test_bench_runs_the_projects_suite_not_one_in_the_current_directory(tmp_path):
    _decoy_bench(tmp_path)
    # The checkout on PYTHONPATH too (as the bench harness runs things): still behind
    # the current directory, which `python -m` puts first on sys.path.
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root)
    r = run("bench", "--list", cwd=str(tmp_path), env=env)
    assert "DECOY" not in r.stdout + r.stderr
    assert r.returncode == 0, r.stderr
    assert "server contestants:" in r.stdout


def test_bench_help_names_the_overlapio_command():
    r = run("bench", "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: overlapio bench")
    assert "--quick" in r.stdout


def test_version():
    from importlib.metadata import version

    import overlapio

    r = run("--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"overlapio {overlapio.__version__}\n"
    assert overlapio.__version__ == version("overlapio")  # the package and its metadata agree


@pytest.mark.parametrize("cmd", ["server", "client"])
@pytest.mark.parametrize("host", [os.fsdecode(b"\xff"), "a" * 70, "a..b"], ids=["byte-ff", "70-char-label", "empty-label"])
def test_host_that_cannot_be_a_host_name_is_one_line_error(cmd, host):
    r = run(cmd, "--host", host, "--count" if cmd == "client" else "--max-clients", "1")
    _no_traceback(r.stderr)
    assert r.returncode == 2, r.stderr
    assert r.stderr.splitlines()[-1].startswith(f"overlapio {cmd}: error: argument --host: invalid host ")


@pytest.mark.parametrize("cmd", ["server", "client"])
def test_empty_host_is_refused(cmd):
    # An unset shell variable must not quietly mean every interface.
    r = run(cmd, "--host", "", "--port", "0" if cmd == "server" else "7777")
    assert r.returncode == 2, r.stdout
    _no_traceback(r.stderr)
    if cmd == "server":
        assert "give 0.0.0.0 or :: to listen on every interface" in r.stderr
    else:
        assert "empty host" in r.stderr


@pytest.mark.parametrize("cmd", ["server", "client", "demo"])
def test_backend_help_states_the_real_default_rule(cmd):
    r = run(cmd, "--help")
    text = " ".join(r.stdout.split())
    assert "$OVERLAPIO_BACKEND if set, else the platform's" in text


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("args", [["demo", "--interval", "0"], ["backends"], ["server", "--port", "0"]])
def test_output_to_a_full_device_is_one_line_error(args):
    with open("/dev/full", "w") as full:
        r = run(*args, stdout=full)
    assert r.returncode == 1
    assert r.stderr == "overlapio: error: cannot write to standard output: no space left on device\n"


_INTERRUPT_WHILE_IMPORTING = """
import sys
from importlib.metadata import entry_points

(script,) = entry_points(group="console_scripts", name="overlapio")


class CtrlC:
    # Ctrl-C pressed while the module named on the command line is being imported.
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == module:
            sys.meta_path.remove(CtrlC)
            raise KeyboardInterrupt
        return None


sys.meta_path.insert(0, CtrlC)
module, how, sys.argv[1:] = sys.argv[1], sys.argv[2], sys.argv[3:]
if how == "python -m":
    import runpy

    runpy.run_module("overlapio", run_name="__main__", alter_sys=True)
else:  # what the installed console script does
    sys.exit(script.load()())
"""


@pytest.mark.parametrize("how", ["python -m", "console script"])
@pytest.mark.parametrize("module", ["overlapio.core", "overlapio.core.proactor", "overlapio.cli", "overlapio.demos",
                                    "argparse", "heapq"])
def test_ctrl_c_while_starting_up_is_not_a_traceback(module, how):
    r = subprocess.run([sys.executable, "-c", _INTERRUPT_WHILE_IMPORTING, module, how, "backends"],
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 130, r.stderr  # (also proves the interrupt came: "backends" exits 0)
    assert r.stderr == "overlapio: interrupted\n"
    assert r.stdout == ""


def test_client_says_where_it_connected():
    with Server() as srv:
        r = run("client", "--port", str(srv.port), "--count", "1", "--interval", "0")
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines()[0] == f"connected to 127.0.0.1:{srv.port}"
        r = run("client", "--port", str(srv.port), "--count", "1", "--interval", "0", "--clients", "2")
        assert sorted(line for line in r.stdout.splitlines() if "connected" in line) == [
            f"[0] connected to 127.0.0.1:{srv.port}", f"[1] connected to 127.0.0.1:{srv.port}"]


def test_counts_are_in_good_english():
    r = run("demo", "--count", "1", "--interval", "0")
    assert "demo ok: 1 of 1 message came back intact" in r.stdout
    with Server("--echo") as srv:
        r = run("client", "--port", str(srv.port), "--count", "1", "--echo", "--interval", "0")
        assert "done: 1 message sent, 1 echo checked" in r.stdout
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    r = run("client", "--port", str(port), "--count", "1")
    assert f"1 of 1 client failed; first: 127.0.0.1:{port}: connection refused" in r.stderr
    r = run("client", "--port", str(port), "--count", "1", "--clients", "2")
    assert f"2 of 2 clients failed; first: 127.0.0.1:{port}: connection refused" in r.stderr


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")
def test_ipv6_addresses_are_shown_in_brackets():
    with Server("--host", "::1") as srv:
        assert srv.listen_line.startswith(f"overlapio server on [::1]:{srv.port} ")
        r = run("client", "--host", "::1", "--port", str(srv.port), "--count", "1", "--interval", "0")
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines()[0] == f"connected to [::1]:{srv.port}"
    blocker = socket.socket(socket.AF_INET6)
    blocker.bind(("::1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    try:
        r = run("server", "--host", "::1", "--port", str(port))
        assert r.stderr.strip() == f"overlapio: error: cannot listen on [::1]:{port}: address already in use"
    finally:
        blocker.close()
    r = run("client", "--host", "::1", "--port", str(port), "--count", "1")  # nothing listens now
    assert f"first: [::1]:{port}: connection refused" in r.stderr


def test_echo_client_against_a_server_that_does_not_echo_times_out_with_a_hint():
    with Server() as srv:  # no --echo
        start = time.monotonic()
        r = run("client", "--port", str(srv.port), "--count", "3", "--echo", "--echo-timeout", "0.5")
        assert time.monotonic() - start < 10
        assert r.returncode == 1
        assert r.stderr == (f"overlapio: error: 1 of 1 client failed; first: 127.0.0.1:{srv.port}: "
                            "no echo for 0.5 s: is the server running with --echo?\n")
        # By default too: it does not wait forever.
        r = run("client", "--port", str(srv.port), "--count", "1", "--echo", timeout=20)
        assert r.returncode == 1
        assert "no echo for 5 s: is the server running with --echo?" in r.stderr


def test_echo_timeout_is_per_silence_not_per_message():
    # An echo that trickles back, a piece every 0.1 s over a second, never trips a
    # 0.4 s timeout: it measures silence, not the whole message.
    import threading

    lsock = socket.create_server(("127.0.0.1", 0))
    port = lsock.getsockname()[1]

    def trickle():
        conn, _ = lsock.accept()
        with conn:
            data = b""
            while len(data) < 100:
                data += conn.recv(100)
            for i in range(0, 100, 10):
                time.sleep(0.1)
                conn.sendall(data[i:i + 10])
            conn.recv(1)  # until the client closes

    server = threading.Thread(target=trickle, daemon=True)
    server.start()
    try:
        r = run("client", "--port", str(port), "--count", "1", "--echo", "--echo-timeout", "0.4")
    finally:
        server.join(10)
        lsock.close()
    assert r.returncode == 0, r.stderr
    assert "1 echo checked" in r.stdout


def _has_trace() -> bool:
    import inspect

    from overlapio import Proactor

    return "trace" in inspect.signature(Proactor).parameters


@pytest.mark.skipif(not _has_trace(), reason="needs Proactor(trace=)")
def test_trace_prints_every_op_event_on_stderr():
    r = run("demo", "--count", "1", "--interval", "0", "--trace")
    assert r.returncode == 0, r.stderr
    assert "demo ok: 1 of 1 message came back intact" in r.stdout
    assert "overlapio[" not in r.stdout  # the trace goes to stderr only
    events = [line.split()[1] for line in r.stderr.splitlines() if line.startswith("overlapio[")]
    assert {"submitted", "completed", "surfaced"} <= set(events)
    assert any(" accept " in line for line in r.stderr.splitlines())
    with Server("--trace", "--max-clients", "1") as srv:
        r = run("client", "--port", str(srv.port), "--count", "1", "--trace")
        assert r.returncode == 0, r.stderr
        assert any(line.startswith("overlapio[") and " connect " in line for line in r.stderr.splitlines())
        assert srv.proc.wait(timeout=10) == 0
        _, err = srv.proc.communicate()
    assert any(line.startswith(b"overlapio[") and b" accept " in line for line in err.splitlines())
