"""Every example runs in its smoke mode (tiny budget), so that none of them can rot."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path
from types import ModuleType

import pytest
import torch

from oneshot import Architecture, ChoiceLayer, SearchSpace
from oneshot.search import EvaluationStore
from oneshot.tasks import Task, get_task

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
PACKAGE = EXAMPLES / "digits_task"


def load_example(name: str) -> ModuleType:
    """Import ``examples/NAME.py`` as a module (examples are scripts, not a package)."""
    module_name = f"oneshot_example_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- classification_digits.py
def test_classification_digits_smoke(tmp_path, capsys):
    digits = load_example("classification_digits")
    threads = torch.get_num_threads()
    out = digits.main(["--smoke", "--quiet", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert torch.get_num_threads() == threads  # --threads is restored after the run

    space = SearchSpace.from_module(digits.DigitsSupernet())
    assert space.num_choices == (2, 4, 4, 4, 4, 3) and space.window_size == 12
    assert list(space.components) == ["stem", "body", "head"]

    # Strict fairness: inside every layer each choice was trained on the same number of batches.
    steps = digits.SMOKE.supernet_steps
    for label, counts in out["training_usage"].items():
        assert len(set(counts.values())) == 1, (label, counts)
        assert sum(counts.values()) == steps * space.window_size

    # Both searches ran through one store; path-priority's pick is saved and was evaluated.
    searches = {name: result for name, result in out["searches"].items()}
    assert set(searches) == {"path-priority", "evolution"}
    found = Architecture.load(space, tmp_path / "architecture.json")
    assert found == space.from_json(searches["path-priority"]["best"])
    assert searches["path-priority"]["best_fitness"] is not None
    store = EvaluationStore(tmp_path / "evaluations.jsonl", space=space)
    evaluated = {space.from_json(h["arch"]) for s in searches.values() for h in s["history"]}
    assert evaluated <= {entry.arch for entry in store}

    # The final table: the found architectures and the random ones, every figure a percentage.
    rows = out["rows"]
    assert [r["model"] for r in rows] == ["found (path-priority)", "found (evolution)", "random 0", "random 1"]
    archs = [space.validate([int(c) for c in r["key"].split("-")]) for r in rows]
    assert archs[0] == found and len(set(archs[2:])) == 2 and not set(archs[2:]) & set(archs[:2])
    for r, arch in zip(rows, archs, strict=True):
        for key in ("supernet_search", "supernet_test", "retrained_test"):
            assert 0.0 <= r[key] <= 100.0
        assert r["mmacs"] > 0 and r["kparams"] > 0
        assert f"| {r['model']} | {r['architecture']} |" in printed
        if arch in store:  # the found ones: the table shows the fitness the search stored
            assert r["supernet_search"] == store.get(arch).fitness
    assert json.loads((tmp_path / "results.json").read_text())["rows"] == rows


def test_digits_batches_resume_exactly():
    digits = load_example("classification_digits")
    data = digits.load_digits_splits(seed=0)
    assert (len(data.train), len(data.search), len(data.test)) == (1005, 252, 540)
    stream = digits.ShuffledBatches(data.train, batch_size=64, seed=3)
    for _ in range(17):  # past the end of the first epoch (15 full batches)
        next(stream)
    state = stream.state_dict()
    expected = [next(stream) for _ in range(3)]
    resumed = digits.ShuffledBatches(data.train, batch_size=64, seed=3)
    resumed.load_state_dict(state)
    for (x, y), (x2, y2) in zip(expected, (next(resumed) for _ in range(3)), strict=True):
        assert torch.equal(x, x2) and torch.equal(y, y2)
    assert state == {"epoch": 1, "position": 128}


def test_digits_random_shift_moves_pixels_without_changing_them():
    digits = load_example("classification_digits")
    images = torch.arange(2 * 64, dtype=torch.float32).reshape(2, 1, 8, 8) + 1
    shifted = digits.random_shift(images, 1, torch.Generator().manual_seed(0))
    assert shifted.shape == images.shape
    for original, moved in zip(images, shifted, strict=True):
        values = moved[moved != 0]
        assert len(values) >= 49  # at most one row and one column shifted out
        assert set(values.tolist()) <= set(original.flatten().tolist())
    assert torch.equal(digits.random_shift(images, 0, torch.Generator()), images)


def test_digits_frozen_architecture_is_standalone():
    digits = load_example("classification_digits")
    data = digits.load_digits_splits(seed=0)
    torch.manual_seed(0)
    supernet = digits.DigitsSupernet()
    space = SearchSpace.from_module(supernet)
    arch = space.sample(5)
    frozen = digits.inherited_model(supernet, arch, data, bn_batches=2)
    assert not any(isinstance(m, ChoiceLayer) for m in frozen.modules())
    assert digits.accuracy(frozen, data.search) == pytest.approx(
        digits.supernet_accuracy(supernet, arch, data, data.search, bn_batches=2)
    )


# ----------------------------------------------------------------------------- custom_task.py + digits_task/
def test_custom_task_smoke(tmp_path):
    custom = load_example("custom_task")
    run = tmp_path / "run"
    report = custom.main(["--smoke", "--quiet", "--out", str(run)])

    task = get_task("digits")
    assert task.name == "digits" and task.config_class.__name__ == "DigitsConfig"
    assert report["task"] == "digits" and report["searcher"] == "evolution"
    assert (run / "supernet.pt").exists()
    retrained = list((run / "retrain").glob("*/metrics.json"))  # --retrain of the first search
    assert len(retrained) == 1 and 0 <= json.loads(retrained[0].read_text())["accuracy"] <= 100
    # The second search reused the supernet and the first search's evaluations: the store holds
    # each architecture once, the first search's included.
    from oneshot_digits import DigitsSupernet

    store = EvaluationStore(run / "evaluations.jsonl", space=SearchSpace.from_module(DigitsSupernet()))
    keys = [json.loads(line)["key"] for line in (run / "evaluations.jsonl").read_text().splitlines()[1:]]
    assert len(keys) == len(set(keys)) == len(store)
    first = json.loads((run / "search_result.json").read_text())
    assert first["searcher"] == "evolution" and report["search_cost"]["evaluations"] <= 12
    assert len(store) > report["search_cost"]["evaluations"]  # path-priority's evaluations are there too


def test_custom_task_config_errors_name_the_field(tmp_path, capsys):
    custom = load_example("custom_task")
    custom.make_task_available()
    import oneshot.cli

    with pytest.raises(SystemExit) as exc:
        oneshot.cli.main(["search", "--task", "digits", "--preset", "smoke", "--out", str(tmp_path),
                          "--set", "data.test_fraction=1.5", "--quiet"])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error: invalid config") and "data.test_fraction" in err and "\n" not in err


def test_digits_task_entry_point_is_declared_and_loads(monkeypatch):
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    pyproject = tomllib.loads((PACKAGE / "pyproject.toml").read_text())
    value = pyproject["project"]["entry-points"]["oneshot.tasks"]["digits"]
    monkeypatch.syspath_prepend(str(PACKAGE))
    cls = EntryPoint(name="digits", value=value, group="oneshot.tasks").load()
    assert isinstance(cls, type) and issubclass(cls, Task) and cls.name == "digits"
    assert set(cls.presets()) == {"default", "smoke"}


@pytest.mark.slow  # pip builds a wheel: ~10-30 s, so `make test-slow` runs it
def test_digits_task_installs_as_a_plugin(tmp_path):
    """The entry-point route for real: install the package, and a fresh `oneshot` process lists it."""
    source = tmp_path / "src"
    shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(source)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    env = {**_clean_env(), "PYTHONPATH": str(target)}
    listed = subprocess.run([sys.executable, "-m", "oneshot.cli", "tasks"], capture_output=True, text=True,
                            env=env, timeout=300, check=True)
    line = next(line for line in listed.stdout.splitlines() if line.startswith("digits\t"))
    assert "presets: default, smoke" in line


def _clean_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
