"""The report stage of a run (a part of :class:`oneshot.pipeline.Pipeline`): the found and random
architectures evaluated the same way, the warnings when the supernet has not learned, each
searcher's report and the summary across searchers, the Pareto front and the plots."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from oneshot.cost import build_constraint, has_limits
from oneshot.errors import ArchitectureError
from oneshot.report import (
    ScoredArchitecture,
    SearchReport,
    learning_warnings,
    noise_tolerance,
    summary_markdown,
)
from oneshot.run import RUN_FILES
from oneshot.search import (
    SearchResult,
)
from oneshot.space import Architecture, SearchSpace

if TYPE_CHECKING:
    from oneshot.pipeline import Pipeline

__all__ = ["ReportStage"]

log = logging.getLogger("oneshot")


class ReportStage:
    """The report stage's methods of :class:`~oneshot.pipeline.Pipeline`."""

    # ----------------------------------------------------------------- report
    def random_baselines(self: Pipeline, space: SearchSpace, count: int, constraint: Any = None) -> list[Architecture]:
        """``count`` distinct random architectures, the same for every searcher of this run; with
        a ``constraint``, drawn among the architectures that satisfy it (as the search's were)."""
        rng = np.random.default_rng(self.config.seed + 7919)
        randoms: list[Architecture] = []
        for _ in range(1000 * max(1, count)):
            if len(randoms) >= min(count, space.size):
                break
            arch = space.sample(rng)
            if arch not in randoms and (constraint is None or constraint(arch)):
                randoms.append(arch)
        return randoms

    def report(self: Pipeline, model: nn.Module, result: SearchResult) -> SearchReport:
        """Evaluate the found and a few random architectures the same way; write the reports."""
        space = SearchSpace.from_module(model)
        study = self.study(model)
        found = study.evaluate([result.best], full=True)[0]
        constraint = build_constraint(self.cost_model(model), self.config.search.constraints) if has_limits(self.config.search) else None
        randoms = study.evaluate(self.random_baselines(space, self.config.search.random_baselines, constraint), full=True)
        report = SearchReport(
            task=self.task_cls.name,
            searcher=result.searcher,
            found=ScoredArchitecture(found.arch, {"fitness": found.fitness, **found.metrics}),
            random=[ScoredArchitecture(e.arch, {"fitness": e.fitness, **e.metrics}) for e in randoms],
            evaluations=result.num_evaluated,
            search_seconds=sum(h.wall_time for h in result.history),
            supernet_steps=self._supernet_steps,
            untrained=self._untrained_fitness(result.best),
            columns=tuple(self.task_cls.report_columns),
        )
        self._check_learning(report)
        # picture grid (oneshot.ship): a few val predictions, drawn before report.md links them
        from oneshot.ship import write_prediction_grid

        self.run.run_on_main(lambda: write_prediction_grid(self, result.best, supernet=model), "drawing predictions")
        self._write_report(report)
        self.run.run_on_main(lambda: self._plots(result, space, self.run.searcher_dir(result.searcher)), "plotting the search")
        if len(self.objectives()) > 1 or result.pareto:
            self.run.run_on_main(lambda: self._write_pareto(model, result, self.run.searcher_dir(result.searcher)), "writing the Pareto front")
        self._plot_summary(report, space)
        log.info(
            "report: found fitness %.4f, median of %d random %s; %s",
            report.found.fitness, len(report.random),
            "n/a" if report.random_median_fitness is None else f"{report.random_median_fitness:.4f}", self.path("report_md"),
        )
        return report

    def _write_pareto(self: Pipeline, model: nn.Module, result: SearchResult, folder: Path) -> None:
        """``pareto.json`` / ``pareto.png``; the hypervolume's reference point is the worst value
        of each objective among the evaluated architectures (the nadir), stated in the JSON."""
        from oneshot.pareto_report import write_pareto
        from oneshot.search import objective_values

        objectives = self.objectives()
        history = [h for h in result.history if all(o.name == "fitness" or o.name in h.metrics for o in objectives)]
        if not history:
            return
        values = np.array([objective_values(h.fitness, h.metrics, objectives) for h in history])
        reference = [float(col.min() if o.direction == "maximize" else col.max()) for o, col in zip(objectives, values.T, strict=True)]
        extra: dict[str, Any] = {"reference_point_rule": "the worst value of each objective among the evaluated architectures"}
        if self._cost_keys():
            extra["costs"] = self.cost_model(model).describe()
        if "constraint" in result.extras:
            extra["constraint"] = result.extras["constraint"]
        lines = self._reference_lines(model)
        if lines:
            extra["reference_architectures"] = lines
        write_pareto(folder / "pareto.json", folder / "pareto.png", history, objectives, reference,
                     marked=[result.best, *result.pareto], reference_lines=lines, extra=extra)

    def _reference_lines(self: Pipeline, model: nn.Module) -> dict[str, dict[str, float]]:
        """``{cost: {label: value}}`` of the task's published architectures that fit this space."""
        refs = self.task.reference_architectures()
        if not refs:
            return {}
        space, costs = SearchSpace.from_module(model), self.cost_model(model)
        lines: dict[str, dict[str, float]] = {}
        for label, obj in refs.items():
            try:
                arch = space.from_json(obj)
            except ArchitectureError as exc:
                log.warning("reference architecture %r does not fit this space: %s", label, exc)
                continue
            for key, value in costs.metrics(arch, ("flops", "params")).items():
                lines.setdefault(key, {})[label] = float(value)
        return lines

    # --- warning when the supernet has not learned (docs/pipeline.md, "When the supernet has not learned")
    def _check_learning(self: Pipeline, report: SearchReport) -> None:
        fitnesses = [report.found.fitness, *(r.fitness for r in report.random)]
        tolerance = noise_tolerance(fitnesses, self.config.search.noise_tolerance)
        untrained = report.untrained.get("fitness") if report.untrained else None
        report.warnings = learning_warnings(
            report.found.fitness, [r.fitness for r in report.random], None if untrained is None else float(untrained), tolerance
        )
        for warning in report.warnings:
            log.warning("the supernet may not have learned: %s", warning)

    def _write_report(self: Pipeline, report: SearchReport) -> None:
        """The searcher's report.json/report.md, and the run's summary of every searcher."""
        folder = self.run.searcher_dir(report.searcher)
        self.run.write_json(folder / RUN_FILES["report_json"], report.to_json())
        self.run.write_text(folder / RUN_FILES["report_md"], report.to_markdown())
        self._write_summary(report)

    def _searcher_names(self: Pipeline, latest: SearchReport) -> list[str]:
        return [n for n in self.run.searchers_run() if n != latest.searcher] + [latest.searcher]

    def _write_summary(self: Pipeline, latest: SearchReport) -> None:
        """The top of the run: the latest report (JSON), and every searcher compared (Markdown)."""
        names = self._searcher_names(latest)
        reports = [json.loads((self.run.searcher_dir(n) / RUN_FILES["report_json"]).read_text()) for n in names[:-1]]
        reports.append(latest.to_json())
        self.run.write_json(self.path("report_json"), {**latest.to_json(), "searchers": [r["searcher"] for r in reports]})
        from oneshot.ship import picture_grid_markdown

        self.run.write_text(self.path("report_md"), summary_markdown(reports) + "\n" + latest.to_markdown() + picture_grid_markdown(self.run_dir))

    def _plot_summary(self: Pipeline, latest: SearchReport, space: SearchSpace) -> None:
        names = self._searcher_names(latest)

        def plots() -> None:
            from oneshot import viz

            results = {}
            for name in names:
                path = self.run.searcher_dir(name) / RUN_FILES["search_result"]
                if path.exists():
                    results[name] = SearchResult.from_json(space, json.loads(path.read_text()))
            if results:
                viz.plot_explored_models(results, path=self.run_dir / "explored.png")
            scores = self.run.searcher_dir(latest.searcher) / "scores.png"
            if scores.exists():
                (self.run_dir / "scores.png").write_bytes(scores.read_bytes())

        self.run.run_on_main(plots, "plotting the searchers")

    def _untrained_fitness(self: Pipeline, arch: Architecture) -> dict[str, Any]:
        """Metrics of the found architecture on a freshly initialised supernet (cached in the run)."""
        cache = self.run_dir / "untrained.json"
        cached = self.run.read_json(cache)
        if cached is not None and cached.get("architecture") == arch.key:
            return cached["metrics"]  # type: ignore[no-any-return]
        torch.manual_seed(self.config.seed)
        entry = self.study(self.task.build_supernet(), store=False).evaluate([arch])[0]
        metrics = {"fitness": entry.fitness, **entry.metrics}
        self.run.write_json(cache, {"architecture": arch.key, "metrics": metrics})
        return metrics

    def _plots(self: Pipeline, result: SearchResult, space: SearchSpace, folder: Path) -> None:
        from oneshot import viz

        if result.score_table is not None:
            viz.plot_score_heatmap(result, space, path=folder / "scores.png")
        viz.plot_explored_models({result.searcher: result}, path=folder / "explored.png")

