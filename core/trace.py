"""Op tracing: ``Proactor(trace=callable)`` gets one line per op event.

Events, in the order an op lives them::

    overlapio[posix] submitted #7 recv fd=5 size=65536
    overlapio[posix] completed #7 recv fd=5 ms=0.412 bytes=100
    overlapio[posix] surfaced  #7 recv fd=5 ms=0.455 via=callback bytes=100

``#7`` numbers the submissions of this Proactor (a resubmitted op gets a new
number), ``fd`` is the socket's descriptor when the op was submitted, ``ms``
the time since that submission, ``via`` how the op surfaced (``callback`` or
``wait``, which also covers ``run()`` dropping an op that has no callback).
The outcome ends the line: ``bytes=N`` for a recv or send, ``conn=<fd>`` for an
accept, ``value=...`` for a post, ``ok`` otherwise, and ``error=Class: message``
for an op that failed, was cancelled or timed out. An op with a tag shows it
(``tag=...``). ``cancel`` and ``timeout`` lines say
that a cancel was asked for (by the caller, or by the op's ``timeout=``).

A trace callable that raises is switched off with a ``RuntimeWarning`` (it is
called from inside the loop, where an exception would strand completions).
Lines for ``post()`` submissions come from the thread that posted.

Tracing costs nothing when it is off: nothing here is installed, and no code on
the per-message path asks whether it is on. When it is on, the Proactor's
submit methods are wrapped on the instance and its ready queue is a deque whose
``append`` (every completion goes through it, the backend's fast path too) and
``popleft`` (every op handed over) report.
"""
from __future__ import annotations

import functools
import itertools
import warnings
from collections import deque
from time import perf_counter
from typing import Any, Callable

from .op import Op, OpKind

__all__ = ["Tracer"]

#: the Proactor methods that submit an op
SUBMITTERS = ("accept", "connect", "recv", "send", "resubmit", "sleep", "post", "shutdown", "recvfrom", "sendto")


class _TracedQueue(deque):
    """The ready queue, reporting each op that enters (completed) and leaves
    (surfaced) it."""

    __slots__ = ("tracer",)

    def append(self, op: Op) -> None:
        super().append(op)  # first: the op is safe in the queue whatever the line does
        self.tracer.completed(op)

    def popleft(self) -> Op:
        op = super().popleft()
        self.tracer.surfaced(op)
        return op


class Tracer:
    """Formats op events as lines and hands them to ``emit``."""

    def __init__(self, emit: Callable[[str], Any], backend_name: str) -> None:
        if not callable(emit):
            raise TypeError(f"trace must be a callable taking one str, not {type(emit).__name__}")
        self.emit = emit
        self.prefix = f"overlapio[{backend_name}]"
        self.numbers = itertools.count(1)
        self.live: dict[Op, tuple[int, float, str]] = {}  # op -> (number, submitted at, fd), until it surfaces
        self.queue = _TracedQueue()
        self.queue.tracer = self

    def install(self, px: Any) -> None:
        """Wrap ``px``'s submit methods on the instance (the class stays untouched)."""
        for name in SUBMITTERS:
            setattr(px, name, self._wrap(getattr(px, name)))

    def _wrap(self, submit: Callable[..., Op]) -> Callable[..., Op]:
        @functools.wraps(submit)
        def traced(*args: Any, **kwargs: Any) -> Op:
            op = submit(*args, **kwargs)
            self._known(op)
            return op
        return traced

    def _known(self, op: Op) -> tuple[int, float, str]:
        """The op's record, made (and its ``submitted`` line written) on first sight:
        in the submit call, or earlier if it completed inside that call."""
        info = self.live.get(op)
        if info is None:
            sock = op.sock
            fd = str(sock.fileno()) if sock is not None else "-"
            new = (next(self.numbers), perf_counter(), fd)
            info = self.live.setdefault(op, new)  # (atomic: post() may race the Proactor's thread)
            if info is new:
                self._line("submitted", op, info, self._operands(op))
        return info

    def completed(self, op: Op) -> None:
        info = self._known(op)
        self._line("completed", op, info, f"ms={self._ms(info)} {self._outcome(op)}")

    def surfaced(self, op: Op) -> None:
        info = self.live.pop(op, None)
        if info is not None:  # (an op handed back by a failed wait() is reported once)
            via = "callback" if op.callback is not None else "wait"
            self._line("surfaced ", op, info, f"ms={self._ms(info)} via={via} {self._outcome(op)}")

    def cancelling(self, op: Op, why: str) -> None:
        info = self.live.get(op)
        if info is not None:
            self._line(why.ljust(9), op, info, f"ms={self._ms(info)}")

    # -- formatting ---------------------------------------------------------------
    def _line(self, event: str, op: Op, info: tuple[int, float, str], rest: str) -> None:
        number, _, fd = info
        where = f" fd={fd}" if fd != "-" else ""
        tag = f" tag={_short(op.tag)}" if op.tag is not None else ""
        line = f"{self.prefix} {event} #{number} {op.kind.name.lower()}{where}{tag}{' ' if rest else ''}{rest}"
        try:
            self.emit(line)
        except Exception as exc:
            # Called from deep inside the loop (a backend's poll, close): an exception
            # there would strand completions. Tracing stops instead, and says why.
            self.emit = _silent
            warnings.warn(f"overlapio: trace callable raised {exc!r}; tracing is off", RuntimeWarning, stacklevel=2)

    @staticmethod
    def _ms(info: tuple[int, float, str]) -> str:
        return f"{(perf_counter() - info[1]) * 1000:.3f}"

    @staticmethod
    def _operands(op: Op) -> str:
        kind = op.kind
        if kind is OpKind.RECV or kind is OpKind.SEND:
            if type(op.buf) is list:  # several buffers: the core's views of them
                return f"size={sum(view.nbytes for view in op._view)} buffers={len(op.buf)}"
            return f"size={memoryview(op.buf).nbytes}"
        if kind is OpKind.RECVFROM:
            return f"size={memoryview(op.buf).nbytes}"
        if kind is OpKind.SENDTO:
            return f"size={memoryview(op.buf).nbytes} to={op._view[1]!r}"
        return ""

    @staticmethod
    def _outcome(op: Op) -> str:
        error = op._error
        if error is not None:
            return f"error={type(error).__name__}: {error}"
        kind = op.kind
        if kind is OpKind.RECV or kind is OpKind.SEND or kind is OpKind.SENDTO:
            return f"bytes={op.nbytes}"
        if kind is OpKind.RECVFROM:
            return f"bytes={op.nbytes} from={op._value[1]!r}{' truncated' if op._value.truncated else ''}"
        if kind is OpKind.ACCEPT:
            return f"conn={op._value[0].fileno()}"
        if kind is OpKind.POST:
            return f"value={_short(op._value)}"
        return "ok"


def _silent(line: str) -> None:
    pass


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
