"""Echo server: asyncio `Protocol` (data_received -> transport.write).

`--loop uvloop` runs the same code on uvloop (the "uvloop-protocol" contestant).
`--proto udp`: a DatagramProtocol that sends each datagram back to its sender.
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


class DatagramEcho(asyncio.DatagramProtocol):
    __slots__ = ("transport",)

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)


def main():
    args = parse_args(__doc__.splitlines()[0], add_loop_arg, udp=True)
    loop = get_loop_factory(args.loop)()
    if args.probe:
        probe_ok()
    if args.proto == "udp":
        transport, _ = loop.run_until_complete(
            loop.create_datagram_endpoint(DatagramEcho, local_addr=(args.host, args.port)))
        ready(transport.get_extra_info("sockname")[1], 0)
        loop.run_forever()
        return
    server = loop.run_until_complete(
        loop.create_server(Echo, args.host, args.port, backlog=1024, family=socket.AF_INET))
    ready(server.sockets[0].getsockname()[1], 0)  # no per-connection user buffer
    loop.run_forever()


if __name__ == "__main__":
    main()
