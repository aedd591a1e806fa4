"""The end-to-end job behind ``oneshot search --task NAME``, stage by stage, in one run directory.

Stages: prepare data -> train the supernet (resumes from ``checkpoint.pt``; the result is
``supernet.pt``) -> search through the :class:`~oneshot.study.Study` and its evaluation store
(``evaluations.jsonl``; a re-run never re-evaluates) -> report (each searcher's results in
``search/<searcher>/``; at the top, the latest searcher's ``architecture.json`` and
``report.json`` and a ``report.md`` comparing every searcher run so far) -> optionally retrain
the frozen found architecture from scratch (``retrain/``).

Everything is checked before any work (:meth:`Pipeline.check`: the device, the searcher and its
options, the optimizer settings, the provenance of what the run directory already holds, the
data), one process at a time works in a run directory (``RUN/.lock``), and ``config.yaml`` is
pinned only once work starts. ``supernet.pt``, ``checkpoint.pt`` and the evaluation store record
the identity of the config that made them (:func:`oneshot.run.provenance`); a mismatch is refused.
A diverged training is never saved as ``supernet.pt`` nor searched; ``diverged.json`` records it
and the run may be restarted from its last good checkpoint with a lower ``train.lr`` (see
``docs/pipeline.md``).

Everything a stage produces is written atomically, so a run killed at any moment resumes from
what it left behind when the same command is run again. Under ``torchrun`` every process runs the
same stages: supernet training is data-parallel, evaluations are split by the study's executor,
and rank 0 writes the run files (see ``docs/distributed.md``).

(Not split further, at about 500 lines, because it is the one place where the stages meet and the checks before any
work live; the report stage is in ``oneshot.report_stage``, retraining and export in
``oneshot.retrain_stage``, training in ``oneshot.train``, evaluation in ``oneshot.study``.)
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from oneshot.config import RunConfig
from oneshot.cost import CostConstraint, CostModel, build_constraint, has_limits
from oneshot.distributed import (
    broadcast_object,
    get_rank,
    get_world_size,
    init_distributed,
    is_main,
    local_device,
)
from oneshot.errors import CheckpointError, ConfigError, TrainingDiverged
from oneshot.interrupts import raise_if_interrupted
from oneshot.report_stage import ReportStage
from oneshot.retrain_stage import RetrainStage
from oneshot.run import RUN_FILES, RunDir, check_provenance, fault_point, provenance, resolve_config
from oneshot.sampling import build_sampler
from oneshot.search import (
    COST_METRICS,
    Objective,
    SearchResult,
    build_searcher,
    get_searcher_class,
    parse_objectives,
)
from oneshot.search.base import Searcher
from oneshot.space import Architecture, SearchSpace
from oneshot.study import Racing, Study
from oneshot.tasks import Stage, Task, get_task
from oneshot.train import StandaloneTrainer, SupernetTrainer, load_checkpoint, save_checkpoint
from oneshot.train.checkpoint import all_finite, nonfinite_tensors, peek_checkpoint, read_provenance

__all__ = ["Pipeline", "open_run", "RUN_FILES"]

log = logging.getLogger("oneshot")


def open_run(
    task_name: str,
    *,
    run_dir: str | Path | None,
    preset: str | None = None,
    config_path: str | Path | None = None,
    overrides: Sequence[str] = (),
    device: str | None = None,
    progress: bool = True,
    read_only: bool = False,
) -> Pipeline:
    """Resolve the config of a run, check the device, and open its directory.

    An existing run keeps its config: options given again must agree with it on everything that
    defines the supernet and the evaluations (all but ``device``, ``threads``, ``search`` and
    ``retrain``). Unless ``read_only`` (evaluating or exporting what the run holds), the run
    directory must be writable and this process takes its lock (one line naming the holder's pid
    when another process has it). The config is pinned in ``config.yaml`` only when a stage starts
    working (:meth:`Pipeline.train_supernet`, :meth:`~Pipeline.search`, :meth:`~Pipeline.retrain`).

    Launched by ``torchrun``, this joins the process group first (gloo on CPU, NCCL for CUDA).
    """
    init_distributed()
    task_cls = get_task(task_name)
    run = RunDir(run_dir if run_dir is not None else Path("runs") / f"{task_cls.name}-{preset or task_cls.default_preset()}")
    config = resolve_config(task_name, task_cls, run, preset=preset, config_path=config_path, overrides=overrides)
    if device is not None:
        config.device = device
    check_device(config.device)
    if not read_only:
        run.run_on_main(run.lock, "locking the run directory")
    return Pipeline(task_cls, config, run.root, progress=progress, read_only=read_only, task_name=task_name)


def check_device(device: str) -> None:
    """One line for a device this machine cannot use: cpu, cuda, cuda:N (or mps)."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        parsed = None
    if parsed is None or parsed.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device {device!r} is not supported; use cpu, cuda or cuda:N")
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} requested but CUDA is not available on this machine")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ConfigError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {device!r} requested but MPS is not available on this machine")


class Pipeline(ReportStage, RetrainStage):
    """Runs the stages of one search job for a task in ``run_dir``."""

    def __init__(
        self,
        task_cls: type[Task],
        config: RunConfig,
        run_dir: Path,
        *,
        progress: bool = True,
        read_only: bool = False,
        task_name: str | None = None,
    ) -> None:
        self.task_cls = task_cls
        self.task_name = task_name or task_cls.name
        self.config = config
        self.run = RunDir(run_dir)
        self.run_dir = self.run.root
        self.read_only = read_only
        if not read_only:
            self.run.ensure_writable()
        self.progress = progress and is_main()
        check_device(config.device)
        self.device = local_device(config.device)  # "cuda" is cuda:LOCAL_RANK under torchrun
        if config.threads is not None:
            torch.set_num_threads(config.threads)
        self.task = task_cls(config, device=self.device, progress=self.progress)
        self._data_ready = False
        self._evaluated = 0  # evaluations computed by this process (for fault_point)
        self._supernet_steps: int | None = None
        self._cost_model: CostModel | None = None
        self._checked: set[str] = set()
        self._pinned = False
        self.identity = provenance(config)
        if self.run.writable():
            self._attach_log_file()

    def path(self, key: str) -> Path:
        return self.run.path(key)

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
            self.run.run_on_main(self.task.prepare_data, "preparing the data")
            if not is_main():
                self.task.prepare_data()
            self._data_ready = True
            log.info("data ready (%.1f s)", time.perf_counter() - t0)

    # ----------------------------------------------------------------- checks before any work
    def check(self, *, search: bool = False) -> None:
        """Everything that can be checked before any work, cheapest first, each once: what the
        run directory already holds was made by this config; the optimizer settings; with
        ``search``, the searcher and its options and the evaluation store; then the data
        (:meth:`prepare_data`: the task's validation, e.g. a full decode of every file)."""
        if "artefacts" not in self._checked:
            self.check_artefacts()
            self._checked.add("artefacts")
        if "config" not in self._checked:
            torch.manual_seed(self.config.seed)
            model = self.task.build_supernet()
            if not self.path("supernet").exists():
                try:
                    self.task.build_optimizer(model, stage="supernet")
                except (ValueError, KeyError, TypeError) as exc:
                    raise ConfigError(f"train: {exc}") from None
            self._space = SearchSpace.from_module(model)
            del model
            self._checked.add("config")
        if search and "search" not in self._checked:
            self.build_searcher(self._space)
            if self.path("store").exists() and self.path("supernet").exists():
                self._store_file(self._space)  # header and provenance, before the data is read
            elif self.path("store").exists():  # no supernet yet: its config, before training one
                check_provenance(str(self.path("store")), self._store_header().get("provenance"), self.identity)
            self._checked.add("search")
        self.prepare_data()

    def check_artefacts(self) -> None:
        """Refuse a ``supernet.pt`` or ``checkpoint.pt`` made by another config (one line naming
        the differing sections), whether or not ``config.yaml`` exists. Cheap: memory-mapped."""
        supernet, ckpt = self.path("supernet"), self.path("checkpoint")
        if broadcast_object(supernet.exists()):
            check_provenance(str(supernet), read_provenance(supernet), self.identity)
        elif broadcast_object(ckpt.exists()):
            check_provenance(str(ckpt), read_provenance(ckpt), self.identity, recovering=self.run.divergence() is not None)

    def _begin_work(self) -> None:
        """Pin the config in ``config.yaml`` once a stage starts working (never before the checks,
        so that a run that fails them leaves nothing that would refuse the corrected config)."""
        if self.read_only or self._pinned:
            return
        self.run.pin_config(self.task_name, self.config)
        self._pinned = True

    # ----------------------------------------------------------------- training
    def _trainer(self, model: nn.Module, *, stage: Stage, run_dir: Path, batch_seed: int, sampler: Any = None, after_step: Any = None) -> SupernetTrainer:
        """The trainer of the supernet (``stage="supernet"``) or of a frozen model (``"retrain"``),
        with the task's optimizer and schedule for that stage."""
        cfg = self.config.train if stage == "supernet" else self.config.retrain
        optimizer, scheduler = self.task.build_optimizer(model, stage=stage)
        common: dict[str, Any] = dict(
            batches=self.task.train_batches(seed=batch_seed, shard=(get_rank(), get_world_size()), batch_size=cfg.batch_size),
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
        )
        if stage == "retrain":
            return StandaloneTrainer(model, **common)
        return SupernetTrainer(model, sampler=sampler, sync_batchnorm=bool(self.config.train.sync_batchnorm), **common)

    def load_supernet(self) -> nn.Module:
        """The trained supernet from ``supernet.pt``."""
        path = self.path("supernet")
        payload = load_checkpoint(path, map_location=self.device)
        model = self.task.build_supernet()
        if payload.get("space") != SearchSpace.from_module(model).signature():
            raise CheckpointError(f"{path} was trained for a different search space")
        check_provenance(str(path), payload.get("provenance"), self.identity)
        bad = nonfinite_tensors(payload.get("model", {}))
        if bad:
            raise CheckpointError(f"{path} holds non-finite parameters (in {bad[0]}); it cannot be evaluated: delete it and train again")
        try:
            model.load_state_dict(payload["model"])
        except (RuntimeError, KeyError) as exc:
            raise CheckpointError(f"{path} does not fit the supernet: {str(exc).splitlines()[0]}") from None
        self._supernet_steps = payload.get("steps")
        model.eval()
        return model

    def train_supernet(self) -> nn.Module:
        """Train the supernet (resuming from ``checkpoint.pt``), or load ``supernet.pt`` if done."""
        self.check()
        self._begin_work()
        if broadcast_object(self.path("supernet").exists()):
            log.info("reusing trained supernet %s", self.path("supernet"))
            return self.load_supernet()
        cfg = self.config.train
        torch.manual_seed(self.config.seed)
        model = self.task.build_supernet()
        space = SearchSpace.from_module(model)
        try:
            sampler = build_sampler(cfg.sampler, space, seed=self.config.seed, window_size=cfg.paths_per_step)
        except ValueError as exc:
            raise ConfigError(f"train.paths_per_step: {exc}") from None
        trainer = self._trainer(
            model, stage="supernet", run_dir=self.run_dir, batch_seed=self.config.seed, sampler=sampler,
            after_step=lambda step: fault_point("train", step),
        )
        divergence = self.run.divergence()
        trainer.extra_state = {"provenance": self.identity}
        trainer.resume_check = lambda state: check_provenance(
            str(self.path("checkpoint")), state.get("provenance"), self.identity, recovering=divergence is not None
        )
        if divergence is not None:
            log.info("restarting a diverged training (%s) with train.lr=%g, train.grad_clip=%s", divergence.get("reason", "?"), cfg.lr, cfg.grad_clip)
        log.info("training supernet: %d steps of %d paths x %d images", cfg.iterations, sampler.window_size, cfg.batch_size)
        try:
            result = trainer.fit(cfg.iterations)
        except TrainingDiverged as exc:
            raise self._diverged(exc) from None
        if result.resumed_from is not None:
            log.info("resumed from step %d", result.resumed_from)
        if not all_finite(model.state_dict().values()):  # the trainer checks too; never save one
            raise self._diverged(TrainingDiverged("", step=result.steps, reason="the parameters are not finite", last_good=None))
        payload = {
            "model": model.state_dict(), "space": space.signature(), "losses": result.history, "steps": result.steps,
            "provenance": self.identity, "recovered_from": [divergence] if divergence is not None else [],
        }
        self.run.run_on_main(lambda: save_checkpoint(self.path("supernet"), payload), "writing the supernet")
        if divergence is not None:
            self.run.run_on_main(lambda: self.path("diverged").unlink(missing_ok=True), "clearing diverged.json")
        self._supernet_steps = result.steps
        log.info(
            "supernet trained: %d steps (%d in this run, %.1f s), final loss %.4f",
            result.steps, result.steps_this_run, result.seconds, result.history[-1] if result.history else float("nan"),
        )
        self.run.run_on_main(lambda: self._plot_training_loss(result.history), "plotting the training loss")
        model.eval()
        return model

    def _diverged(self, exc: TrainingDiverged) -> TrainingDiverged:
        """Record a diverged training in ``diverged.json`` (which lets ``train.lr`` and
        ``train.grad_clip`` change on this run) and say, on one line, what to try."""
        cfg = self.config.train
        record = {"step": exc.step, "reason": exc.reason, "last_good": exc.last_good, "lr": cfg.lr, "grad_clip": cfg.grad_clip}
        self.run.write_json(self.path("diverged"), record)
        clip = (
            f"lower train.grad_clip (now {cfg.grad_clip:g})" if cfg.grad_clip is not None
            else "enable gradient clipping (e.g. --set train.grad_clip=1.0)"
        )
        restart = (
            f"training restarts from the last good checkpoint (step {exc.last_good})"
            if exc.last_good is not None else "training restarts from scratch (no checkpoint was written)"
        )
        message = (
            f"supernet training diverged at step {exc.step} ({exc.reason}); lower train.lr (now {cfg.lr:g}, "
            f"e.g. --set train.lr={cfg.lr / 10:g}) or {clip} and run the same command again: {restart}; "
            "nothing was saved as supernet.pt"
        )
        return TrainingDiverged(message, step=exc.step, reason=exc.reason, last_good=exc.last_good)

    def _plot_training_loss(self, losses: list[float]) -> None:
        if losses:
            from oneshot.viz import plot_training_loss

            plot_training_loss(losses, path=self.run_dir / "training_loss.png")

    # ----------------------------------------------------------------- evaluation and search
    def study(self, model: nn.Module, *, split: str = "search", store: bool = True, searching: bool = False) -> Study:
        """The study through which architectures are evaluated on ``model``: with the run's
        evaluation store for the ``search`` split (unless ``store=False``), in memory otherwise.
        One architecture per call, so each result reaches the store as soon as it exists. When
        the search's objectives name costs (FLOPs, parameters, latency), they are recorded too."""
        cost_keys = self._cost_keys()
        costs = self.cost_model(model) if cost_keys else None

        racing = self._racing() if split == "search" else None

        def fitness(arch: Architecture, fraction: float = 1.0) -> dict[str, Any]:
            raise_if_interrupted()
            if searching:
                fault_point("search", self._evaluated)
            partial = {"fraction": fraction} if fraction < 1.0 else {}
            metrics = self.task.evaluate(model, [arch], split=split, **partial)[0]
            self._evaluated += 1
            if costs is not None:
                metrics = {**metrics, **costs.metrics(arch, cost_keys)}
            return metrics

        use_store = store and split == "search" and self.run.writable()
        space = SearchSpace.from_module(model)
        if use_store:
            self._store_file(space)
        return Study(
            fitness, store=self.path("store") if use_store else None, space=space if use_store else None, racing=racing
        )

    def store_provenance(self) -> dict[str, Any]:
        """What the run's evaluations depend on: the config identity and the supernet's steps."""
        steps = self._supernet_steps
        if steps is None and self.path("supernet").exists():
            steps = peek_checkpoint(self.path("supernet")).get("steps")
        return {**self.identity, "supernet_steps": steps}

    def _store_header(self) -> dict[str, Any]:
        from oneshot.search.store import EvaluationStore

        with open(self.path("store"), "rb") as fh:
            first = fh.readline()
        try:
            header = json.loads(first)
        except ValueError:
            header = None
        if not isinstance(header, dict) or header.get("type") != "header":
            EvaluationStore(self.path("store"), space=self._space)  # raises the repair advice
            return {}
        return header

    def _store_file(self, space: SearchSpace) -> None:
        """Create the store's header with its provenance, or check an existing one (once)."""
        from oneshot.search.store import EvaluationStore

        if "store" in self._checked:
            return
        record = self.store_provenance()
        self.run.run_on_main(lambda: EvaluationStore(self.path("store"), space=space, provenance=record), "opening the evaluation store")
        self._checked.add("store")

    def _racing(self) -> Racing | None:
        cfg = self.config.search.racing
        if cfg.fraction is None:
            return None
        if not self.task_cls.supports_fraction:
            raise ConfigError(f"search.racing: task {self.task_cls.name!r} cannot score a fraction of its search split")
        return Racing(fraction=cfg.fraction, top_k=cfg.top_k, z=cfg.z, min_pairs=cfg.min_pairs)

    def evaluate_archs(self, model: nn.Module, archs: Sequence[Architecture], *, split: str = "search") -> list[dict[str, Any]]:
        """Evaluate architectures through the study (never twice); metrics dicts in order."""
        return [{"fitness": e.fitness, **e.metrics} for e in self.study(model, split=split).evaluate(archs, full=True)]

    # ----------------------------------------------------------------- costs and objectives
    def objectives(self) -> tuple[Objective, ...]:
        return parse_objectives(self.config.search.objectives)

    def _cost_keys(self) -> list[str]:
        return sorted({o.name for o in self.objectives()} & COST_METRICS)

    def cost_model(self, model: nn.Module) -> CostModel:
        """FLOPs, parameters and latency of ``model``'s architectures at the task's example input,
        on the run's device; latency from ``latency_table.json`` when the run has one (built by
        ``oneshot latency-table``), else measured."""
        if self._cost_model is not None and self._cost_model.model is model:
            return self._cost_model
        from oneshot.latency_table import LatencyTable

        table_path = self.run_dir / "latency_table.json"
        table = LatencyTable.load(table_path) if table_path.exists() else None
        self._cost_model = CostModel(model, self.task.example_input(), table=table)
        return self._cost_model

    def build_searcher(self, space: SearchSpace, model: nn.Module | None = None) -> Searcher:
        """The configured searcher (``search.searcher`` with ``search.options.<searcher>``), its
        objectives (multi-objective searchers) and cost constraint (``search.constraints``; needs
        ``model`` to measure costs)."""
        cfg = self.config.search
        options = dict(cfg.options.get(cfg.searcher, {}))
        try:
            cls = get_searcher_class(cfg.searcher)
            if getattr(cls, "multi_objective", False):
                options.setdefault("objectives", list(cfg.objectives))
            elif len(self.objectives()) > 1:
                raise ValueError(
                    f"searcher {cfg.searcher!r} optimises the fitness alone, but search.objectives names "
                    f"{len(self.objectives())}; use a multi-objective searcher (nsga2, mo-random)"
                )
            searcher = build_searcher(cfg.searcher, space, seed=self.config.seed, **options)
            if model is not None:
                searcher.constraint = build_constraint(self.cost_model(model), cfg.constraints) if has_limits(cfg) else None
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"search: {exc}") from None
        return searcher

    def _racing_cost(self, study: Study, result: SearchResult) -> dict[str, Any]:
        """What racing spent, in full evaluations: a partial one costs the share of the search
        split the task really scores (it may round a fraction up to whole batches)."""
        assert study.racing is not None
        full, part = self.task.evaluation_size("search"), self.task.evaluation_size("search", study.racing.fraction)
        share = part / full if full and part else study.racing.fraction
        return {"fraction": study.racing.fraction, "partial_share": share,
                "cost_in_full_evaluations": study.num_computed - study.num_partial * (1.0 - share),
                "partial_only": sum(h.fidelity < 1.0 for h in result.history)}

    def search(self, model: nn.Module | None = None) -> SearchResult:
        """Run the configured searcher on the supernet through the evaluation store."""
        model = model if model is not None else self.train_supernet()
        self.check(search=True)
        self._begin_work()
        searcher = self.build_searcher(SearchSpace.from_module(model), model)
        study = self.study(model, searching=True)
        log.info("search: %s, at most %d evaluations (%d already stored)", searcher.name, searcher.max_evaluations, len(study))
        start = time.perf_counter()
        result = study.optimize(searcher, progress=self.progress)
        result.extras["search_seconds_this_run"] = time.perf_counter() - start
        if isinstance(searcher.constraint, CostConstraint):
            result.extras["constraint"] = searcher.constraint.to_json()
            log.info("constraint %s: %d draws rejected", searcher.constraint.limits, searcher.constraint.rejected)
        if study.racing is not None:
            result.extras["racing"] = self._racing_cost(study, result)
        text = json.dumps(result.to_json(), indent=1)
        for folder in (self.run.searcher_dir(result.searcher), self.run_dir):
            self.run.write_text(folder / RUN_FILES["search_result"], text)
            self.run.run_on_main(lambda f=folder: result.best.save(f / RUN_FILES["architecture"]), "writing the architecture")
        log.info("search done: %d architectures evaluated; best %s", result.num_evaluated, result.best.key)
        return result
