"""Echo server: asyncio `Protocol` (data_received -> transport.write).

`--loop uvloop` runs the same code on uvloop (the "uvloop-protocol" contestant).
Note: plain asyncio's selector transport reads with sock.recv(256 KiB), which glibc
serves with mmap/munmap on every read (cpython issue 85451); that cost is part of
what this contestant measures, which is why asyncio-buffered is the main baseline.
"""
import asyncio
import socket

from _common import add_loop_arg, get_loop_factory, parse_args, probe_ok, ready


class Echo(asyncio.Protocol):
    __slots__ = ("transport",)

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


def main():
    args = parse_args(__doc__.splitlines()[0], add_loop_arg)
    loop = get_loop_factory(args.loop)()
    if args.probe:
        probe_ok()
    server = loop.run_until_complete(
        loop.create_server(Echo, args.host, args.port, backlog=1024, family=socket.AF_INET))
    ready(server.sockets[0].getsockname()[1], 0)  # no per-connection user buffer
    loop.run_forever()


if __name__ == "__main__":
    main()
