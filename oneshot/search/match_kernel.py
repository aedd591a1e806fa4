"""The Gaussian process of ``surrogate``: a kernel on categorical architectures (beyond the paper).

A Gaussian process whose kernel counts matching layers is the Bayesian form of a ridge model with
one effect per (layer, choice) (the additive model of ``path-priority-verify``) plus one effect per
pair of (layer, choice) (pairwise interactions), plus a short-range term for higher orders::

    k(a, b) = s2 * ((1 - w_pair - w_local) * m / L
                    + w_pair * m (m - 1) / (L (L - 1))
                    + w_local * exp(-(L - m) / (L * 0.15)))          m = #layers where a, b agree

The kernel is computed with one matrix product of one-hot encodings, so its cost does not grow
with the number of pairs. ``s2`` is profiled out of the marginal likelihood; ``w_pair``,
``w_local`` and the noise share are chosen on a small grid by marginal likelihood at every refit.

Where every layer has the same choices (the same op list at every layer, as in most NAS spaces),
``shared_grid`` adds kernels in which a share ``w_shared`` of the whole is an effect shared by a
choice index across layers, ``sum_c n_c(a) n_c(b) / L^2`` (``n_c``: layers with choice ``c``), so
the others are scaled by ``1 - w_shared``. It is the GP form of ``w[l, c] = s[c] + d[l, c]``: an op
that helps one layer tends to help the others. The marginal likelihood weighs the kernels with
and without it, so a table without such an effect falls back to the plain kernel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from oneshot.search.base import SearchError
from oneshot.search.encoding import choice_counts, onehot_choices, shares_choices

__all__ = ["MatchKernelGP", "shared_grid"]

_LOCAL_LENGTH = 0.15
_PAIR_GRID = (0.0, 0.3, 0.6)
_LOCAL_GRID = (0.0, 0.2)
_NOISE_GRID = (0.001, 0.01, 0.05, 0.15, 0.3, 0.6)


def shared_grid(weight: float) -> tuple[float, ...]:
    """The ``shared_grid`` of a searcher's ``shared_weight``: without (and, if ``weight > 0``, with)."""
    return (0.0, float(weight)) if weight > 0 else (0.0,)


class MatchKernelGP:
    """A GP on categorical architectures with the matching-layer kernel (module docstring).

    Fit on ``(n, L)`` integer choices and fitness values; predicts the posterior mean and standard
    deviation (in fitness units) of ``(N, L)`` choices. ``pair_grid``, ``local_grid``,
    ``noise_grid`` and ``shared_grid`` are the hyperparameter values tried at each fit (e.g.
    ``pair_grid=(0.0,), local_grid=(0.0,)`` is the purely additive model; ``shared_grid`` is
    ``(0.0,)`` where the layers have different numbers of choices).
    """

    def __init__(
        self,
        num_choices: tuple[int, ...],
        *,
        complexity_penalty: float = 0.0,
        pair_grid: tuple[float, ...] = _PAIR_GRID,
        local_grid: tuple[float, ...] = _LOCAL_GRID,
        noise_grid: tuple[float, ...] = _NOISE_GRID,
        shared_grid: tuple[float, ...] = (0.0,),
    ) -> None:
        self.num_choices = num_choices
        self.complexity_penalty = float(complexity_penalty)
        self.num_layers = len(num_choices)
        if not shares_choices(num_choices):
            shared_grid = (0.0,)  # a shared effect per choice index needs the same choices at every layer
        self.grids = (tuple(pair_grid), tuple(local_grid), tuple(noise_grid), tuple(shared_grid))
        self.params: tuple[float, float, float, float] = (0.3, 0.0, 0.1, 0.0)  # w_pair, w_local, noise, w_shared

    def onehot(self, choices: np.ndarray) -> np.ndarray:
        return onehot_choices(choices, self.num_choices)

    def _counts_product(self, xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
        """``sum_c n_c(a) n_c(b) / L^2``: ``n_c`` = layers with choice ``c`` (one-hot rows in)."""
        return (choice_counts(xa, self.num_layers) @ choice_counts(xb, self.num_layers).T) / self.num_layers**2

    def _kernel(
        self, matches: np.ndarray, shared: np.ndarray | None, w_pair: float, w_local: float, w_shared: float
    ) -> np.ndarray:
        """The kernel shape from the match counts and, if ``w_shared > 0``, the
        :meth:`_counts_product` ``shared`` of the same rows (computed once per fit, not per kernel)."""
        shape = self._shape(matches, w_pair, w_local)
        if w_shared > 0:
            assert shared is not None
            shape = (1.0 - w_shared) * shape + w_shared * shared
        return shape

    def _shape(self, matches: np.ndarray, w_pair: float, w_local: float) -> np.ndarray:
        """The kernel shape of a matrix of match counts (a look-up: ``m`` is an integer)."""
        big_l = self.num_layers
        m = np.arange(big_l + 1, dtype=float)
        lin = m / big_l
        pair = m * (m - 1) / (big_l * (big_l - 1)) if big_l > 1 else lin
        local = np.exp(-(big_l - m) / (big_l * _LOCAL_LENGTH))
        table = (1.0 - w_pair - w_local) * lin + w_pair * pair + w_local * local
        return table[np.rint(matches).astype(np.intp)]

    def prior(self, xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
        """Prior covariance (in units of ``s2``, without noise) of one-hot encoded rows."""
        w_pair, w_local, noise, w_shared = self.params
        shared = self._counts_product(xa, xb) if w_shared > 0 else None
        return (1.0 - noise) * self._kernel(xa @ xb.T, shared, w_pair, w_local, w_shared) + 1.0 / len(self.x)

    def fit(self, choices: np.ndarray, y: np.ndarray | Sequence[float], *, tune: bool = True) -> MatchKernelGP:
        self.x = self.onehot(choices)
        y = np.asarray(y, dtype=float)
        self.y_mean = float(y.mean())
        self.y_std = float(y.std()) or 1.0
        z = (y - self.y_mean) / self.y_std
        matches = self.x @ self.x.T
        n = len(z)
        candidates = (
            [(p, q, e, r) for p in self.grids[0] for q in self.grids[1] for e in self.grids[2] for r in self.grids[3] if p + q < 1]
            if tune and n >= 4
            else [self.params]
        )
        shared = self._counts_product(self.x, self.x) if any(c[3] > 0 for c in candidates) else None
        best: tuple[float, Any] | None = None
        self._fits: list[tuple[float, tuple[float, float, float, float], np.ndarray]] = []
        for w_pair, w_local, noise, w_shared in candidates:
            shape = self._kernel(matches, shared, w_pair, w_local, w_shared)
            # kernel in units of the profiled amplitude s2: s2 * (shape + noise I); a constant
            # term of 1 stands for the unknown mean
            k = (1.0 - noise) * shape + noise * np.eye(n) + 1.0 / n
            try:
                chol = np.linalg.cholesky(k)
            except np.linalg.LinAlgError:
                continue
            alpha0 = np.linalg.solve(chol.T, np.linalg.solve(chol, z))
            s2 = max(float(z @ alpha0) / n, 1e-6)
            nll = 0.5 * n * np.log(s2) + float(np.log(np.diag(chol)).sum())
            nll += self.complexity_penalty * ((w_pair > 0) + (w_local > 0))
            self._fits.append((nll, (w_pair, w_local, noise, w_shared), alpha0))
            if best is None or nll < best[0] - 1e-9:
                best = (nll, (w_pair, w_local, noise, w_shared, chol, alpha0, s2))
        if best is None:
            raise SearchError("surrogate: the kernel matrix is not positive definite")
        w_pair, w_local, noise, w_shared, chol, self.alpha, self.s2 = best[1]
        self.params = (w_pair, w_local, noise, w_shared)
        self.chol_inv = np.linalg.inv(chol)  # predictions are then matrix products
        return self

    def predict(self, choices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Posterior mean, std (fitness units) and ``V = L^-1 k(X, q)`` (for batch updates)."""
        xq = self.onehot(choices)
        cross = self.prior(xq, self.x)
        mean = cross @ self.alpha
        v = self.chol_inv @ cross.T
        w_shared = self.params[3]
        diagonal = 1.0 - w_shared
        if w_shared > 0:
            counts = choice_counts(xq, self.num_layers)
            diagonal = diagonal + w_shared * (counts * counts).sum(axis=1) / self.num_layers**2
        prior = (1.0 - self.params[2]) * diagonal + 1.0 / len(self.x)
        var = np.maximum(prior - (v * v).sum(axis=0), 1e-12)
        return self.y_mean + self.y_std * mean, self.y_std * np.sqrt(self.s2 * var), v

    def grid_weights(self) -> np.ndarray:
        """Marginal-likelihood weights (summing to 1) of the hyperparameters of the last fit, in the
        order of :attr:`grid_params`."""
        nll = np.array([f[0] for f in self._fits])
        weights = np.exp(-(nll - nll.min()))
        return weights / weights.sum()

    @property
    def grid_params(self) -> list[tuple[float, float, float, float]]:
        """``(w_pair, w_local, noise share, w_shared)`` of every kernel of the last fit's grid."""
        return [f[1] for f in self._fits]

    def averaged_mean(self, choices: np.ndarray) -> np.ndarray:
        """Posterior mean averaged over the hyperparameter grid, weighted by marginal likelihood.

        Steadier than the mean of the single best hyperparameters when few noisy evaluations
        leave several kernels about equally likely (e.g. with or without interactions).
        """
        xq = self.onehot(choices)
        matches = xq @ self.x.T
        weights = self.grid_weights()
        used = any(w > 1e-4 and params[3] > 0 for w, params in zip(weights, self.grid_params, strict=True))
        shared = self._counts_product(xq, self.x) if used else None
        mean = np.zeros(len(xq))
        for w, (_, (w_pair, w_local, noise, w_shared), alpha) in zip(weights, self._fits, strict=True):
            if w > 1e-4:
                cross = (1.0 - noise) * self._kernel(matches, shared, w_pair, w_local, w_shared) + 1.0 / len(self.x)
                mean += w * (cross @ alpha)
        return self.y_mean + self.y_std * mean / weights[weights > 1e-4].sum()

    @property
    def noise_std(self) -> float:
        """Estimated measurement noise (fitness units)."""
        return self.y_std * float(np.sqrt(self.s2 * self.params[2]))
