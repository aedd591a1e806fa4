"""Random search: distinct uniform samples, constraint-aware."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from oneshot.search.base import BudgetSearcher, Searcher, SearchError
from oneshot.search.options import SearcherOptions
from oneshot.space import Architecture

__all__ = ["RandomOptions", "RandomSearcher", "UniqueSampler"]


class UniqueSampler:
    """Draws uniformly random architectures never drawn before that satisfy a constraint.

    ``max_tries`` bounds the number of *consecutive* rejected draws (already seen, or violating
    the constraint); past it :meth:`draw` returns ``None``: the space is (nearly) exhausted or the
    constraint too strict.
    """

    def __init__(self, searcher: Searcher, rng: np.random.Generator, *, max_tries: int = 1000) -> None:
        self.searcher = searcher
        self.rng = rng
        self.max_tries = int(max_tries)
        self.seen: set[Architecture] = set()
        self.rejected: set[Architecture] = set()

    def accept(self, arch: Architecture) -> bool:
        """Whether ``arch`` is new and feasible; if so, it is marked as seen."""
        if arch in self.seen or arch in self.rejected:
            return False
        if not self.searcher.is_feasible(arch):
            self.rejected.add(arch)
            return False
        self.seen.add(arch)
        return True

    def draw(self) -> Architecture | None:
        for _ in range(self.max_tries):
            arch = self.searcher.space.sample(self.rng)
            if self.accept(arch):
                return arch
        return None


class RandomOptions(SearcherOptions):
    """Options of :class:`RandomSearcher`."""

    num_samples: int = Field(300, ge=1)
    batch_size: int | None = Field(None, ge=1)
    max_tries: int = Field(1000, ge=1)


class RandomSearcher(BudgetSearcher):
    """Evaluate ``num_samples`` distinct uniformly random architectures; return the best.

    Args:
        space: the search space.
        num_samples: number of architectures to evaluate (fewer if the space, or its part that
            satisfies the constraint, is exhausted: after ``max_tries`` consecutive rejected draws
            the search stops; if no architecture was accepted at all, :class:`SearchError`).
        seed: random seed.
        batch_size: architectures per :meth:`ask` (default: the space's fair window size), i.e.
            per call of a batch fitness. The samples do not depend on it.
        max_tries: bound on consecutive rejected draws.
    """

    name = "random"
    budget_arg = "num_samples"
    Options = RandomOptions
    options: RandomOptions

    def _setup(self) -> None:
        self.batch_size = self.options.batch_size or self.space.window_size
        self._sampler = UniqueSampler(self, np.random.default_rng(self.seed), max_tries=self.max_tries)
        self._drawn = 0
        self._exhausted = False

    def _ask(self) -> list[Architecture]:
        batch: list[Architecture] = []
        while not self._exhausted and self._drawn < self.num_samples and len(batch) < self.batch_size:
            arch = self._sampler.draw()
            if arch is None:
                self._exhausted = True
                break
            batch.append(arch)
            self._drawn += 1
        if not batch and self._drawn == 0:
            raise SearchError(
                f"random search: no new architecture satisfying the constraint in {self._sampler.max_tries} draws"
            )
        return batch

    def _tell(self, results: list[tuple[Architecture, float]]) -> None:
        pass
