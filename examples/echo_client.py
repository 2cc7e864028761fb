"""The classic client: send 100-byte "Hello World" messages, read each echo back.

    python examples/echo_client.py              # to 127.0.0.1:7777, once a second, until Ctrl-C
    python examples/echo_client.py --count 3 --interval 0

Every step is an op whose callback submits the next: connect -> send -> recv
(until the whole echo is in) -> sleep -> send ...
"""
import argparse
import sys

import overlapio

parser = argparse.ArgumentParser(description="Send 100-byte messages to an echo server and check each echo.")
parser.add_argument("--host", default="127.0.0.1", help="server address (default: %(default)s)")
parser.add_argument("--port", type=int, default=7777, help="server port (default: %(default)s)")
parser.add_argument("--count", type=int, default=0, help="messages to send (default: 0, until Ctrl-C)")
parser.add_argument("--interval", type=float, default=1.0, help="seconds between messages (default: %(default)s)")
args = parser.parse_args()
if not 1 <= args.port <= 65535 or args.count < 0 or not args.interval >= 0:
    parser.error("--port must be 1..65535, --count 0 or more, --interval 0 or more")

MESSAGE = b"Hello World".ljust(100, b"\0")
echo = bytearray(len(MESSAGE))
sock = None
sent = got = 0
error = None


def fail(why):
    global error
    error = why
    if sock is not None:
        px.close(sock)


def on_connect(op):
    global sock
    if op.exception:
        return fail(f"cannot connect to {args.host}:{args.port}: {op.exception}")
    sock = op.result
    print(f"Connected to {args.host}:{args.port}", flush=True)
    send(op)


def send(op):
    if not op.cancelled:                       # cancelled: the Proactor is closing (Ctrl-C)
        px.send(sock, MESSAGE, on_sent)


def on_sent(op):
    global sent, got
    if op.cancelled:
        return
    if op.exception:
        return fail(f"send failed: {op.exception}")
    sent += 1
    print("Send Data ! Len =", len(MESSAGE), flush=True)
    got = 0
    px.recv(sock, echo, on_recv)


def on_recv(op):
    global got
    if op.cancelled:
        return
    if op.exception or op.result == 0:
        return fail(f"the server went away: {op.exception or 'end of stream'}")
    got += op.result
    if got < len(MESSAGE):                     # part of the echo: read the rest after it
        return px.recv(sock, memoryview(echo)[got:], on_recv)
    if echo != MESSAGE:
        return fail("the echo differs from the message")
    print("Data Recv Len =", got, flush=True)
    if args.count and sent == args.count:
        px.close(sock)                         # done: nothing is pending, so run() returns
    else:
        px.sleep(args.interval, send)


with overlapio.Proactor() as px:
    px.connect((args.host, args.port), on_connect)
    try:
        px.run()
    except KeyboardInterrupt:
        pass                                   # leaving the with block closes everything
if error:
    sys.exit(error)
