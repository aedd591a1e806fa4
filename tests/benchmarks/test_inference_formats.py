"""Smoke test of the inference-format benchmark (two images, one round)."""

import pytest


def test_inference_formats_smoke(tmp_path):
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'oneshot[export]')")
    pytest.importorskip("onnx", reason="onnx is not installed (pip install 'oneshot[export]')")
    from benchmarks.inference_formats import main

    report = main(["--images", "2", "--rounds", "1", "--size", "64", "--out", str(tmp_path)])
    assert (tmp_path / "report.md").read_text() == report
    rows = [line for line in report.splitlines() if line.startswith("| sampled") or line.startswith("| no deformable")]
    assert len(rows) == 8
    diffs = [float(r.split("|")[-2]) for r in rows if "whole" not in r]
    assert max(diffs) < 1e-4
