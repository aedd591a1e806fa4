"""The end-to-end job behind ``oneshot search --task NAME``, stage by stage, in one run directory.

Stages: prepare data -> train the supernet (fair windows; resumes from ``checkpoint.pt``; the
result is ``supernet.pt``) -> search through the evaluation store (``evaluations.jsonl``; a
re-run never re-evaluates) -> report (``architecture.json``, ``report.md``, ``report.json``,
plots) -> optionally retrain the frozen found architecture from scratch (``retrain/``).

Everything a stage produces is written atomically, so a run killed at any moment resumes from
what it left behind when the same command is run again.

Under ``torchrun`` every process runs the same stages: supernet training is data-parallel,
search and report evaluations are split by candidates, and rank 0 writes the run files
(see ``docs/distributed.md``).
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from oneshot.config import RunConfig, deep_merge, load_config, validate_config
from oneshot.distributed import (
    broadcast_object,
    get_rank,
    get_world_size,
    init_distributed,
    is_main,
    local_device,
    raise_if_any_failed,
)
from oneshot.errors import CheckpointError, ConfigError
from oneshot.sampling import build_sampler
from oneshot.space import Architecture, SearchSpace
from oneshot.study import Study
from oneshot.supernet import count_flops_params, freeze
from oneshot.tasks import Task, get_task
from oneshot.train import SupernetTrainer, load_checkpoint, save_checkpoint, warmup_multistep

__all__ = ["Pipeline", "open_run", "RUN_FILES"]

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
}

# Config sections that may change between invocations on the same run directory: they do not
# change what the supernet is or what a stored evaluation means.
_MUTABLE_SECTIONS = ("device", "threads", "search", "retrain")


def fault_point(stage: str, count: int) -> None:
    """Testing aid: ``ONESHOT_KILL_AFTER=train:N`` (or ``search:N``) SIGKILLs this process once
    ``N`` optimizer steps (or evaluations) are done, to prove that an interrupted run resumes
    exactly. Does nothing when the variable is unset."""
    spec = os.environ.get("ONESHOT_KILL_AFTER", "")
    if spec.partition(":")[0] == stage and count >= int(spec.partition(":")[2] or 0):
        logging.shutdown()
        os.kill(os.getpid(), signal.SIGKILL)


def _on_main(action: Callable[[], Any], what: str) -> None:
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


def _identity(config_data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config_data.items() if k not in _MUTABLE_SECTIONS}


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _check_identity(run_path: Path, new: dict[str, Any], old: dict[str, Any]) -> None:
    if _identity(new) != _identity(old):
        changed = sorted(k for k in set(new) | set(old) if k not in _MUTABLE_SECTIONS and new.get(k) != old.get(k))
        raise ConfigError(
            f"run directory {run_path} was created with a different config (sections {changed} differ); "
            "run again without --preset/--config/--set to resume it, or choose a new --out"
        )


def open_run(
    task_name: str,
    *,
    run_dir: str | Path | None,
    preset: str | None = None,
    config_path: str | Path | None = None,
    overrides: Sequence[str] = (),
    device: str | None = None,
    progress: bool = True,
) -> Pipeline:
    """Resolve the config of a run and open its directory.

    A new run directory gets ``config.yaml`` (the full resolved config). An existing one keeps
    its config: options given again must agree with it on everything that defines the supernet
    and the evaluations (all but ``device``, ``search`` and ``retrain``), which may change.

    Launched by ``torchrun``, this joins the process group first (gloo on CPU, NCCL for CUDA).
    """
    init_distributed()
    task_cls = get_task(task_name)
    presets = task_cls.presets()
    preset_name = preset
    run_path = Path(run_dir) if run_dir is not None else Path("runs") / f"{task_name}-{preset or task_cls.default_preset()}"
    saved_path = run_path / RUN_FILES["config"]
    saved: dict[str, Any] | None = None
    if saved_path.exists():
        try:
            saved = yaml.safe_load(saved_path.read_text()) or {}
        except yaml.YAMLError:
            raise ConfigError(f"{saved_path} is not valid YAML; fix it or use a new --out") from None
        saved_task = saved.pop("_task", task_name)
        if saved_task != task_name:
            raise ConfigError(f"run directory {run_path} belongs to task {saved_task!r}, not {task_name!r}")
    if preset_name is not None and preset_name not in presets:
        raise ConfigError(f"unknown preset {preset_name!r} for task {task_name!r}; available: {', '.join(presets)}")

    if saved is not None and preset_name is None and config_path is None:
        # Resuming: --set overrides apply to the run's own config, not to a preset.
        config = load_config(task_cls.config_class, preset=saved, overrides=overrides)
        if overrides:
            new = config.model_dump(mode="json")
            old = validate_config(task_cls.config_class, saved, source=str(saved_path)).model_dump(mode="json")
            _check_identity(run_path, new, old)
    else:
        base = presets[preset_name or task_cls.default_preset()]
        config = load_config(task_cls.config_class, preset=base, path=config_path, overrides=overrides)
        if saved is not None:
            new = config.model_dump(mode="json")
            old = validate_config(task_cls.config_class, saved, source=str(saved_path)).model_dump(mode="json")
            _check_identity(run_path, new, old)
            # device / search / retrain may change: keep the new values.
            config = validate_config(
                task_cls.config_class,
                deep_merge(old, {k: new[k] for k in _MUTABLE_SECTIONS if k in new}),
                source="merged config",
            )
    if device is not None:
        config.device = device
    run_path.mkdir(parents=True, exist_ok=True)
    data = {"_task": task_name, **config.model_dump(mode="json")}
    _on_main(lambda: _atomic_write_text(saved_path, yaml.safe_dump(data, sort_keys=False)), f"writing {saved_path}")
    return Pipeline(task_cls, config, run_path, progress=progress)


class Pipeline:
    """Runs the stages of one search job for a task in ``run_dir``."""

    def __init__(self, task_cls: type[Task], config: RunConfig, run_dir: Path, *, progress: bool = True) -> None:
        self.task_cls = task_cls
        self.config = config
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.progress = progress and is_main()
        device = config.device
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} requested but CUDA is not available on this machine")
        self.device = local_device(device)  # "cuda" is cuda:LOCAL_RANK under torchrun
        if config.threads is not None:
            torch.set_num_threads(config.threads)
        self.task = task_cls(config, run_dir=self.run_dir, device=self.device, progress=self.progress)
        self._data_ready = False
        self._evaluated = 0  # evaluations computed by this process (for fault_point)
        self._attach_log_file()

    def path(self, key: str) -> Path:
        return self.run_dir / RUN_FILES[key]

    def _attach_log_file(self) -> None:
        if not is_main():  # one log file, written by rank 0; the others report warnings only
            log.setLevel(logging.WARNING)
            return
        target = str(self.path("log").resolve())
        for h in list(log.handlers):
            if getattr(h, "_oneshot_run_log", False):
                if h.baseFilename == target:
                    return
                log.removeHandler(h)  # a previous run of this process: its lines stay in its own log
                h.close()
        handler = logging.FileHandler(target)
        handler._oneshot_run_log = True  # type: ignore[attr-defined]
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)

    def prepare_data(self) -> None:
        if not self._data_ready:
            t0 = time.perf_counter()
            # rank 0 first (it may download or generate into a shared folder), then the others
            _on_main(self.task.prepare_data, "preparing the data")
            if not is_main():
                self.task.prepare_data()
            self._data_ready = True
            log.info("data ready (%.1f s)", time.perf_counter() - t0)

    # ----------------------------------------------------------------- stage: supernet
    def _optimizer(self, model: nn.Module, train_cfg: Any, groups: list[dict[str, Any]]) -> tuple[Any, Any]:
        optimizer = torch.optim.SGD(groups, lr=train_cfg.lr, momentum=train_cfg.momentum, weight_decay=train_cfg.weight_decay)
        milestones = tuple(int(round(f * train_cfg.iterations)) for f in train_cfg.milestones)
        scheduler = warmup_multistep(optimizer, warmup_steps=train_cfg.warmup_iterations, milestones=milestones)
        return optimizer, scheduler

    def _train_batches(self, seed: int, batch_size: int) -> Any:
        """The task's training batches at ``batch_size``; tasks written before ``train_batches``
        took ``batch_size`` keep working (with their own ``train.batch_size``)."""
        shard = (get_rank(), get_world_size())
        if "batch_size" in inspect.signature(self.task.train_batches).parameters:
            return self.task.train_batches(seed=seed, shard=shard, batch_size=batch_size)
        if batch_size != self.config.train.batch_size:
            log.warning(
                "task %r does not accept batch_size in train_batches(); using its train.batch_size, not %d",
                self.task_cls.name,
                batch_size,
            )
        return self.task.train_batches(seed=seed, shard=shard)

    def _trainer(
        self,
        model: nn.Module,
        cfg: Any,
        *,
        sampler: Any,
        optimizer: Any,
        scheduler: Any,
        batch_seed: int,
        run_dir: Path,
        after_step: Any = None,
    ) -> SupernetTrainer:
        """A trainer for the supernet (``sampler`` given) or a frozen model (``sampler=None``)."""
        return SupernetTrainer(
            model,
            sampler=sampler,
            batches=self._train_batches(batch_seed, cfg.batch_size),
            loss_fn=self.task.loss,
            optimizer=optimizer,
            scheduler=scheduler,
            run_dir=run_dir,
            checkpoint_every=cfg.checkpoint_every,
            grad_clip=cfg.grad_clip,
            amp=cfg.amp,
            device=self.device,
            move_batch=self.task.move_batch,
            progress=self.progress,
            after_step=after_step,
            sync_batchnorm=bool(cfg.sync_batchnorm) and sampler is not None,
        )

    def load_supernet(self) -> nn.Module:
        """The trained supernet from ``supernet.pt``."""
        path = self.path("supernet")
        payload = load_checkpoint(path, map_location=self.device)
        model = self.task.build_supernet()
        if payload.get("space") != SearchSpace.from_module(model).signature():
            raise CheckpointError(f"{path} was trained for a different search space")
        try:
            model.load_state_dict(payload["model"])
        except (RuntimeError, KeyError) as exc:
            raise CheckpointError(f"{path} does not fit the supernet: {str(exc).splitlines()[0]}") from None
        model.eval()
        return model

    def train_supernet(self) -> nn.Module:
        """Train the supernet (resuming from ``checkpoint.pt``), or load ``supernet.pt`` if done."""
        if broadcast_object(self.path("supernet").exists()):
            log.info("reusing trained supernet %s", self.path("supernet"))
            return self.load_supernet()
        self.prepare_data()
        cfg = self.config.train
        torch.manual_seed(self.config.seed)
        model = self.task.build_supernet()
        space = SearchSpace.from_module(model)
        try:
            sampler = build_sampler(cfg.sampler, space, seed=self.config.seed, window_size=cfg.paths_per_step)
        except ValueError as exc:
            raise ConfigError(f"train.paths_per_step: {exc}") from None
        optimizer, scheduler = self._optimizer(model, cfg, self.task.param_groups(model))
        trainer = self._trainer(
            model,
            cfg,
            sampler=sampler,
            optimizer=optimizer,
            scheduler=scheduler,
            batch_seed=self.config.seed,
            run_dir=self.run_dir,
            after_step=lambda step: fault_point("train", step),
        )
        log.info("training supernet: %d steps of %d paths x %d images", cfg.iterations, trainer.sampler.window_size, cfg.batch_size)
        result = trainer.fit(cfg.iterations)
        if result.resumed_from is not None:
            log.info("resumed from step %d", result.resumed_from)
        payload = {"model": model.state_dict(), "space": space.signature(), "losses": result.losses, "steps": result.steps}
        _on_main(lambda: save_checkpoint(self.path("supernet"), payload), "writing the supernet")
        log.info("supernet trained: %d steps, final loss %.4f", result.steps, result.losses[-1] if result.losses else float("nan"))
        _on_main(lambda: self._plot_training_loss(result.losses), "plotting the training loss")
        model.eval()
        return model

    def _plot_training_loss(self, losses: list[float]) -> None:
        if not losses:
            return
        from oneshot.viz import plot_training_loss

        plot_training_loss(losses, path=self.run_dir / "training_loss.png")

    # ----------------------------------------------------------------- stage: search
    def store(self, space: SearchSpace) -> Any:
        from oneshot.search import EvaluationStore

        return EvaluationStore(self.path("store"), space=space)

    def study(self, model: nn.Module, *, split: str = "search", store: bool = True, searching: bool = False) -> Study:
        """The study through which architectures are evaluated on ``model``: the run's
        evaluation store for the ``search`` split (unless ``store=False``), none otherwise."""

        def fitness(arch: Architecture) -> dict[str, Any]:
            if searching:
                fault_point("search", self._evaluated)
            metrics = self.task.evaluate(model, [arch], split=split)[0]
            self._evaluated += 1
            return metrics

        use_store = store and split == "search"
        return Study(
            fitness,
            store=self.path("store") if use_store else None,
            space=SearchSpace.from_module(model) if use_store else None,
        )

    def evaluate_archs(self, model: nn.Module, archs: Sequence[Architecture], *, split: str = "search") -> list[dict[str, Any]]:
        """Evaluate architectures through the study (never twice); metrics dicts in order."""
        return [{"fitness": e.fitness, **e.metrics} for e in self.study(model, split=split).evaluate(archs)]

    def search(self, model: nn.Module | None = None) -> Any:
        """Run the configured searcher on the supernet through the evaluation store."""
        from oneshot.search import SearchResult, build_searcher

        model = model if model is not None else self.train_supernet()
        self.prepare_data()
        space = SearchSpace.from_module(model)
        cfg = self.config.search
        try:
            searcher = build_searcher(cfg.searcher, space, seed=self.config.seed, **cfg.options.get(cfg.searcher, {}))
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"search: {exc}") from None
        # One architecture per call: each result reaches the store as soon as it exists, so an
        # interrupted search loses at most the candidate being evaluated.
        study = self.study(model, searching=True)
        log.info("search: %s, at most %d evaluations (%d already stored)", cfg.searcher, searcher.max_evaluations, len(study))
        start = time.perf_counter()
        result: SearchResult = study.optimize(searcher, progress=self.progress)
        result.extras["search_seconds_this_run"] = time.perf_counter() - start

        def write() -> None:
            _atomic_write_text(self.path("search_result"), json.dumps(result.to_json(), indent=1))
            result.best.save(self.path("architecture"))

        _on_main(write, "writing the search result")
        log.info("search done: %d architectures evaluated; best %s", result.num_evaluated, result.best.key)
        return result

    # ----------------------------------------------------------------- stage: report
    def report(self, model: nn.Module, result: Any) -> dict[str, Any]:
        """Evaluate the found and a few random architectures the same way; write report files."""
        space = SearchSpace.from_module(model)
        cfg = self.config.search
        best_metrics = self.evaluate_archs(model, [result.best])[0]
        rng = np.random.default_rng(self.config.seed + 7919)
        randoms: list[Architecture] = []
        while len(randoms) < min(cfg.random_baselines, space.size):
            arch = space.sample(rng)
            if arch not in randoms:
                randoms.append(arch)
        random_metrics = self.evaluate_archs(model, randoms)
        rand_fit = [m["fitness"] for m in random_metrics]
        search_seconds = sum(h.wall_time for h in result.history)
        report = {
            "task": self.task_cls.name,
            "searcher": result.searcher,
            "found": {"architecture": result.best.to_json(), "metrics": best_metrics},
            "random": [{"architecture": a.to_json(), "metrics": m} for a, m in zip(randoms, random_metrics, strict=True)],
            "random_median_fitness": float(np.median(rand_fit)) if rand_fit else None,
            "search_cost": {"evaluations": result.num_evaluated, "seconds": search_seconds},
            "supernet_steps": self.config.train.iterations,
        }
        untrained = self._untrained_fitness(result.best)
        if untrained is not None:
            report["untrained_supernet"] = untrained

        def write() -> None:
            _atomic_write_text(self.path("report_json"), json.dumps(report, indent=1))
            _atomic_write_text(self.path("report_md"), _report_markdown(report))
            self._plots(result, space)

        _on_main(write, "writing the report")
        return report

    def _untrained_fitness(self, arch: Architecture) -> dict[str, Any] | None:
        """Metrics of the found architecture on a freshly initialised supernet (cached in report)."""
        cache = self.run_dir / "untrained.json"
        cached = broadcast_object(json.loads(cache.read_text()) if is_main() and cache.exists() else None)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        torch.manual_seed(self.config.seed)
        model = self.task.build_supernet()
        entry = self.study(model, store=False).evaluate([arch])[0]
        metrics = {"fitness": entry.fitness, **entry.metrics}
        _on_main(lambda: _atomic_write_text(cache, json.dumps(metrics)), f"writing {cache}")
        return metrics

    def _plots(self, result: Any, space: SearchSpace) -> None:
        from oneshot import viz

        if result.score_table is not None:
            viz.plot_score_heatmap(result, space, path=self.run_dir / "scores.png")
        viz.plot_explored_models({result.searcher: result}, path=self.run_dir / "explored.png")

    # ----------------------------------------------------------------- stage: retrain / export
    def found_architecture(self, space: SearchSpace, arch_path: str | Path | None = None) -> Architecture:
        path = Path(arch_path) if arch_path is not None else self.path("architecture")
        if not path.exists():
            raise ConfigError(f"no architecture at {path}; run `oneshot search` first or pass --arch")
        return Architecture.load(space, path)

    def retrain(self, arch: Architecture) -> dict[str, Any]:
        """Train the frozen ``arch`` from scratch and evaluate it on ``val``."""
        self.prepare_data()
        cfg = self.config.retrain
        out_dir = self.run_dir / "retrain" / arch.key[:64]
        out_dir.mkdir(parents=True, exist_ok=True)
        done = out_dir / "metrics.json"
        finished = broadcast_object(json.loads(done.read_text()) if is_main() and done.exists() else None)
        if finished is not None:
            return finished  # type: ignore[no-any-return]
        torch.manual_seed(self.config.seed)
        model = freeze(self.task.build_supernet(), arch)
        groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr": cfg.lr}]
        optimizer, scheduler = self._optimizer(model, cfg, groups)
        trainer = self._trainer(
            model,
            cfg,
            sampler=None,
            optimizer=optimizer,
            scheduler=scheduler,
            batch_seed=self.config.seed + 1,
            run_dir=out_dir,
        )
        result = trainer.fit(cfg.iterations, desc="retrain")
        model.eval()
        # every rank holds the same weights: rank 0 evaluates and writes, the others receive it
        metrics = self.task.evaluate_standalone(model, split="val") if is_main() else None
        metrics = broadcast_object({**metrics, "retrain_steps": result.steps} if metrics is not None else None)

        def write() -> None:
            torch.save(model.state_dict(), out_dir / "model_state.pt")
            _atomic_write_text(done, json.dumps(metrics, indent=1))

        _on_main(write, "writing the retrained model")
        return metrics  # type: ignore[return-value]

    def export(self, model: nn.Module, arch: Architecture, output: Path, *, example_input: Any | None = None) -> dict[str, Any]:
        """Freeze ``arch`` with the supernet's weights and save the standalone module."""
        frozen = freeze(model, arch).eval()
        output.parent.mkdir(parents=True, exist_ok=True)
        _on_main(lambda: torch.save({"architecture": arch.to_json(), "model": frozen}, output), f"writing {output}")
        info: dict[str, Any] = {"path": str(output), "params": sum(p.numel() for p in frozen.parameters())}
        if example_input is not None:
            info["flops"] = count_flops_params(model, arch, example_input).flops
        return info


def _fmt(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def _report_markdown(report: dict[str, Any]) -> str:
    found = report["found"]["metrics"]
    keys = [k for k in found if isinstance(found[k], (int, float))]
    lines = [
        f"# Search report ({report['task']}, {report['searcher']})",
        "",
        f"Found architecture: `{json.dumps(report['found']['architecture'])}`",
        "",
        "| model | " + " | ".join(keys) + " |",
        "|---|" + "---|" * len(keys),
        "| found | " + " | ".join(_fmt(found[k]) for k in keys) + " |",
    ]
    if "untrained_supernet" in report:
        u = report["untrained_supernet"]
        lines.append("| found, untrained supernet | " + " | ".join(_fmt(u.get(k, "")) for k in keys) + " |")
    for i, r in enumerate(report["random"]):
        m = r["metrics"]
        lines.append(f"| random {i} | " + " | ".join(_fmt(m.get(k, "")) for k in keys) + " |")
    lines += [
        "",
        f"Median fitness of the random architectures: {_fmt(report['random_median_fitness'])}",
        "",
        f"Search cost: {report['search_cost']['evaluations']} evaluations, "
        f"{report['search_cost']['seconds']:.1f} s of evaluation.",
        "",
    ]
    return "\n".join(lines)
