"""The task benchmark's comparison as statistics: per-policy means with bootstrap intervals, the
differences behind the paper's three claims, and supernet trust with paired-bootstrap intervals.

The unit of a policy is a *search seed*: its found architecture's retrained fitness, averaged over
the retraining seeds. A policy's mean is the mean over its search seeds, with a percentile
bootstrap 95% interval that resamples search seeds (:func:`oneshot.stats.bootstrap_mean_ci`).
Differences of two groups resample each group on its own
(:func:`oneshot.stats.bootstrap_mean_difference_ci`).

**Verdict rule** for a claim "A >= B" or "A > B", from the interval ``[low, high]`` of
``mean(A) - mean(B)``: *supported* if ``low > 0`` (the whole interval above 0), *contradicted* if
``high < 0`` (the whole interval below 0), *open* otherwise (the interval holds 0, or one group has
fewer than two values, so no interval). For "A >= B", *open* is also what equal policies give.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from oneshot.stats import (
    ConfidenceInterval,
    bootstrap_mean_ci,
    bootstrap_mean_difference_ci,
    bootstrap_paired_ci,
    kendall_tau_b,
    spearman_rho,
)

__all__ = ["CLAIMS", "claim_verdict", "comparison_stats", "interval", "trust_stats"]

#: The paper's three claims (Auto-Panoptic, Tables 3 and 5): (id, text, group A, group B).
CLAIMS = (
    ("pp>=evolution", "path-priority >= evolution", "path-priority", "evolution"),
    ("pp>=random-search", "path-priority >= random search", "path-priority", "random"),
    ("searched>random", "searched > random architectures", "searched", "random architectures"),
)
N_BOOT = 10_000


def interval(values: Sequence[float], *, seed: int = 0) -> dict[str, Any]:
    """Mean of ``values`` with its bootstrap 95% interval (``low``/``high`` are None below 2 values)."""
    vals = [float(v) for v in values]
    if not vals:
        return {"n": 0, "estimate": None, "low": None, "high": None}
    if len(vals) < 2:
        return {"n": 1, "estimate": vals[0], "low": None, "high": None}
    ci = bootstrap_mean_ci(vals, n_boot=N_BOOT, seed=seed)
    return {"n": len(vals), "estimate": ci.estimate, "low": ci.low, "high": ci.high}


def _difference(a: Sequence[float], b: Sequence[float], *, seed: int = 0) -> dict[str, Any]:
    if not a or not b:
        return {"estimate": None, "low": None, "high": None}
    est = sum(a) / len(a) - sum(b) / len(b)
    if len(a) < 2 or len(b) < 2:
        return {"estimate": est, "low": None, "high": None}
    ci = bootstrap_mean_difference_ci(a, b, n_boot=N_BOOT, seed=seed)
    return {"estimate": ci.estimate, "low": ci.low, "high": ci.high}


def claim_verdict(diff: Mapping[str, Any]) -> str:
    """``supported``, ``contradicted`` or ``open`` for an interval of ``A - B`` (module docstring)."""
    low, high = diff.get("low"), diff.get("high")
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return "open"
    if low > 0:
        return "supported"
    if high < 0:
        return "contradicted"
    return "open"


def comparison_stats(
    per_policy: Mapping[str, Sequence[float]], randoms: Sequence[float], labels: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Intervals of each policy (``per_policy``: searcher -> one value per search seed), of the
    random architectures (one value per architecture), of policy - random, and the claims.

    "Searched" pools every found architecture of every policy (each search seed once)."""
    labels = labels or {}
    searched = [v for vals in per_policy.values() for v in vals]
    groups: dict[str, Sequence[float]] = {**per_policy, "searched": searched, "random architectures": list(randoms)}
    policies = {
        name: {"label": labels.get(name, name), **interval(vals), "minus_random": _difference(vals, randoms)}
        for name, vals in per_policy.items()
    }
    claims = []
    for cid, text, a, b in CLAIMS:
        if a not in groups or b not in groups or not groups[a] or not groups[b]:
            claims.append({"id": cid, "claim": text, "a": a, "b": b, "verdict": "not measured",
                           "difference": {"estimate": None, "low": None, "high": None}})
            continue
        diff = _difference(groups[a], groups[b])
        claims.append({"id": cid, "claim": text, "a": a, "b": b, "n_a": len(groups[a]), "n_b": len(groups[b]),
                       "difference": diff, "verdict": claim_verdict(diff)})
    return {
        "policies": policies,
        "searched": interval(searched),
        "random": interval(list(randoms)),
        "searched_minus_random": _difference(searched, randoms),
        "claims": claims,
    }


def _ci_dict(ci: ConfidenceInterval) -> dict[str, float | None]:
    finite = math.isfinite(ci.low) and math.isfinite(ci.high)
    return {"estimate": ci.estimate, "low": ci.low if finite else None, "high": ci.high if finite else None}


def trust_stats(supernet: Sequence[float], retrained: Sequence[float]) -> dict[str, Any]:
    """Kendall tau-b and Spearman rho between supernet and retrained fitness of the same
    architectures, each with a paired bootstrap 95% interval (pairs resampled together)."""
    n = len(supernet)
    nan = float("nan")
    out: dict[str, Any] = {"n": n}
    for key, fn in (("kendall_tau_b", kendall_tau_b), ("spearman_rho", spearman_rho)):
        value = fn(supernet, retrained) if n >= 2 else nan
        out[key] = value
        if n >= 3:
            out[f"{key}_ci"] = _ci_dict(bootstrap_paired_ci(supernet, retrained, fn, n_boot=2_000, seed=0))
        else:
            out[f"{key}_ci"] = {"estimate": value, "low": None, "high": None}
    return out
