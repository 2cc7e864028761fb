"""The progress line the harness shows on stderr while it runs.

On a terminal it is one line rewritten in place with \\r; otherwise (a pipe, CI
log) each update is its own plain line so logs stay readable.
"""
from __future__ import annotations

import shutil
import sys
import time


def _fmt_secs(s: float) -> str:
    s = max(0, int(s))
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


class Progress:
    def __init__(self, total: int, estimate_s: float = 0.0, stream=None, quiet: bool = False):
        self.total = total
        self.estimate_s = estimate_s
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.t0 = time.monotonic()
        self.done_est = 0.0  # estimated seconds of the tasks finished so far
        self._width = 0

    def _line(self, text: str) -> None:
        if self.quiet:
            return
        if self.tty:
            cols = shutil.get_terminal_size((100, 20)).columns - 1
            text = text[:cols]
            pad = max(0, self._width - len(text))
            self.stream.write("\r" + text + " " * pad)
            self._width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def eta(self) -> float:
        elapsed = time.monotonic() - self.t0
        if self.done_est <= 0:
            return self.estimate_s
        # scale the remaining estimate by how the estimate fared so far
        return max(0.0, (self.estimate_s - self.done_est) * elapsed / self.done_est)

    def update(self, index: int, text: str) -> None:
        elapsed = time.monotonic() - self.t0
        self._line(f"[{index}/{self.total}] {_fmt_secs(elapsed)} elapsed, ~{_fmt_secs(self.eta())} left | {text}")

    def advance(self, est_s: float) -> None:
        self.done_est += est_s

    def note(self, text: str) -> None:
        """A message that must stay visible (a skip, an error)."""
        if self.quiet:
            return
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self._width = 0
        self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.tty and self._width and not self.quiet:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0
