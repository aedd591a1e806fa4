"""docs/tutorial.md runs as written: its python blocks, in order, are one program.

The budgets are the tutorial's own constants, scaled down here so that the whole program runs in
seconds; a constant that disappears from the tutorial fails the test instead of silently running
the full budget.
"""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest
import torch

from oneshot import Architecture, ChoiceLayer, SearchSpace
from oneshot.search import EvaluationStore

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "docs" / "tutorial.md"
SMALL_BUDGETS = {"SUPERNET_STEPS": 2, "PATH_PRIORITY_CYCLES": 1, "EVOLUTION_BUDGET": 12, "RETRAIN_STEPS": 2}


def tutorial_program() -> str:
    """The tutorial's python blocks joined, with the budget constants scaled down."""
    source = "\n".join(re.findall(r"```python\n(.*?)```", TUTORIAL.read_text(), flags=re.S))
    for name, value in SMALL_BUDGETS.items():
        source, count = re.subn(rf"^{name} = \d+", f"{name} = {value}", source, flags=re.M)
        assert count == 1, f"docs/tutorial.md no longer defines {name} once"
    return source


def test_tutorial_runs_as_written(tmp_path, monkeypatch, capsys):
    pytest.importorskip("sklearn", reason="the tutorial needs scikit-learn (the examples extra)")
    monkeypatch.chdir(tmp_path)  # the tutorial writes to runs/ under the working directory
    threads = torch.get_num_threads()
    module = types.ModuleType("oneshot_tutorial")  # a real module, as a script's __main__ is
    monkeypatch.setitem(sys.modules, module.__name__, module)
    try:
        exec(compile(tutorial_program(), str(TUTORIAL), "exec"), module.__dict__)
    finally:
        torch.set_num_threads(threads)
    namespace = module.__dict__
    printed = capsys.readouterr().out
    assert "1005 252 540" in printed

    space = namespace["space"]
    assert isinstance(space, SearchSpace) and space.window_size == 12 and space.size == 1536
    found = Architecture.load(space, tmp_path / "runs/tutorial/architecture.json")
    assert found == namespace["pp"].best  # type: ignore[attr-defined]
    store = EvaluationStore(tmp_path / "runs/tutorial/evaluations.jsonl", space=space)
    assert len(store) >= 12  # at least one fair window
    shipped, standalone = namespace["shipped"], namespace["standalone"]
    assert not any(isinstance(m, ChoiceLayer) for m in shipped.modules())
    test_images = namespace["test"].tensors[0]
    with torch.no_grad():
        assert torch.equal(shipped.eval()(test_images), standalone.eval()(test_images))
    assert printed.count("| found (") == 2 and printed.count("| random ") == 5

    # Section 8: the task ran through the pipeline into its run directory.
    run = tmp_path / "runs/my-digits"
    for name in ("config.yaml", "supernet.pt", "evaluations.jsonl", "report.md", "architecture.json"):
        assert (run / name).exists(), name
    assert namespace["report"]["task"] == "my-digits"  # type: ignore[index]

    # Section 9: the segmentation task ran through `oneshot search --task module:Class --retrain`.
    shapes = tmp_path / "runs/shapes"
    for name in ("config.yaml", "supernet.pt", "report.md", "report.json", "architecture.json", "scores.png", "log.txt"):
        assert (shapes / name).exists(), name
    seg = namespace["seg_report"]
    assert seg["task"] == "shapes-segmentation" and set(seg["found"]["architecture"]) == {"encoder", "decoder", "fusion", "head"}
    assert {"miou", "pixel_acc", "iou/square", "iou/disk"} <= set(seg["found"]["metrics"])
    assert len(seg["retrained"]["random"]) == 1  # the tiny preset's retrain.random_baselines
    assert "['encoder.0', 'encoder.1', 'decoder.0', 'fusion.0', 'decoder.1', 'fusion.1', 'head']" in printed
    assert "(3, 3, 3, 3, 3, 3, 2) 6 1458" in printed


def test_tutorial_excerpts_are_the_example_s_code():
    """The ```py blocks of section 9 are quoted from examples/segmentation_task.py, verbatim."""
    source = (ROOT / "examples" / "segmentation_task.py").read_text()
    excerpts = re.findall(r"```py\n(.*?)```", TUTORIAL.read_text(), flags=re.S)
    assert len(excerpts) == 2
    for excerpt in excerpts:
        assert excerpt in source, excerpt.splitlines()[0]
