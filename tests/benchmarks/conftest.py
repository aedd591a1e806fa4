import itertools
import json

import numpy as np
import pytest


@pytest.fixture(scope="session")
def synthetic_table(tmp_path_factory):
    """A NAS-Bench-Macro-shaped table (all 6561 keys) with made-up accuracies."""
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(8, 3))
    records = {}
    for combo in itertools.product("012", repeat=8):
        key = "".join(combo)
        acc = 90 + sum(weights[i, int(c)] for i, c in enumerate(combo)) + 0.2 * rng.normal()
        records[key] = {"test_acc": [acc] * 3, "mean_acc": acc, "std": 0.0, "params": 1, "flops": 1}
    path = tmp_path_factory.mktemp("nbm") / "nas-bench-macro_cifar10.json"
    path.write_text(json.dumps(records))
    return path
