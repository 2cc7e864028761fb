"""overlapio's built-in backends, one module (or package) each.

- ``posix_selectors`` (name ``posix``): completions emulated over the stdlib
  ``selectors`` module (epoll, kqueue, ...).
- ``winsock`` (name ``winsock``): overlapped Winsock with event objects,
  through cffi in ABI mode (a package: its ``__init__`` lists its modules).
"""
