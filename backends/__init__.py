"""overlapio's built-in backends, one module (or package) each.

- ``posix_selectors`` (name ``posix``): completions emulated on readiness, over
  the stdlib ``select.epoll`` on Linux, else its ``selectors`` module (kqueue, poll, ...).
- ``winsock`` (name ``winsock``): overlapped Winsock with event objects,
  through cffi in ABI mode (a package: its ``__init__`` lists its modules).
"""
