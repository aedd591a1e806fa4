"""The retrain and export stages of a run (a part of :class:`oneshot.pipeline.Pipeline`): a frozen
architecture trained from scratch (with its seed's own folder), compared with random ones, and
exported."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from oneshot.distributed import (
    broadcast_object,
    is_main,
)
from oneshot.errors import ConfigError
from oneshot.report import (
    RetrainComparison,
    RetrainResult,
    SearchReport,
)
from oneshot.space import Architecture, SearchSpace
from oneshot.supernet import freeze

if TYPE_CHECKING:
    from oneshot.pipeline import Pipeline

__all__ = ["RetrainStage"]

log = logging.getLogger("oneshot")


class RetrainStage:
    """The retrain and export methods of :class:`~oneshot.pipeline.Pipeline`."""

    # ----------------------------------------------------------------- retrain / export
    def found_architecture(self: Pipeline, space: SearchSpace, arch_path: str | Path | None = None) -> Architecture:
        path = Path(arch_path) if arch_path is not None else self.path("architecture")
        if not path.exists():
            raise ConfigError(f"no architecture at {path}; run `oneshot search` first or pass --arch")
        return Architecture.load(space, path)

    def retrain(
        self: Pipeline, arch: Architecture | None = None, *, arch_path: str | Path | None = None, seed: int | None = None
    ) -> RetrainResult:
        """Train the frozen architecture from scratch and evaluate it on ``val``.

        ``arch`` (or the architecture JSON at ``arch_path``, default the run's found one).
        ``seed`` (default the config's ``seed``) sets the model initialisation and the batch order;
        a seed other than the config's is kept in its own folder, ``retrain/<key>/seed-<seed>/``.
        """
        self.prepare_data()
        self._begin_work()
        run_seed = self.config.seed if seed is None else int(seed)
        torch.manual_seed(run_seed)
        supernet = self.task.build_supernet()
        if arch is None:
            arch = self.found_architecture(SearchSpace.from_module(supernet), arch_path)
        out_dir = self.retrain_dir(arch, seed=run_seed)
        out_dir.mkdir(parents=True, exist_ok=True)
        done = out_dir / "metrics.json"
        finished = self.run.read_json(done)
        if finished is not None:
            steps = int(finished.pop("retrain_steps", 0))
            log.info("reusing retrained %s (%s)", arch.key, done)
            return RetrainResult(arch, finished, steps)
        model = freeze(supernet, arch)
        trainer = self._trainer(model, stage="retrain", run_dir=out_dir, batch_seed=run_seed + 1)
        log.info("retraining %s: %d steps of %d images", arch.key, self.config.retrain.iterations, self.config.retrain.batch_size)
        result = trainer.fit(self.config.retrain.iterations, desc="retrain")
        model.eval()
        # every rank holds the same weights: rank 0 evaluates and writes, the others receive it
        metrics = broadcast_object(self.task.evaluate_standalone(model, split="val") if is_main() else None)
        retrained = RetrainResult(arch, dict(metrics), result.steps)
        self.run.run_on_main(lambda: torch.save(model.state_dict(), out_dir / "model_state.pt"), "writing the retrained model")
        self.run.write_json(done, retrained.to_json())
        # the report's picture grid gains the retrained column
        from oneshot.ship import write_prediction_grid

        self.run.run_on_main(lambda: write_prediction_grid(self, arch, retrained=model), "drawing predictions")
        log.info("retrained %s: %d steps (%d in this run, %.1f s); val fitness %.4f",
                 arch.key, result.steps, result.steps_this_run, result.seconds, float(metrics["fitness"]))
        return retrained

    def retrain_dir(self: Pipeline, arch: Architecture, *, seed: int | None = None) -> Path:
        """Where :meth:`retrain` keeps ``arch`` retrained with ``seed`` (``metrics.json`` once done)."""
        folder = self.run_dir / "retrain" / arch.key[:64]
        return folder if seed is None or int(seed) == self.config.seed else folder / f"seed-{int(seed)}"

    def retrain_compared(self: Pipeline, report: SearchReport, count: int | None = None) -> RetrainComparison:
        """Retrain the report's found architecture and its first ``count`` random baselines
        (default ``retrain.random_baselines``) the same way; the comparison is added to the
        report's files (report.json ``retrained``, a section of report.md)."""
        count = self.config.retrain.random_baselines if count is None else count
        found = self.retrain(report.found.arch)
        space = SearchSpace.from_module(self.task.build_supernet())
        randoms = [self.retrain(arch) for arch in self.random_baselines(space, count)]
        report.retrained = RetrainComparison(found, randoms)
        if randoms:
            log.info("retrained: found fitness %.4f, median of %d random %.4f (found ranks %d of %d)",
                     float(found.metrics["fitness"]), len(randoms), report.retrained.random_median_fitness,
                     report.retrained.found_rank, len(randoms) + 1)
        self._write_report(report)
        return report.retrained

    def export(self: Pipeline, arch: Architecture, output: Path, *, fmt: str = "state_dict") -> dict[str, Any]:
        """Export ``arch`` (retrained weights when the run has them, else the supernet's) in
        ``fmt`` (``state_dict``, ``torchscript``, ``onnx``; see :mod:`oneshot.ship`)."""
        from oneshot.ship import export_run

        return export_run(self, arch, output, fmt=fmt)
