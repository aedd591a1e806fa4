"""A run directory: its files, the identity of the config that made it, and its writes.

One :class:`RunDir` per job. It knows where every artefact lives (:data:`RUN_FILES`, and
``search/<searcher>/`` for each searcher's own results), pins the resolved config in
``config.yaml`` and refuses a later invocation whose config would change what the supernet is or
what a stored evaluation means, and writes every file atomically on rank 0 of a ``torchrun``
job (a collective: every process waits and raises if the write failed).
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import json
import logging
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from oneshot.config import RunConfig, deep_merge, load_config, validate_config
from oneshot.distributed import get_world_size, is_main, raise_if_any_failed
from oneshot.errors import ConfigError
from oneshot.files import atomic_write_json, atomic_write_text
from oneshot.tasks import Task

__all__ = [
    "MUTABLE_SECTIONS",
    "RECOVERY_FIELDS",
    "RUN_FILES",
    "RunDir",
    "check_provenance",
    "fault_point",
    "on_main",
    "provenance",
    "resolve_config",
]

log = logging.getLogger("oneshot")

RUN_FILES = {
    "config": "config.yaml",
    "checkpoint": "checkpoint.pt",
    "supernet": "supernet.pt",
    "store": "evaluations.jsonl",
    "search_result": "search_result.json",
    "architecture": "architecture.json",
    "report_md": "report.md",
    "report_json": "report.json",
    "log": "log.txt",
    "lock": ".lock",
    "diverged": "diverged.json",
}

#: Config sections that may change between invocations on the same run directory: they change
#: neither what the supernet is nor what a stored evaluation means.
MUTABLE_SECTIONS = ("device", "threads", "search", "retrain")

#: Fields that may change on a run whose supernet training diverged (``diverged.json`` exists and
#: ``supernet.pt`` does not): training restarts from the last good checkpoint with the new values.
RECOVERY_FIELDS = (("train", "lr"), ("train", "grad_clip"))


def fault_point(stage: str, count: int) -> None:
    """Testing aid: ``ONESHOT_KILL_AFTER=train:N`` (or ``search:N``) SIGKILLs this process once
    ``N`` optimizer steps (or evaluations) are done, to prove that an interrupted run resumes
    exactly. Does nothing when the variable is unset."""
    spec = os.environ.get("ONESHOT_KILL_AFTER", "")
    if spec.partition(":")[0] == stage and count >= int(spec.partition(":")[2] or 0):
        logging.shutdown()
        os.kill(os.getpid(), signal.SIGKILL)


def on_main(action: Callable[[], Any], what: str) -> None:
    """Run ``action`` (a file write) on rank 0 only. In a job this is collective: every process
    waits for it and raises if it failed."""
    if get_world_size() == 1:
        action()
        return
    error = None
    if is_main():
        try:
            action()
        except Exception as exc:  # reported to every process
            error = exc
    raise_if_any_failed(error, what)


def _identity(config_data: Mapping[str, Any], *, recovery: bool = False) -> dict[str, Any]:
    """The sections of a config that define the supernet and the evaluations; with ``recovery``,
    less the :data:`RECOVERY_FIELDS`."""
    out = {k: v for k, v in config_data.items() if k not in MUTABLE_SECTIONS}
    if recovery:
        for section, field in RECOVERY_FIELDS:
            if isinstance(out.get(section), Mapping):
                out[section] = {k: v for k, v in out[section].items() if k != field}
    return out


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def provenance(config: RunConfig | Mapping[str, Any]) -> dict[str, Any]:
    """The identity of a config, as recorded in ``supernet.pt``, ``checkpoint.pt`` and the
    evaluation store: a hash of the identity sections (all but :data:`MUTABLE_SECTIONS`), the same
    hash without the :data:`RECOVERY_FIELDS`, and one hash per section (to name what differs)."""
    data = config.model_dump(mode="json") if isinstance(config, RunConfig) else dict(config)
    identity = _identity(data)
    return {
        "config_hash": _digest(identity),
        "recovery_hash": _digest(_identity(data, recovery=True)),
        "sections": {k: _digest(v) for k, v in identity.items()},
    }


def check_provenance(
    what: str, recorded: Mapping[str, Any] | None, current: Mapping[str, Any], *, recovering: bool = False
) -> bool:
    """Refuse an artefact made by another config: one line naming the differing sections.

    Returns ``True`` when the artefact differs only in :data:`RECOVERY_FIELDS` and ``recovering``
    allows it (the caller then applies the new values); ``False`` when it matches exactly. An
    artefact without a record (written by an older version) is accepted with a warning.
    """
    if not recorded:
        log.warning("%s has no record of the config that made it (older oneshot); assuming it matches", what)
        return False
    if recorded.get("config_hash") == current["config_hash"]:
        return False
    if recovering and recorded.get("recovery_hash") == current["recovery_hash"]:
        return True
    old, new = recorded.get("sections", {}), current["sections"]
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    hint = (
        "; train.lr and train.grad_clip may change only to restart a diverged run"
        if recorded.get("recovery_hash") == current["recovery_hash"]
        else ""
    )
    raise ConfigError(
        f"{what} was made with a different config (sections {changed} differ){hint}; "
        "run with the config that made it, or choose a new --out"
    )


def _check_identity(
    run_path: Path, new: Mapping[str, Any], old: Mapping[str, Any], *, recovering: bool = False
) -> None:
    if _identity(new, recovery=recovering) != _identity(old, recovery=recovering):
        changed = sorted(k for k in set(new) | set(old) if k not in MUTABLE_SECTIONS and new.get(k) != old.get(k))
        hint = ""
        if not recovering and _identity(new, recovery=True) == _identity(old, recovery=True):
            hint = " (train.lr and train.grad_clip may change only after the training diverged)"
        raise ConfigError(
            f"run directory {run_path} was created with a different config (sections {changed} differ){hint}; "
            "run again without --preset/--config/--set to resume it, or choose a new --out"
        )


#: Run directories whose lock this process holds: path -> open file (the lock lives as long as it).
_HELD_LOCKS: dict[str, Any] = {}


@atexit.register
def _release_locks() -> None:
    for fh in _HELD_LOCKS.values():
        fh.close()
    _HELD_LOCKS.clear()


class RunDir:
    """The files of one run, written atomically (on rank 0 in a job)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.root = Path(path)

    def __fspath__(self) -> str:
        return os.fspath(self.root)

    def __repr__(self) -> str:
        return f"RunDir({str(self.root)!r})"

    def path(self, key: str) -> Path:
        """The path of a run file by key (see :data:`RUN_FILES`)."""
        return self.root / RUN_FILES[key]

    def searcher_dir(self, searcher: str) -> Path:
        """Where one searcher's own results live: ``search/<searcher>/``."""
        return self.root / "search" / searcher

    def searchers_run(self) -> list[str]:
        """Names of the searchers whose results are in this run, in the order they finished."""
        folder = self.root / "search"
        done = [p for p in folder.glob("*/report.json")] if folder.is_dir() else []
        return [p.parent.name for p in sorted(done, key=lambda p: p.stat().st_mtime)]

    # ----------------------------------------------------------------- lock
    def ensure_writable(self) -> None:
        """Create the run directory; one line when it cannot be created or written."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create run directory {self.root}: {exc.strerror or exc}") from None
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise ConfigError(f"run directory {self.root} is not writable; choose another --out")

    def writable(self) -> bool:
        return self.root.is_dir() and os.access(self.root, os.W_OK | os.X_OK)

    def lock(self) -> None:
        """Hold ``RUN/.lock`` (an ``fcntl.flock``) for the life of this process, so that one
        process at a time works in a run directory. The OS releases it when the process ends,
        however it ends (``kill -9`` too): a stale lock never blocks a resume. Taking it again in
        the same process is a no-op. A second process gets one line naming the holder's pid."""
        key = os.path.realpath(self.root)
        if key in _HELD_LOCKS:
            return
        self.ensure_writable()
        path = self.path("lock")
        try:
            fh = open(path, "a+")  # noqa: SIM115 - kept open for the life of the process
        except OSError as exc:
            raise ConfigError(f"cannot create the lock file {path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise ConfigError(
                f"run directory {self.root} is in use by process {holder}; wait for it to finish "
                "(or stop it) before running here again, or choose another --out"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        _HELD_LOCKS[key] = fh

    def unlock(self) -> None:
        """Release the lock early (it is released at exit anyway)."""
        fh = _HELD_LOCKS.pop(os.path.realpath(self.root), None)
        if fh is not None:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            fh.close()

    # ----------------------------------------------------------------- divergence
    def divergence(self) -> dict[str, Any] | None:
        """What ``diverged.json`` records about a diverged supernet training, or ``None``."""
        path = self.path("diverged")
        if not path.is_file() or self.path("supernet").exists():
            return None
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    # ----------------------------------------------------------------- writes
    def write_text(self, path: Path, text: str) -> None:
        on_main(lambda: atomic_write_text(path, text), f"writing {path}")

    def write_json(self, path: Path, obj: Any) -> None:
        on_main(lambda: atomic_write_json(path, obj), f"writing {path}")

    def run_on_main(self, action: Callable[[], Any], what: str) -> None:
        """Any other write (a plot, a model file) on rank 0, as a collective."""
        on_main(action, what)

    def read_json(self, path: Path) -> Any | None:
        """The JSON at ``path`` (rank 0's view, shared with every process), or ``None``."""
        from oneshot.distributed import broadcast_object

        return broadcast_object(json.loads(path.read_text()) if is_main() and path.exists() else None)

    # ----------------------------------------------------------------- config identity
    def saved_config(self) -> tuple[str | None, dict[str, Any] | None]:
        """``(task name, config data)`` pinned in ``config.yaml``, or ``(None, None)``."""
        saved_path = self.path("config")
        if not saved_path.exists():
            return None, None
        try:
            saved = yaml.safe_load(saved_path.read_text()) or {}
        except (yaml.YAMLError, UnicodeDecodeError):
            raise ConfigError(f"{saved_path} is not valid YAML; fix it or use a new --out") from None
        except OSError as exc:
            raise ConfigError(f"cannot read {saved_path}: {exc.strerror or exc}") from None
        if not isinstance(saved, dict):
            raise ConfigError(f"{saved_path} is not a config mapping; fix it or use a new --out")
        return saved.pop("_task", None), saved

    def pin_config(self, task_name: str, config: RunConfig) -> None:
        """Write the resolved config to ``config.yaml`` (once work starts: a run that fails its
        checks leaves no config behind to refuse the corrected one)."""
        self.root.mkdir(parents=True, exist_ok=True)
        data = {"_task": task_name, **config.model_dump(mode="json")}
        self.write_text(self.path("config"), yaml.safe_dump(data, sort_keys=False))


def resolve_config(
    task_name: str,
    task_cls: type[Task],
    run: RunDir,
    *,
    preset: str | None = None,
    config_path: str | os.PathLike[str] | None = None,
    overrides: Sequence[str] = (),
) -> RunConfig:
    """The config of a run: a new run's from preset/file/overrides; an existing run keeps its own.

    Options given again on an existing run must agree with its config on everything that defines
    the supernet and the evaluations (all but :data:`MUTABLE_SECTIONS`), which may change. After
    a divergence (``diverged.json``), :data:`RECOVERY_FIELDS` may change too.
    """
    presets = task_cls.presets()
    saved_task, saved = run.saved_config()
    recovering = run.divergence() is not None
    saved_path = run.path("config")
    if saved is not None and saved_task not in (None, task_name):
        raise ConfigError(f"run directory {run.root} belongs to task {saved_task!r}, not {task_name!r}")
    if preset is not None and preset not in presets:
        raise ConfigError(f"unknown preset {preset!r} for task {task_name!r}; available: {', '.join(presets)}")
    if saved is not None and preset is None and config_path is None:
        # Resuming: --set overrides apply to the run's own config, not to a preset.
        config = load_config(task_cls.config_class, preset=saved, overrides=overrides)
        if overrides:
            old = validate_config(task_cls.config_class, saved, source=str(saved_path)).model_dump(mode="json")
            _check_identity(run.root, config.model_dump(mode="json"), old, recovering=recovering)
        return config
    base = presets[preset or task_cls.default_preset()]
    config = load_config(task_cls.config_class, preset=base, path=config_path, overrides=overrides)
    if saved is None:
        return config
    new = config.model_dump(mode="json")
    old = validate_config(task_cls.config_class, saved, source=str(saved_path)).model_dump(mode="json")
    _check_identity(run.root, new, old, recovering=recovering)
    # device / search / retrain (and, recovering, train.lr / grad_clip) may change: keep the new values.
    update: dict[str, Any] = {k: new[k] for k in MUTABLE_SECTIONS if k in new}
    if recovering:
        for section, field in RECOVERY_FIELDS:
            update.setdefault(section, {})[field] = new[section][field]
    return validate_config(task_cls.config_class, deep_merge(old, update), source="merged config")
