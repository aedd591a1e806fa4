"""An append-only JSONL store of evaluations, keyed by architecture.

File format (one JSON object per line):

* first line, the header: ``{"type": "header", "format": "oneshot-evaluations", "version": 1,
  "space": <SearchSpace.signature()>, "num_layers": L, "created": <unix time>}``, plus
  ``"provenance": {...}`` when the store was opened with one (what made the evaluations: in a run
  directory, the config identity and the supernet's steps);
* then one record per evaluation: ``{"type": "eval", "key": "0-2-1-...", "arch": {<grouped
  JSON>}, "fitness": 41.2, "metrics": {...}, "wall_time": 12.3, "time": <unix time>,
  "writer": "<host>:<pid>"}``;
* partial (multi-fidelity) evaluations on a fraction of the evaluation data:
  ``{"type": "partial", "fraction": 0.25, "key": ..., "arch": ..., "fitness": ..., ...}``. They are
  kept apart (:meth:`EvaluationStore.get_partial`): :meth:`~EvaluationStore.get`, ``len``, ``in``
  and iteration see full evaluations only, so a partial score is never taken for a full one
  (stores written before partial records existed simply ignore them).

Every append takes an exclusive ``fcntl`` lock on the file, writes one line, flushes and
fsyncs, so several processes (e.g. workers sharing a search) may append to the same store; readers
pick up the lines others appended. If the same architecture is recorded twice, the first record
wins. A line cut short by a crash (or any unreadable line) is skipped with a warning. A damaged
header is an error that says how to repair it (:meth:`EvaluationStore.repair`, or
``oneshot repair-store`` in a run directory).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from oneshot.errors import OneshotError
from oneshot.search.base import HistoryEntry
from oneshot.space import Architecture, SearchSpace

__all__ = ["EvaluationStore", "StoreError", "StoreHeaderError"]

_FORMAT = "oneshot-evaluations"
_VERSION = 1


class StoreError(OneshotError):
    """An evaluation store is unreadable or belongs to another search space."""


class StoreHeaderError(StoreError):
    """The header line of an evaluation store is missing or damaged (the records may be fine)."""


def _header_damaged(path: Path) -> StoreHeaderError:
    return StoreHeaderError(
        f"{path} is not an evaluation store or its header line is damaged; `oneshot repair-store --out {path.parent}` rewrites it "
        "and keeps every readable record (outside a run: EvaluationStore.repair(path, space)), "
        "or delete the file to evaluate again"
    )


def _header(space: SearchSpace, provenance: dict[str, Any] | None) -> dict[str, Any]:
    """The first line of a store: format, version, the space's signature and the provenance."""
    header: dict[str, Any] = {
        "type": "header",
        "format": _FORMAT,
        "version": _VERSION,
        "space": space.signature(),
        "num_layers": space.num_layers,
        "created": time.time(),
    }
    if provenance is not None:
        header["provenance"] = provenance
    return header


class EvaluationStore:
    """Evaluations of architectures persisted in an append-only JSONL file.

    Args:
        path: the ``.jsonl`` file (created with its parent folders when missing).
        space: the search space; may be given later with :meth:`bind` (searchers do it in
            :meth:`~oneshot.search.Searcher.run`). A store written for another space is refused.
        provenance: what made the evaluations (a JSON mapping), written into a new store's header;
            a store whose header records a different one is refused naming the differing keys
            (of its ``sections`` mapping when it has one).

    Usage: ``store.get(arch)`` returns a :class:`~oneshot.search.HistoryEntry` or ``None``;
    ``store.add(entry)`` appends one. ``len(store)``, ``arch in store`` and iteration (in file
    order) see every record, including those appended by other processes since the last read.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, space: SearchSpace | None = None, provenance: dict[str, Any] | None = None
    ) -> None:
        self.path = Path(path)
        self.space: SearchSpace | None = None
        self.provenance = provenance
        self.recorded_provenance: dict[str, Any] | None = None
        self._entries: dict[str, HistoryEntry] = {}
        self._partials: dict[tuple[str, float], HistoryEntry] = {}
        self._offset = 0
        self._signature: str | None = None
        self._writer = f"{socket.gethostname()}:{os.getpid()}"
        if self.path.is_dir():
            raise StoreError(f"evaluation store {self.path} is a directory, expected a .jsonl file")
        if space is not None:
            self.bind(space)

    # ----------------------------------------------------------------- binding
    def bind(self, space: SearchSpace) -> None:
        """Attach the search space, writing the header of a new store or checking an existing one."""
        if self.space is not None:
            if space.signature() != self.space.signature():
                raise StoreError(
                    f"evaluation store {self.path} is bound to space {self.space.signature()}, "
                    f"not {space.signature()}"
                )
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked("a+") as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell() == 0:
                fh.write(json.dumps(_header(space, self.provenance)) + "\n")
                _sync(fh)
        self.space = space
        self._refresh()
        if self._signature != space.signature():
            self.space = None
            raise StoreError(
                f"evaluation store {self.path} was written for a search space with signature "
                f"{self._signature}, this space has {space.signature()}; use another store file"
            )
        self._check_provenance()

    def _check_provenance(self) -> None:
        if self.provenance is None or self.recorded_provenance is None:
            return
        if self.provenance == self.recorded_provenance:
            return
        old, new = self.recorded_provenance, self.provenance
        if isinstance(old.get("sections"), dict) and isinstance(new.get("sections"), dict):
            keys = {k: v for k, v in old.items() if k != "sections"} | old["sections"]
            now = {k: v for k, v in new.items() if k != "sections"} | new["sections"]
        else:
            keys, now = old, new
        changed = sorted(k for k in set(keys) | set(now) if keys.get(k) != now.get(k) and not k.endswith("_hash"))
        self.space = None
        raise StoreError(
            f"evaluation store {self.path} holds evaluations made differently ({', '.join(changed) or 'provenance'} "
            "differ); use the config that made it, or another store file"
        )

    @staticmethod
    def repair(path: str | os.PathLike[str], space: SearchSpace, *, provenance: dict[str, Any] | None = None) -> int:
        """Rewrite the header of the store at ``path`` for ``space`` (and ``provenance``), keeping
        every record that is readable and fits the space; atomically. Returns the records kept."""
        from oneshot.files import atomic_write_text

        path = Path(path)
        kept: list[str] = []
        for raw in path.read_bytes().split(b"\n"):
            try:
                record = json.loads(raw)
                if isinstance(record, dict) and record.get("type") in ("eval", "partial"):
                    space.from_json(record["arch"])
                    float(record["fitness"])
                    kept.append(json.dumps(record, allow_nan=True))
            except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                continue
        header = _header(space, provenance) | {"repaired": True}
        atomic_write_text(path, "\n".join([json.dumps(header), *kept]) + "\n")
        return len(kept)

    def _require_space(self) -> SearchSpace:
        if self.space is None:
            raise RuntimeError("bind the evaluation store to a search space first (store.bind(space))")
        return self.space

    # ----------------------------------------------------------------- reading
    def _locked(self, mode: str, lock: int = fcntl.LOCK_EX) -> _LockedFile:
        return _LockedFile(self.path, mode, lock)

    def _refresh(self) -> None:
        """Read the lines appended since the last read (by any process)."""
        space = self._require_space()
        if not self.path.exists():
            raise StoreError(f"evaluation store {self.path} disappeared")
        with self._locked("rb", fcntl.LOCK_SH) as fh:
            fh.seek(self._offset)
            data = fh.read()
        if not data:
            return
        lines = data.split(b"\n")
        tail = lines.pop()  # after the last newline: empty, or a line cut short at the end
        position = self._offset
        for raw in lines:
            self._parse_line(raw, position, space)
            position += len(raw) + 1
        if tail:
            # A truncated last line: a crash mid-write (writers hold the lock while writing).
            warnings.warn(
                f"evaluation store {self.path}: ignoring a truncated last line at byte {position} "
                "(interrupted write)",
                stacklevel=3,
            )
            position += len(tail)
        self._offset = position

    def _parse_line(self, raw: bytes, position: int, space: SearchSpace) -> None:
        if not raw.strip():
            return
        try:
            record = json.loads(raw)
            if not isinstance(record, dict):
                raise ValueError("not an object")
        except (ValueError, UnicodeDecodeError):
            if position == 0:
                raise _header_damaged(self.path) from None
            warnings.warn(
                f"evaluation store {self.path}: skipping an unreadable line at byte {position}",
                stacklevel=4,
            )
            return
        kind = record.get("type")
        if position == 0:
            if kind != "header" or record.get("format") != _FORMAT:
                raise _header_damaged(self.path)
            if int(record.get("version", 0)) > _VERSION:
                raise StoreError(f"{self.path} has store format version {record['version']}, newer than {_VERSION}")
            self._signature = str(record.get("space"))
            found = record.get("provenance")
            self.recorded_provenance = dict(found) if isinstance(found, dict) else None
            return
        if kind not in ("eval", "partial"):
            return
        try:
            arch = space.from_json(record["arch"])
            fraction = float(record["fraction"]) if kind == "partial" else 1.0
            entry = HistoryEntry(
                arch,
                float(record["fitness"]),
                float(record.get("wall_time", 0.0)),
                dict(record.get("metrics") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            warnings.warn(
                f"evaluation store {self.path}: skipping a malformed record at byte {position}: {exc}",
                stacklevel=4,
            )
            return
        if kind == "partial":
            self._partials.setdefault((arch.key, fraction), entry)
        else:
            self._entries.setdefault(arch.key, entry)

    def get(self, arch: Architecture) -> HistoryEntry | None:
        """The stored evaluation of ``arch``, or ``None``."""
        self._require_space()
        entry = self._entries.get(arch.key)
        if entry is None:
            self._refresh()
            entry = self._entries.get(arch.key)
        return entry

    def get_partial(self, arch: Architecture, fraction: float) -> HistoryEntry | None:
        """The stored evaluation of ``arch`` on ``fraction`` of the evaluation data, or ``None``."""
        self._require_space()
        key = (arch.key, float(fraction))
        if key not in self._partials:
            self._refresh()
        return self._partials.get(key)

    def partials(self) -> list[tuple[float, HistoryEntry]]:
        """Every partial evaluation as ``(fraction, entry)``, in file order."""
        self._refresh()
        return [(fraction, entry) for (_, fraction), entry in self._partials.items()]

    def __contains__(self, arch: object) -> bool:
        return isinstance(arch, Architecture) and self.get(arch) is not None

    def __len__(self) -> int:
        self._refresh()
        return len(self._entries)

    def __iter__(self) -> Iterator[HistoryEntry]:
        self._refresh()
        return iter(list(self._entries.values()))

    # ----------------------------------------------------------------- writing
    def add(self, entry: HistoryEntry) -> None:
        """Append one evaluation (flushed and fsynced before returning). Known ones are ignored."""
        self._append({"type": "eval"}, entry)

    def add_partial(self, entry: HistoryEntry, fraction: float) -> None:
        """Append an evaluation on ``fraction`` (0 < fraction < 1) of the evaluation data."""
        if not 0.0 < float(fraction) < 1.0:
            raise ValueError(f"a partial evaluation covers a fraction in (0, 1), got {fraction}")
        self._append({"type": "partial", "fraction": float(fraction)}, entry)

    def _append(self, head: dict[str, Any], entry: HistoryEntry) -> None:
        space = self._require_space()
        arch = space.validate(entry.arch)
        record: dict[str, Any] = {
            **head,
            "key": arch.key,
            "arch": arch.to_json(),
            "fitness": float(entry.fitness),
            "metrics": dict(entry.metrics),
            "wall_time": float(entry.wall_time),
            "time": time.time(),
            "writer": self._writer,
        }
        line = json.dumps(record, allow_nan=True) + "\n"
        with self._locked("a+b") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            if size:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    # the last line was cut short by a crash: end it so that ours stays readable
                    fh.seek(0, os.SEEK_END)
                    fh.write(b"\n")
            fh.seek(0, os.SEEK_END)
            fh.write(line.encode())
            _sync(fh)
        self._refresh()

    def __repr__(self) -> str:
        return f"EvaluationStore({str(self.path)!r}, {len(self._entries)} evaluations)"


class _LockedFile:
    """Open a file and hold an ``fcntl.flock`` on it for the duration of a ``with`` block."""

    def __init__(self, path: Path, mode: str, lock: int) -> None:
        self.path, self.mode, self.lock = path, mode, lock
        self.fh: Any = None

    def __enter__(self) -> Any:
        try:
            self.fh = open(self.path, self.mode)  # noqa: SIM115 - closed in __exit__
        except OSError as exc:
            raise StoreError(f"cannot open evaluation store {self.path}: {exc.strerror or exc}") from None
        fcntl.flock(self.fh.fileno(), self.lock)
        return self.fh

    def __exit__(self, *exc: object) -> None:
        try:
            fcntl.flock(self.fh.fileno(), fcntl.LOCK_UN)
        finally:
            self.fh.close()


def _sync(fh: Any) -> None:
    fh.flush()
    os.fsync(fh.fileno())
