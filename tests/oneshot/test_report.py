"""Report rendering: the warning when the supernet has not learned, and retrained baselines."""

import json

import pytest

from oneshot import SearchSpace
from oneshot.report import (
    NOISE_FRACTION,
    RetrainComparison,
    RetrainResult,
    ScoredArchitecture,
    SearchReport,
    learning_warnings,
    noise_tolerance,
)


def test_noise_tolerance_is_stated_or_relative_to_the_metric_scale():
    assert noise_tolerance([30.0, 29.5, -2.0]) == pytest.approx(NOISE_FRACTION * 30.0)
    assert noise_tolerance([0.0, 0.0]) == pytest.approx(NOISE_FRACTION)  # scale 1 when every score is 0
    assert noise_tolerance([30.0, 29.5], stated=0.1) == 0.1


def test_random_baselines_within_noise_are_flagged():
    # the first runs: five random architectures within 0.6 mIoU around 30
    (warning,) = learning_warnings(31.0, [30.0, 30.2, 30.4, 30.5, 30.6], untrained=5.0, tolerance=0.6)
    assert "5 random architectures span only 0.6" in warning and "noise tolerance 0.6" in warning
    assert "train.paths_per_step=1 with train.sampler=uniform" in warning and "train.iterations" in warning
    assert learning_warnings(31.0, [20.0, 25.0, 30.0], untrained=5.0, tolerance=0.6) == []
    assert learning_warnings(31.0, [30.0], untrained=5.0, tolerance=0.6) == []  # one baseline: no spread


def test_identical_scores_and_no_gain_over_an_untrained_supernet_are_flagged():
    warnings = learning_warnings(10.0, [10.0, 10.0, 10.0], untrained=10.0, tolerance=0.2)
    assert len(warnings) == 2
    assert warnings[0].startswith("every architecture scores the same (10.00)")
    assert "on an untrained one" in warnings[1]


def _arch(space, i):
    return space.from_json([i % 3, (i // 3) % 3])


def test_report_renders_warnings_and_the_retrained_comparison():
    space = SearchSpace.categorical({"a": [3, 3]})
    report = SearchReport(
        task="t", searcher="s", found=ScoredArchitecture(_arch(space, 0), {"fitness": 1.0}),
        random=[ScoredArchitecture(_arch(space, i), {"fitness": 1.0}) for i in (1, 2)],
        evaluations=3, search_seconds=0.5, supernet_steps=10, warnings=["the supernet has not learned."],
    )
    assert "> **Warning:** the supernet has not learned." in report.to_markdown()
    assert report.to_json()["warnings"] == ["the supernet has not learned."]
    found = RetrainResult(_arch(space, 0), {"fitness": 80.0}, 5)
    randoms = [RetrainResult(_arch(space, i), {"fitness": f}, 5) for i, f in ((1, 90.0), (2, 70.0))]
    report.retrained = RetrainComparison(found, randoms)
    data = json.loads(json.dumps(report.to_json()))
    assert data["retrained"]["random_median_fitness"] == 80.0 and data["retrained"]["found_rank"] == 2
    assert [r["architecture"] for r in data["retrained"]["random"]] == [{"a": [1, 0]}, {"a": [2, 0]}]
    text = report.to_markdown()
    assert "## After retraining from scratch" in text and "| random 0 | `1-0` | 5 | 90.00 |" in text
    assert "ranks 2 of 3" in text
