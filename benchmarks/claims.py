"""Claim files: several processes sharing one benchmark folder split its work without a server.

A claim is a file named after the piece of work, holding the claimer's process id. A claim whose
process is gone (killed, finished without doing the work) is taken over, so an interrupted worker
never blocks the rest. Processes must share the machine (process ids are local); a folder shared
between machines needs one claim folder per machine.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["claim", "claimed_by_other"]


def _owner(path: Path) -> int | None:
    try:
        return int(path.read_text() or 0) or None
    except (FileNotFoundError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def claimed_by_other(folder: Path, name: str) -> bool:
    """Whether a live process other than this one holds the claim ``folder/name``."""
    owner = _owner(folder / name)
    return owner is not None and owner != os.getpid() and _alive(owner)


def claim(folder: Path, name: str) -> bool:
    """Claim ``name`` for this process: True when it is now (or already was) ours, False when a
    live process holds it. A claim of a process that is gone is taken over."""
    if claimed_by_other(folder, name):
        return False
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    tmp = folder / f".{name}.{os.getpid()}"
    tmp.write_text(str(os.getpid()))
    os.replace(tmp, path)
    return _owner(path) == os.getpid()
