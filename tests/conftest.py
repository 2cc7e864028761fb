"""Options shared by the whole test tree (kept small on purpose).

``--backend NAME``            run the conformance suite against that backend only
                              (a registry name, built-in or from the
                              ``overlapio.backends`` entry-point group, or a key of
                              ``tests/conformance/backends.py: EXTRA_BACKENDS``).
                              ``OVERLAPIO_BACKEND=NAME`` does the same when the
                              option is not given.
``--backend-class MOD:ATTR``  run it against a class (or a zero-argument callable
                              returning one), e.g. a backend wired to a scripted lib.
"""


def pytest_addoption(parser):
    group = parser.getgroup("overlapio")
    group.addoption("--backend", action="store", default=None, metavar="NAME",
                    help="run the conformance suite only against this backend (default: every available one; "
                         "env OVERLAPIO_BACKEND)")
    group.addoption("--backend-class", action="store", default=None, metavar="MODULE:ATTR",
                    help="run the conformance suite against this Backend subclass (or a zero-argument "
                         "callable returning one), importable from the current directory")


def pytest_configure(config):
    # A test run started from a non-interactive shell's background job inherits
    # SIGINT as *ignored*; Python then installs no KeyboardInterrupt handler, and the
    # servers these tests start (and signal) inherit the same. The Ctrl-C tests need
    # Ctrl-C to mean what it means at a terminal.
    import signal

    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
