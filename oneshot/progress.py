"""Progress bars that suit their output: tqdm on a terminal, a log line every few steps otherwise.

On a terminal a tqdm bar redraws itself in place. Written to a file or a pipe (a batch job's log,
CI), those redraws become thousands of carriage-return frames; there a :class:`LineProgress`
logs one plain line every ``max(1, total // 20)`` updates (and at the end) instead.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

__all__ = ["LineProgress", "progress_bar"]

log = logging.getLogger("oneshot")


class LineProgress:
    """The subset of tqdm's interface the library uses, logging a line every ``every`` updates."""

    def __init__(self, *, total: int | None, initial: int = 0, desc: str = "", unit: str = "it", every: int | None = None) -> None:
        self.total, self.n, self.desc, self.unit = total, initial, desc, unit
        self.every = every or max(1, (total or 0) // 20)
        self.postfix: dict[str, Any] = {}
        self._start = time.perf_counter()
        self._last_logged = initial

    def set_postfix(self, **kwargs: Any) -> None:
        self.postfix = kwargs

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.n - self._last_logged >= self.every or (self.total is not None and self.n >= self.total):
            self._log()

    def _log(self) -> None:
        self._last_logged = self.n
        total = f"/{self.total}" if self.total is not None else ""
        extra = "".join(f", {k} {v}" for k, v in self.postfix.items())
        log.info("%s: %d%s %s%s (%.1f s)", self.desc, self.n, total, self.unit, extra, time.perf_counter() - self._start)

    def close(self) -> None:
        if self.n != self._last_logged:
            self._log()


def progress_bar(*, total: int | None, initial: int = 0, desc: str = "", unit: str = "it") -> Any:
    """A tqdm bar when stderr is a terminal, else a :class:`LineProgress` (same methods)."""
    if sys.stderr.isatty():
        from tqdm.auto import tqdm

        return tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True)
    return LineProgress(total=total, initial=initial, desc=desc, unit=unit)
