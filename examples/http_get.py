"""A small HTTP/1.0 GET client: look the name up, connect, ask, read until the server closes.

    python examples/http_get.py http://localhost:8000/          # try: python -m http.server
    python examples/http_get.py --timeout 2 http://127.0.0.1:8000/README.md > README.copy

The body goes to stdout, the status line to stderr; the exit code is 0 for a 2xx
status. A name may stand for several addresses (IPv6 and IPv4, say): they are tried
in the order the resolver gives until one accepts the connection.
"""
import argparse
import socket
import sys
from urllib.parse import urlsplit

import overlapio
from overlapio.lines import LineBuffer, LineTooLong

parser = argparse.ArgumentParser(description="Fetch a URL with HTTP/1.0 GET; the body goes to stdout.")
parser.add_argument("url", help="an http:// URL")
parser.add_argument("--timeout", type=float, default=10.0, help="seconds for the whole request (default: %(default)s)")
args = parser.parse_args()
url = urlsplit(args.url)
try:
    port = url.port or 80
except ValueError as exc:                      # a port that is not a number, or out of range
    parser.error(f"bad URL {args.url!r}: {exc}")
if url.scheme != "http" or not url.hostname:
    parser.error(f"not an http:// URL: {args.url!r}")
if not args.timeout > 0:
    parser.error("--timeout must be more than 0")

try:                                           # blocking, as name lookups are; before any I/O starts
    addresses = [info[4] for info in socket.getaddrinfo(url.hostname, port, type=socket.SOCK_STREAM)]
except socket.gaierror as exc:
    sys.exit(f"cannot resolve {url.hostname}: {exc.strerror}")
host = f"[{url.hostname}]" if ":" in url.hostname else url.hostname
request = (f"GET {url.path or '/'}{'?' + url.query if url.query else ''} HTTP/1.0\r\n"
           f"Host: {host}{'' if port == 80 else f':{port}'}\r\nUser-Agent: overlapio-example\r\n\r\n").encode()
buf = bytearray(65536)
head = LineBuffer()
status = None                                  # the status line, once read
headers = {}                                   # lower-case name: value
in_body = False
body = 0                                       # body bytes written so far
sock = None
error = None


def fail(why):
    global error
    error = error or why
    if sock is not None:
        px.close(sock)                         # its pending op completes cancelled
    px.cancel(deadline)                        # (False if it is the deadline that ran out)


def try_next(why=None):
    global sock
    if why:
        print(f"{socket.getnameinfo(addresses[0], socket.NI_NUMERICHOST)[0]}: {why}", file=sys.stderr)
        px.close(sock)
        del addresses[0]
    if not addresses:
        return fail(f"cannot connect to {url.hostname} port {port}")
    sock = px.socket(socket.AF_INET6 if len(addresses[0]) == 4 else socket.AF_INET)
    px.connect(addresses[0], on_connect, sock=sock)


def on_connect(op):
    if op.cancelled:                           # the deadline closed the socket
        return
    if op.exception:
        return try_next(op.exception.strerror or op.exception)
    px.send(sock, request, on_sent)


def on_sent(op):
    if not op.cancelled and op.exception:
        return fail(f"sending the request: {op.exception}")
    if not op.cancelled:
        px.recv(sock, buf, on_recv)


def on_recv(op):
    global status, in_body, body
    if op.cancelled:
        return
    if op.exception:
        return fail(f"reading the reply: {op.exception}")
    data = buf[:op.result]
    if not in_body:                            # the status line and the header lines
        head.add(data)
        try:
            while not in_body and (line := head.line()) is not None:
                if status is None:
                    status = line.decode("latin-1")
                elif line:
                    name, _, value = line.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                else:
                    in_body = True             # the empty line: the body follows
        except LineTooLong:
            return fail("the reply's header is too long")
        if not in_body:
            if op.result == 0:
                return fail("the server closed the connection before the body")
            return px.resubmit(op)
        data = head.rest()
    sys.stdout.buffer.write(data)
    body += len(data)
    if op.result:
        return px.resubmit(op)                 # the same recv, into the same buffer
    px.close(sock)                             # end of stream: the whole reply is in
    px.cancel(deadline)
    length = headers.get("content-length")
    if length and length.isdigit() and int(length) != body:
        fail(f"the body is {body} bytes, the server announced {length}")


def on_deadline(op):
    if not op.cancelled:                       # cancelled: the reply was in before the deadline
        fail(f"no complete reply within {args.timeout} s")


with overlapio.Proactor() as px:
    deadline = px.sleep(args.timeout, on_deadline)   # one deadline for the whole exchange
    try_next()
    try:
        px.run()
    except KeyboardInterrupt:
        error = "interrupted"
sys.stdout.flush()
if error:
    sys.exit(error)
print(status, file=sys.stderr)
sys.exit(0 if status.split()[1:2] and status.split()[1].startswith("2") else 1)
