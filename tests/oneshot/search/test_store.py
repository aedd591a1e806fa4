import json
import multiprocessing as mp
import os

import pytest

from oneshot import SearchSpace
from oneshot.search import EvaluationStore, HistoryEntry, StoreError


@pytest.fixture
def space():
    return SearchSpace.categorical({"a": [3, 2], "b": [4]})


def _entry(space, choices, fitness, **metrics):
    return HistoryEntry(space.validate(choices), fitness, 0.5, metrics)


def test_records_survive_reopening(space, tmp_path):
    path = tmp_path / "sub" / "e.jsonl"
    store = EvaluationStore(path, space=space)
    store.add(_entry(space, [0, 1, 3], 1.5, pq=2.0))
    store.add(_entry(space, [2, 0, 0], -1.0))
    lines = path.read_text().splitlines()
    assert json.loads(lines[0])["space"] == space.signature()
    assert [json.loads(line)["key"] for line in lines[1:]] == ["0-1-3", "2-0-0"]
    again = EvaluationStore(path, space=space)
    assert len(again) == 2
    got = again.get(space.validate([0, 1, 3]))
    assert (got.fitness, got.metrics, got.wall_time) == (1.5, {"pq": 2.0}, 0.5)
    assert space.validate([1, 1, 1]) not in again


def test_first_record_of_an_architecture_wins(space, tmp_path):
    store = EvaluationStore(tmp_path / "e.jsonl", space=space)
    store.add(_entry(space, [0, 0, 0], 1.0))
    store.add(_entry(space, [0, 0, 0], 9.0))
    assert store.get(space.validate([0, 0, 0])).fitness == 1.0


def test_refuses_a_store_of_another_space(space, tmp_path):
    EvaluationStore(tmp_path / "e.jsonl", space=space).add(_entry(space, [0, 0, 0], 1.0))
    other = SearchSpace.categorical({"a": [3, 3], "b": [4]})
    with pytest.raises(StoreError, match="different|signature"):
        EvaluationStore(tmp_path / "e.jsonl", space=other)


def test_refuses_a_file_that_is_not_a_store(space, tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"hello": 1}\n')
    with pytest.raises(StoreError, match="not an evaluation store"):
        EvaluationStore(path, space=space)


def test_truncated_last_line_is_skipped_with_a_warning(space, tmp_path):
    path = tmp_path / "e.jsonl"
    store = EvaluationStore(path, space=space)
    store.add(_entry(space, [1, 1, 1], 3.0))
    with open(path, "a") as fh:  # a crash in the middle of a write
        fh.write('{"type": "eval", "key": "2-1-')
    with pytest.warns(UserWarning, match="truncated"):
        reopened = EvaluationStore(path, space=space)
    assert len(reopened) == 1
    reopened.add(_entry(space, [2, 1, 3], 4.0))  # appending after the cut line keeps both readable
    with pytest.warns(UserWarning, match="unreadable"):
        final = EvaluationStore(path, space=space)
    assert {e.arch.key: e.fitness for e in final} == {"1-1-1": 3.0, "2-1-3": 4.0}


def _writer(path, worker, count):
    space = SearchSpace.categorical({"w": [64, 64]})
    store = EvaluationStore(path, space=space)
    for i in range(count):
        store.add(HistoryEntry(space.validate([worker, i]), float(worker * 100 + i)))


def test_several_writer_processes(tmp_path):
    path = tmp_path / "shared.jsonl"
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(path, w, 15)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    lines = path.read_text().splitlines()
    assert sum(json.loads(line)["type"] == "header" for line in lines) == 1
    space = SearchSpace.categorical({"w": [64, 64]})
    store = EvaluationStore(path, space=space)
    assert len(store) == 45
    assert {e.fitness for e in store} == {float(w * 100 + i) for w in range(3) for i in range(15)}
    assert len({json.loads(line)["writer"] for line in lines[1:]}) == 3
    assert all(line.endswith("}") for line in lines) and os.path.getsize(path) > 0


def test_sees_records_appended_by_another_handle(space, tmp_path):
    a = EvaluationStore(tmp_path / "e.jsonl", space=space)
    b = EvaluationStore(tmp_path / "e.jsonl", space=space)
    a.add(_entry(space, [2, 1, 0], 7.0))
    assert b.get(space.validate([2, 1, 0])).fitness == 7.0


def test_needs_a_space_before_use(space, tmp_path):
    store = EvaluationStore(tmp_path / "e.jsonl")
    with pytest.raises(RuntimeError, match="bind"):
        store.get(space.validate([0, 0, 0]))


def test_provenance_is_recorded_and_a_different_one_refused(space, tmp_path):
    made = {"sections": {"train": "a", "eval": "b"}, "supernet_steps": 20}
    EvaluationStore(tmp_path / "e.jsonl", space=space, provenance=made).add(_entry(space, [0, 0, 0], 1.0))
    assert json.loads((tmp_path / "e.jsonl").read_text().splitlines()[0])["provenance"] == made
    assert len(EvaluationStore(tmp_path / "e.jsonl", space=space, provenance=made)) == 1
    other = {"sections": {"train": "a", "eval": "c"}, "supernet_steps": 500}
    with pytest.raises(StoreError, match=r"made differently \(eval, supernet_steps differ\)"):
        EvaluationStore(tmp_path / "e.jsonl", space=space, provenance=other)


def test_a_damaged_header_names_the_repair_which_keeps_the_records(space, tmp_path):
    path = tmp_path / "e.jsonl"
    store = EvaluationStore(path, space=space)
    store.add(_entry(space, [0, 1, 3], 1.5))
    store.add(_entry(space, [2, 0, 0], -1.0))
    lines = path.read_text().splitlines()
    path.write_text("\n".join(['{"type": "hea', *lines[1:]]) + "\n")
    with pytest.raises(StoreError, match="header line is damaged; `oneshot repair-store --out"):
        EvaluationStore(path, space=space)
    assert EvaluationStore.repair(path, space, provenance={"supernet_steps": 3}) == 2
    repaired = EvaluationStore(path, space=space, provenance={"supernet_steps": 3})
    assert len(repaired) == 2 and repaired.get(space.validate([2, 0, 0])).fitness == -1.0
