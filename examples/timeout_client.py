"""A line client with timeouts: send each line, wait for the reply, give up if none comes.

    python examples/timeout_client.py hello world               # to an echo server on 127.0.0.1:7777
    python examples/timeout_client.py --timeout 0.5 --port 7777 ping

Every op here is submitted with ``timeout=SECONDS``. If it has not completed by then
it is cancelled and completes with ``TimeoutError``; if it completed first, its
result stands. The timer belongs to that one submission, so a reply that comes in
time is never cut short by the timer of an earlier op.
"""
import argparse
import sys

import overlapio
from overlapio.lines import LineBuffer, LineTooLong

parser = argparse.ArgumentParser(description="Send lines, print each reply line, time out if one does not come.")
parser.add_argument("lines", nargs="*", default=["hello"], help="lines to send (default: hello)")
parser.add_argument("--host", default="127.0.0.1", help="server address (default: %(default)s)")
parser.add_argument("--port", type=int, default=7777, help="server port (default: %(default)s)")
parser.add_argument("--timeout", type=float, default=3.0, help="seconds each step may take (default: %(default)s)")
args = parser.parse_args()
if not 1 <= args.port <= 65535 or not args.timeout > 0:
    parser.error("--port must be 1..65535 and --timeout more than 0")

todo = list(args.lines)
buf = bytearray(4096)
replies = LineBuffer()
sock = None
error = None


def check(op, what):
    """True if ``op`` succeeded; otherwise note why, close the connection, False."""
    global error
    if op.exception is None:
        return True
    if isinstance(op.exception, TimeoutError):
        error = f"{what}: timed out after {args.timeout} s"
    elif op.cancelled:                          # not a timeout: the Proactor is closing (Ctrl-C)
        error = error or "interrupted"
    else:
        error = f"{what}: {op.exception}"
    if sock is not None:
        px.close(sock)
    return False


def on_connect(op):
    global sock
    if check(op, f"connect to {args.host}:{args.port}"):
        sock = op.result
        send_next()


def send_next():
    if not todo:
        px.close(sock)                          # all answered: nothing pending, run() returns
        return
    px.send(sock, todo[0].encode() + b"\n", on_sent, timeout=args.timeout)


def on_sent(op):
    if check(op, "send"):
        px.recv(sock, buf, on_recv, timeout=args.timeout)


def on_recv(op):
    global error
    if not check(op, f"waiting for the reply to {todo[0]!r}"):
        return
    if op.result == 0:
        error = "the server closed the connection"
        return px.close(sock)
    try:
        lines = replies.feed(buf[:op.result])
    except LineTooLong as exc:
        error = f"bad reply: {exc}"
        return px.close(sock)
    if not lines:                               # part of a line: keep reading, with a fresh timeout
        return px.recv(sock, buf, on_recv, timeout=args.timeout)
    for line in lines:
        print("reply:", line.decode(errors="replace"), flush=True)
    del todo[:1]
    send_next()


with overlapio.Proactor() as px:
    px.connect((args.host, args.port), on_connect, timeout=args.timeout)
    try:
        px.run()
    except KeyboardInterrupt:
        error = "interrupted"
if error:
    sys.exit(error)
