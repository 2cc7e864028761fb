"""`python -m bench` (from the repository root): run the benchmark suite."""
import sys

from .cli import main

sys.exit(main())
