"""Surrogate-model search for few noisy evaluations (beyond the paper).

The model is :class:`~oneshot.search.match_kernel.MatchKernelGP`, a Gaussian process with
additive, pairwise and short-range terms on matching layers (:mod:`oneshot.search.match_kernel`).

1. **Design**: the first ``init_fraction`` of the budget is whole fair windows (as path-priority).
2. **Acquire**: per batch, refit on every evaluation so far and pick the ``batch_size`` best
   not-yet-evaluated candidates by ``mean + beta * std`` (kriging believer: the variance of the
   other candidates shrinks after each pick, so a batch is not ``batch_size`` copies of one idea).
   ``beta`` decays linearly from ``beta`` to 0 over the budget, so the last batches exploit.
   Candidates are the whole space when it has at most ``max_enumerate`` architectures, otherwise
   ``num_random`` random architectures and the evaluated ones, improved by a few rounds of local
   search on the acquisition (all one-layer mutants of the 20 best).
3. **Select**: among evaluated architectures, the best *posterior mean* (the model's estimate
   given every measurement, which shrinks a lucky noisy measurement toward what its neighbours say),
   not the best single measurement (the winner's curse). The mean is averaged over the whole
   hyperparameter grid, weighted by marginal likelihood (``model_average``): with few noisy
   evaluations several kernels (with or without interactions) are about equally likely, and
   picking one of them by a hair made the choice jumpy. With ``select="ensemble"`` the pick is
   instead the best precision-weighted average of that mean and the prediction of a saturating
   additive model fitted on the same measurements (:class:`SaturatingAdditiveModel`; see
   :func:`ensemble_scores`): two models that err differently, each weighted by how sure it is.

Before every fit, measurements far below the rest (a network that did not train: more than
``clip_outliers`` robust standard deviations under the median) are raised to that bound
(:mod:`oneshot.search.outliers`): one chance-level value would otherwise set the scale of the
whole model, its noise estimate included.

No architecture is evaluated twice: a one-shot supernet's error on an architecture is a fixed bias
(evaluating it again gives the same value, as the tabular benchmarks model it), so a re-measurement
would spend budget for no information; the model pools neighbours' measurements instead.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from oneshot.search.base import BudgetSearcher, SearchError
from oneshot.search.match_kernel import MatchKernelGP, shared_grid
from oneshot.search.options import SearcherOptions
from oneshot.search.outliers import clip_low_outliers
from oneshot.search.path_priority import Design, fair_design
from oneshot.search.saturating import SaturatingAdditiveModel
from oneshot.space import Architecture

__all__ = ["MatchKernelGP", "SurrogateOptions", "SurrogateSearcher", "ensemble_scores"]

_LOCAL_ROUNDS = 3
_LOCAL_PARENTS = 20
_TS_POOL = 400


def ensemble_scores(gp_mean: np.ndarray, gp_std: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Precision-weighted average of a GP's posterior and another model's predictions, per architecture.

    ``gp_mean``, ``gp_std``: ``(n,)`` posterior mean and std of the GP at ``n`` evaluated
    architectures; ``other``: ``(n,)`` the other model's predictions there. The other model's
    error variance is taken as its mean squared distance from the GP's mean over the ``n``
    architectures (one number: it has no per-architecture uncertainty). Where the GP is sure (an
    exact measurement, ``gp_std`` near 0) its mean wins; where noise leaves it unsure, the other
    model's view of the whole table weighs in.
    """
    other_var = max(float(np.mean((other - gp_mean) ** 2)), 1e-12)
    gp_var = np.maximum(gp_std**2, 1e-12)
    return (gp_mean / gp_var + other / other_var) / (1.0 / gp_var + 1.0 / other_var)


class SurrogateOptions(SearcherOptions):
    """Options of :class:`SurrogateSearcher`."""

    budget: int = Field(60, ge=1)
    init_fraction: float = Field(0.3, gt=0.0, le=1.0)
    design: Design = "fair"
    batch_size: int | None = Field(None, ge=1)
    beta: float = Field(0.5, ge=0.0)
    acquisition: Literal["ucb", "thompson"] = "ucb"
    complexity_penalty: float = 0.0
    shared_weight: float = Field(0.0, ge=0.0, lt=1.0)
    model_average: bool = True
    select: Literal["posterior", "ensemble"] = "posterior"
    clip_outliers: float | None = Field(6.0, gt=0.0)
    max_enumerate: int = 20000
    num_random: int = Field(3000, ge=1)
    top_k: int = Field(3, ge=1)
    max_tries: int = Field(1000, ge=1)


class SurrogateSearcher(BudgetSearcher):
    """Fair-window design, then GP-UCB batches with a pairwise-interaction kernel; best posterior.

    Args:
        space: the search space.
        budget: number of distinct architectures evaluated in all.
        seed: seed of the fair windows and of the candidate sampling.
        init_fraction: share of the budget spent on whole fair windows (at least one window).
        design: ``"fair"`` windows or ``"fair-balanced"`` ones, whose layer pairs are balanced across
            windows too (:class:`~oneshot.sampling.PairBalancedFairSampler`).
        batch_size: architectures per :meth:`ask` after the design (default: ``budget // 15``,
            at least 1), i.e. per refit of the model and per call of a batch fitness.
        beta: initial weight of the posterior std in the acquisition (decays to 0 at the end).
        max_enumerate: spaces with at most this many architectures are scored exhaustively.
        num_random: random candidates per batch in larger spaces.
        complexity_penalty: nats added to the negative log marginal likelihood of a kernel for each
            of its pairwise and local terms (0: plain marginal likelihood).
        shared_weight: with the same choices at every layer, the kernel may also give this share of
            its additive part to effects shared by a choice index across layers (the marginal
            likelihood weighs the kernels with and without; 0: never; see :class:`MatchKernelGP`).
        model_average: select by the posterior mean averaged over the hyperparameter grid
            (``False``: the mean of the most likely hyperparameters).
        select: ``"posterior"``: return the evaluated architecture of best posterior mean;
            ``"ensemble"``: of best :func:`ensemble_scores` of that mean and a saturating additive
            model of the same measurements.
        clip_outliers: before each fit, measurements more than this many robust standard
            deviations below the median are raised to that bound (:func:`clip_low_outliers`;
            ``None``: fit them as measured).
        top_k: number of architectures in ``result.top_k`` (best posterior means, evaluated).
        max_tries: bound on the candidates examined per batch with a constraint.
    """

    name = "surrogate"
    budget_arg = "budget"
    Options = SurrogateOptions
    options: SurrogateOptions

    def _setup(self) -> None:
        self.window_size = self.space.window_size
        self._sampler, self.init_cycles = fair_design(
            self.space, self.budget, self.init_fraction, seed=self.seed, design=self.design
        )
        self.batch_size = self.options.batch_size or max(1, self.budget // 15)
        self._cycle = 0
        self._evaluated: dict[Architecture, float] = {}
        self._rejected: set[Architecture] = set()
        self._num_design = 0
        self._designing = True
        self._done = False
        self._gp: MatchKernelGP | None = None
        self._ranking: list[tuple[Architecture, float, float]] | None = None

    # ----------------------------------------------------------------- ask / tell
    def _ask(self) -> list[Architecture]:
        remaining = self.budget - len(self._evaluated)
        while self._cycle < self.init_cycles and remaining > 0:
            self._cycle += 1
            batch: list[Architecture] = []
            for arch in self._sampler.next_window():
                if arch not in self._evaluated and arch not in batch and self.is_feasible(arch):
                    batch.append(arch)
            if batch:
                return batch[:remaining]
        self._designing = False
        if self._done or remaining <= 0:
            return []
        if not self._evaluated:
            raise SearchError("surrogate: the constraint rejected every architecture of the fair windows")
        batch = self._acquire(min(self.batch_size, remaining))
        if not batch:
            self._done = True
        return batch

    def _tell(self, results: list[tuple[Architecture, float]]) -> None:
        for arch, fitness in results:
            self._evaluated.setdefault(arch, fitness)
        if self._designing:
            self._num_design = len(self._evaluated)
        self._gp = None  # refit lazily
        self._ranking = None

    # ----------------------------------------------------------------- model
    def _measurements(self) -> tuple[list[Architecture], np.ndarray, np.ndarray]:
        """The evaluated architectures, their ``(n, L)`` choices and their measurements as every
        model here sees them (failed ones clipped)."""
        archs = list(self._evaluated)
        x = np.array([a.choices for a in archs], dtype=np.int64)
        return archs, x, clip_low_outliers([self._evaluated[a] for a in archs], mads=self.clip_outliers)

    def _model(self) -> MatchKernelGP:
        if self._gp is None:
            _, x, y = self._measurements()
            self._gp = MatchKernelGP(
                self.space.num_choices, complexity_penalty=self.complexity_penalty, shared_grid=shared_grid(self.shared_weight)
            ).fit(x, y)
        return self._gp

    def _candidates(self, rng: np.random.Generator, gp: MatchKernelGP, beta: float) -> np.ndarray:
        """The whole space, or random architectures plus a local search on the acquisition."""
        counts = self.space.num_choices
        if self.space.size <= self.max_enumerate:
            grids = np.meshgrid(*[np.arange(k) for k in counts], indexing="ij")
            return np.stack([g.ravel() for g in grids], axis=1)
        pool = np.stack([rng.integers(0, k, size=self.num_random) for k in counts], axis=1)
        pool = np.concatenate([pool, np.array([a.choices for a in self._evaluated], dtype=np.int64)])
        for _ in range(_LOCAL_ROUNDS):
            pool = np.unique(pool, axis=0)
            mean, std, _ = gp.predict(pool)
            parents = pool[np.argsort(-(mean + beta * std), kind="stable")[:_LOCAL_PARENTS]]
            mutants = [pool]
            for layer, k in enumerate(counts):
                for choice in range(k):
                    m = parents.copy()
                    m[:, layer] = choice
                    mutants.append(m)
            pool = np.concatenate(mutants)
        return pool

    def _acquire(self, size: int) -> list[Architecture]:
        gp = self._model()
        rng = np.random.default_rng([self.seed, len(self._evaluated)])
        progress = len(self._evaluated) / self.budget
        beta = self.beta * max(0.0, 1.0 - progress)
        cand = np.unique(self._candidates(rng, gp, beta), axis=0)
        mean, std, v = gp.predict(cand)
        if self.acquisition == "thompson":
            return self._thompson(gp, cand, mean, std, v, size, rng)
        return self._ucb(gp, cand, mean, std, v, size, beta)

    def _take(self, row: np.ndarray) -> Architecture | None:
        """The architecture of a candidate row if it is new and feasible (else ``None``)."""
        arch = self.space.architecture([int(c) for c in row])
        if arch in self._evaluated or arch in self._rejected:
            return None
        if not self.is_feasible(arch):
            self._rejected.add(arch)
            return None
        return arch

    def _ucb(
        self, gp: MatchKernelGP, cand: np.ndarray, mean: np.ndarray, std: np.ndarray, v: np.ndarray, size: int, beta: float
    ) -> list[Architecture]:
        var = std**2
        noise_var = gp.noise_std**2
        scale = gp.y_std**2 * gp.s2
        picked: list[Architecture] = []
        updates: list[np.ndarray] = []
        xq = gp.onehot(cand)
        tries = 0
        blocked = np.zeros(len(cand), dtype=bool)
        while len(picked) < size and tries < self.max_tries and not blocked.all():
            i = int(np.argmax(np.where(blocked, -np.inf, mean + beta * np.sqrt(var))))
            blocked[i] = True
            arch = self._take(cand[i])
            tries += arch is not None or self.constraint is not None
            if arch is None:
                continue
            picked.append(arch)
            # kriging believer: posterior covariance with the pick shrinks the others' variance
            c = scale * (gp.prior(xq, xq[i : i + 1])[:, 0] - v.T @ v[:, i])
            for u in updates:
                c = c - u * u[i]
            u = c / np.sqrt(max(var[i] + noise_var, 1e-12))
            updates.append(u)
            var = np.maximum(var - u * u, 0.0)
        return picked

    def _thompson(
        self,
        gp: MatchKernelGP,
        cand: np.ndarray,
        mean: np.ndarray,
        std: np.ndarray,
        v: np.ndarray,
        size: int,
        rng: np.random.Generator,
    ) -> list[Architecture]:
        """One joint posterior sample per pick over the ``_TS_POOL`` most promising candidates."""
        pool = np.argsort(-(mean + 2.0 * std), kind="stable")[:_TS_POOL]
        xq = gp.onehot(cand[pool])
        scale = gp.y_std**2 * gp.s2
        cov = scale * (gp.prior(xq, xq) - v[:, pool].T @ v[:, pool])
        cov[np.diag_indices_from(cov)] += 1e-6 * scale
        w, q = np.linalg.eigh(cov)
        root = q * np.sqrt(np.maximum(w, 0.0))
        picked: list[Architecture] = []
        for _ in range(size * 3):
            if len(picked) >= size:
                break
            sample = mean[pool] + root @ rng.standard_normal(len(pool))
            for j in np.argsort(-sample, kind="stable")[: self.max_tries]:
                arch = self._take(cand[pool[j]])
                if arch is not None and arch not in picked:
                    picked.append(arch)
                    break
        return picked

    # ----------------------------------------------------------------- result
    def _ranked(self) -> list[tuple[Architecture, float, float]]:
        """(architecture, measured, posterior mean), best selection score first (ties: earliest);
        computed once per set of evaluations (the pick and ``top_k`` both read it)."""
        if self._ranking is None:
            archs, x, y = self._measurements()
            gp = self._model()
            mean = gp.averaged_mean(x) if self.model_average else gp.predict(x)[0]
            score = mean
            if self.select == "ensemble" and len(archs) >= 2:
                saturating = SaturatingAdditiveModel(self.space.num_choices).fit(x, y).predict(x)
                score = ensemble_scores(mean, gp.predict(x)[1], saturating)
            order = sorted(range(len(archs)), key=lambda i: -score[i])
            self._ranking = [(archs[i], self._evaluated[archs[i]], float(mean[i])) for i in order]
        return self._ranking

    def _select(self) -> tuple[Architecture, float | None]:
        if not self._evaluated:
            raise SearchError("surrogate: nothing was evaluated")
        arch, measured, _ = self._ranked()[0]
        return arch, measured

    def _result_fields(self) -> dict[str, Any]:
        if not self._evaluated:
            return {}
        ranked = self._ranked()
        gp = self._model()
        return {
            "top_k": [a for a, _, _ in ranked[: self.top_k]],
            "extras": {
                "design": self._num_design,
                "acquired": len(self._evaluated) - self._num_design,
                "posterior_mean": ranked[0][2],
                "noise_std": gp.noise_std,
                "w_pair": gp.params[0],
                "w_local": gp.params[1],
                "w_shared": gp.params[3],
            },
        }
