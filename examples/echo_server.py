"""The classic echo server: accept clients, print what arrives, send it back.

    python examples/echo_server.py              # port 7777; Ctrl-C to stop
    python examples/echo_server.py --port 0 --max-clients 1

Each client has one readable op, which completes when the client has sent
something (it reads nothing). Only then does the server take a buffer from a
pool shared by every client and read into it; the bytes go back as a send, and
the send's completion resubmits the readable op. So an idle client holds no
buffer, and a client that sends but never reads holds the server to one send:
that is the backpressure.
"""
import argparse

import overlapio
from overlapio.buffers import BufferPool

parser = argparse.ArgumentParser(description="Echo every byte back to each client.")
parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
parser.add_argument("--port", type=int, default=7777, help="port; 0 picks a free one (default: %(default)s)")
parser.add_argument("--max-clients", type=int, default=0, metavar="N",
                    help="exit once N clients have come and gone (default: 0, run until Ctrl-C)")
args = parser.parse_args()
if not 0 <= args.port <= 65535 or args.max_clients < 0:
    parser.error("--port must be 0..65535 and --max-clients 0 or more")

with overlapio.Proactor() as px:
    try:
        listener = px.listen((args.host, args.port))
    except OSError as exc:
        parser.exit(1, f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}\n")
    host, port = listener.getsockname()[:2]
    print(f"Listening on [{host}]:{port}" if ":" in host else f"Listening on {host}:{port}", flush=True)
    accepted = 0
    pool = BufferPool(100)                     # receive buffers, shared by every client

    def on_accept(op):
        global accepted
        if op.cancelled:                       # the listener was closed
            return
        if op.exception:                       # out of descriptors, say: stop accepting
            print("Accept failed:", op.exception, flush=True)
            return
        conn, _addr = op.result
        accepted += 1
        print("Client Connected !", flush=True)

        def on_readable(op):
            if op.exception:                   # a reset, or the server is stopping
                print("Client Disconnected !", flush=True)
                px.close(conn)
            else:                              # data (or end of stream) is there: read it
                px.recv(conn, pool.take(), on_recv)

        def on_recv(op):
            data = op.buf[:op.nbytes]          # a copy: the buffer goes back to the pool
            pool.give(op.buf)
            if op.exception or op.result == 0:  # an error, or the client closed: we are done
                print("Client Disconnected !", flush=True)
                px.close(conn)
            else:
                print("Data Recv Len =", op.result, flush=True)
                px.send(conn, data, on_sent)

        def on_sent(op):
            if op.exception:
                print("Client Disconnected !", flush=True)
                px.close(conn)
            else:
                px.resubmit(waiter)            # wait for the client's next bytes

        waiter = px.readable(conn, on_readable)
        if accepted == args.max_clients:
            px.close(listener)                 # no more clients; run() returns once these leave
        else:
            px.accept(listener, on_accept)

    px.accept(listener, on_accept)
    try:
        px.run()                               # until no op is pending
    except KeyboardInterrupt:
        print("Stopped.")
