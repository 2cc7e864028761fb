"""An asyncio streams echo server and its clients, the same code on any loop.

``python tests/asyncio/echo_streams.py [--loop stock|overlapio] [--backend NAME]
[--connections 100] [--size 1048576] [--seed 1]``: starts ``asyncio.start_server``
on loopback, opens ``--connections`` clients with ``asyncio.open_connection`` at
once, and each sends ``--size`` random bytes in chunks of random length while it
reads the echo; the server reads with random sizes too. Every client checks its
echo byte for byte and prints nothing unless something is wrong; the program
prints a one-line summary and exits 1 on any mismatch.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import sys


async def _serve_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rng: random.Random) -> None:
    try:
        while True:
            data = await reader.read(rng.randint(1, 131072))
            if not data:
                break
            writer.write(data)
            await writer.drain()
        writer.write_eof()
        await writer.drain()
    finally:
        writer.close()
        await writer.wait_closed()


async def _client(port: int, size: int, seed: int) -> "tuple[int, bool]":
    rng = random.Random(seed)
    payload = rng.randbytes(size)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def send() -> None:
        at = 0
        while at < size:
            n = rng.randint(1, 65536)
            writer.write(payload[at:at + n])
            at += n
            await writer.drain()
        writer.write_eof()

    sender = asyncio.create_task(send())
    echoed = hashlib.sha256()
    got = 0
    read_rng = random.Random(seed + 1)
    while True:
        data = await reader.read(read_rng.randint(1, 131072))
        if not data:
            break
        if payload[got:got + len(data)] != data:
            sender.cancel()
            writer.close()
            return got, False
        got += len(data)
        echoed.update(data)
    await sender
    writer.close()
    await writer.wait_closed()
    return got, got == size and echoed.digest() == hashlib.sha256(payload).digest()


async def echo_run(connections: int = 100, size: int = 1 << 20, seed: int = 1) -> "list[tuple[int, bool]]":
    """Run the server and ``connections`` clients; per client ``(bytes echoed, intact)``."""
    server_rng = random.Random(-seed)
    server = await asyncio.start_server(lambda r, w: _serve_one(r, w, server_rng), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        return await asyncio.gather(*(_client(port, size, seed * 1000 + i) for i in range(connections)))
    finally:
        server.close()
        await server.wait_closed()


def main(argv: "list[str] | None" = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loop", choices=("stock", "overlapio"), default="overlapio")
    parser.add_argument("--backend", default=None, help="overlapio backend name (default: the platform's)")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--size", type=int, default=1 << 20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    coro = echo_run(args.connections, args.size, args.seed)
    if args.loop == "stock":
        results = asyncio.run(coro)
    else:
        import overlapio.asyncio

        results = overlapio.asyncio.run(coro, backend=args.backend)
    bad = [i for i, (n, ok) in enumerate(results) if not ok]
    print(f"{args.loop}: {len(results)} connections, {sum(n for n, _ in results)} bytes echoed, "
          f"{len(bad)} mismatched")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
