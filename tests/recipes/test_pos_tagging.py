"""POS tagging recipe: the smoke config end to end (train, metrics, evaluate, predict -> CoNLL-U), toy data
with multiword tokens / empty nodes / malformed lines, Hub-style tag columns (ClassLabel ids, strings)."""

import json
import shutil
from pathlib import Path

import conllu
import pytest

import seqnlp
from seqnlp.config import load_config
from seqnlp.recipes.pos_tagging import Config, main, tagging_metrics

CONFIGS = Path(__file__).parents[2] / "recipes" / "configs" / "pos_tagging"
TOY = Path(__file__).parents[1] / "data" / "toy" / "tagged.conllu"
DATA = "pos/ud_english_ewt"  # the real data the smoke runs read (conftest's data_dir)
TINY = ["model.word_dim=8", "model.char_dim=4", "model.char_hidden=4", "model.hidden=8", "train.max_steps=2",
        "train.epochs=1", "train.progress=false", "data.max_tokens=64", "train.threads=1"]


@pytest.fixture(scope="module")
def smoke_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("pos_smoke")
    assert main(["--config", str(CONFIGS / "smoke.yaml"), f"output_dir={out}"]) == 0
    return out


def test_smoke_trains_and_writes_metrics(smoke_run):
    metrics = json.loads((smoke_run / "metrics.json").read_text())
    for key in ("accuracy", "oov_accuracy", "sentences_per_s", "validation", "train"):
        assert key in metrics
    assert 0 < metrics["accuracy"] <= 1 and 0 <= metrics["oov_accuracy"] <= 1
    assert metrics["tokens"] > metrics["oov_tokens"] > 0
    per_tag = metrics["per_tag"]
    assert "NOUN" in per_tag and set(per_tag["NOUN"]) == {"precision", "recall", "f1", "support"}
    assert sum(v["support"] for v in per_tag.values()) == metrics["tokens"]
    log = [json.loads(line) for line in (smoke_run / "log.jsonl").read_text().splitlines()]
    assert any(r.get("event") == "eval" for r in log)
    result = json.loads((smoke_run / "result.json").read_text())
    assert result["metrics"]["accuracy"] == metrics["accuracy"] and result["task"] == "pos_tagging"
    assert (smoke_run / "confusion_test.png").stat().st_size > 0


def test_predict_writes_conllu_that_conllu_parses(smoke_run, tmp_path):
    raw = tmp_path / "in.txt"
    raw.write_text("I saw her duck .\n\n  The   cat sat .  \nCafé naïveté 2,000 http://x.org/a\n")
    out = tmp_path / "out.conllu"
    assert main(["--mode", "predict", "--model", str(smoke_run), "--input", str(raw), "--output", str(out)]) == 0
    sentences = conllu.parse(out.read_text(encoding="utf-8"))
    assert [[t["form"] for t in s] for s in sentences] == [
        "I saw her duck .".split(), "The cat sat .".split(), "Café naïveté 2,000 http://x.org/a".split()]
    tagset = set(json.loads((smoke_run / "checkpoints" / "best" / "config.json").read_text())["tags"])
    for s in sentences:
        assert [t["id"] for t in s] == list(range(1, len(s) + 1))
        assert all(t["upos"] in tagset for t in s)


def test_predict_keeps_conllu_tokenisation_and_skips_multiword_and_empty_nodes(smoke_run, tmp_path):
    out = tmp_path / "out.conllu"
    assert main(["--mode", "predict", "--model", str(smoke_run), "--input", str(TOY), "--output", str(out)]) == 0
    forms = [[t["form"] for t in s] for s in conllu.parse(out.read_text(encoding="utf-8"))]
    assert forms[0] == ["Do", "n't", "stop", "."]  # the 1-2 "Don't" line is not a word to tag
    assert "likes" not in forms[1][5:]  # empty node 5.1 skipped


def test_load_predict_and_evaluate(smoke_run, capsys):
    tagger = seqnlp.load(smoke_run)
    tags = tagger.predict(["Dogs bark .", ["A", "cat"], ""])
    assert [len(t) for t in tags] == [3, 2, 0]
    tagger.config.infer_precision = "bf16"  # autocast inference path
    assert [len(t) for t in tagger.predict(["Dogs bark .", "A cat"])] == [3, 2]
    assert main(["--mode", "evaluate", "--model", str(smoke_run), "--split", "validation"]) == 0
    metrics = json.loads((smoke_run / "metrics_validation.json").read_text())
    stored = json.loads((smoke_run / "metrics.json").read_text())["validation"]["accuracy"]
    assert metrics["accuracy"] == pytest.approx(stored)


def test_ensemble_of_crf_and_softmax_models(smoke_run, tmp_path):
    from seqnlp.recipes._pos_ensemble import ensemble_tag

    other = tmp_path / "softmax"
    assert main(["--config", str(CONFIGS / "smoke.yaml"), f"output_dir={other}", "model.crf=false",
                 "train.seed=2"]) == 0
    a, b = seqnlp.load(smoke_run), seqnlp.load(other)
    sentences = [["Dogs", "bark", "."], ["A", "cat"], ["I", "saw", "her", "duck", "today", "."]]
    assert ensemble_tag([a, a], sentences) == a.predict(sentences)  # doubling one model changes nothing
    assert [len(t) for t in ensemble_tag([a, b], sentences)] == [3, 2, 6]
    assert main(["--mode", "ensemble", "--model", str(smoke_run), "--ensemble", str(other), "--split",
                 "validation"]) == 0
    metrics = json.loads((smoke_run / "metrics_ensemble_validation.json").read_text())
    assert metrics["members"] == [str(smoke_run), str(other)] and 0 < metrics["accuracy"] <= 1


def toy_dataset(root: Path, train_text: str) -> Path:
    root.mkdir()
    (root / "train.conllu").write_text(train_text)
    shutil.copy(TOY, root / "dev.conllu")
    shutil.copy(TOY, root / "test.conllu")
    return root


def test_toy_conllu_with_multiword_tokens_and_empty_nodes_trains(tmp_path):
    root = toy_dataset(tmp_path / "toy", TOY.read_text())
    out = tmp_path / "run"
    assert main([f"data.name={root}", f"output_dir={out}", *TINY]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["tokens"] == 4 + 6  # 1-2 and 5.1 are not words
    xpos = tmp_path / "run_xpos"
    assert main([f"data.name={root}", f"output_dir={xpos}", "data.tag_field=xpos", "model.crf=false",
                 "model.encoder=window", *TINY]) == 0
    assert "VBZ" in json.loads((xpos / "checkpoints" / "best" / "config.json").read_text())["tags"]


def test_pretrained_vectors_extend_the_vocabulary_and_are_saved(tmp_path):
    import torch

    from seqnlp.data.word_vectors import write_vectors

    root = toy_dataset(tmp_path / "toy", TOY.read_text())
    vectors = tmp_path / "v.vec.gz"
    write_vectors(vectors, ["sue", "zebra", "likes"], torch.arange(24.0).view(3, 8))
    out = tmp_path / "run"
    assert main([f"data.name={root}", f"output_dir={out}", f"model.pretrained={vectors}", *TINY]) == 0
    tagger = seqnlp.load(out)
    feats, model = tagger.feats, tagger.model
    zebra, sue = feats.words.token_to_id("zebra"), feats.words.token_to_id("sue")
    assert zebra is not None and sue is not None  # "zebra" is not in the training data, "Sue" is (normalised)
    assert model.fixed_vectors[zebra].abs().sum() > 0 and model.fixed_vectors[feats.words.unk_id].abs().sum() == 0
    assert sue < model.word_embed.weight.size(0) <= zebra  # trainable rows: the training words only
    assert feats.oov([{"tokens": ["zebra", "Sue", "sue"]}]) == [[True, False, True]]  # OOV: forms as written
    assert len(tagger.predict(["Zebra likes tea"])[0]) == 3
    assert main([f"data.name={root}", f"output_dir={tmp_path / 'bad'}", f"model.pretrained={vectors}",
                 "model.word_dim=16", *TINY[1:]]) == 2  # 8-d vectors, 16-d embeddings


@pytest.mark.parametrize("bad_line,expect", [
    ("1\tDogs\tdog\tNOUN\n", "expected 10 tab-separated columns, found 4"),
    ("x\tDogs\tdog\tNOUN\tNNS\t_\t_\t_\t_\t_\n", "field 'id'"),
])
def test_malformed_conllu_is_an_error_with_file_and_line(tmp_path, capsys, bad_line, expect):
    text = TOY.read_text().replace("1\tSue\tSue\tPROPN\tNNP\t_\t2\tnsubj\t2:nsubj\t_\n", bad_line)
    root = toy_dataset(tmp_path / "bad", text)
    assert main([f"data.name={root}", f"output_dir={tmp_path / 'run'}", *TINY]) == 2
    err = capsys.readouterr().err
    assert "train.conllu:11:" in err and expect in err and "Traceback" not in err


def test_hub_style_tag_columns_classlabel_ids_and_strings(tmp_path):
    from datasets import ClassLabel, Dataset, Features, Sequence, Value

    names = ["DET", "NOUN", "VERB"]
    rows = {"tokens": [["the", "dog", "barks"], ["a", "cat", "sleeps"]] * 4, "pos_tags": [[0, 1, 2]] * 8}
    feats = Features({"tokens": Sequence(Value("string")), "pos_tags": Sequence(ClassLabel(names=names))})
    ids_dir = tmp_path / "ids"
    ids_dir.mkdir()
    for split in ("train", "validation", "test"):
        Dataset.from_dict(rows, features=feats).to_parquet(str(ids_dir / f"{split}.parquet"))
    out = tmp_path / "run_ids"
    assert main([f"data.name={ids_dir}", f"output_dir={out}", *TINY]) == 0
    assert json.loads((out / "checkpoints" / "best" / "config.json").read_text())["tags"] == names
    str_dir = tmp_path / "strings"
    str_dir.mkdir()
    for split in ("train", "validation", "test"):
        lines = [json.dumps({"words": t, "labels": [names[i] for i in y]})
                 for t, y in zip(rows["tokens"], rows["pos_tags"])]
        (str_dir / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "run_str"
    assert main([f"data.name={str_dir}", f"output_dir={out}", "data.columns.tokens=words",
                 "data.columns.tags=labels", *TINY]) == 0
    assert json.loads((out / "metrics.json").read_text())["tokens"] == 24


def test_tagging_metrics_by_hand():
    gold = [["DET", "NOUN"], ["VERB"]]
    pred = [["DET", "VERB"], ["VERB"]]
    oov = [[False, True], [True]]
    m = tagging_metrics(gold, pred, oov)
    assert m["accuracy"] == pytest.approx(2 / 3) and m["oov_accuracy"] == pytest.approx(1 / 2)
    assert m["sentence_accuracy"] == pytest.approx(1 / 2)
    assert m["per_tag"]["VERB"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1}
    assert m["per_tag"]["NOUN"]["recall"] == 0.0


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.stem)
def test_configs_load_and_start_with_their_command(path):
    cfg = load_config(Config, path)
    assert cfg.task == "pos_tagging"
    command = f"# python recipes/pos_tagging.py --config recipes/configs/pos_tagging/{path.name}"
    assert path.read_text().startswith(command)


def test_help_lists_config_keys(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "model:" in capsys.readouterr().out
