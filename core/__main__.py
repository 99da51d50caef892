"""``python -m core ...``: the engine's command line (core.cli)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
