"""Echo server: asyncio `BufferedProtocol` with one preallocated buffer per connection.

get_buffer() returns the connection's memoryview; buffer_updated(n) writes view[:n].
This is the fastest idiomatic asyncio server and the main baseline for ratios.
`--loop uvloop` runs it on uvloop, `--loop overlapio` on overlapio's asyncio event loop.
"""
import asyncio
import socket
import sys

from _common import add_loop_arg, get_loop_factory, parse_args, probe_ok, ready

BUFSIZE = 65536
# On 3.11 a partial write copies the rest into the transport's bytearray, so handing it
# a view of our reusable buffer is safe. Newer versions may keep a reference to the
# view instead (no copy); copy there so a later read cannot overwrite pending output.
_COPY = sys.version_info >= (3, 12)


class Echo(asyncio.BufferedProtocol):
    __slots__ = ("transport", "view")

    def connection_made(self, transport):
        self.transport = transport
        self.view = memoryview(bytearray(BUFSIZE))

    def get_buffer(self, sizehint):
        return self.view

    def buffer_updated(self, nbytes):
        if _COPY:
            self.transport.write(bytes(self.view[:nbytes]))
        else:
            self.transport.write(self.view[:nbytes])


def main():
    global BUFSIZE
    args = parse_args(__doc__.splitlines()[0], add_loop_arg)
    BUFSIZE = args.bufsize
    loop = get_loop_factory(args.loop)()
    if args.probe:
        probe_ok()
    server = loop.run_until_complete(
        loop.create_server(Echo, args.host, args.port, backlog=1024, family=socket.AF_INET))
    ready(server.sockets[0].getsockname()[1], BUFSIZE)
    loop.run_forever()


if __name__ == "__main__":
    main()
