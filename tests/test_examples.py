"""Each program in examples/ runs as ``python examples/NAME.py`` and does what it says."""
from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TIMEOUT = 60  # seconds: generous, the machine may be busy


def run(name: str, *args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


class Background:
    """An example server running in the background; ``.port`` once it listens."""

    def __init__(self, name: str, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, str(EXAMPLES / name), "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                     text=True)
        line = self.proc.stdout.readline()
        m = re.match(r"Listening on 127\.0\.0\.1:(\d+)$", line.strip())
        if not m:
            self.proc.kill()
            raise AssertionError(f"no listening line: {line!r} {self.proc.stderr.read()!r}")
        self.port = int(m.group(1))

    def finish(self, timeout: float = TIMEOUT) -> tuple[int, str, str]:
        """Wait for the server to exit by itself: exit code and the rest of its output."""
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err

    def __enter__(self) -> "Background":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


def connect(port: int, rcvbuf: int = 0) -> socket.socket:
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(TIMEOUT)
    sock.connect(("127.0.0.1", port))
    return sock


def test_every_example_is_run_by_a_test():
    tested = set(re.findall(r'"(\w+\.py)"', Path(__file__).read_text()))
    assert {p.name for p in EXAMPLES.glob("*.py")} <= tested


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_help(name):
    res = run(name, "--help")
    assert res.returncode == 0 and res.stdout.startswith(f"usage: {name}"), res


@pytest.mark.parametrize("name", ["echo_server.py", "echo_client.py", "chat_server.py", "pull_client.py",
                                  "timeout_client.py"])
def test_bad_port(name):
    res = run(name, "--port", "70000")
    assert res.returncode == 2 and "--port must be" in res.stderr, res
    res = run(name, "--port", "seven")
    assert res.returncode == 2 and "invalid int value" in res.stderr, res


@pytest.mark.parametrize("name", ["echo_server.py", "chat_server.py"])
def test_server_says_when_its_port_is_taken(name):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        res = run(name, "--port", str(port))
    assert res.returncode == 1
    assert res.stderr == f"cannot listen on 127.0.0.1:{port}: Address already in use\n"


# -- the classic echo pair -------------------------------------------------------------
def test_echo_client_against_echo_server():
    with Background("echo_server.py", "--max-clients", "1") as server:
        client = run("echo_client.py", "--port", str(server.port), "--count", "3", "--interval", "0.01")
        code, out, err = server.finish()
    assert client.returncode == 0, client
    assert client.stdout.splitlines() == [f"Connected to 127.0.0.1:{server.port}"] + [
        "Send Data ! Len = 100", "Data Recv Len = 100"] * 3
    assert code == 0, err
    assert out.splitlines() == ["Client Connected !"] + ["Data Recv Len = 100"] * 3 + ["Client Disconnected !"]


def test_echo_server_sends_every_byte_back():
    payload = bytes(range(256)) * 400  # more than its 100-byte buffer, many times over
    with Background("echo_server.py", "--max-clients", "1") as server:
        with connect(server.port) as sock:
            sender = threading.Thread(target=sock.sendall, args=(payload,))
            sender.start()
            got = bytearray()
            while len(got) < len(payload):
                chunk = sock.recv(65536)
                assert chunk, "the server closed early"
                got += chunk
            sender.join()
        code, out, _ = server.finish()
    assert got == payload
    assert code == 0 and out.splitlines()[-1] == "Client Disconnected !"


def test_echo_client_says_when_it_cannot_connect():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused
        res = run("echo_client.py", "--port", str(port), "--count", "1")
    assert res.returncode == 1
    assert res.stderr.strip() == f"cannot connect to 127.0.0.1:{port}: [Errno 111] Connection refused"


# -- chat ------------------------------------------------------------------------------
class LineReader(threading.Thread):
    """Reads lines from a blocking socket in the background until ``done(lines)``."""

    def __init__(self, sock: socket.socket, done) -> None:
        super().__init__(daemon=True)
        self.sock, self.done, self.lines, self.eof = sock, done, [], False
        self.start()

    def run(self) -> None:
        data = b""
        while not self.done(self.lines):
            chunk = self.sock.recv(65536)
            if not chunk:
                self.eof = True
                return
            data += chunk
            *complete, data = data.split(b"\n")
            self.lines += [line.decode() for line in complete]


def _readline(sock: socket.socket) -> str:
    line = b""
    while not line.endswith(b"\n"):
        byte = sock.recv(1)
        assert byte, "end of stream"
        line += byte
    return line.decode().rstrip("\n")


def _chat_room(port: int):
    """Three clients in the room, each past its welcome and join lines; the second
    one's receive buffer as small as the OS allows."""
    a = connect(port)
    assert _readline(a) == "* welcome, client1; 0 here before you"
    b = connect(port, rcvbuf=1024)
    assert _readline(b) == "* welcome, client2; 1 here before you"
    c = connect(port)
    assert _readline(c) == "* welcome, client3; 2 here before you"
    assert [_readline(a), _readline(a), _readline(b)] == ["* client2 joined", "* client3 joined", "* client3 joined"]
    return a, b, c


# 8 MB: more than the OS buffers for a client that does not read (loopback grows a
# socket's send buffer up to 4 MB here), so the server's own queue must fill.
LINES = [f"line {i:05d} " + "x" * 1000 for i in range(8000)]


def _leave(sock: socket.socket) -> bytes:
    """Say goodbye (end of stream) and read what is left until the server closes."""
    sock.shutdown(socket.SHUT_WR)
    return b"".join(iter(lambda: sock.recv(65536), b""))


def test_chat_broadcasts_and_disconnects_a_slow_client():
    with Background("chat_server.py", "--max-clients", "3", "--max-queue", "8192") as server:
        a, b, c = _chat_room(server.port)
        with a, b, c:  # b never reads while a talks
            reader = LineReader(c, lambda lines: len(lines) >= len(LINES) + 1)
            a.sendall("".join(line + "\n" for line in LINES).encode())
            reader.join(TIMEOUT)
            assert not reader.is_alive() and not reader.eof
            said = [line for line in reader.lines if not line.startswith("* ")]
            assert said == [f"client1: {line}" for line in LINES]  # every line, in order, once
            assert [line for line in reader.lines if line.startswith("* ")] == ["* client2 left"]
            assert _readline(a) == "* client2 left"
            b_got = b"".join(iter(lambda: b.recv(65536), b""))  # what was sent to it, then end of stream
            assert 0 < len(b_got) < len("".join(LINES)) // 2
            assert _leave(a) == b""
            assert _leave(c) == b"* client1 left\n"
        code, out, err = server.finish()
    assert code == 0, err
    assert re.search(r"^client2 left \(too slow: \d+ bytes waiting\)$", out, re.M), out
    assert "client1 left (end of stream)" in out and "client3 left (end of stream)" in out, out


def test_chat_drops_lines_for_a_slow_client_and_says_how_many():
    with Background("chat_server.py", "--max-clients", "3", "--max-queue", "8192", "--slow", "drop") as server:
        a, b, c = _chat_room(server.port)
        with a, b, c:
            reader = LineReader(c, lambda lines: len(lines) >= len(LINES))
            a.sendall("".join(line + "\n" for line in LINES).encode())
            reader.join(TIMEOUT)
            assert reader.lines == [f"client1: {line}" for line in LINES]  # c keeps up: nothing dropped

            def b_accounted(lines):
                dropped = [int(m.group(1)) for m in map(re.compile(r"\* (\d+) lines dropped").match, lines) if m]
                return len([x for x in lines if x.startswith("client1: ")]) + sum(dropped) >= len(LINES)

            slow = LineReader(b, b_accounted)  # now b reads: what it missed is counted for it
            slow.join(TIMEOUT)
            assert not slow.is_alive() and not slow.eof
            got = [line for line in slow.lines if line.startswith("client1: ")]
            assert any("lines dropped" in line for line in slow.lines)
            assert got == [f"client1: {line}" for line in LINES if f"client1: {line}" in got]  # in order
            assert len(got) < len(LINES) and b_accounted(slow.lines)
            for sock in (a, b, c):
                _leave(sock)
        code, out, err = server.finish()
    assert code == 0, err
    assert "too slow" not in out and out.count("left (end of stream)") == 3, out


@pytest.mark.parametrize("name, last_lines", [("chat_server.py", ["stopping (1 connected)"]),
                                              ("echo_server.py", ["Stopped.", "Client Disconnected !"])])
def test_ctrl_c_stops_a_server_cleanly(name, last_lines):
    """Ctrl-C with a client connected: the shutdown's cancelled ops are not reported
    as errors, and the client sees its connection closed."""
    import signal

    with Background(name) as server:
        with connect(server.port) as sock:
            sock.sendall(b"hi\n")
            time.sleep(0.3)  # let the server take it
            server.proc.send_signal(signal.SIGINT)
            code, out, err = server.finish()
            sock.settimeout(10)
            while sock.recv(65536):  # what it was sent, then the end of stream
                pass
    assert code == 0 and err == "", err
    assert out.splitlines()[-len(last_lines):] == last_lines
    assert "rror" not in out and "ancel" not in out, out


# -- timeouts (every op method's timeout=) ----------------------------------------------
def test_timeout_client_gets_its_replies():
    with Background("echo_server.py", "--max-clients", "1") as server:
        res = run("timeout_client.py", "--port", str(server.port), "--timeout", "10", "hello", "world")
        assert res.returncode == 0, res
        assert res.stdout.splitlines() == ["reply: hello", "reply: world"]
        code, _, err = server.finish()
    assert code == 0, err


def test_timeout_client_gives_up_on_a_silent_server():
    with socket.create_server(("127.0.0.1", 0)) as silent:  # connects, never answers
        start = time.monotonic()
        res = run("timeout_client.py", "--port", str(silent.getsockname()[1]), "--timeout", "0.3", "ping")
        took = time.monotonic() - start
    assert res.returncode == 1 and res.stdout == "", res
    assert res.stderr.strip() == "waiting for the reply to 'ping': timed out after 0.3 s"
    assert 0.3 <= took < 20


def test_timeout_client_timeout_is_per_op_not_per_run():
    """Replies each 0.2 s after their line: six take 1.2 s in all, each well within
    the 0.6 s timeout; a timer left over from an earlier op must not cut one short."""
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def slow_echo() -> None:
            conn, _ = listener.accept()  # (a daemon thread: left blocked here if no client comes)
            with conn, conn.makefile("rwb", buffering=0) as f:
                for line in iter(f.readline, b""):
                    time.sleep(0.2)
                    f.write(line)

        server = threading.Thread(target=slow_echo, daemon=True)
        server.start()
        start = time.monotonic()
        res = run("timeout_client.py", "--port", str(listener.getsockname()[1]), "--timeout", "0.6",
                  *(f"line{i}" for i in range(6)))
        took = time.monotonic() - start
        assert res.returncode == 0, res
        assert res.stdout.splitlines() == [f"reply: line{i}" for i in range(6)]
        assert took >= 1.2
        server.join(TIMEOUT)  # the client closed: the thread ends


# -- pull mode -------------------------------------------------------------------------
def test_pull_client_against_echo_server():
    with Background("echo_server.py", "--max-clients", "1") as server:
        res = run("pull_client.py", "--port", str(server.port), "--count", "4")
        assert res.returncode == 0, res
        code, out, err = server.finish()
    assert res.stdout.splitlines() == [f"Connected to 127.0.0.1:{server.port}"] + ["Send Data ! Len = 100"] * 4 \
        + ["Data Recv Len = 100"] * 4 + ["All 4 echoed"]
    assert code == 0 and out.count("Data Recv Len = 100") == 4, err


def test_pull_client_gives_up_when_nothing_completes():
    with socket.create_server(("127.0.0.1", 0)) as silent:
        res = run("pull_client.py", "--port", str(silent.getsockname()[1]), "--wait", "0.3")
    assert res.returncode == 1
    assert res.stderr.strip() == "nothing completed for 0.3 s: is the server an echo server?"


# -- HTTP ------------------------------------------------------------------------------
@pytest.fixture
def web(tmp_path):
    """A local http.server on 127.0.0.1 serving tmp_path: its base URL (by name)."""
    import functools
    import http.server

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.func.log_message = lambda *a: None  # no request log on stderr
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_get_fetches_a_file_whole(web, tmp_path):
    body = bytes(range(256)) * 1200 + b"\nlast line\n"  # several receive buffers, lines in the body
    (tmp_path / "data.bin").write_bytes(body)
    res = subprocess.run([sys.executable, str(EXAMPLES / "http_get.py"), f"{web}/data.bin"],
                         capture_output=True, timeout=TIMEOUT)
    assert res.returncode == 0, res.stderr
    assert res.stdout == body
    assert res.stderr.decode().strip() == "HTTP/1.0 200 OK"


def test_http_get_reports_a_missing_page_and_a_bad_url(web):
    res = run("http_get.py", f"{web}/nothing-here")
    assert res.returncode == 1 and res.stderr.strip() == "HTTP/1.0 404 File not found", res
    res = run("http_get.py", "ftp://localhost/")
    assert res.returncode == 2 and "not an http:// URL: 'ftp://localhost/'" in res.stderr
    res = run("http_get.py", "http://localhost:99999/")
    assert res.returncode == 2 and "Port out of range" in res.stderr


def test_http_get_says_what_failed(web):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, not listening: refused
        start = time.monotonic()
        res = run("http_get.py", f"http://127.0.0.1:{s.getsockname()[1]}/")
    assert res.returncode == 1
    assert res.stderr.splitlines()[-1].startswith("cannot connect to 127.0.0.1 port"), res
    assert time.monotonic() - start < 8  # at once, not at the 10 s deadline
    res = run("http_get.py", "http://no-such-host.invalid/")
    assert res.returncode == 1 and res.stderr.startswith("cannot resolve no-such-host.invalid:"), res
    with socket.create_server(("127.0.0.1", 0)) as silent:
        res = run("http_get.py", "--timeout", "0.3", f"http://127.0.0.1:{silent.getsockname()[1]}/")
    assert res.returncode == 1 and res.stderr.strip() == "no complete reply within 0.3 s", res


# -- the code in the docs --------------------------------------------------------------
DOCS = EXAMPLES.parent


def _code_block(doc: str, marker: str) -> str:
    """The python block of ``doc`` that contains ``marker``."""
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / doc).read_text(), re.S)
    found = [b for b in blocks if marker in b]
    assert len(found) == 1, f"{doc}: {len(found)} blocks with {marker!r}"
    return found[0]


def _run_code(code: str, port: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code.replace("7777", str(port))], capture_output=True,
                          text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)


def test_readme_pull_mode_snippet_runs_as_written():
    code = _code_block("README.md", "px.wait(")
    with Background("echo_server.py", "--max-clients", "1") as server:
        res = _run_code(code, server.port)
        assert res.returncode == 0, res
        code_, out, err = server.finish()
    assert res.stdout == "echo: b'Hello World'\n"
    assert code_ == 0 and "Data Recv Len = 100" in out, err


def test_concepts_timeout_client_from_scratch():
    """The timeout client written out in docs/concepts.md (needs timeout=)."""
    code = _code_block("docs/concepts.md", "def on_sent(sock, op):")
    with Background("echo_server.py", "--max-clients", "1") as server:
        res = _run_code(code, server.port)
        assert res.returncode == 0, res
        assert res.stdout == "reply: b'hello\\n'\n"
        server.finish()
    with socket.create_server(("127.0.0.1", 0)) as silent:
        res = _run_code(code.replace("2.0", "0.3"), silent.getsockname()[1])
    assert res.returncode == 1 and res.stderr == "no reply within 2 s\n", res
