"""The benchmarks' result files, written atomically through :mod:`oneshot.files` (a killed run
never leaves half a file)."""

from __future__ import annotations

import os
from typing import Any

from oneshot.files import atomic_write_json, atomic_write_text

__all__ = ["write_json", "write_text"]


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically; creates the folder."""
    atomic_write_text(path, text)


def write_json(path: str | os.PathLike[str], obj: Any, *, indent: int | None = 1) -> None:
    """Write ``obj`` as JSON atomically (non-finite floats as ``NaN``, as json does)."""
    atomic_write_json(path, obj, indent=indent)
