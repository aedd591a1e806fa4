"""Helpers shared by the tests of the synthetic dataset's variants (standard and bench)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


def folder_digest(root: Path) -> dict[str, str]:
    """The SHA-256 of every file under ``root``, by its path relative to ``root``."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def thing_and_stuff_ids(categories: Iterable[Mapping[str, Any]]) -> tuple[set[int], set[int]]:
    """The ids of the thing and of the stuff categories of a COCO-panoptic category list."""
    categories = list(categories)
    return {c["id"] for c in categories if c["isthing"]}, {c["id"] for c in categories if not c["isthing"]}
