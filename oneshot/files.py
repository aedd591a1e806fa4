"""Files: atomic writes, and reads of user files that fail with one line naming the problem.

Every file a run or a benchmark writes goes through :func:`atomic_write`: the content is written to
a temporary file beside the target, flushed and fsynced, then renamed over the target, so a reader
(or a resumed run) sees the old file or the new one, never half. Every user file read (a config,
an architecture, a benchmark table) goes through :func:`read_text` / :func:`read_json`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from oneshot.errors import OneshotError

__all__ = ["atomic_write", "atomic_write_json", "atomic_write_text", "read_json", "read_text"]


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(fh)`` on a temporary binary file, then move it to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, indent: int | None = 1, default: Callable[[Any], Any] | None = None) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, default=default) + "\n")


def read_text(path: str | os.PathLike[str], *, what: str, error: type[OneshotError] = OneshotError) -> str:
    """The UTF-8 text of ``path``; an unreadable or non-UTF-8 file raises ``error`` in one line
    naming ``what`` it should have been (e.g. ``"config"``)."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise error(f"{what} {path} is not UTF-8 text (byte {exc.start} cannot be decoded)") from None


def read_json(path: str | os.PathLike[str], *, what: str, error: type[OneshotError] = OneshotError) -> Any:
    """The JSON value in ``path``; unreadable, non-UTF-8 or invalid JSON raises ``error`` in one line."""
    text = read_text(path, what=what, error=error)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{what} {path} is not valid JSON: {exc.msg} (line {exc.lineno})") from None
