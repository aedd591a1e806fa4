"""pareto.json and pareto.png from a search history."""

import json

import pytest

from oneshot.pareto_report import write_pareto
from oneshot.search import HistoryEntry
from oneshot.space import SearchSpace


def _history():
    space = SearchSpace.categorical({"x": [3, 3]})
    rows = [([0, 0], 60, 10, 1e9), ([1, 0], 80, 40, 2e9), ([2, 2], 90, 70, 3e9), ([1, 1], 50, 50, 4e9)]
    return space, [HistoryEntry(space.validate(c), f, 0.0, {"latency_ms": lat, "flops": fl}) for c, f, lat, fl in rows]


def test_write_pareto(tmp_path):
    space, history = _history()
    out = write_pareto(tmp_path / "pareto.json", tmp_path / "pareto.png", history, ["fitness", "latency_ms"],
                       [0, 100], marked=[history[1].arch], reference_lines={"flops": {"paper": 2.5e9}},
                       extra={"constraint": {"rejected": 3}})
    on_disk = json.loads((tmp_path / "pareto.json").read_text())
    assert on_disk == out
    assert [f["key"] for f in out["front"]] == ["0-0", "1-0", "2-2"]
    assert out["hypervolume"] == pytest.approx(60 * 90 + 20 * 60 + 10 * 30)
    assert out["front"][0]["metrics"] == {"latency_ms": 10, "flops": 1e9}
    assert out["marked"] == ["1-0"] and out["constraint"] == {"rejected": 3} and out["num_evaluated"] == 4
    assert (tmp_path / "pareto.png").stat().st_size > 1000


def test_write_pareto_errors(tmp_path):
    _, history = _history()
    with pytest.raises(ValueError, match="reference point has 1 values for 2"):
        write_pareto(tmp_path / "p.json", None, history, ["fitness", "latency_ms"], [0])
    bare = [HistoryEntry(h.arch, h.fitness) for h in history]
    with pytest.raises(ValueError, match="no cost metric"):
        write_pareto(tmp_path / "p.json", tmp_path / "p.png", bare, ["fitness"], [0])
