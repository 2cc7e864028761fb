"""Run the ``overlapio`` command as a real subprocess, for the CLI tests."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from typing import Optional

_LISTEN_LINE = re.compile(rb"overlapio server on (?:\[[^]]*\]|[^:\s]+):(\d+)")


def run(*args: str, timeout: float = 30, env: Optional[dict] = None, cwd: Optional[str] = None,
        **popen: object) -> subprocess.CompletedProcess:
    """``overlapio ARGS`` to completion; output as text (captured unless ``stdout``
    or ``stderr`` says where it goes)."""
    popen.setdefault("stdout", subprocess.PIPE)
    popen.setdefault("stderr", subprocess.PIPE)
    return subprocess.run([sys.executable, "-m", "overlapio", *args], text=True, timeout=timeout, env=env, cwd=cwd,
                          stdin=subprocess.DEVNULL, **popen)


class Server:
    """``overlapio server --port 0 ARGS`` in the background; ``.port`` once listening
    (and the line that said so, ``.listen_line``)."""

    def __init__(self, *args: str, preexec_fn=None) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "overlapio", "server", "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                     preexec_fn=preexec_fn)
        self.port = self._read_port()

    def _read_port(self) -> int:
        quiet = "--quiet" in self.proc.args or "-q" in self.proc.args
        stream = self.proc.stderr if quiet else self.proc.stdout
        # A server that never prints the line would block readline() for good: kill
        # it at the deadline, which ends the read.
        watchdog = threading.Timer(20, self.proc.kill)
        watchdog.start()
        try:
            for line in iter(stream.readline, b""):
                m = _LISTEN_LINE.search(line)
                if m:
                    self.listen_line = line.decode().rstrip("\n")
                    return int(m.group(1))
        finally:
            watchdog.cancel()
        raise RuntimeError(f"server exited without its listening line: {self.proc.wait()} "
                           f"{self.proc.stderr.read()!r}")

    def rss_kib(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def interrupt(self, timeout: float = 10) -> tuple[int, str, str]:
        """SIGINT (Ctrl-C), then the exit code and the rest of the output."""
        self.proc.send_signal(2)
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out.decode(), err.decode()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
