"""``python -m overlapio``: the same as the ``overlapio`` command (whose entry point
is :func:`main` here too)."""
import sys


def main() -> int:
    # The command line is imported here, not above: a Ctrl-C while it loads (the
    # core, argparse, sockets) then ends like one a moment later, without a traceback.
    try:
        from .cli import main as cli_main

        return cli_main()
    except KeyboardInterrupt:
        try:
            print("overlapio: interrupted", file=sys.stderr)
        except OSError:  # stderr is gone: the exit code says it
            pass
        return 130


if __name__ == "__main__":
    sys.exit(main())
