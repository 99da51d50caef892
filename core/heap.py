"""Freed heap memory given back to the system, so that a long capture's resident memory follows what it
holds rather than what it once held.

The perception loop allocates and frees tensors of changing sizes chunk after chunk; glibc's allocator
keeps the freed pages. Measured on a looped 720p clip (benchmarks/bench_long_capture.py, docs/BENCHMARKS.md):
after 1000 frames of perception the process held 923 MiB resident, 470 MiB when the heap was trimmed after
every chunk, and a 10-minute capture peaked at 3.4 times the peak of a 10-second one.
"""
from __future__ import annotations

import ctypes
import sys
import time

EVERY_S = 5.0  # at most one trim in this many seconds: trimming after every chunk made perception 20-35 % slower

_trim = None
_last = -float("inf")


def release_freed_memory() -> None:
    """Return the heap's free pages to the system (glibc's ``malloc_trim``), at most every ``EVERY_S``
    seconds; nothing elsewhere."""
    global _trim, _last
    now = time.monotonic()
    if now - _last < EVERY_S:
        return
    _last = now
    if _trim is None:
        _trim = False
        if sys.platform.startswith("linux"):
            try:
                _trim = ctypes.CDLL("libc.so.6").malloc_trim
            except (OSError, AttributeError):
                _trim = False
    if _trim:
        _trim(0)
