"""Progress reporting: a bar on a terminal, JSON lines for the add-on, or nothing.

JSON mode prints one object per line on stdout: ``{"stage": ..., "done": ..., "total": ...}`` and a
final ``{"stage": "done", ...}``. Human-readable logs go to stderr in every mode.
"""
from __future__ import annotations

import json
import sys
import time
from typing import Callable, Optional, TextIO

ProgressFn = Callable[[str, int, int], None]


class StageClock:
    """Where the time goes: seconds per stage, from the first report of a stage to the first report of
    the next (a stage that comes back adds to its total); the time before the first report is
    ``first`` (loading models). Call it like a progress function."""

    def __init__(self, first: str = "load"):
        self._totals: dict[str, float] = {}
        self._stage: Optional[str] = first
        self._since = time.monotonic()

    def __call__(self, stage: str, done: int = 0, total: int = 0, current: str = "") -> None:
        if stage != self._stage:
            now = time.monotonic()
            if self._stage is not None:
                self._totals[self._stage] = self._totals.get(self._stage, 0.0) + now - self._since
            self._stage, self._since = stage, now

    def seconds(self) -> dict[str, float]:
        """Seconds per stage so far (the current stage up to now), in the order the stages came."""
        out = dict(self._totals)
        if self._stage is not None:
            out[self._stage] = out.get(self._stage, 0.0) + time.monotonic() - self._since
        return {k: round(v, 2) for k, v in out.items()}


class Progress:
    """Callable ``progress(stage, done, total)``; rate-limited so hot loops can call it freely."""

    def __init__(self, mode: str = "bar", stream: Optional[TextIO] = None, min_interval: float = 0.1):
        if mode not in ("bar", "json", "none"):
            raise ValueError(f"unknown progress mode {mode!r}")
        if mode == "bar" and not (stream or sys.stderr).isatty():
            mode = "none"
        self.mode = mode
        self.stream = stream or (sys.stdout if mode == "json" else sys.stderr)
        self.min_interval = min_interval
        self._last = 0.0
        self._stage = None
        self._t0 = time.monotonic()
        self.clock = StageClock()  # seconds per stage (the capture's final JSON event reports them)

    def __call__(self, stage: str, done: int, total: int, current: str = "") -> None:
        """``current``: what is being worked on (a batch's running clips): after the bar, and as
        ``"current"`` in JSON mode."""
        self.clock(stage)
        now = time.monotonic()
        new_stage = stage != self._stage
        final = done >= total
        if not (new_stage or final or now - self._last >= self.min_interval):
            return
        if new_stage:
            if self.mode == "bar" and self._stage is not None:
                self.stream.write("\n")
            self._stage = stage
            self._t0 = now
        self._last = now
        if self.mode == "json":
            event = {"stage": stage, "done": int(done), "total": int(total)}
            if current:
                event["current"] = current
            self.stream.write(json.dumps(event) + "\n")
            self.stream.flush()
        elif self.mode == "bar":
            frac = 0.0 if total <= 0 else min(1.0, done / total)
            width = 30
            fill = int(round(frac * width))
            rate = done / max(1e-6, now - self._t0)
            eta = ""
            if 0 < done < total and rate > 0:
                left = int(round((total - done) / rate))
                eta = f", {left // 3600}:{left // 60 % 60:02d}:{left % 60:02d} left" if left >= 3600 else \
                    f", {left // 60}:{left % 60:02d} left"
            self.stream.write(
                f"\r{stage:<12} [{'#' * fill}{'.' * (width - fill)}] {done}/{total} ({rate:.2g}/s{eta})"
                + (f" {current[:60]:<60}" if current else "   "))
            self.stream.flush()

    def message(self, **fields) -> None:
        """A free-form JSON event (JSON mode only), e.g. the final summary."""
        if self.mode == "json":
            self.stream.write(json.dumps(fields) + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.mode == "bar" and self._stage is not None:
            self.stream.write("\n")
            self.stream.flush()
            self._stage = None


def null_progress(stage: str, done: int, total: int) -> None:
    return None


def log_line(progress, text: str) -> None:
    """A line for the user: on stderr, and as ``{"stage": "log", "message": ...}`` in JSON progress
    mode. Only for a :class:`Progress` (anything with ``.message``); silent otherwise."""
    message = getattr(progress, "message", None)
    if message is None:
        return
    close = getattr(progress, "close", None)
    if close is not None:
        close()  # end a progress bar's line first
    print(f"doppel: {text}", file=sys.stderr, flush=True)
    message(stage="log", message=text)
