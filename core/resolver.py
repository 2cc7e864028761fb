"""Name resolution off the Proactor's thread: a few daemon threads run
``socket.getaddrinfo`` and hand each answer back with ``Proactor.post``, so a
lookup never blocks the loop (``Proactor.resolve``)."""
from __future__ import annotations

import queue
import socket
import threading
from typing import Any, Callable

__all__ = ["Resolver"]

#: lookups run at once, at most (each takes a thread while getaddrinfo blocks)
WORKERS = 4


class Resolver:
    """A lazily started pool of lookup threads, one per Proactor.

    ``submit(args, deliver)`` runs ``getaddrinfo(*args)`` on a worker and calls
    ``deliver(value, error)`` there (``deliver`` posts it to the Proactor). A
    lookup cannot be interrupted: ``close()`` lets running ones finish (their
    answers are dropped) and the threads end after them; queued ones never run.
    """

    def __init__(self) -> None:
        self._jobs: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0  # workers waiting for a job (guarded by _lock)
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, args: tuple, deliver: Callable[[Any, Any], None]) -> list:
        """Queue a lookup; returns its job record (``cancel`` takes it)."""
        job = [args, deliver, False]  # [getaddrinfo arguments, deliver, cancelled]
        with self._lock:
            if self._idle == 0 and len(self._threads) < WORKERS:
                t = threading.Thread(target=self._work, name=f"overlapio-resolve-{len(self._threads) + 1}",
                                     daemon=True)
                self._threads.append(t)
                t.start()
            else:
                self._idle -= 1 if self._idle else 0
            self._jobs.put(job)
        return job

    @staticmethod
    def cancel(job: list) -> None:
        job[2] = True  # not started yet: it never runs; running: its answer is dropped

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for _ in self._threads:
                self._jobs.put(None)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            args, deliver, cancelled = job
            if not cancelled:
                try:
                    value, error = socket.getaddrinfo(*args), None
                except UnicodeError as exc:  # a name IDNA cannot encode: no lookup can find it
                    value, error = None, socket.gaierror(socket.EAI_NONAME, f"host name {args[0]!r} cannot be "
                                                                            f"looked up: {exc}")
                except OSError as exc:
                    value, error = None, exc
                if not job[2]:
                    deliver(value, error)
            with self._lock:
                if self._closed:
                    return
                self._idle += 1
