"""The echo client in pull mode: no callbacks, one loop over ``px.wait()``.

    python examples/pull_client.py              # 5 messages to an echo server on 127.0.0.1:7777
    python examples/pull_client.py --count 100 --port 7777

Ops submitted without a callback come back from ``wait()`` once complete, and the
loop decides what to do with each by its ``tag``, as the classic example's loop does
with WSAWaitForMultipleEvents. All the messages are sent at once: sends on one socket
go out in submission order, so the echoes come back in that order too.
"""
import argparse
import sys

import overlapio

parser = argparse.ArgumentParser(description="Send messages to an echo server and check the echoes, in pull mode.")
parser.add_argument("--host", default="127.0.0.1", help="server address (default: %(default)s)")
parser.add_argument("--port", type=int, default=7777, help="server port (default: %(default)s)")
parser.add_argument("--count", type=int, default=5, help="messages to send (default: %(default)s)")
parser.add_argument("--wait", type=float, default=5.0, metavar="SECONDS",
                    help="give up when nothing completes for this long (default: %(default)s)")
args = parser.parse_args()
if not 1 <= args.port <= 65535 or args.count < 1 or not args.wait > 0:
    parser.error("--port must be 1..65535, --count at least 1, --wait more than 0")

messages = [b"Hello World %d" % i for i in range(args.count)]
expected = b"".join(m.ljust(100, b"\0") for m in messages)
echo = bytearray(len(expected))
got = 0

with overlapio.Proactor() as px:
    px.connect((args.host, args.port), tag="connect")
    while px.pending:                          # until every op has completed
        ops = px.wait(timeout=args.wait)       # the ops that completed, in order
        if not ops:
            sys.exit(f"nothing completed for {args.wait} s: is the server an echo server?")
        for op in ops:
            if op.exception:                   # a refused connect, a reset ...
                sys.exit(f"{op.tag} failed: {op.exception}")
            if op.tag == "connect":
                sock = op.result
                print(f"Connected to {args.host}:{args.port}")
                for message in messages:
                    px.send(sock, message.ljust(100, b"\0"), tag="send")
                px.recv(sock, echo, tag="recv")
            elif op.tag == "send":
                print("Send Data ! Len =", op.result)
            elif op.tag == "recv":
                if op.result == 0:
                    sys.exit("the server closed the connection")
                before, got = got, got + op.result
                for _ in range(before // 100, got // 100):
                    print("Data Recv Len = 100")
                if got < len(echo):
                    px.recv(sock, memoryview(echo)[got:], tag="recv")
                elif echo != expected:
                    sys.exit("the echoes differ from the messages")
                else:
                    px.close(sock)                 # all back: nothing pending, the loop ends
print(f"All {args.count} echoed")
