"""Ctrl-C that is never lost.

Python turns SIGINT into ``KeyboardInterrupt`` wherever the interpreter happens to be; when that
is inside a finalizer (``__del__``, a weakref or garbage-collection callback, which torch and
other libraries run often) the exception is printed as "Exception ignored" and dropped, and a
long command carries on as if nothing was pressed. :func:`install` (done by the ``oneshot``
command) also records the request, and the long loops call :func:`raise_if_interrupted` (the
trainer after every step, the pipeline before every evaluation), so an interrupt dropped that way
still stops the command at the next step, after its last checkpoint, with the usual resume message.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

__all__ = ["install", "raise_if_interrupted"]

_requested = False


def _handler(signum: int, frame: FrameType | None) -> None:
    global _requested
    _requested = True
    raise KeyboardInterrupt


def install() -> None:
    """Handle SIGINT by recording it and raising ``KeyboardInterrupt`` (main thread only; a
    process that inherited SIGINT as ignored keeps ignoring it)."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _handler)


def raise_if_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` if SIGINT arrived since :func:`install` (even if the exception
    it raised then was swallowed)."""
    if _requested:
        raise KeyboardInterrupt
