"""Model-selecting search: one fair design, then the model that predicts it better (beyond the paper).

Two searchers of this package are each best on one kind of table with few noisy evaluations
(docs/benchmark-runs/noisy-search.md): ``saturating-additive`` where the effect of a choice keeps
its sign whatever the other layers are (NAS-Bench-Macro), ``surrogate`` where choices interact
(an op that disconnects a path makes the others irrelevant). Which kind a table is can be read off
the first evaluations, so this searcher:

1. **Designs**: evaluates strictly fair windows (every choice of every layer equally often) up to
   ``quick_check`` evaluations (the surrogate's own design size). By default the windows also
   balance every pair of layers across windows (``design="fair-balanced"``): the saturating
   model's effects are then estimated nearly independently, which both its test against the GP
   and its pick need.
2. **Selects a model** by ``folds``-fold cross-validated squared error of the saturating additive
   model against the surrogate's Gaussian process, both fitted on the design. If the saturating
   model's error is more than ``quick_ratio`` times the GP's, the table has interactions: the rest
   of the budget goes to the surrogate (GP-UCB, best posterior mean), which then runs exactly as
   ``surrogate`` alone with ``complexity_penalty`` (a penalty on its interaction terms).
   Otherwise the design grows to ``first_check`` evaluations and the test is
   repeated with ``early_ratio``, then to ``second_check`` with ``late_ratio``.
3. **If the saturating model wins**, it probes its own top: ``probes`` evaluations of the
   highest-scoring combinations not yet evaluated (refitting after each). Near the top a
   saturating table is compressed, so the model's misfit there is small and the spread of the
   measured values around the model's predictions is the noise. If that spread is below
   ``noiseless_ratio`` times the spread of all measurements, the measurements are taken as exact:
   the rest of the budget goes to the next combinations of highest score and the best *measured*
   architecture is returned. Otherwise the measurements are noisy: the rest goes to more fair
   windows (the saturating model's design) and the argmax of the model's score is returned,
   evaluated last (a single noisy measurement does not decide the pick).

Where every layer has the same choices (the same op list at every layer), both models share the
effect of a choice across layers: the saturating model's effects are a shared effect per choice
index plus each layer's deviation (``deviation_ridge``), and the GPs may give ``shared_weight`` of
their kernel to such shared effects (weighed against the plain kernel by marginal likelihood). An
op that helps one layer tends to help the others, so each layer's few noisy measurements borrow
strength from all layers (docs/benchmark-runs/noisy-search.md: NAS-Bench-Macro from 1.05 to
0.62 % at 60 evaluations, sigma 1).

Every model here sees the measurements with failed ones clipped (``clip_outliers``, see
:mod:`oneshot.search.outliers`): a network at chance level would otherwise dominate the
cross-validated squared errors of both models, and inflate the spread of all measurements so that
noisy probes look exact.

The surrogate branch continues exactly as ``surrogate`` would after a fair design of the same
windows (its first batches are answered from the design, never evaluated twice).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from oneshot.sampling import build_sampler
from oneshot.search.base import BudgetSearcher, SearchError
from oneshot.search.match_kernel import MatchKernelGP, shared_grid
from oneshot.search.options import SearcherOptions
from oneshot.search.outliers import clip_low_outliers
from oneshot.search.path_priority import Design, ranked_combinations
from oneshot.search.saturating import SaturatingAdditiveModel
from oneshot.search.surrogate import SurrogateSearcher
from oneshot.space import Architecture

__all__ = ["ModelSelectOptions", "ModelSelectSearcher", "cross_validated_error_ratio"]

Phase = Literal["design", "surrogate", "probe", "exploit", "fair", "final", "done"]


def cross_validated_error_ratio(
    choices: np.ndarray,
    y: np.ndarray,
    fit_a: Callable[[np.ndarray, np.ndarray], Callable[[np.ndarray], np.ndarray]],
    fit_b: Callable[[np.ndarray, np.ndarray], Callable[[np.ndarray], np.ndarray]],
    *,
    folds: int = 10,
) -> float:
    """Sum of squared ``folds``-fold cross-validation errors of model ``a`` over model ``b``.

    ``choices``: ``(n, L)`` integer choices; ``y``: ``(n,)`` values. ``fit_x(choices, y)`` returns a
    predictor ``(m, L) -> (m,)``. Fold ``f`` holds the rows ``i`` with ``i % folds == f``.
    """
    n = len(y)
    folds = max(2, min(folds, n))
    fold = np.arange(n) % folds
    err_a = err_b = 0.0
    for f in range(folds):
        train, test = fold != f, fold == f
        for fit, is_a in ((fit_a, True), (fit_b, False)):
            e = float(((fit(choices[train], y[train])(choices[test]) - y[test]) ** 2).sum())
            if is_a:
                err_a += e
            else:
                err_b += e
    return err_a / max(err_b, 1e-300)


class ModelSelectOptions(SearcherOptions):
    """Options of :class:`ModelSelectSearcher`."""

    budget: int = Field(60, ge=2)
    design: Design = "fair-balanced"
    quick_check: int | None = Field(18, ge=2)
    quick_ratio: float = Field(1.5, gt=0.0)
    first_check: int = Field(30, ge=2)
    second_check: int = Field(45, ge=2)
    early_ratio: float = Field(1.5, gt=0.0)
    late_ratio: float = Field(1.2, gt=0.0)
    folds: int = Field(10, ge=2)
    probes: int = Field(3, ge=0)
    noiseless_ratio: float = Field(0.1, ge=0.0)
    ridge: float = Field(1.0, gt=0.0)
    deviation_ridge: float | None = Field(10.0, gt=0.0)
    shared_weight: float = Field(0.5, ge=0.0, lt=1.0)
    clip_outliers: float | None = Field(6.0, gt=0.0)
    select: Literal["posterior", "ensemble"] = "posterior"
    complexity_penalty: float = Field(5.0, ge=0.0)
    top_k: int = Field(3, ge=1)
    max_tries: int = Field(1000, ge=1)

    @model_validator(mode="after")
    def _checks_in_order(self) -> ModelSelectOptions:
        if self.second_check < self.first_check:
            raise ValueError(f"second_check ({self.second_check}) must be >= first_check ({self.first_check})")
        if self.quick_check is not None and self.quick_check > self.first_check:
            raise ValueError(f"quick_check ({self.quick_check}) must be <= first_check ({self.first_check})")
        return self


class ModelSelectSearcher(BudgetSearcher):
    """Fair design; cross-validation picks the saturating additive model or the GP surrogate.

    Args:
        space: the search space.
        budget: distinct architectures evaluated in all.
        seed: seed of the fair windows (and of the surrogate's candidates).
        design: ``"fair-balanced"`` windows (default: layer pairs balanced across windows too, see
            :class:`~oneshot.sampling.PairBalancedFairSampler`) or plain ``"fair"`` ones; the
            surrogate branch continues from the same windows.
        quick_check, first_check, second_check: design sizes of the three model tests (at most
            0.3, half and three quarters of the budget; rounded down to whole fair windows, at
            least one; of tests of equal size only the last is made; ``quick_check=None``: no
            quick test).
        quick_ratio, early_ratio, late_ratio: the surrogate is chosen when the saturating model's
            cross-validated squared error exceeds this multiple of the GP's at the quick / first /
            second test (the last test made always uses ``late_ratio``).
        folds: cross-validation folds.
        probes: evaluations of the saturating model's top combinations that decide whether the
            measurements are exact (0: always treat them as noisy).
        noiseless_ratio: the probes' residual std, over the std of all measurements, under which
            the measurements are taken as exact.
        ridge: the saturating model's ridge (see :class:`SaturatingAdditiveModel`).
        deviation_ridge: where every layer has the same choices, the saturating model's effects are
            a shared effect per choice index plus each layer's deviation, penalised with this
            weight (10 by default; ``None``: independent effects; see
            :class:`SaturatingAdditiveModel`).
        shared_weight: where every layer has the same choices, the GPs (the model test's and the
            surrogate branch's) may also give this share of their kernel to effects shared by a
            choice index across layers (0.5 by default; 0: never; see :class:`MatchKernelGP`).
        clip_outliers: measurements more than this many robust standard deviations below the
            median are raised to that bound before any model sees them: the fits, the model test,
            the noise test and the surrogate branch (:func:`clip_low_outliers`; ``None``: off).
        select: the surrogate branch's final pick (see :class:`SurrogateSearcher`).
        complexity_penalty: the surrogate branch's penalty on its pairwise and local kernel terms
            (5 by default, where ``surrogate``'s own default is 0; see :class:`SurrogateSearcher`;
            the model test's GP is never penalised).
        top_k: number of architectures in ``result.top_k``.
        max_tries: with a constraint, combinations (highest score first) tried per pick.
    """

    name = "model-select"
    budget_arg = "budget"
    Options = ModelSelectOptions
    options: ModelSelectOptions

    def _setup(self) -> None:
        window = self.space.window_size
        self._sampler = build_sampler(self.design, self.space, seed=self.seed)
        self._windows = 0  # fair windows drawn so far (empty ones included, as the surrogate counts)
        planned = [(self.quick_check, 0.3, self.quick_ratio), (self.first_check, 0.5, self.early_ratio),
                   (self.second_check, 0.75, self.late_ratio)]
        sizes = [
            (max(window, int(min(c, fraction * self.budget)) // window * window), ratio)
            for c, fraction, ratio in planned
            if c is not None
        ]
        # (design size, threshold) of each test; of tests of equal size only the last is kept
        self._checks = [check for i, check in enumerate(sizes) if i + 1 == len(sizes) or sizes[i + 1][0] > check[0]]
        self._evaluated: dict[Architecture, float] = {}
        self._phase: Phase = "design"
        self._ratios: list[float] = []
        self._probes: list[Architecture] = []
        self._noise_ratio: float | None = None
        self._final: Architecture | None = None
        self._inner: SurrogateSearcher | None = None
        self._model_cache: tuple[int, SaturatingAdditiveModel] | None = None

    # ----------------------------------------------------------------- ask / tell
    def _ask(self) -> list[Architecture]:
        while True:
            remaining = self.budget - len(self._evaluated)
            if self._phase == "design":
                target = self._checks[len(self._ratios)][0] if len(self._ratios) < len(self._checks) else self.budget
                if len(self._evaluated) < min(target, self.budget):
                    batch = self._next_window()
                    if batch is not None:
                        if batch:
                            return batch
                        continue
                self._decide()
            elif self._phase == "surrogate":
                return self._surrogate_ask()
            elif self._phase in ("probe", "exploit"):
                if remaining <= 0 or (self._phase == "probe" and len(self._probes) >= self._probe_count()):
                    self._after_probes() if self._phase == "probe" else self._finish()
                    continue
                arch = self._best_unevaluated()
                if arch is None:
                    self._after_probes() if self._phase == "probe" else self._finish()
                    continue
                if self._phase == "probe":
                    self._probes.append(arch)
                return [arch]
            elif self._phase == "fair":
                if remaining > 1:
                    batch = self._next_window(limit=remaining - 1)
                    if batch:
                        return batch
                    if batch is not None:
                        continue
                self._phase = "final"
            elif self._phase == "final":
                self._final = self._ranked(1)[0]
                self._phase = "done"
                if self._final not in self._evaluated and remaining > 0:
                    return [self._final]
            else:
                return []

    def _tell(self, results: list[tuple[Architecture, float]]) -> None:
        for arch, fitness in results:
            self._evaluated.setdefault(arch, fitness)
        if self._phase == "surrogate" and self._inner is not None:
            self._inner.tell(results)

    def _next_window(self, limit: int | None = None) -> list[Architecture] | None:
        """New feasible architectures of the next fair window (``[]``: the window had none;
        ``None``: windows keep coming back empty, the design stops)."""
        if self._windows > 50 * self.budget + 100:
            return None
        self._windows += 1
        batch = list(dict.fromkeys(a for a in self._sampler.next_window() if a not in self._evaluated and self.is_feasible(a)))
        return batch[: limit if limit is not None else self.budget - len(self._evaluated)]

    # ----------------------------------------------------------------- decisions
    def _decide(self) -> None:
        """A model test at the end of a design stage (or go straight on if too little was measured)."""
        if not self._evaluated:
            raise SearchError(f"{self.name}: the constraint rejected every architecture of the fair windows")
        archs = list(self._evaluated)
        x = np.array([a.choices for a in archs], dtype=np.int64)
        y = self._values(archs)
        if len(y) < 4 or float(y.std()) == 0.0:
            ratio = float("inf") if len(self._ratios) == 0 else 0.0
        else:
            ratio = cross_validated_error_ratio(x, y, self._fit_saturating, self._fit_gp, folds=self.folds)
        self._ratios.append(ratio)
        following = self._checks[len(self._ratios)][0] if len(self._ratios) < len(self._checks) else None
        last = following is None or following <= len(self._evaluated) or len(self._evaluated) >= self.budget
        if ratio > (self.late_ratio if last else self._checks[len(self._ratios) - 1][1]):
            self._start_surrogate()
        elif last:
            self._phase = "probe"
        # else: the design grows to the next test

    def _values(self, archs: list[Architecture]) -> np.ndarray:
        """The measurements of ``archs`` as the models see them (failed ones clipped)."""
        return clip_low_outliers([self._evaluated[a] for a in archs], mads=self.clip_outliers)

    def _fit_saturating(self, x: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        return self._saturating_model().fit(x, y).predict

    def _fit_gp(self, x: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        return MatchKernelGP(self.space.num_choices, shared_grid=shared_grid(self.shared_weight)).fit(x, y).averaged_mean

    def _saturating_model(self) -> SaturatingAdditiveModel:
        return SaturatingAdditiveModel(self.space.num_choices, ridge=self.ridge, deviation_ridge=self.deviation_ridge)

    def _probe_count(self) -> int:
        # keep one evaluation for the noisy branch's pick
        return max(0, min(self.probes, self.budget - len(self._evaluated) + len(self._probes) - 1))

    def _after_probes(self) -> None:
        """Exact or noisy measurements? Decides the rest of the saturating branch."""
        if len(self._probes) >= 2:
            model = self.model()
            archs = list(self._evaluated)
            y = self._values(archs)
            probes = np.array([a.choices for a in self._probes], dtype=np.int64)
            residuals = np.array([self._evaluated[a] for a in self._probes]) - model.predict(probes)
            self._noise_ratio = float(residuals.std(ddof=1) / (y.std() or 1.0))
        exact = self._noise_ratio is not None and self._noise_ratio < self.noiseless_ratio
        self._phase = "exploit" if exact else "fair"

    def _finish(self) -> None:
        self._phase = "done"

    # ----------------------------------------------------------------- surrogate branch
    def _start_surrogate(self) -> None:
        self._phase = "surrogate"
        inner = SurrogateSearcher(
            self.space,
            budget=self.budget,
            seed=self.seed,
            design=self.design,
            top_k=self.top_k,
            max_tries=self.max_tries,
            clip_outliers=self.clip_outliers,
            select=self.select,
            complexity_penalty=self.complexity_penalty,
            shared_weight=self.shared_weight,
        )
        inner.constraint = self.constraint
        inner.init_cycles = self._windows  # its design is this searcher's windows, replayed below
        self._inner = inner

    def _surrogate_ask(self) -> list[Architecture]:
        """The inner surrogate's next batch; batches already evaluated are told from the design."""
        inner = self._inner
        assert inner is not None
        inner.constraint = self.constraint
        while True:
            batch = inner.ask()
            if not batch:
                return []
            if all(a in self._evaluated for a in batch):
                inner.tell([(a, self._evaluated[a]) for a in batch])
                continue
            if any(a in self._evaluated for a in batch):  # cannot happen: the surrogate never repeats
                raise SearchError(f"{self.name}: the surrogate asked for a mix of evaluated and new architectures")
            return batch

    # ----------------------------------------------------------------- saturating branch
    def model(self) -> SaturatingAdditiveModel:
        """The saturating additive model fitted on every evaluation so far."""
        if self._model_cache is None or self._model_cache[0] != len(self._evaluated):
            if not self._evaluated:
                raise SearchError(f"{self.name}: nothing was evaluated")
            archs = list(self._evaluated)
            x = np.array([a.choices for a in archs], dtype=np.int64)
            y = self._values(archs)
            fitted = self._saturating_model().fit(x, y)
            self._model_cache = (len(self._evaluated), fitted)
        return self._model_cache[1]

    def _ranked(self, k: int, *, new_only: bool = False) -> list[Architecture]:
        """Up to ``k`` feasible combinations of highest score (optionally not yet evaluated)."""
        effects = [e.tolist() for e in self.model().effects]
        out: list[Architecture] = []
        for tries, choices in enumerate(ranked_combinations(effects)):
            if len(out) >= k or tries >= self.max_tries:
                break
            arch = self.space.validate(list(choices))
            if self.is_feasible(arch) and not (new_only and arch in self._evaluated):
                out.append(arch)
        if not out and not new_only:
            feasible = [a for a in self._evaluated if self.is_feasible(a)]
            if not feasible:
                raise SearchError(f"{self.name}: the constraint rejects the best {self.max_tries} combinations")
            scores = self.model().score(np.array([a.choices for a in feasible]))
            out = [feasible[int(np.argmax(scores))]]
        return out

    def _best_unevaluated(self) -> Architecture | None:
        found = self._ranked(1, new_only=True)
        return found[0] if found else None

    # ----------------------------------------------------------------- result
    def _branch(self) -> str:
        if self._phase == "surrogate":
            return "surrogate"
        if self._noise_ratio is not None and self._noise_ratio < self.noiseless_ratio:
            return "saturating-exact"
        return "saturating-noisy" if self._phase in ("fair", "final", "done") else "design"

    def _select(self) -> tuple[Architecture, float | None]:
        if not self._evaluated:
            raise SearchError(f"{self.name}: nothing was evaluated")
        if self._inner is not None:
            return self._inner._select()
        if self._branch() == "saturating-exact":
            best = max(self._evaluated, key=self._evaluated.__getitem__)  # first of equals wins
            return best, self._evaluated[best]
        best = self._final if self._final is not None else self._ranked(1)[0]
        return best, self._evaluated.get(best)

    def _result_fields(self) -> dict[str, Any]:
        if not self._evaluated:
            return {}
        extras: dict[str, Any] = {
            "branch": self._branch(),
            "cv_error_ratios": [round(r, 4) for r in self._ratios],
            "probes": len(self._probes),
            "noise_ratio": self._noise_ratio,
        }
        if self._inner is not None:
            fields = self._inner._result_fields()
            fields["extras"] = {**fields.get("extras", {}), **extras}
            return fields
        if self._branch() == "saturating-exact":
            top = sorted(self._evaluated, key=lambda a: -self._evaluated[a])[: self.top_k]
        else:
            top = self._ranked(self.top_k)
        return {"top_k": top, "extras": extras}
