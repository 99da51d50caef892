"""``python -m core ...``: the engine's command line (core.cli)."""
import os
import sys

from .cli import main

if __name__ == "__main__":
    code = main()
    if code == 130:
        # Cancelled: everything is already cleaned up. Leave without the interpreter's teardown, where a
        # native thread pool interrupted mid-work can abort the process ("terminate called without an
        # active exception", exit 134 instead of 130).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
