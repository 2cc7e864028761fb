"""``python -m overlapio``: the same as the ``overlapio`` command."""
import sys

from .cli import main

sys.exit(main())
