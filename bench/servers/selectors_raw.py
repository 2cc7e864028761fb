"""Echo server: a minimal hand-written `selectors` loop (recv_into a preallocated buffer).

Not a library: the floor for "pure Python on top of readiness I/O". overlapio's POSIX
backend emulates completions on the same `selectors` machinery, so the gap between
this and overlapio-posix is the price of the completion abstraction itself.
"""
import selectors
import socket

from _common import parse_args, probe_ok, ready


def main():
    args = parse_args(__doc__.splitlines()[0])
    if args.probe:
        probe_ok()
    bufsize = args.bufsize
    sel = selectors.DefaultSelector()
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((args.host, args.port))
    lsock.listen(1024)
    lsock.setblocking(False)
    sel.register(lsock, selectors.EVENT_READ, None)
    READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
    NODELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ready(lsock.getsockname()[1], bufsize)

    while True:
        for key, _ in sel.select():
            data = key.data
            if data is None:  # listener
                while True:
                    try:
                        conn, _addr = lsock.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:  # EMFILE etc.: retry on the next event
                        break
                    conn.setblocking(False)
                    conn.setsockopt(*NODELAY)
                    view = memoryview(bytearray(bufsize))
                    sel.register(conn, READ, [conn, view, None])
                continue
            conn, view, pending = data
            if pending is not None:  # finishing a partial send
                try:
                    n = conn.send(pending)
                except BlockingIOError:
                    continue
                except OSError:
                    sel.unregister(conn); conn.close(); continue
                if n < len(pending):
                    data[2] = pending[n:]
                else:
                    data[2] = None
                    sel.modify(conn, READ, data)
                continue
            try:
                n = conn.recv_into(view)
            except BlockingIOError:
                continue
            except OSError:
                n = 0
            if not n:
                sel.unregister(conn); conn.close(); continue
            try:
                sent = conn.send(view[:n])
            except BlockingIOError:
                sent = 0
            except OSError:
                sel.unregister(conn); conn.close(); continue
            if sent < n:
                data[2] = view[sent:n]
                sel.modify(conn, WRITE, data)


if __name__ == "__main__":
    main()
