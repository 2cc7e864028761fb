"""overlapio's benchmark suite (not installed with the package; run from the repo root).

Modules:
  cli        command line: `python -m bench`, `bench.cli.main(argv)`
  workloads  workloads, contestants, --only selection, settings and the run plan
  harness    processes, /proc sampling (CPU, RSS, machine load), the run loop
  stats      medians/min-max, spread, the disturbance test, paired ratios
  report     summaries, ratios, Markdown, results.json, PNG plots
  progress   the progress line on stderr
  inproc     in-process workloads (timers, post, opcost), one process per run
  servers/   the echo server contestants, one process each
  native/    the C load generator and C epoll echo server, and their build
Method and commands: docs/benchmarks.md.
"""
