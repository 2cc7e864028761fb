"""Echo server: trio (serve_tcp; receive_some -> send_all), one task per connection."""
import functools

from _common import parse_args, probe_ok, ready, unavailable


def main():
    args = parse_args(__doc__.splitlines()[0])
    try:
        import trio
    except ImportError as e:
        unavailable(f"trio not installed ({e}); pip install trio")
    if args.probe:
        probe_ok()
    bufsize = args.bufsize

    async def handler(stream):
        try:
            while True:
                data = await stream.receive_some(bufsize)
                if not data:
                    break
                await stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass

    async def run():
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                functools.partial(trio.serve_tcp, handler, args.port, host=args.host, backlog=1024))
            ready(listeners[0].socket.getsockname()[1], 0)  # receive_some allocates per call

    trio.run(run)


if __name__ == "__main__":
    main()
