"""overlapio's built-in backends, one module each.

- ``posix_selectors`` (name ``posix``): completions emulated over the stdlib
  ``selectors`` module (epoll, kqueue, ...).
- ``winsock_events`` (name ``winsock``): overlapped Winsock with event objects,
  through cffi in ABI mode.
"""
