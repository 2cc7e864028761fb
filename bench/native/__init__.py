"""Native (C) parts of the benchmark suite: the load generator and the reference
echo server, plus build.py which compiles them with the system C compiler."""
