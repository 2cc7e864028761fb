"""The ``overlapio`` command (also ``python -m overlapio``).

Subcommands: ``server`` and ``client`` (the classic overlapped-event example
programs), ``udp-server`` and ``udp-client`` (a UDP game loop, overlapio.udp_demo),
``demo`` (both on loopback, the first command to run), ``backends``
(what this machine offers) and ``bench`` (the benchmark suite, from a source
checkout). Bad input ends with a one-line error and a non-zero exit code; Ctrl-C
ends with exit code 130 after closing every socket.
"""
from __future__ import annotations

import argparse
import errno
import socket
import sys
from typing import Callable, Optional, Sequence

from . import __version__
from .core import BackendUnavailable, Proactor, UnknownBackendError, available_backends, default_backend
from . import udp_demo
from .demos import ECHO_TIMEOUT, EchoServer, HelloClient, format_address

DEFAULT_PORT = 7777
PROG = "overlapio"


class CliError(Exception):
    """A user-facing error: printed as one line, exit code ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class OutputError(Exception):
    """Writing the command's own output failed (a closed pipe, a full disk,
    /dev/full). Unlike a socket's OSError, that ends the command."""

    def __init__(self, stream: str, error: OSError) -> None:
        super().__init__(error.strerror or str(error))
        self.stream = stream
        self.errno = error.errno


class _Output:
    """``sys.stdout`` or ``sys.stderr`` (looked up at each write, as print() does),
    with write errors raised as OutputError."""

    def __init__(self, name: str) -> None:
        self.name = name

    def write(self, text: str) -> int:
        return self._call("write", text) or 0

    def flush(self) -> None:
        self._call("flush")

    def _call(self, method: str, *args: str) -> Optional[int]:
        stream = getattr(sys, self.name)
        if stream is None:  # started with that descriptor closed: print() writes nowhere too
            return None
        try:
            return getattr(stream, method)(*args)
        except OSError as exc:
            raise OutputError(self.name, exc) from exc


STDOUT = _Output("stdout")
STDERR = _Output("stderr")


def _print(text: str, file: _Output = STDOUT) -> None:
    print(text, file=file, flush=True)  # type: ignore[call-overload]


# -- argument types -----------------------------------------------------------
def _port(text: str, lowest: int = 1) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: not a number") from None
    if not lowest <= value <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {value}: must be {lowest}..65535")
    return value


def _listen_port(text: str) -> int:
    return _port(text, lowest=0)


def _int_from(text: str, lowest: int, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if value < lowest:
        raise argparse.ArgumentTypeError(f"must be {expected}, not {value}")
    return value


def _positive_int(text: str) -> int:
    return _int_from(text, 1, "at least 1")


def _count(text: str) -> int:
    return _int_from(text, 0, "0 (no limit) or more")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of seconds {text!r}") from None
    if not 0 <= value < 1e6:
        raise argparse.ArgumentTypeError(f"seconds must be between 0 and 1e6, not {text}")
    return value


def _size(text: str) -> int:
    value = _positive_int(text)
    if value > 64 * 1024 * 1024:
        raise argparse.ArgumentTypeError(f"message size {value} is too large (at most 64 MiB)")
    return value


def _host(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("empty host: give a host name or address")
    try:
        text.encode("idna")  # what the socket calls do with a str host; they raise if this does
    except UnicodeError:
        raise argparse.ArgumentTypeError(f"invalid host {text!r}: not a host name or address") from None
    return text


def _listen_host(text: str) -> str:
    if not text:
        # An unset variable in a script (--host "$HOST") must not expose the server.
        raise argparse.ArgumentTypeError("empty host: give 0.0.0.0 or :: to listen on every interface")
    return _host(text)


def _proactor_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", default=None, metavar="NAME",
                   help="I/O backend (default: $OVERLAPIO_BACKEND if set, else the platform's: winsock on "
                        "Windows, posix elsewhere; see 'overlapio backends')")
    p.add_argument("--trace", action="store_true",
                   help="print a line on stderr for every op event (submitted, completed, surfaced): the "
                        "completion model at work")


def _common(p: argparse.ArgumentParser, *, listening: bool) -> None:
    if listening:
        p.add_argument("--host", type=_listen_host, default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1; 0.0.0.0 or :: for every interface)")
        p.add_argument("--port", type=_listen_port, default=DEFAULT_PORT,
                       help=f"TCP port (default {DEFAULT_PORT}; 0 picks a free one, shown at start)")
    else:
        p.add_argument("--host", type=_host, default="127.0.0.1", help="server address (default 127.0.0.1)")
        p.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT})")
    p.add_argument("--size", type=_size, default=100, help="message size in bytes (default 100)")
    p.add_argument("--echo", action="store_true", help="the server sends every byte back; the client checks each echo")
    _proactor_options(p)
    p.add_argument("--quiet", "-q", action="store_true",
                   help="print only " + ("the listening address, " if listening else "") + "errors and the final "
                        "summary (on stderr)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Completion-based socket I/O for every OS: the classic overlapped-event echo "
                    "server and client, a loopback demo, and the backend list.",
        epilog="Start with 'overlapio demo'. Each command has its own --help.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("server", help="accept clients and print what they send (port 7777)",
                       description="The example's server: prints 'Client Connected !' for each client and "
                                   "'Data Recv Len = N' for each N-byte message. Serves many clients at once "
                                   "and, with --echo, sends everything back with backpressure (a client that "
                                   "does not read is not buffered without bound).")
    _common(p, listening=True)
    p.add_argument("--max-clients", type=_count, default=0, metavar="N",
                   help="exit after N clients have come and gone (default 0: serve until Ctrl-C)")

    p = sub.add_parser("client", help="send 'Hello World' messages once a second",
                       description="The example's client: connects, then sends a SIZE-byte buffer holding "
                                   "'Hello World' every INTERVAL seconds, printing 'Send Data ! Len = SIZE'.")
    _common(p, listening=False)
    p.add_argument("--interval", type=_seconds, default=1.0, help="seconds between messages (default 1)")
    p.add_argument("--count", type=_count, default=0, help="messages per client, then exit (default 0: until Ctrl-C)")
    p.add_argument("--clients", type=_positive_int, default=1, help="number of concurrent clients (default 1)")
    p.add_argument("--echo-timeout", type=_seconds, default=ECHO_TIMEOUT, metavar="SECONDS",
                   help=f"with --echo, fail after this long without a byte of an echo (default {ECHO_TIMEOUT:g}; "
                        "0 waits forever)")

    p = sub.add_parser("demo", help="run a server and a client on loopback for a few messages",
                       description="Starts an echo server on a free loopback port and a client that sends a few "
                                   "'Hello World' messages and checks each echo, printing both sides; exits 0 "
                                   "when every echo came back intact.")
    p.add_argument("--count", type=_positive_int, default=3, help="messages to exchange (default 3)")
    p.add_argument("--interval", type=_seconds, default=0.2, help="seconds between messages (default 0.2)")
    p.add_argument("--size", type=_size, default=100, help="message size in bytes (default 100)")
    _proactor_options(p)

    sub.add_parser("backends", help="list the backends and which one is the default",
                   description="Lists every backend overlapio knows (built in or registered by a package in "
                               "the 'overlapio.backends' entry-point group), whether it can run here and why "
                               "not, and the default (set OVERLAPIO_BACKEND to change it).")

    sub.add_parser("bench", help="run the benchmark suite (from a source checkout; see --help there)",
                   add_help=False)
    udp_demo.add_parsers(sub, _positive_int, _seconds, _port, _listen_port, _proactor_options)
    return parser


# -- commands -----------------------------------------------------------------
def _proactor(args: argparse.Namespace) -> Proactor:
    trace = (lambda line: print(line, file=sys.stderr)) if args.trace else None
    try:
        return Proactor(args.backend, trace=trace)
    except (UnknownBackendError, BackendUnavailable) as exc:
        raise CliError(str(exc), 2) from None


def _plural(count: int, noun: str, plural: str = "") -> str:
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def _describe(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return "host not found"
    if exc.errno == errno.EADDRINUSE:
        return "address already in use"
    return (exc.strerror or str(exc)).lower()


def cmd_server(args: argparse.Namespace) -> int:
    with _proactor(args) as px:
        try:
            listener = px.listen((args.host, args.port), backlog=1024)
        except OSError as exc:
            raise CliError(f"cannot listen on {format_address((args.host, args.port))}: {_describe(exc)}") from None
        out = None if args.quiet else STDOUT
        server = EchoServer(px, listener, size=args.size, echo=args.echo, out=out)
        where = format_address(listener.getsockname())
        end = f"exits after {_plural(args.max_clients, 'client')}" if args.max_clients else "Ctrl-C to stop"
        _info(args, f"overlapio server on {where} ({px.backend_name} backend{', echo' if args.echo else ''}); {end}")
        try:
            if args.max_clients:
                while server.served < args.max_clients or server.clients:
                    px.wait()
            else:
                px.run()
        finally:  # Ctrl-C included: that is how a server without --max-clients ends
            _info(args, f"done: {_plural(server.served, 'client')} served, "
                        f"{_plural(server.bytes_received, 'byte')} received")
    return 0


def cmd_client(args: argparse.Namespace) -> int:
    with _proactor(args) as px:
        out = None if args.quiet else STDOUT
        failures: list[BaseException] = []

        def done(client: HelloClient) -> None:
            if client.error is not None:
                failures.append(client.error)

        clients = [
            HelloClient(px, (args.host, args.port), size=args.size, interval=args.interval, count=args.count,
                        echo=args.echo, echo_timeout=args.echo_timeout, out=out,
                        prefix=f"[{i}] " if args.clients > 1 else "", done=done)
            for i in range(args.clients)
        ]
        px.run()
        if failures:
            exc = failures[0]
            what = _describe(exc) if isinstance(exc, OSError) else str(exc)
            raise CliError(f"{len(failures)} of {_plural(len(clients), 'client')} failed; "
                           f"first: {format_address((args.host, args.port))}: {what}")
        sent = _plural(sum(c.sent for c in clients), "message")
        echoed = f", {_plural(sum(c.echoed for c in clients), 'echo', 'echoes')} checked" if args.echo else ""
        _info(args, f"done: {sent} sent{echoed}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    with _proactor(args) as px:
        listener = px.listen(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        _print(f"overlapio demo: {px.backend_name} backend, echo server on 127.0.0.1:{port}")
        server = EchoServer(px, listener, size=args.size, echo=True, out=STDOUT, prefix="[server] ")
        result: list[HelloClient] = []
        client = HelloClient(px, ("127.0.0.1", port), size=args.size, interval=args.interval, count=args.count,
                             echo=True, out=STDOUT, prefix="[client] ", done=lambda c: (result.append(c), server.stop()))
        px.run()
        if client.error is not None:
            raise CliError(f"demo failed: {client.error}")
        _print(f"demo ok: {client.echoed} of {_plural(client.sent, 'message')} came back intact")
    return 0


def cmd_backends(args: argparse.Namespace) -> int:
    default = default_backend()
    rows = available_backends()
    width = max(map(len, rows)) if rows else 0
    for name, (ok, reason) in rows.items():
        mark = " (default)" if name == default else ""
        state = "available" if ok else f"unavailable: {reason}"
        _print(f"{name.ljust(width)}  {state}{mark}")
    if default not in rows:
        _print(f"warning: the default backend {default!r} (from OVERLAPIO_BACKEND) is not known", STDERR)
        return 1
    return 0


BENCH_HELP = """\
usage: overlapio bench [OPTIONS]

Runs overlapio's benchmark suite: echo servers driven by a C load generator
(ping-pong, stream, connection churn, idle memory) and in-process event-loop
costs (timers, cross-thread post, op cost), against asyncio, uvloop, trio and a
C epoll reference.

The suite lives in the bench/ folder of the source repository and is not part
of an installed package, so this copy of overlapio cannot run it. In a
checkout of the repository:

  pip install -e '.[bench]'   then 'overlapio bench --help' lists every option
  python -m bench --help      the same, run from the checkout's root
"""


def _bench_main() -> Optional[Callable[..., int]]:
    """The ``main`` of the benchmark suite beside this package in a source checkout,
    or None when there is none (an installed package does not include it)."""
    import importlib.util
    import os

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    suite = os.path.join(root, "bench")
    if not (os.path.isfile(os.path.join(suite, "cli.py")) and os.path.isfile(os.path.join(root, "core", "proactor.py"))):
        return None
    # Loaded from that path, not by name: under `python -m` the current directory
    # comes first on sys.path, and whatever `bench` package is there must not run.
    for name in [n for n in sys.modules if n == "bench" or n.startswith("bench.")]:
        if not os.path.abspath(getattr(sys.modules[name], "__file__", None) or "").startswith(suite + os.sep):
            del sys.modules[name]
    if "bench" not in sys.modules:
        spec = importlib.util.spec_from_file_location("bench", os.path.join(suite, "__init__.py"),
                                                      submodule_search_locations=[suite])
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules["bench"] = module
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    from bench.cli import main as bench_main  # type: ignore[import-not-found]

    return bench_main


def cmd_bench(argv: Sequence[str]) -> int:
    try:
        bench_main = _bench_main()
    except ImportError as exc:
        raise CliError(f"cannot load the benchmark suite: {exc}") from None
    if bench_main is None:
        if "-h" in argv or "--help" in argv:
            _print(BENCH_HELP.rstrip("\n"))
            return 0
        raise CliError("the benchmark suite is not installed with this copy of overlapio: in a source checkout, "
                       "pip install -e '.[bench]' (or run 'python -m bench' there); 'overlapio bench --help' says more")
    return int(bench_main(list(argv), prog=f"{PROG} bench") or 0)


def _info(args: argparse.Namespace, text: str) -> None:
    _print(text, STDERR if args.quiet else STDOUT)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "server": cmd_server, "client": cmd_client, "demo": cmd_demo, "backends": cmd_backends,
    "udp-server": lambda args: udp_demo.cmd_udp_server(args, _proactor),
    "udp-client": lambda args: udp_demo.cmd_udp_client(args, _proactor),
}


def _error_line(text: str) -> None:
    try:
        print(f"{PROG}: {text}", file=sys.stderr, flush=True)
    except (OSError, AttributeError):  # stderr is gone too: the exit code has to say it
        pass


def _silence(stream: str) -> None:
    """Point a failed stdout/stderr at the null device: what is still buffered for
    it would fail again when Python flushes it at exit, with an 'Exception ignored'
    message."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, getattr(sys, stream).fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no descriptor behind it (a test's capture)
        pass


def _run(argv: list[str]) -> int:
    if argv and argv[0] == "bench":
        return cmd_bench(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return COMMANDS[args.command](args)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``overlapio`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        try:
            return _run(argv)
        finally:
            STDOUT.flush()  # output still buffered (argparse's help) fails here, not at exit
    except CliError as exc:
        _error_line(f"error: {exc}")
        return exc.code
    except KeyboardInterrupt:
        # The with-blocks above have closed the proactor and every socket.
        _error_line("interrupted")
        return 130
    except OutputError as exc:
        _silence(exc.stream)
        if exc.errno == errno.EPIPE:
            # The reader went away (`overlapio server | head`): stop quietly, as a filter does.
            return 141
        where = "standard output" if exc.stream == "stdout" else "standard error"
        _error_line(f"error: cannot write to {where}: {str(exc).lower()}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
