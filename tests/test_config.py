from dataclasses import dataclass, field

import pytest

from seqnlp.config import ConfigError, from_dict, load_config, save_config, to_dict
from seqnlp.train.loop import TrainConfig


@dataclass
class Model:
    hidden: int = 8
    cell: str = "lstm"


@dataclass
class Cfg:
    task: str = "toy"
    model: Model = field(default_factory=Model)
    train: TrainConfig = field(default_factory=TrainConfig)


def test_yaml_and_dotted_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("model:\n  hidden: 32\ntrain:\n  lr: 0.01\n")
    cfg = load_config(Cfg, f, ["model.cell=gru", "train.epochs=3"])
    assert (cfg.model.hidden, cfg.model.cell, cfg.train.lr, cfg.train.epochs) == (32, "gru", 0.01, 3)
    assert isinstance(cfg.train, TrainConfig)


def test_unknown_keys_and_bad_types_rejected(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("model:\n  hiden: 32\n")
    with pytest.raises(ConfigError, match="hiden"):
        load_config(Cfg, f)
    with pytest.raises(ConfigError, match="hidden"):
        load_config(Cfg, None, ["model.hidden=big"])
    with pytest.raises(ConfigError, match="key.sub=value"):
        load_config(Cfg, None, ["model.hidden"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(Cfg, tmp_path / "nope.yaml")


def test_round_trips(tmp_path):
    cfg = load_config(Cfg, None, ["model.hidden=5"])
    assert from_dict(Cfg, to_dict(cfg)) == cfg
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(Cfg, tmp_path / "c.yaml") == cfg
