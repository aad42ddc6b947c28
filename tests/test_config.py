import re
from dataclasses import dataclass, field

import pytest
from omegaconf import OmegaConf

from seqnlp.config import (
    ConfigError,
    check_choice,
    check_choices,
    check_fraction,
    check_train_config,
    from_dict,
    load_config,
    read_yaml_layers,
    save_config,
    to_dict,
)
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
    with pytest.raises(ConfigError, match=r"in .*exp\.yaml:2: .*hiden") as e:  # the file and the key's line
        load_config(Cfg, exp)
    assert "preset.yaml" not in str(e.value)
    (tmp_path / "preset.yaml").write_text("task: toy\nmodl: {hidden: 8}\n")  # now in the base
    exp.write_text("base: preset.yaml\nmodel: {hidden: 8}\n")
    with pytest.raises(ConfigError, match=r"in .*preset\.yaml:2 \(a base of .*exp\.yaml\): .*modl"):
        load_config(Cfg, exp)
    (tmp_path / "preset.yaml").write_text("task: toy\n")
    with pytest.raises(ConfigError, match=r"overrides of .*exp\.yaml: .*hidn"):
        load_config(Cfg, exp, ["model.hidn=3"])


# ------------------------------------------------------------------------------- files that are no config
NOT_A_CONFIG = {  # file content -> what the message says (after the file's name)
    b"\x89PNG\r\n\x1a\n\x00\x00\xff": r":1: not a YAML config file: byte 0x89 is not UTF-8 text",
    b"task: toy\nmodel: {hidden: 3}\n\x00\x01": r":3: not a YAML config file: it holds NUL bytes",
    b"just a sentence, not a config\n": r":1: not a config: .* holds a single value \('just a sentence",
    b"- model\n- train\n": r":1: not a config: .* holds a list",
    b"task: toy\nmodel:\n  hidden: [1, 2\ntrain: {lr: 1}\n": r":4:6: malformed YAML: expected ',' or ']'",
    b"task: toy\nmodel:\n\thidden: 3\n": r":3:1: malformed YAML: found character '\\t'",
    b"task: toy\ntask: toy\n": r":2:1: malformed YAML: found duplicate key task",
    b"": r" is empty: a config file holds `key: value` lines",
    b"# nothing but a comment\n\n": r" is empty",
}


@pytest.mark.parametrize("content", list(NOT_A_CONFIG), ids=lambda c: repr(c[:12]))
def test_a_file_that_is_no_yaml_mapping_names_the_file_and_line(tmp_path, content):
    f = tmp_path / "c.yaml"
    f.write_bytes(content)
    for read in (lambda p: load_config(Cfg, p), read_yaml_layers):
        with pytest.raises(ConfigError, match=re.escape(str(f)) + NOT_A_CONFIG[content]):
            read(f)
    exp = tmp_path / "exp.yaml"  # the same file as the base of another: both are named
    exp.write_text("base: c.yaml\n")
    with pytest.raises(ConfigError, match=re.escape(str(f)) + r".*\(the base of .*exp\.yaml\)"):
        load_config(Cfg, exp)


def test_a_directory_as_config_is_named(tmp_path):
    with pytest.raises(ConfigError, match=f"{re.escape(str(tmp_path))} is a directory, not a config file"):
        load_config(Cfg, tmp_path)
    (tmp_path / "exp.yaml").write_text("base: .\n")
    with pytest.raises(ConfigError, match=r"\(the base of .*exp\.yaml\) is a directory, not a config file"):
        read_yaml_layers(tmp_path / "exp.yaml")


def test_a_bad_value_names_the_line_of_its_key(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("task: toy\n\nmodel:\n  cell: gru\n  hidden: big\n")
    with pytest.raises(ConfigError, match=rf"in {re.escape(str(f))}:5: Value 'big' .*\n.*model\.hidden"):
        load_config(Cfg, f)


# ------------------------------------------------------------------------------- a config of another task
def test_load_config_for_a_task_refuses_a_config_of_another(tmp_path):
    f = tmp_path / "other.yaml"
    f.write_text("task: sentiment\nmodel: {hidden: 3}\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(f))} is a config for task 'sentiment', not 'toy'"):
        load_config(Cfg, f, task="toy")
    exp = tmp_path / "exp.yaml"
    exp.write_text("base: other.yaml\nmodel: {hidden: 4}\n")  # the task comes from the base
    with pytest.raises(ConfigError, match=r"exp\.yaml is a config for task 'sentiment', not 'toy' \(`task: "
                                          r"sentiment` in its base .*other\.yaml\)"):
        load_config(Cfg, exp, task="toy")
    exp.write_text("base: other.yaml\ntask: toy\n")  # the file's own task: counts
    assert load_config(Cfg, exp, task="toy").model.hidden == 3
    with pytest.raises(ConfigError, match="the override task=sentiment names another task than this config's, 'toy'"):
        load_config(Cfg, None, ["task=sentiment"], task="toy")
    assert load_config(Cfg, None, ["task=toy"], task="toy").task == "toy"
    assert load_config(Cfg, f).task == "sentiment"  # without task=: no check (the schema's own business)


# ------------------------------------------------------------------------------- enumerated values
def test_check_choice_names_the_key_and_the_allowed_values():
    check_choice("gru", ("lstm", "gru"), "model.cell")
    with pytest.raises(ConfigError, match=r"^model\.cell must be one of lstm \| gru, got 'lstn'$"):
        check_choice("lstn", ("lstm", "gru"), "model.cell")
    cfg = load_config(Cfg, None, ["model.cell=lstn"])
    with pytest.raises(ConfigError, match=r"^cfg\.model\.cell must be one of lstm \| gru, got 'lstn'$"):
        check_choices(cfg, {"model.cell": ("lstm", "gru")}, "cfg")
    for ok in (0.1, 0.999, 3, 200.0):
        check_fraction(ok, "data.carve.test", whole=True)
    for bad in (-0.1, 0, 1.5, True, "0.1"):
        with pytest.raises(ConfigError, match=r"^data\.carve\.test must be a fraction in \(0, 1\) or a whole number"):
            check_fraction(bad, "data.carve.test", whole=True)
    with pytest.raises(ConfigError, match=r"must be a fraction in \(0, 1\), got 2"):
        check_fraction(2, "data.cv_validation")


@pytest.mark.parametrize("override, message", [
    ("train.optimizer=adamm", "train.optimizer must be one of adamw | adam | sgd, got 'adamm'"),
    ("train.scheduler=cos", "train.scheduler must be one of constant | linear | cosine | plateau | inverse_sqrt"),
    ("train.decay_over=epochs", "train.decay_over must be one of steps | time"),
    ("train.eval_mode=maximum", "train.eval_mode must be one of min | max"),
    ("train.nan_policy=ignore", "train.nan_policy must be one of stop | skip"),
    ("train.precision=fp8", "train.precision must be one of auto | fp32 | bf16 | fp16"),
    ("train.device=gpu", "train.device must be one of auto | cpu | cuda | cuda:N | mps, got 'gpu'"),
    ("train.device=cuda:x", "train.device must be one of"),
])
def test_check_train_config(override, message):
    check_train_config(load_config(Cfg).train)
    for device in ("cpu", "cuda", "cuda:1", "mps", "auto"):
        check_train_config(load_config(Cfg, None, [f"train.device={device}"]).train)
    with pytest.raises(ConfigError) as e:
        check_train_config(load_config(Cfg, None, [override]).train)
    assert message in str(e.value)


def test_train_choices_are_what_the_training_loop_takes():
    """TRAIN_CHOICES lists the loop's options: each one builds, and the loop refuses a value outside them."""
    import torch

    from seqnlp.config import TRAIN_CHOICES
    from seqnlp.train.device import PRECISIONS
    from seqnlp.train.loop import build_optimizer, build_scheduler

    assert set(TRAIN_CHOICES["precision"]) == set(PRECISIONS)
    model = torch.nn.Linear(2, 2)
    for name in TRAIN_CHOICES["optimizer"]:
        build_optimizer(model, TrainConfig(optimizer=name))
    opt = build_optimizer(model, TrainConfig())
    for name in TRAIN_CHOICES["scheduler"]:
        build_scheduler(opt, TrainConfig(scheduler=name), 10)
    with pytest.raises(ValueError):
        build_optimizer(model, TrainConfig(optimizer="adamm"))
    with pytest.raises(ValueError):
        build_scheduler(opt, TrainConfig(scheduler="cos"), 10)


def test_a_dataclass_check_in_post_init_is_a_config_error():
    from seqnlp.search import SearchConfig

    @dataclass
    class WithSearch:
        search: SearchConfig = field(default_factory=SearchConfig)

    with pytest.raises(ConfigError, match="bad config in the command-line overrides|search.method must be one of"):
        load_config(WithSearch, None, ["search.method=beem"])
