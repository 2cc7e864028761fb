"""Echo server: asyncio streams (start_server; reader.read -> writer.write; await drain).

`--loop uvloop` runs it on uvloop, `--loop overlapio` on overlapio's asyncio event loop.
"""
import asyncio
import socket

from _common import add_loop_arg, get_loop_factory, parse_args, probe_ok, ready


def main():
    args = parse_args(__doc__.splitlines()[0], add_loop_arg)
    bufsize = args.bufsize
    loop = get_loop_factory(args.loop)()
    if args.probe:
        probe_ok()

    async def handle(reader, writer):
        try:
            while True:
                data = await reader.read(bufsize)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    server = loop.run_until_complete(
        asyncio.start_server(handle, args.host, args.port, backlog=1024, family=socket.AF_INET))
    ready(server.sockets[0].getsockname()[1], 0)  # StreamReader buffers start empty
    loop.run_forever()


if __name__ == "__main__":
    main()
