"""Bad input at the entry points, each adversarial case run for real: one clear message, never a traceback -- a
ConfigError (exit 2) for a config or usage problem, naming the file, line or key; a DataError (exit 1) for a data
problem, naming the file or directory (see docs/reliability.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seqnlp.cli import main
from seqnlp.config import ConfigError, load_config, read_yaml_layers
from seqnlp.exit_codes import EXIT_DATA, EXIT_OK, EXIT_USAGE
from seqnlp.tasks import TASKS, get_task

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "recipes" / "configs"
SMOKE = {t: str(CONFIGS / t / "smoke.yaml") for t in TASKS}
QUIET = ["train.progress=false", "train.threads=1", "train.device=cpu"]


def _err(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return err


@pytest.fixture
def no_data(tmp_path, monkeypatch) -> Path:
    """An empty $SEQNLP_DATA: a command that read any data would stop with a DataError (exit 1), not exit 2."""
    root = tmp_path / "no_data"
    root.mkdir()
    monkeypatch.setenv("SEQNLP_DATA", str(root))
    return root


# ------------------------------------------------------------------------ 1. a config file that is no config
NOT_A_CONFIG = {  # what --config FILE holds -> what the message says after the file's name
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", ":1: not a YAML config file: byte 0x89 is not UTF-8 text"),
    "sentence": (b"Train a sentiment model on SST-2, please.\n", ":1: not a config: a config file holds `key: value` "
                 "lines, this one holds a single value"),
    "list": (b"- task: sentiment\n", ":1: not a config: a config file holds `key: value` lines, this one holds a list"),
    "malformed": (b"task: sentiment\nmodel:\n  hidden_size: [1, 2\ntrain: {lr: 1}\n", ":4:6: malformed YAML: "
                  "expected ',' or ']', but got ':' (while parsing a flow sequence, line 3)"),
    "empty": (b"", " is empty: a config file holds `key: value` lines"),
}


@pytest.mark.parametrize("case", list(NOT_A_CONFIG))
def test_a_config_file_that_is_no_config_names_the_file_and_line(case, tmp_path, capsys):
    content, says = NOT_A_CONFIG[case]
    f = tmp_path / "config.yaml"
    f.write_bytes(content)
    assert main(["train", "--config", str(f)]) == EXIT_USAGE
    assert f"error: {f}{says}" in _err(capsys)
    from seqnlp.recipes.sentiment import main as sentiment_main  # python recipes/sentiment.py --config FILE

    assert sentiment_main(["--config", str(f)]) == EXIT_USAGE
    assert f"{f}{says}" in _err(capsys)


def test_a_directory_given_as_config_is_named(tmp_path, capsys):
    assert main(["train", "--config", str(tmp_path)]) == EXIT_USAGE
    assert f"error: {tmp_path} is a directory, not a config file" in _err(capsys)


def test_an_unknown_key_names_the_line_it_is_on(tmp_path, capsys):
    f = tmp_path / "config.yaml"
    f.write_text("task: sentiment\nmodel:\n  hiden_size: 3\n")
    assert main(["train", "--config", str(f)]) == EXIT_USAGE
    err = _err(capsys)
    assert f"bad config in {f}:3: Key 'hiden_size' not in 'ModelConfig'" in err and "hidden_size" in err


# ------------------------------------------------------------------------ 2. a config of another task
def test_a_config_of_another_task_is_refused_by_the_recipe(tmp_path, capsys):
    from seqnlp.recipes.pos_tagging import main as pos_main  # python recipes/pos_tagging.py --config ...

    assert pos_main(["--config", SMOKE["sentiment"], f"output_dir={tmp_path / 'run'}"]) == EXIT_USAGE
    assert f"{SMOKE['sentiment']} is a config for task 'sentiment', not 'pos_tagging'" in _err(capsys)
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="is a config for task 'sentiment', not 'pos_tagging'"):  # the library
        load_config(get_task("pos_tagging").api.Config, SMOKE["sentiment"], task="pos_tagging")


# ------------------------------------------------------------------------ 3. enumerated values
BAD_VALUES = [  # (task, override, what the message says)
    ("sentiment", "data.format=xml", "data.format must be one of auto | csv | tsv | json | jsonl | parquet | txt | "
                                     "conllu | conll | parallel | dailydialog | rt_polarity, got 'xml'"),
    ("sentiment", "data.carve.validation=-0.1", "data.carve.validation must be a fraction in (0, 1) or a whole "
                                                "number of examples (>= 1), got -0.1"),
    ("sentiment", "model.cell=lstn", "model.cell must be one of lstm | gru | rnn | lstm_explicit, got 'lstn'"),
    ("sentiment", "model.pooling=maximum", "model.pooling: pooling must be one of"),
    ("sentiment", "data.unknown_labels=drop", "data.unknown_labels must be one of error | skip, got 'drop'"),
    ("sentiment", "infer_precision=fp8", "infer_precision must be one of fp32 | bf16 | fp16 | auto, got 'fp8'"),
    ("sentiment", "train.optimizer=adamm", "train.optimizer must be one of adamw | adam | sgd, got 'adamm'"),
    ("sentiment", "pretrain.train.scheduler=cos", "pretrain.train.scheduler must be one of constant | linear | "
                                                  "cosine | plateau | inverse_sqrt, got 'cos'"),
    ("pos_tagging", "data.tag_field=lemma", "data.tag_field must be one of upos | xpos, got 'lemma'"),
    ("pos_tagging", "data.format=conllx", "data.format must be one of auto | csv"),
    ("pos_tagging", "data.carve.validation=1.5", "data.carve.validation must be a fraction in (0, 1) or a whole"),
    ("pos_tagging", "model.encoder=cnn", "model.encoder must be one of ('bilstm', 'window'), got 'cnn'"),
    ("pos_tagging", "model.char=bpe", "model.char must be one of ('lstm', 'cnn', 'none'), got 'bpe'"),
    ("pos_tagging", "train.device=gpu", "train.device must be one of auto | cpu | cuda | cuda:N | mps, got 'gpu'"),
    ("translation", "data.tokenizer=wordpiece", "data.tokenizer must be one of bpe | unigram, got 'wordpiece'"),
    ("translation", "model.attention=concat", "model.attention must be one of bahdanau | luong_general | luong_dot "
                                              "| luong | none, got 'concat'"),
    ("translation", "search.method=beem", "search.method must be one of ('greedy', 'beam', 'sample'), got 'beem'"),
    ("translation", "val_search=nucleus", "val_search must be one of greedy | beam | sample, got 'nucleus'"),
    ("translation", "data.val_carve=-5", "data.val_carve must be a fraction in (0, 1) or a whole number"),
    ("dialogue", "data.format=csvx", "data.format must be one of auto | csv"),
    ("dialogue", "data.tokenizer=word", "data.tokenizer must be one of bpe | unigram, got 'word'"),
    ("dialogue", "model.attention=dot", "model.attention must be one of bahdanau | luong_general"),
    ("dialogue", "compare=[greedy,beem]", "compare must list decodings among ('greedy', 'beam', 'sample')"),
    ("dialogue", "train.nan_policy=ignore", "train.nan_policy must be one of stop | skip, got 'ignore'"),
    ("char_generator", "model.cell=transformer", "model.cell must be one of lstm | gru | rnn | window"),
    ("char_generator", "model.activation=swish", "model.activation must be one of tanh | relu | gelu | sigmoid"),
    ("char_generator", "data.validation_fraction=1.5", "data.validation_fraction must be a fraction in (0, 1)"),
    ("char_generator", "data.format=docx", "data.format must be one of auto | csv"),
    ("char_generator", "train.scheduler=step", "train.scheduler must be one of constant | linear | cosine"),
]


@pytest.mark.parametrize("task, override, message", BAD_VALUES, ids=lambda x: x if "=" in str(x) else "")
def test_a_bad_enumerated_value_names_the_key_and_the_choices_before_any_data(task, override, message, no_data,
                                                                              tmp_path, capsys):
    # with no data at all, reading any would be exit 1: exit 2 says the check came first
    assert main(["train", "--config", SMOKE[task], f"output_dir={tmp_path / 'run'}", *QUIET, override]) == EXIT_USAGE
    errors = [line for line in _err(capsys).splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], errors


@pytest.mark.parametrize("path", sorted(CONFIGS.rglob("*.yaml")), ids=lambda p: p.relative_to(CONFIGS).as_posix())
def test_every_preset_passes_its_tasks_checks(path):
    task = read_yaml_layers(path).get("task")
    api = get_task(task).api
    api.check_config(load_config(api.Config, path, task=task))


def test_the_attentions_are_those_the_decoder_builds():
    from seqnlp.nn.attention import build_attention
    from seqnlp.tasks.translation import ATTENTIONS

    for kind in ATTENTIONS:
        if kind != "none":
            build_attention(kind, 4, 4, 4)


# ------------------------------------------------------------------------ 4. output_dir that is a file
def test_an_output_dir_that_is_a_file_is_refused_by_prepare_run(tmp_path):
    from seqnlp.recipes.char_generator import train
    from seqnlp.tasks.char_generator import Config
    from seqnlp.train.rundir import prepare_run

    f = tmp_path / "results.txt"
    f.write_text("not a run directory\n")
    cfg = load_config(Config, SMOKE["char_generator"], [f"output_dir={f}"])
    with pytest.raises(ConfigError, match=f"^output_dir {f} is a file, not a directory"):
        prepare_run(cfg)
    with pytest.raises(ConfigError, match=f"^output_dir {f / 'run'} lies under {f}, which is a file"):
        train(load_config(Config, SMOKE["char_generator"], [f"output_dir={f / 'run'}"]))  # the recipe's first step
    assert f.read_text() == "not a run directory\n"


def test_training_into_an_output_dir_that_is_a_file_exits_2(tmp_path, capsys):
    f = tmp_path / "results.txt"
    f.write_text("not a run directory\n")
    assert main(["train", "--config", SMOKE["char_generator"], f"output_dir={f}", *QUIET]) == EXIT_USAGE
    assert f"error: output_dir {f} is a file, not a directory" in _err(capsys)
    assert f.read_text() == "not a run directory\n"


# ------------------------------------------------------------------------ 5. directories and saved datasets
def test_a_split_path_that_is_a_directory_is_named(tmp_path, capsys):
    (tmp_path / "ud" / "train").mkdir(parents=True)
    assert main(["train", "--config", SMOKE["pos_tagging"], f"output_dir={tmp_path / 'run'}", *QUIET,
                 f"data.name={tmp_path / 'ud'}", "data.format=conllu", "data.splits={train: train}"]) == EXIT_DATA
    assert f"error: {tmp_path / 'ud' / 'train'}: split 'train': 'train' is a directory, not a data file" in _err(capsys)


def _tagged(n: int, offset: int = 0) -> dict:
    words = [["the", "dog", "runs"], ["a", "cat", "sleeps"], ["dogs", "run"]]
    tags = [["DET", "NOUN", "VERB"], ["DET", "NOUN", "VERB"], ["NOUN", "VERB"]]
    return {"tokens": [words[(i + offset) % 3] for i in range(n)], "tags": [tags[(i + offset) % 3] for i in range(n)]}


def test_a_dataset_saved_with_save_to_disk_trains(tmp_path, capsys):
    """`DatasetDict.save_to_disk(DIR)` then `data.name=DIR`: loaded with datasets.load_from_disk, trained on."""
    import datasets

    saved = tmp_path / "my_pos"
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(_tagged(30)),
                          "validation": datasets.Dataset.from_dict(_tagged(6, 1)),
                          "test": datasets.Dataset.from_dict(_tagged(6, 2))}).save_to_disk(str(saved))
    out = tmp_path / "run"
    assert main(["train", "--config", SMOKE["pos_tagging"], f"output_dir={out}", *QUIET, f"data.name={saved}",
                 "train.max_steps=3", "train.eval_every=3"]) == EXIT_OK
    _err(capsys)
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["accuracy"] <= 1.0
