"""Echo server: overlapio, completion style (`--backend NAME`, default: platform default).

`--style fast` (the default):

Accept loop; per connection one preallocated bytearray and memoryview and one recv op:
recv(view) -> try_send(view[:n]) -> resubmit the recv (or, when the socket took only
part of the reply, send the rest and resubmit the recv once that completes); close on
0 bytes or an error. At most one op is pending per connection, so the buffer is never
shared.
Callbacks are created once per connection, not per message (keeps the hot path lean).
ACCEPTS accept ops are kept pending on the listener, as completion-style servers do
with AcceptEx; with a single pending accept a server takes on one connection per loop
iteration, while asyncio, trio and the C server accept in a loop until EAGAIN.

`--style plain`: the README's first example, the code a newcomer writes: a new recv
op, then a new send op of the whole reply, per message (no try_send, no resubmit).
With --proto udp: one bound datagram socket with RECVS recvfrom ops pending, each
datagram sent back with sendto, whose completion submits the next recvfrom into
the same buffer (one buffer per pending receive, never shared).
"""
import socket

from _common import parse_args, probe_ok, ready, unavailable

ACCEPTS = 64
RECVS = 16


def _extra(p):
    p.add_argument("--backend", default=None, help="overlapio backend name (default: platform)")
    p.add_argument("--style", choices=("fast", "plain"), default="fast",
                   help="fast: try_send + resubmit; plain: a recv op and a send op per message")
    # Under valgrind nothing but ring I/O wakes a thread blocked in io_uring_enter (no
    # signal, no other thread), so bench.instructions ends a run with the connections.
    p.add_argument("--exit-after", type=int, default=0, metavar="N",
                   help="exit once N connections have ended (default: run until killed)")


def main():
    args = parse_args(__doc__.splitlines()[0], _extra, udp=True)
    try:
        import overlapio
        Proactor = overlapio.Proactor
    except Exception as e:  # the core may be missing or broken: that is "unavailable"
        unavailable(f"cannot import overlapio.Proactor: {type(e).__name__}: {e}")
    if args.backend is not None:
        try:
            avail = overlapio.available_backends()
        except Exception as e:
            unavailable(f"overlapio.available_backends() failed: {type(e).__name__}: {e}")
        ok, reason = avail.get(args.backend, (False, "unknown backend"))
        if not ok:
            unavailable(f"backend {args.backend!r} not available: {reason}")
    try:
        px = Proactor(backend=args.backend)
    except Exception as e:
        unavailable(f"Proactor(backend={args.backend!r}) failed: {type(e).__name__}: {e}")
    if args.probe:
        px.close()
        probe_ok()

    bufsize = args.bufsize
    if args.proto == "udp":
        if overlapio.load_backend(px.backend_name).recvfrom is overlapio.Backend.recvfrom:
            px.close()  # an optional op this backend leaves out: not a failure of the run
            unavailable(f"backend {px.backend_name!r} has no datagram ops yet")
        serve_datagrams(px, args.host, args.port, bufsize)
        return
    lsock = px.listen((args.host, args.port), backlog=1024)
    NODELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ended = [0]

    def end(conn):
        px.close(conn)
        ended[0] += 1
        if ended[0] == args.exit_after:
            px.stop()

    def serve(conn):
        view = memoryview(bytearray(bufsize))
        send, try_send, resubmit = px.send, px.try_send, px.resubmit

        # op.nbytes is a plain attribute, the cheapest test in a hot path: a recv
        # got 0 bytes at end of stream or on an error or cancel; a send succeeded
        # when all of its bytes went out. The reply goes out with try_send (no op
        # when the socket takes it all, the usual case) and the one recv op is
        # resubmitted (no new Op per message); only a reply the socket did not take
        # whole becomes a send op, and the next recv waits for it: the buffer holds
        # its bytes until then.
        def on_recv(op):
            n = op.nbytes
            if n:
                try:
                    sent = try_send(conn, view[:n])
                except OSError:
                    end(conn)
                    return
                if sent == n:
                    resubmit(op)
                else:
                    send(conn, view[sent:n], on_send)
            else:
                end(conn)

        def on_send(op):
            if op.nbytes == len(op.buf):
                resubmit(reader)
            else:
                end(conn)

        reader = px.recv(conn, view, on_recv)

    def serve_plain(conn):
        view = memoryview(bytearray(bufsize))

        def on_recv(op):
            if op.exception or op.result == 0:  # a reset, or end of stream
                end(conn)
            else:
                px.send(conn, view[:op.result], callback=on_sent)

        def on_sent(op):
            if op.exception:
                end(conn)
            else:
                px.recv(conn, view, callback=on_recv)

        px.recv(conn, view, callback=on_recv)

    start = serve_plain if args.style == "plain" else serve

    def on_accept(op):
        try:
            conn, _addr = op.result
        except Exception as e:
            if type(e).__name__ == "OperationCancelled":
                return  # listener closed: stop accepting
            conn = None  # e.g. EMFILE or a reset before accept: keep going
        px.accept(lsock, callback=on_accept)  # keep accepting
        if conn is not None:
            try:
                conn.setsockopt(*NODELAY)
            except OSError:
                pass
            start(conn)

    for _ in range(ACCEPTS):
        px.accept(lsock, callback=on_accept)
    ready(lsock.getsockname()[1], bufsize)
    px.run()
    px.close()  # after --exit-after: the ring gives every buffer back before the exit


def serve_datagrams(px, host, port, bufsize):
    sock = px.bind((host, port))
    recvfrom, sendto = px.recvfrom, px.sendto

    def on_datagram(op):
        if op.exception is None:
            n, address = op.result
            sendto(sock, op.tag[:n], address, on_sent, op)
        elif not op.cancelled:
            recvfrom(sock, op.buf, on_datagram, op.tag)  # an error for this datagram only

    def on_sent(op):
        r = op.tag  # the recvfrom whose buffer this reply went out of: receive into it again
        recvfrom(sock, r.buf, on_datagram, r.tag)

    for _ in range(RECVS):
        buf = bytearray(bufsize)
        recvfrom(sock, buf, on_datagram, memoryview(buf))
    ready(sock.getsockname()[1], bufsize)
    px.run()


if __name__ == "__main__":
    main()
