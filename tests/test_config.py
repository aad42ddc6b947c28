from dataclasses import dataclass, field

import pytest
from omegaconf import OmegaConf

from seqnlp.config import ConfigError, from_dict, load_config, read_yaml_layers, save_config, to_dict
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


# ------------------------------------------------------------------------------------------- base: presets
def test_base_is_merged_first_then_the_file_then_overrides(tmp_path):
    (tmp_path / "preset.yaml").write_text("task: toy\nmodel:\n  hidden: 32\n  cell: gru\ntrain:\n  lr: 0.01\n")
    (tmp_path / "experiments").mkdir()
    exp = tmp_path / "experiments" / "small.yaml"
    exp.write_text("base: ../preset.yaml  # relative to this file's directory\nmodel:\n  hidden: 16\n")
    cfg = load_config(Cfg, exp)
    assert (cfg.model.hidden, cfg.model.cell, cfg.train.lr) == (16, "gru", 0.01)  # base kept, file on top
    cfg = load_config(Cfg, exp, ["model.hidden=4", "train.lr=0.1"])
    assert (cfg.model.hidden, cfg.model.cell, cfg.train.lr) == (4, "gru", 0.1)  # overrides last
    assert "base" not in to_dict(cfg)
    assert load_config(Cfg, exp) == load_config(Cfg, None, ["model.hidden=16", "model.cell=gru", "train.lr=0.01"])


def test_nested_base_and_read_yaml_layers(tmp_path):
    (tmp_path / "a.yaml").write_text("task: toy\nmodel: {hidden: 1, cell: rnn}\ntrain: {lr: 0.5}\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yaml").write_text("base: ../a.yaml\nmodel: {hidden: 2}\n")
    (tmp_path / "sub" / "c.yaml").write_text("base: b.yaml\ntrain: {lr: 0.25}\n")
    cfg = load_config(Cfg, tmp_path / "sub" / "c.yaml")
    assert (cfg.task, cfg.model.hidden, cfg.model.cell, cfg.train.lr) == ("toy", 2, "rnn", 0.25)
    raw = read_yaml_layers(tmp_path / "sub" / "c.yaml")  # no schema: only what the files say
    assert raw.get("task") == "toy"  # inherited from the base's base
    assert OmegaConf.to_container(raw) == {"task": "toy", "model": {"hidden": 2, "cell": "rnn"}, "train": {"lr": 0.25}}


def test_base_cycle_is_a_clear_error(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: ./a.yaml\nmodel: {hidden: 3}\n")
    for read in (lambda p: load_config(Cfg, p), read_yaml_layers):
        with pytest.raises(ConfigError, match=r"cycle.*a\.yaml -> .*b\.yaml -> .*a\.yaml"):
            read(tmp_path / "a.yaml")
    (tmp_path / "self.yaml").write_text("base: self.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(Cfg, tmp_path / "self.yaml")


def test_missing_base_file_names_both_files(tmp_path):
    exp = tmp_path / "exp.yaml"
    exp.write_text("base: ../nowhere/preset.yaml\nmodel: {hidden: 3}\n")
    with pytest.raises(ConfigError, match=r"not found: .*nowhere/preset\.yaml \(the base of .*exp\.yaml\)"):
        load_config(Cfg, exp)
    with pytest.raises(ConfigError, match="not found"):
        read_yaml_layers(exp)
    exp.write_text("base: [a.yaml]\n")
    with pytest.raises(ConfigError, match="must be the path"):
        load_config(Cfg, exp)


def test_unknown_key_names_the_file_it_is_in(tmp_path):
    (tmp_path / "preset.yaml").write_text("task: toy\nmodel: {hidden: 8}\n")
    exp = tmp_path / "exp.yaml"
    exp.write_text("base: preset.yaml\nmodel: {hiden: 8}\n")  # the typo is in the experiment
    with pytest.raises(ConfigError, match=r"in .*exp\.yaml: .*hiden") as e:
        load_config(Cfg, exp)
    assert "preset.yaml" not in str(e.value)
    (tmp_path / "preset.yaml").write_text("task: toy\nmodl: {hidden: 8}\n")  # now in the base
    exp.write_text("base: preset.yaml\nmodel: {hidden: 8}\n")
    with pytest.raises(ConfigError, match=r"in .*preset\.yaml \(a base of .*exp\.yaml\): .*modl"):
        load_config(Cfg, exp)
    (tmp_path / "preset.yaml").write_text("task: toy\n")
    with pytest.raises(ConfigError, match=r"overrides of .*exp\.yaml: .*hidn"):
        load_config(Cfg, exp, ["model.hidn=3"])
