"""A signal handler that posts, landing at every line of ``post()``, ``close()`` and
the collection of posts (run by test_signals.py in a child process, so that a
deadlock fails the test instead of hanging the suite).

    python _signal_post.py BACKEND            a registry name
    python _signal_post.py --class DIR MODULE QUALNAME

A line tracer raises SIGUSR1 when the main thread reaches the chosen line; the
Python-level handler runs there, on that thread, before the line completes, and
posts. Each scenario then checks that every post either raised
``ProactorClosedError`` or had its callback run exactly once, and that the
Proactor still closes. Prints one summary line; exit status 0 when all held.
"""
from __future__ import annotations

import dis
import importlib
import signal
import sys
from collections import Counter


def _backend(argv: list) -> object:
    if argv[0] != "--class":
        return argv[0]
    where, module, qualname = argv[1:4]
    sys.path.insert(0, where)
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _lines(func) -> list:
    code = func.__code__
    return sorted({line for _, line in dis.findlinestarts(code) if line is not None and line > code.co_firstlineno})


def main(argv: list) -> int:
    from overlapio import Proactor, ProactorClosedError

    backend = _backend(argv)
    seen: Counter = Counter()
    state = {"armed": False, "handler": []}

    def callback(op):
        seen[op] += 1

    def handler(signum, frame):
        try:
            state["handler"].append(state["px"].post("from the handler", callback))
        except ProactorClosedError:
            state["handler"].append("refused")

    signal.signal(signal.SIGUSR1, handler)

    def inject(code, line, action) -> bool:
        """Run ``action`` with the signal raised when the main thread first reaches
        ``line`` of ``code``; True if it got there."""
        state["armed"] = True

        def local(frame, event, arg):
            if event == "line" and frame.f_lineno == line and state["armed"]:
                state["armed"] = False
                signal.raise_signal(signal.SIGUSR1)
            return local

        def outer(frame, event, arg):
            return local if frame.f_code is code and state["armed"] else None

        sys.settrace(outer)
        try:
            action()
        finally:
            sys.settrace(None)
        return not state["armed"]

    def check(px, ops, where) -> None:
        for op in ops:
            if op != "refused" and seen[op] != 1:
                raise AssertionError(f"{where}: a post that did not raise surfaced {seen[op]} times")
        try:
            px.post("after close")
        except ProactorClosedError:
            pass
        else:
            raise AssertionError(f"{where}: post() after close() did not raise")

    hits = 0
    scenarios = [
        ("post", Proactor.post, lambda px: [px.post("main", callback)], lambda px: [px.wait(0) for _ in range(3)]),
        ("close", Proactor.close, lambda px: [px.post(i, callback) for i in range(3)], None),
        ("collecting posts", Proactor._collect_posts, lambda px: [px.post(i, callback) for i in range(3)],
         lambda px: [px.wait(0) for _ in range(3)]),
    ]
    for name, func, setup, drain in scenarios:
        for line in _lines(func):
            px = state["px"] = Proactor(backend=backend)
            state["handler"] = []
            ops = setup(px) if name != "post" else []
            if name == "post":
                hit = inject(func.__code__, line, lambda: ops.extend(setup(px)))
            elif name == "close":
                hit = inject(func.__code__, line, px.close)
            else:
                hit = inject(func.__code__, line, lambda: drain(px))
            if name != "close" and drain is not None:
                drain(px)
            px.close()
            hits += hit
            check(px, ops + state["handler"], f"signal at {func.__qualname__} line {line}")
    print(f"ok: {hits} signals landed inside post(), close() and the collection of posts")
    return 0 if hits else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
