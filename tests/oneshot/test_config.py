import pytest

from oneshot import ConfigError
from oneshot.config import RunConfig, load_config, parse_overrides
from oneshot.testing import ToyConfig


def test_overrides_parse_yaml_values():
    assert parse_overrides(["train.iterations=200", "search.searcher=evolution", "train.milestones=[0.5, 0.9]", "train.grad_clip=null"]) == {
        "train": {"iterations": 200, "milestones": [0.5, 0.9], "grad_clip": None},
        "search": {"searcher": "evolution"},
    }
    with pytest.raises(ConfigError, match="must look like key.path=value"):
        parse_overrides(["train.iterations"])


def test_layering_defaults_preset_file_overrides(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("train:\n  iterations: 7\n  lr: 0.5\n")
    cfg = load_config(RunConfig, preset={"train": {"iterations": 3, "batch_size": 4}}, path=cfg_file, overrides=["train.lr=0.1"])
    assert (cfg.train.iterations, cfg.train.batch_size, cfg.train.lr) == (7, 4, 0.1)
    assert cfg.train.momentum == 0.9


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["train.iteratons=5"], "train.iteratons: unknown key"),
        (["train.iterations=abc"], "train.iterations: Input should be a valid integer"),
        (["train.iterations=-1"], "train.iterations: Input should be greater than or equal to 0"),
        (["data.image_size=2"], "data.image_size: Input should be greater than or equal to 4"),
        (["nonsense=1"], "nonsense: unknown key"),
        (["train.sampler=greedy"], "train.sampler: unknown sampler 'greedy'; available: fair, fair-balanced, uniform"),
    ],
)
def test_bad_values_name_the_field(overrides, message):
    with pytest.raises(ConfigError) as info:
        load_config(ToyConfig, overrides=overrides)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_yaml_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(RunConfig, path=bad)
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(RunConfig, path=tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(RunConfig, path=tmp_path / "list.yaml")
