"""A line-based chat server: each line a client sends goes to every other client.

    python examples/chat_server.py              # port 7778; then, in other terminals: nc 127.0.0.1 7778
    python examples/chat_server.py --port 0 --max-clients 3

Fan-out needs a backpressure rule, or one client that stops reading makes the
server buffer everything the others say, without bound. The rule here: each client
has a bounded outbox (--max-queue bytes handed to us and not yet to the OS, which
also buffers some) and at most one send op in flight, carrying all that waited.
A line that does not fit either disconnects that client (--slow disconnect, the
default) or is dropped for it, and it is told how many it missed (--slow drop).
The sender is never held back, and nobody else waits for the slow one.

A quiet client holds no receive buffer: its readable op completes when it has
sent something, and only then is a buffer taken from a pool shared by everyone.
"""
import argparse
from collections import deque

import overlapio
from overlapio.buffers import BufferPool
from overlapio.lines import LineBuffer, LineTooLong

parser = argparse.ArgumentParser(description="Line-based chat: every line goes to every other client.")
parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
parser.add_argument("--port", type=int, default=7778, help="port; 0 picks a free one (default: %(default)s)")
parser.add_argument("--max-queue", type=int, default=64 * 1024, metavar="BYTES",
                    help="bytes waiting for one client before --slow applies (default: %(default)s)")
parser.add_argument("--slow", choices=("disconnect", "drop"), default="disconnect",
                    help="what a client that falls behind gets (default: %(default)s)")
parser.add_argument("--max-line", type=int, default=4096, metavar="BYTES",
                    help="longest line accepted (default: %(default)s)")
parser.add_argument("--max-clients", type=int, default=0, metavar="N",
                    help="exit once N clients have come and gone (default: 0, run until Ctrl-C)")
args = parser.parse_args()
if not 0 <= args.port <= 65535 or args.max_queue < 1 or args.max_line < 1 or args.max_clients < 0:
    parser.error("--port must be 0..65535, --max-queue and --max-line at least 1, --max-clients 0 or more")

clients = []
pool = BufferPool(4096)                        # receive buffers, shared by every client


def where(address):
    """(host, port) for printing: an IPv6 host in brackets, as in [::1]:7778."""
    host, port = address[:2]
    return (f"[{host}]" if ":" in host else host), port


def log(text):
    print(text, flush=True)


def broadcast(line, sender=None):
    for client in list(clients):               # a copy: a slow client may leave meanwhile
        if client is not sender:
            client.send(line)


class Client:
    def __init__(self, conn, name):
        self.conn, self.name = conn, name
        self.lines = LineBuffer(args.max_line)
        self.outbox = deque()                  # lines waiting for the send op in flight
        self.queued = 0                        # bytes in the outbox and in that send op
        self.sending = False
        self.dropped = 0
        self.closed = False
        self.waiter = px.readable(conn, self.on_readable)

    def on_readable(self, op):
        if op.cancelled or self.closed:        # we closed the socket, or the server is stopping
            return
        if op.exception:
            return self.leave(str(op.exception))
        px.recv(self.conn, pool.take(), self.on_recv)  # completes at once: the data is there

    def on_recv(self, op):
        data = op.buf[:op.nbytes]              # a copy: the buffer goes back to the pool
        pool.give(op.buf)
        if op.cancelled or self.closed:
            return
        if op.exception or op.result == 0:
            return self.leave(f"{op.exception or 'end of stream'}")
        try:
            lines = self.lines.feed(data)
        except LineTooLong as exc:
            return self.leave(str(exc))
        for line in lines:
            broadcast(b"%s: %s\n" % (self.name.encode(), line), sender=self)
        if not self.closed:                    # (a broadcast may have ended in our leaving)
            px.resubmit(self.waiter)           # wait for the next bytes

    def send(self, data):
        if self.queued + len(data) > args.max_queue:
            if args.slow == "disconnect":
                return self.leave(f"too slow: {self.queued} bytes waiting")
            self.dropped += 1
            return
        self.outbox.append(data)
        self.queued += len(data)
        if not self.sending:
            self.flush()

    def flush(self):
        if self.dropped:                       # the outbox has drained: say what was missed
            self.outbox.append(b"* %d lines dropped: you read too slowly\n" % self.dropped)
            self.queued += len(self.outbox[-1])
            self.dropped = 0
        data = b"".join(self.outbox)
        self.outbox.clear()
        self.sending = True
        px.send(self.conn, data, self.on_sent)

    def on_sent(self, op):
        self.sending = False
        if op.cancelled or self.closed:
            return
        if op.exception:
            return self.leave(str(op.exception))
        self.queued -= op.result
        if self.outbox or self.dropped:
            self.flush()

    def leave(self, why):
        if self.closed:
            return
        self.closed = True
        clients.remove(self)
        px.close(self.conn)                    # its pending ops complete cancelled
        log(f"{self.name} left ({why})")
        broadcast(b"* %s left\n" % self.name.encode())


with overlapio.Proactor() as px:
    try:
        listener = px.listen((args.host, args.port))
    except OSError as exc:
        parser.exit(1, f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}\n")
    log("Listening on {}:{}".format(*where(listener.getsockname())))
    joined = 0

    def on_accept(op):
        global joined
        if op.cancelled:
            return
        if op.exception:                       # out of descriptors, say: stop accepting
            return log(f"accept failed: {op.exception}")
        conn, address = op.result
        joined += 1
        client = Client(conn, f"client{joined}")
        clients.append(client)
        log("{} joined from {}:{}".format(client.name, *where(address)))
        client.send(b"* welcome, %s; %d here before you\n" % (client.name.encode(), len(clients) - 1))
        broadcast(b"* %s joined\n" % client.name.encode(), sender=client)
        if joined == args.max_clients:
            px.close(listener)                 # run() returns once the last client leaves
        else:
            px.accept(listener, on_accept)

    px.accept(listener, on_accept)
    try:
        px.run()
    except KeyboardInterrupt:
        log(f"stopping ({len(clients)} connected)")
