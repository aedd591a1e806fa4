"""One-shot NAS on real data in a few minutes on a CPU: scikit-learn's handwritten digits.

(About 480 lines: a tutorial kept in one file on purpose, so that a reader follows the whole
method top to bottom without jumping between modules.)

The whole method, end to end, with nothing but the ``oneshot`` core (and the supernet of the
``examples/digits_task`` package, so that both examples search one space):

1. a supernet with three searchable components: a ``stem`` (1 layer, 2 choices), a ``body``
   (4 layers, 4 choices each) and a ``head`` (1 layer, 3 choices): 2 x 4^4 x 3 = 1,536
   architectures, strictly fair window lcm(2, 4, 3) = 12 paths;
2. strictly fair supernet training (:class:`oneshot.FairSampler` windows, one optimizer step
   per window, per-component learning rates) with :class:`oneshot.train.SupernetTrainer`;
3. the search fitness: accuracy on a held-out *search* split with inherited weights, after
   BatchNorm recalibration of the evaluated path;
4. path-priority (the Auto-Panoptic policy) and evolution, sharing one evaluation store;
5. the found architectures and a few random ones frozen, retrained from scratch the same way
   and compared on a *test* split that neither training nor search has seen.

Data: ``sklearn.datasets.load_digits`` (1,797 real 8x8 grey-level images, 10 classes), split
stratified into train (56 %), search (14 %) and test (30 %).

Run::

    python examples/classification_digits.py            # full run (about 1-3 minutes on 2 cores)
    python examples/classification_digits.py --smoke    # tiny budget, seconds (what the tests run)

Outputs go to ``--out`` (default ``runs/digits``): ``evaluations.jsonl`` (the evaluation
store), ``architecture.json`` (the found architecture) and ``results.json`` (every figure of the
final table). The docs' tutorial (docs/tutorial.md) walks through this file step by step.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

import oneshot
from oneshot import Architecture, SearchSpace
from oneshot.data import sample_seed
from oneshot.search import EvaluationStore, SearchResult, batch_fitness, build_searcher
from oneshot.train import SupernetTrainer, component_param_groups, warmup_multistep

try:  # the supernet of the digits task package: installed (pip install -e examples/digits_task) ...
    from oneshot_digits.model import DigitsSupernet
except ImportError:  # ... or imported from its folder next to this script
    sys.path.insert(0, str(Path(__file__).resolve().parent / "digits_task"))
    from oneshot_digits.model import DigitsSupernet


# ============================================================================ data
@dataclass
class DigitsSplits:
    """The digits as ``(N, 1, 8, 8)`` float tensors (standardised) and ``(N,)`` labels."""

    train: TensorDataset
    search: TensorDataset
    test: TensorDataset


def load_digits_splits(*, seed: int = 0, test_fraction: float = 0.3, search_fraction: float = 0.2) -> DigitsSplits:
    """Stratified train / search / test splits of ``sklearn.datasets.load_digits``.

    ``search_fraction`` is the share of the non-test images held out for the search fitness.
    Pixels (0..16) are standardised with the training split's mean and standard deviation.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.images.astype(np.float32)  # (1797, 8, 8), values 0..16
    y = digits.target.astype(np.int64)
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=test_fraction, stratify=y, random_state=seed)
    x_train, x_search, y_train, y_search = train_test_split(
        x_rest, y_rest, test_size=search_fraction, stratify=y_rest, random_state=seed
    )
    mean, std = float(x_train.mean()), float(x_train.std())

    def tensors(images: np.ndarray, labels: np.ndarray) -> TensorDataset:
        return TensorDataset(torch.from_numpy((images - mean) / std).unsqueeze(1), torch.from_numpy(labels))

    return DigitsSplits(tensors(x_train, y_train), tensors(x_search, y_search), tensors(x_test, y_test))


class ShuffledBatches:
    """Endless ``(images, labels)`` training batches: a seeded shuffle per epoch, plus augmentation.

    Each image is shifted by up to ``max_shift`` pixels (zero fill). Order and shifts are
    functions of ``(seed, epoch, position)`` (:func:`oneshot.data.sample_seed`), and the position
    is checkpointable (``state_dict`` / ``load_state_dict``), so a :class:`SupernetTrainer` with a
    ``run_dir`` resumes exactly. (:class:`oneshot.data.ResumableBatches` does the same for any map
    style dataset, seeding every sample separately; for 8x8 tensors that per-sample seeding would
    cost more than the network itself, so this stream works on whole batches.)
    """

    def __init__(self, dataset: TensorDataset, *, batch_size: int, seed: int, max_shift: int = 1) -> None:
        self.images, self.labels = dataset.tensors
        if len(self.labels) < batch_size:
            raise ValueError(f"{len(self.labels)} images, fewer than one batch of {batch_size}")
        self.batch_size, self.seed, self.max_shift = batch_size, seed, max_shift
        self.epoch, self.position = 0, 0
        self._order: torch.Tensor | None = None

    def __iter__(self) -> ShuffledBatches:
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(self.labels)
        if self.position + self.batch_size > n:  # drop the incomplete last batch
            self.epoch, self.position, self._order = self.epoch + 1, 0, None
        if self._order is None:
            g = torch.Generator().manual_seed(sample_seed(self.seed, self.epoch, -1))
            self._order = torch.randperm(n, generator=g)
        index = self._order[self.position : self.position + self.batch_size]
        g = torch.Generator().manual_seed(sample_seed(self.seed, self.epoch, self.position))
        self.position += self.batch_size
        return random_shift(self.images[index], self.max_shift, g), self.labels[index]

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position, self._order = int(state["epoch"]), int(state["position"]), None


def random_shift(images: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Shift every image of ``(N, C, H, W)`` by its own random offset in ``[-max_shift, max_shift]``."""
    if max_shift == 0:
        return images
    h, w = images.shape[-2:]
    padded = nn.functional.pad(images, [max_shift] * 4)
    offsets = torch.randint(0, 2 * max_shift + 1, (len(images), 2), generator=generator)
    out = torch.empty_like(images)
    for dy in range(2 * max_shift + 1):
        for dx in range(2 * max_shift + 1):
            chosen = (offsets[:, 0] == dy) & (offsets[:, 1] == dx)
            out[chosen] = padded[chosen, :, dy : dy + h, dx : dx + w]
    return out


# ============================================================================ the supernet
# DigitsSupernet (imported above) is the digits task package's, so that this script and
# `oneshot search --task digits` search one space: stem.0 {conv3, conv5}, body.0-3 {conv3, sep5,
# dil3, skip} (two at 8x8 with 16 channels, a shared stride-2 conv, two at 4x4 with 32), head.0
# {avg, avgmax, flatten}. Its ~60 lines are in examples/digits_task/oneshot_digits/model.py.


def describe(space: SearchSpace, arch: Architecture) -> str:
    """Human-readable choices, e.g. ``stem=conv3 body=conv3,skip,sep5,dil3 head=avgmax``."""
    parts = []
    for component, layers in space.components.items():
        names = [space.layers[i].choice_names[arch[i]] for i in layers]
        parts.append(f"{component}={','.join(names)}")
    return " ".join(parts)


# ============================================================================ budgets
@dataclass(frozen=True)
class Budget:
    """Every knob of a run that changes its cost."""

    supernet_steps: int = 300  # optimizer steps, one fair window (12 paths) each
    batch_size: int = 32  # images per path
    lr: float = 0.05  # base rate; fair per-component multipliers are applied on top
    warmup_steps: int = 20
    bn_batches: int = 4  # batches of 128 training images to recalibrate BN per evaluation
    path_priority_cycles: int = 5  # the paper's 5 cycles: 5 x 12 = 60 evaluations
    evolution_evaluations: int = 100
    random_archs: int = 6  # random baselines, evaluated and retrained like the found ones
    retrain_steps: int = 300  # batches of 64 (about 19 epochs)
    retrain_lr: float = 0.1


FULL = Budget()
SMOKE = Budget(
    supernet_steps=3,
    batch_size=16,
    warmup_steps=1,
    bn_batches=1,
    path_priority_cycles=1,
    evolution_evaluations=12,
    random_archs=2,
    retrain_steps=20,
)


# ============================================================================ stages
def cross_entropy(model: nn.Module, batch: Sequence[torch.Tensor]) -> torch.Tensor:
    """The training loss of the active path on one ``(images, labels)`` batch."""
    images, labels = batch
    return nn.functional.cross_entropy(model(images), labels)


def train_supernet(
    supernet: DigitsSupernet, data: DigitsSplits, budget: Budget, *, seed: int, progress: bool
) -> dict[str, dict[str, int]]:
    """Strictly fair training; returns how many batches each candidate was trained on."""
    space = SearchSpace.from_module(supernet)
    groups = component_param_groups(supernet, lr=budget.lr, weight_decay=5e-4)
    optimizer = torch.optim.SGD(groups, lr=budget.lr, momentum=0.9, nesterov=True)
    steps = budget.supernet_steps
    scheduler = warmup_multistep(
        optimizer, warmup_steps=budget.warmup_steps, milestones=(int(steps * 2 / 3), int(steps * 11 / 12))
    )
    usage = {label: {name: 0 for name in layer.choice_names} for label, layer in zip(space.labels, space.layers, strict=True)}

    def count(_step: int, _loss: float, arch: Architecture) -> None:
        for layer, choice in zip(space.layers, arch, strict=True):
            usage[layer.label][layer.choice_names[choice]] += 1

    trainer = SupernetTrainer(
        supernet,
        sampler=oneshot.FairSampler(space, seed=seed),
        batches=ShuffledBatches(data.train, batch_size=budget.batch_size, seed=seed),
        loss_fn=cross_entropy,
        optimizer=optimizer,
        scheduler=scheduler,
        progress=progress,
        on_step=count,
    )
    result = trainer.fit(steps)
    print(f"  {result.steps} steps x {space.window_size} paths x {budget.batch_size} images in {result.seconds:.1f} s; "
          f"loss {result.losses[0]:.3f} -> {np.mean(result.losses[-10:]):.3f} (mean of the last 10 steps)")
    return usage


@torch.no_grad()
def accuracy(model: nn.Module, dataset: TensorDataset) -> float:
    """Top-1 accuracy (%) of ``model`` in eval mode."""
    images, labels = dataset.tensors
    model.eval()
    return float((model(images).argmax(1) == labels).float().mean() * 100)


def recalibrate(supernet: DigitsSupernet, data: DigitsSplits, *, bn_batches: int) -> None:
    """Re-estimate the BatchNorm statistics of the supernet's active path on training images."""
    images = data.train.tensors[0]
    oneshot.recalibrate_bn(supernet, (images[i * 128 : (i + 1) * 128] for i in range(bn_batches)))


def supernet_accuracy(
    supernet: DigitsSupernet, arch: Architecture, data: DigitsSplits, dataset: TensorDataset, *, bn_batches: int
) -> float:
    """Accuracy of ``arch`` with inherited weights, after recalibrating its BatchNorm statistics."""
    with oneshot.activate(supernet, arch):
        recalibrate(supernet, data, bn_batches=bn_batches)
        return accuracy(supernet, dataset)


def inherited_model(supernet: DigitsSupernet, arch: Architecture, data: DigitsSplits, *, bn_batches: int) -> nn.Module:
    """``arch`` cut out of the supernet: inherited weights, recalibrated BN, no ChoiceLayer left."""
    with oneshot.activate(supernet, arch):
        recalibrate(supernet, data, bn_batches=bn_batches)
    return oneshot.freeze(supernet, arch)


def retrain(arch: Architecture, data: DigitsSplits, budget: Budget, *, seed: int) -> tuple[float, nn.Module]:
    """Train the frozen ``arch`` from scratch (fresh weights); returns its test accuracy and the model."""
    torch.manual_seed(seed)
    model = oneshot.freeze(DigitsSupernet(), arch)  # a plain nn.Module holding only the chosen candidates
    optimizer = torch.optim.SGD(model.parameters(), lr=budget.retrain_lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    steps = max(budget.retrain_steps, 1)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=budget.retrain_lr, total_steps=steps)
    trainer = SupernetTrainer(
        model,
        sampler=None,  # a standalone network: one batch per step
        batches=ShuffledBatches(data.train, batch_size=64, seed=seed + 1),
        loss_fn=cross_entropy,
        optimizer=optimizer,
        scheduler=scheduler,
        progress=False,
    )
    trainer.fit(steps)
    return accuracy(model, data.test), model


def search(
    supernet: DigitsSupernet, data: DigitsSplits, budget: Budget, *, store: EvaluationStore, seed: int, progress: bool
) -> dict[str, SearchResult]:
    """Path-priority then evolution on the trained supernet, both through ``store``."""
    space = SearchSpace.from_module(supernet)

    @batch_fitness
    def fitness(archs: Sequence[Architecture]) -> list[float]:
        return [supernet_accuracy(supernet, a, data, data.search, bn_batches=budget.bn_batches) for a in archs]

    searchers = {
        # The paper never evaluates path-priority's pick (the per-layer argmax of its scores);
        # evaluate_best=True spends one more evaluation so that it can be reported.
        "path-priority": build_searcher(
            "path-priority", space, cycles=budget.path_priority_cycles, seed=seed, evaluate_best=True
        ),
        "evolution": build_searcher("evolution", space, budget=budget.evolution_evaluations, seed=seed),
    }
    results = {}
    for name, searcher in searchers.items():
        before, t0 = len(store), time.perf_counter()
        results[name] = result = searcher.run(fitness, store=store, progress=progress)
        print(f"  {name}: {result.num_evaluated} architectures, {len(store) - before} of them newly evaluated "
              f"(the rest come from the store), {time.perf_counter() - t0:.1f} s")
        print(f"    found {describe(space, result.best)}: {result.best_fitness:.2f} % on the search split")
    return results


def random_architectures(space: SearchSpace, n: int, *, exclude: Sequence[Architecture], seed: int) -> list[Architecture]:
    """``n`` distinct uniformly random architectures, none of them in ``exclude``."""
    rng = np.random.default_rng(seed)
    out: list[Architecture] = []
    while len(out) < min(n, space.size - len(set(exclude))):
        arch = space.sample(rng)
        if arch not in out and arch not in exclude:
            out.append(arch)
    return out


# ============================================================================ the run
@dataclass
class Row:
    """One line of the final table."""

    model: str
    architecture: str
    key: str
    mmacs: float  # millions of multiply-adds per image
    kparams: float
    supernet_search: float  # inherited weights, BN recalibrated, on the search split (the fitness)
    supernet_test: float  # the same, on the test split
    retrained_test: float  # trained from scratch, on the test split


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny budget (seconds): checks that everything runs")
    parser.add_argument("--out", type=Path, default=Path("runs/digits"), help="output folder [runs/digits]")
    parser.add_argument("--seed", type=int, default=0, help="seeds the split, sampling, searchers and training [0]")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads; tiny convolutions run fastest on one [1]")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the example; returns what it writes to ``results.json``."""
    args = parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return run(args)
    finally:
        torch.set_num_threads(threads)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole example for parsed command-line arguments."""
    budget = SMOKE if args.smoke else FULL
    progress = not args.quiet
    seed = args.seed
    args.out.mkdir(parents=True, exist_ok=True)
    start = stage = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        nonlocal stage
        timings[name] = time.perf_counter() - stage
        stage = time.perf_counter()

    print("== data: sklearn load_digits")
    data = load_digits_splits(seed=seed)
    print(f"  train {len(data.train)}, search {len(data.search)}, test {len(data.test)} images of 8x8, 10 classes")

    torch.manual_seed(seed)
    supernet = DigitsSupernet()
    space = SearchSpace.from_module(supernet)
    print(f"== search space: {space}")
    for component, layers in space.components.items():
        print(f"  {component}: {len(layers)} layer(s) x {space.layers[layers[0]].choice_names}")
    lap("data")

    print(f"== supernet training: strictly fair windows of {space.window_size} paths, one optimizer step each")
    usage = train_supernet(supernet, data, budget, seed=seed, progress=progress)
    for label, counts in usage.items():
        print(f"  {label} trained on: " + ", ".join(f"{name} {n} batches" for name, n in counts.items()))
    lap("supernet training")

    print("== search (fitness: supernet accuracy on the search split, BN recalibrated for every path)")
    store_path = args.out / "evaluations.jsonl"
    store_path.unlink(missing_ok=True)  # stored evaluations belong to the supernet trained above
    store = EvaluationStore(store_path, space=space)  # shared: evolution reuses path-priority's evaluations
    results = search(supernet, data, budget, store=store, seed=seed, progress=progress)
    results["path-priority"].best.save(args.out / "architecture.json")
    lap("search")

    found = {f"found ({name})": result.best for name, result in results.items()}
    randoms = random_architectures(space, budget.random_archs, exclude=list(found.values()), seed=seed + 1)
    candidates = {**found, **{f"random {i}": arch for i, arch in enumerate(randoms)}}
    print(f"== freeze and retrain from scratch: {budget.retrain_steps} steps of 64 images, the same recipe for every model")
    rows: list[Row] = []
    retrained: dict[Architecture, float] = {}
    example = data.test.tensors[0][:1]
    for label, arch in candidates.items():
        entry = store.get(arch)
        search_acc = entry.fitness if entry is not None else supernet_accuracy(
            supernet, arch, data, data.search, bn_batches=budget.bn_batches
        )
        test_acc = accuracy(inherited_model(supernet, arch, data, bn_batches=budget.bn_batches), data.test)
        if arch not in retrained:
            retrained[arch], _ = retrain(arch, data, budget, seed=seed)
        cost = oneshot.count_flops_params(supernet, arch, example)
        rows.append(Row(label, describe(space, arch), arch.key, cost.flops / 2e6, cost.params / 1e3,
                        search_acc, test_acc, retrained[arch]))
        print(f"  {label:<22} {describe(space, arch):<48} retrained: {retrained[arch]:6.2f} % on test")
    lap("retraining")

    print_table(rows)
    randoms_rows = [r for r in rows if r.model.startswith("random")]
    summary = {
        "random_mean_supernet_search": _mean([r.supernet_search for r in randoms_rows]),
        "random_mean_retrained_test": _mean([r.retrained_test for r in randoms_rows]),
        "kendall_tau_supernet_vs_retrained": kendall_tau([r.supernet_test for r in rows], [r.retrained_test for r in rows]),
        "test_images": len(data.test),
        "test_standard_error": binomial_se(_mean([r.retrained_test for r in rows]), len(data.test)),
        "seconds": time.perf_counter() - start,
        "stage_seconds": timings,
    }
    print(f"\nmean of {len(randoms_rows)} random architectures: supernet {summary['random_mean_supernet_search']:.2f} % "
          f"(search split), retrained {summary['random_mean_retrained_test']:.2f} % (test)")
    print(f"test split: {len(data.test)} images, so one image is {100 / len(data.test):.2f} points and an accuracy "
          f"carries a binomial standard error of about {summary['test_standard_error']:.2f} points")
    print(f"Kendall tau between inherited (supernet) and retrained test accuracy over these {len(rows)} models: "
          f"{summary['kendall_tau_supernet_vs_retrained']:+.2f}")
    print("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()) + f"; total {summary['seconds']:.1f} s")
    output = {
        "budget": asdict(budget),
        "seed": seed,
        "space": {"size": space.size, "window_size": space.window_size, "labels": list(space.labels)},
        "training_usage": usage,
        "searches": {name: r.to_json() for name, r in results.items()},
        "rows": [asdict(r) for r in rows],
        "summary": summary,
    }
    (args.out / "results.json").write_text(json.dumps(output, indent=1))
    print(f"outputs: {args.out}/ (architecture.json, evaluations.jsonl, results.json)")
    return output


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if values else math.nan


def binomial_se(accuracy_percent: float, n: int) -> float:
    """Standard error (points) of an accuracy (%) measured on ``n`` independent images."""
    p = accuracy_percent / 100
    return 100 * math.sqrt(p * (1 - p) / n)


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-a between two score lists (a pair tied in either list counts as neither)."""
    n = len(a)
    if n < 2:
        return math.nan
    s = sum(np.sign(a[i] - a[j]) * np.sign(b[i] - b[j]) for i in range(n) for j in range(i + 1, n))
    return float(s / (n * (n - 1) / 2))


def print_table(rows: Sequence[Row]) -> None:
    """The final comparison as a Markdown table."""
    print()
    print("| model | architecture | M mult-adds | k params | supernet, search split (%) | supernet, test (%) | retrained, test (%) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r.model} | {r.architecture} | {r.mmacs:.2f} | {r.kparams:.1f} | {r.supernet_search:.2f} | "
              f"{r.supernet_test:.2f} | {r.retrained_test:.2f} |")


if __name__ == "__main__":
    main()
