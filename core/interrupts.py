"""Ctrl-C inside ``wait()``/``run()``: deferred to the loop's next safe point.

Python runs a signal handler on the main thread between two bytecodes, wherever
that thread is. With the default SIGINT handler a ``KeyboardInterrupt`` can thus
come out of any line of the loop: after a backend's ``recv_into`` but before its
op is completed (the bytes are in the buffer, the op still queued: the next read
overwrites them), or after an op left the ready queue but before it was handed
over (the op is gone). So the first ``wait()``/``run()`` on the main thread
replaces Python's default SIGINT handler (and only that one) by
:func:`_on_sigint`, which looks at where the signal landed, walking up the
interrupted stack:

- a frame of the core (this package) comes first: *defer*. The Proactor whose
  ``wait()``/``run()`` is on the stack is marked and, if it is in its backend's
  ``poll()``, woken; that loop raises the ``KeyboardInterrupt`` at its next safe
  point (``Proactor._interrupt_point``). Backend frames, the standard library,
  cffi and a third-party backend are passed over on the way up: the core called
  them, so they are part of the same step;
- a callback comes first (a frame called by the hand-over in
  ``Proactor._dispatch``, and what it calls): raise at once, as Python's default
  handler does: a callback is the caller's code;
- no ``wait()``/``run()`` on the stack (an op submitted from the main program,
  say): raise at once, as before.

Nothing of this runs per message: the handler works only when a signal comes,
and the loop tests one flag per step. The last Proactor to close puts the
default handler back.
"""
from __future__ import annotations

import os
import signal
import threading
import weakref
from types import FrameType
from typing import Any, Optional

__all__ = ["guard", "register"]

_CORE = os.path.dirname(os.path.abspath(__file__)) + os.sep
_LOOPS: frozenset = frozenset()  # the code objects of Proactor.wait and Proactor.run
_HANDOVERS: frozenset = frozenset()  # the code objects that call callbacks
_users = 0  # Proactors that set the guard up and are not closed yet
_users_lock = threading.RLock()  # (never taken by the handler; reentrant: a collection may release a user)


def register(loops: "tuple[Any, ...]", handovers: "tuple[Any, ...]") -> None:
    """Name the loop functions and the functions that call callbacks (done once,
    by core/proactor.py)."""
    global _LOOPS, _HANDOVERS
    _LOOPS = frozenset(f.__code__ for f in loops)
    _HANDOVERS = frozenset(f.__code__ for f in handovers)


def _on_sigint(signum: int, frame: Optional[FrameType]) -> None:
    f = frame
    while f is not None:
        if f.f_code.co_filename.startswith(_CORE):
            break  # the core's, or what it called: protected
        back = f.f_back
        if back is not None and back.f_code in _HANDOVERS:
            raise KeyboardInterrupt  # a callback: the caller's code
        f = back
    while f is not None:
        if f.f_code in _LOOPS:
            px = f.f_locals["self"]
            px._ki = True
            if px._polling:
                # Its poll may block again (an interrupted epoll_wait is retried): end it.
                # Not while it is elsewhere: wakeup() may take a lock this thread holds,
                # and the loop tests the flag before it polls again.
                px._backend.wakeup()
            return
        f = f.f_back
    raise KeyboardInterrupt  # no loop on the stack to come back to a safe point


def guard(px: Any) -> Any:
    """Install the handler if SIGINT has Python's default one and this is the main
    thread. If ``px`` is then one of its users: the call that ends that (done at
    the latest when ``px`` is collected); else False."""
    global _users
    if threading.current_thread() is not threading.main_thread():
        return False  # signals are handled on the main thread only
    with _users_lock:
        current = signal.getsignal(signal.SIGINT)
        if current is signal.default_int_handler:
            signal.signal(signal.SIGINT, _on_sigint)
        elif current is not _on_sigint:
            return False  # someone else's handler: theirs to keep
        _users += 1
    release = weakref.finalize(px, _unguard)
    release.atexit = False
    return release


def _unguard() -> None:
    """A user of the handler is gone: the last one puts Python's default back (if
    the handler is still ours; from another thread it stays, and with no loop on
    the stack it raises at once, as the default does)."""
    global _users
    with _users_lock:
        _users -= 1
        if _users or signal.getsignal(signal.SIGINT) is not _on_sigint:
            return
        try:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        except ValueError:  # not the main thread
            pass
