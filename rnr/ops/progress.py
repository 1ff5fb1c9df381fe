"""A progress bar on stderr, so stdout stays clean for ``--json`` and pipes.

On a terminal it redraws one line at most ten times a second; elsewhere (a CI log, a
test capturing stderr) it writes a plain line at each tenth of the way, at most one a
second, so a log shows progress without a thousand carriage returns (and a pass of
a second shows none).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

_BAR_WIDTH = 30
_REDRAW_SECONDS = 0.1
_LINE_STEPS = 10
_LINE_SECONDS = 1.0


class Progress:
    def __init__(
        self, label: str, total: int, *, stream: TextIO | None = None, enabled: bool = True
    ) -> None:
        self._label = label
        self._total = max(total, 0)
        self._stream = stream or sys.stderr
        self._enabled = enabled and self._total > 0
        self._tty = self._stream.isatty()
        self._done = 0
        self._started = time.monotonic()
        self._drawn_at = self._started
        self._steps_written = 0
        self._finished = False

    def advance(self, count: int = 1) -> None:
        self._done += count
        if not self._enabled:
            return
        now = time.monotonic()
        if self._tty:
            if now - self._drawn_at >= _REDRAW_SECONDS or self._done >= self._total:
                self._drawn_at = now
                self._stream.write("\r" + self.render(now))
                self._stream.flush()
        else:
            step = min(self._done, self._total) * _LINE_STEPS // self._total
            if step > self._steps_written and now - self._drawn_at >= _LINE_SECONDS:
                self._steps_written = step
                self._drawn_at = now
                self._stream.write(self.render(now) + "\n")
                self._stream.flush()

    def render(self, now: float | None = None) -> str:
        """``label [#####.....] done/total pct rate eta``; the total may be passed."""
        elapsed = max((now or time.monotonic()) - self._started, 1e-9)
        shown = min(self._done, self._total)
        fraction = shown / self._total if self._total else 1.0
        filled = round(_BAR_WIDTH * fraction)
        rate = self._done / elapsed
        remaining = (self._total - shown) / rate if rate > 0 else 0.0
        return (
            f"{self._label} [{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] "
            f"{shown:,}/{self._total:,} {fraction:4.0%} {rate:,.0f}/s eta {remaining:,.0f}s"
        )

    def finish(self) -> None:
        """End the bar's line (on a terminal), once."""
        if self._finished:
            return
        self._finished = True
        if self._enabled and self._tty and self._done:
            self._stream.write("\n")
            self._stream.flush()
