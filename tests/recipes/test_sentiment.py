"""Sentiment: the smoke config end to end (train, metrics, predict, evaluate, ensemble), fine-tuning from its
checkpoint on other data, cross-validation, LM pretraining, distillation, adversarial training, pretrained
vectors, bad input, format-1 checkpoints, the precision fallback, and the LM-pretraining head's causality."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import seqnlp
import seqnlp.cli
import seqnlp.train.checkpoint
import seqnlp.train.device
from seqnlp.config import load_config
from seqnlp.data import classification as sd
from seqnlp.data.errors import DataError
from seqnlp.data.loading import DataSpec
from seqnlp.nn.embeddings import Embeddings
from seqnlp.nn.encoders import RNNEncoder
from seqnlp.recipes.sentiment import main
from seqnlp.tasks import sentiment
from seqnlp.tasks.bilm import EncoderLM
from seqnlp.tasks.classifier import SequenceClassifier
from seqnlp.tasks.sentiment import Config, ModelConfig, build_model
from seqnlp.train.distill import teacher_targets

CONFIGS = Path(__file__).resolve().parents[2] / "recipes" / "configs" / "sentiment"
SMOKE = str(CONFIGS / "smoke.yaml")


DATA = "sentiment/sst2"  # the real data the smoke runs read (conftest's data_dir)


@pytest.fixture(autouse=True)
def keep_threads():
    n = torch.get_num_threads()  # the configs pin torch to 1 thread; give the other tests theirs back
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, data_dir) -> Path:
    out = tmp_path_factory.mktemp("smoke")
    assert main(["--config", SMOKE, f"output_dir={out}"]) == 0
    return out


def _smoke_with_data(tmp_path: Path, **data) -> str:
    """The smoke config with ``data`` replaced key by key (dict overrides on the command line merge, not replace)."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(SMOKE)
    for key, value in data.items():
        cfg.data[key] = value
    path = tmp_path / "config.yaml"
    OmegaConf.save(cfg, path)
    return str(path)


def _tsv(path: Path, rows: list[tuple[str, str]], header=("sentence", "label")) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\t".join(header) + "\n" + "".join("\t".join(r) + "\n" for r in rows))


# ------------------------------------------------------------------------------------------- end to end
def test_smoke_trains_and_scores(smoke_run):
    m = json.loads((smoke_run / "metrics.json").read_text())
    assert m["labels"] == ["negative", "positive"] and m["n"] == 200
    assert sum(map(sum, m["confusion_matrix"])) == 200
    assert m["accuracy"] == pytest.approx(sum(m["confusion_matrix"][i][i] for i in range(2)) / 200)
    assert m["accuracy"] > 0.6  # it learns something in a few steps (majority class is 0.54)
    assert 0.0 <= m["macro_f1"] <= 1.0 and m["pretrain"]["steps"] > 0
    rec = json.loads((smoke_run / "result.json").read_text())
    assert rec["metrics"]["accuracy"] == m["accuracy"] and rec["wall_seconds"] > 0
    log = [json.loads(line) for line in (smoke_run / "log.jsonl").read_text().splitlines()]
    assert sum(r["event"] == "truncated" and r["split"] == "train" for r in log) == 1  # reported once


def test_predict_raw_text(smoke_run, tmp_path, capsys):
    pred = seqnlp.load(smoke_run)
    out = pred.predict(["A gorgeous, witty film!", "   ", "dull , dull , dull"])
    assert out[1] == {"label": None, "probs": None}
    for r in (out[0], out[2]):
        assert r["label"] in ("negative", "positive")
        assert sum(r["probs"].values()) == pytest.approx(1.0, abs=1e-5)
    (tmp_path / "in.txt").write_text("a charming film\n\nthe worst movie i have seen\n")
    rc = seqnlp.cli.main(["predict", "--model", str(smoke_run), "--input", str(tmp_path / "in.txt"),
                          "--output", str(tmp_path / "out.jsonl"), "--format", "jsonl"])
    assert rc == 0
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["input"] for r in lines] == ["a charming film", "", "the worst movie i have seen"]
    assert lines[1]["label"] is None and lines[1]["probs"] is None  # the blank line keeps its place
    assert seqnlp.cli.main(["predict", "--model", str(smoke_run), "--input", str(tmp_path / "in.txt")]) == 0
    text = capsys.readouterr().out.split("\n")
    assert len(text) == 4 and text[1] == "" and text[0] in ("negative", "positive")  # label per line
    assert seqnlp.cli.main(["predict", "--model", str(smoke_run), "--input", str(tmp_path / "in.txt"),
                            "--format", "tsv"]) == 0
    tsv = capsys.readouterr().out.splitlines()
    assert tsv[0] == "label\tp_negative\tp_positive\ttext" and len(tsv) == 4
    assert tsv[2] == "\t\t\t" and tsv[3].endswith("\tthe worst movie i have seen")


def test_predict_one_result_per_input_in_order(smoke_run):
    """Blank and token-less inputs keep their place; batched results equal one-by-one results."""
    pred = seqnlp.load(smoke_run)
    texts = ["", "a charming , witty film", "   ", "the worst movie", "\t", "a film"]
    out = pred.predict(texts)
    assert len(out) == len(texts) and all(set(r) == {"label", "probs"} for r in out)
    assert [r["label"] is None for r in out] == [True, False, True, False, True, False]
    assert all(r["probs"] is None for r in out if r["label"] is None)
    for t, r in zip(texts, out):
        one = pred.predict(t)
        assert len(one) == 1 and one[0]["label"] == r["label"]
        if r["probs"]:
            assert one[0]["probs"] == pytest.approx(r["probs"], abs=1e-6)
    assert pred.predict([]) == []
    with pytest.raises(TypeError, match=r"\[1\]"):
        pred.predict(["fine", 3])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A tiny classifier trained for two steps on toy rows (no real data): the smoke config's max_len=40,
    keep_head=10."""
    tmp = tmp_path_factory.mktemp("sentiment_tiny")
    rows = [("a wonderful , moving film", "1"), ("flat and tedious", "0")] * 10
    _tsv(tmp / "toy" / "train.tsv", rows)
    _tsv(tmp / "toy" / "dev.tsv", rows[:4])
    config = _smoke_with_data(tmp, name=str(tmp / "toy"), carve={"validation": 4}, train_limit=0, eval_limit=0)
    out = tmp / "run"
    assert main(["--config", config, f"output_dir={out}", "pretrain.enabled=false", "train.max_steps=2"]) == 0
    return out


def test_predict_says_once_that_a_long_text_was_truncated(tiny_run, tmp_path, capsys):
    long_text = "a wonderful , moving film " * 8000  # 208,000 characters, 40,000 tokens
    assert len(long_text) > 200_000
    src = tmp_path / "in.txt"
    src.write_text(f"flat and tedious\n{long_text}\n\n{long_text}\n")
    capsys.readouterr()
    assert seqnlp.cli.main(["predict", "--model", str(tiny_run), "--input", str(src)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.split("\n")
    assert len(lines) == 5 and lines[1] in ("negative", "positive") and lines[2] == ""
    assert captured.err.count("note: ") == 1  # one note per predict call, not one per text
    assert "note: 2 of 4 inputs were longer than data.max_len=40 tokens and were truncated" in captured.err
    pred = seqnlp.load(tiny_run)
    capsys.readouterr()
    assert pred.predict(["a wonderful film", "flat"])[0]["label"] is not None
    assert capsys.readouterr().err == "" and pred.last_truncated == 0  # nothing truncated: nothing said
    assert pred.predict(long_text)[0]["label"] in ("negative", "positive")
    assert capsys.readouterr().err.count("note: 1 of 1 inputs were longer than data.max_len=40") == 1
    assert pred.last_truncated == 1


def test_predict_input_types(tiny_run):
    pred = seqnlp.load(tiny_run)
    assert len(pred.predict("a wonderful film")) == 1  # a bare string is one input
    for bad in (None, 3, 2.5):
        with pytest.raises(TypeError, match=r"inputs\[1\]"):
            pred.predict(["a wonderful film", bad])


def test_evaluate_mode(smoke_run, capsys):
    assert seqnlp.cli.main(["evaluate", "--model", str(smoke_run), "--split", "test"]) == 0
    again = json.loads((smoke_run / "metrics_test.json").read_text())
    want = json.loads((smoke_run / "metrics.json").read_text())
    assert again["accuracy"] == pytest.approx(want["accuracy"]) and again["loss"] == pytest.approx(want["loss"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["n"] == 200  # the summary line
    # the recipe hands --mode to the same runner
    (smoke_run / "metrics_validation.json").unlink(missing_ok=True)
    assert main(["--mode", "evaluate", f"--model={smoke_run}", "--split=validation"]) == 0
    assert json.loads((smoke_run / "metrics_validation.json").read_text())["n"] == 200


def test_ensemble_mode(smoke_run, tmp_path, capsys):
    """Averaged class probabilities: a model with itself scores as the model; members keep their own scores."""
    single = json.loads((smoke_run / "metrics.json").read_text())
    assert seqnlp.cli.main(["ensemble", "--model", str(smoke_run), "--ensemble", str(smoke_run),
                            "--split", "test"]) == 0
    twice = json.loads((smoke_run / "metrics_ensemble_test.json").read_text())
    assert twice["accuracy"] == pytest.approx(single["accuracy"]) and twice["loss"] == pytest.approx(single["loss"])
    other = tmp_path / "seed2"
    assert main(["--config", SMOKE, f"output_dir={other}", "train.seed=2", "pretrain.enabled=false",
                 "train.max_steps=6", "train.eval_every=3"]) == 0
    record = tmp_path / "results" / "ens.json"
    assert seqnlp.cli.main(["ensemble", "--model", str(smoke_run), "--ensemble", f"{smoke_run},{other}",
                            "--split", "test", "--record", str(record)]) == 0
    m = json.loads((smoke_run / "metrics_ensemble_test.json").read_text())
    accs = [single["accuracy"], single["accuracy"], json.loads((other / "metrics.json").read_text())["accuracy"]]
    assert [r["accuracy"] for r in m["members"]] == pytest.approx(accs)
    assert m["member_accuracy_mean"] == pytest.approx(sum(accs) / 3) and m["n"] == single["n"]
    assert json.loads(record.read_text())["metrics"]["accuracy"] == pytest.approx(m["accuracy"])
    assert seqnlp.cli.main(["ensemble", "--model", str(smoke_run), "--split", "test"]) == 2
    assert "needs --ensemble" in capsys.readouterr().err


def test_finetune_on_other_dataset_with_new_labels(smoke_run, tmp_path):
    """A 3-class toy dataset: tokenizer from the checkpoint, only the head re-initialised (and logged)."""
    rows = [("a wonderful , moving film", "pos"), ("flat and tedious", "neg"), ("it is a film", "neu")] * 20
    _tsv(tmp_path / "toy3" / "train.tsv", rows)
    _tsv(tmp_path / "toy3" / "dev.tsv", rows[:12])
    out = tmp_path / "ft"
    config = _smoke_with_data(tmp_path, name=str(tmp_path / "toy3"), carve={"validation": 6}, label_map={},
                              labels=["neg", "neu", "pos"])
    rc = main(["--config", config, f"output_dir={out}", f"init_from={smoke_run}", "pretrain.enabled=false",
               "train.max_steps=4", "train.eval_every=2"])
    assert rc == 0
    notes = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    init = [r for r in notes if r["event"] == "init_from"]
    assert init[0]["head"] == "reinitialised" and "re-initialising only the classifier head" in init[0]["message"]
    m = json.loads((out / "metrics.json").read_text())
    assert m["labels"] == ["neg", "neu", "pos"] and len(m["confusion_matrix"]) == 3
    old, new = seqnlp.load(smoke_run), seqnlp.load(out)
    assert new.tokenizer.vocab() == old.tokenizer.vocab()
    assert new.model.embed.weight.shape == old.model.embed.weight.shape


def test_finetune_from_lm_pretraining_checkpoint(smoke_run, tmp_path, capsys):
    """The LM stage's checkpoint can start a classifier too (embeddings + encoder; a new head), but does not
    predict labels by itself."""
    with pytest.raises(seqnlp.train.checkpoint.CheckpointError, match="LM-pretraining checkpoint"):
        seqnlp.load(smoke_run / "pretrain").predict(["a film"])
    (tmp_path / "in.txt").write_text("a film\n")
    rc = seqnlp.cli.main(["predict", "--model", str(smoke_run / "pretrain"), "--input", str(tmp_path / "in.txt")])
    assert rc == 1
    assert "LM-pretraining checkpoint, not a classifier" in capsys.readouterr().err
    out = tmp_path / "from_lm"
    rc = main(["--config", SMOKE, f"output_dir={out}", f"init_from={smoke_run / 'pretrain'}", "pretrain.enabled=false",
               "train.max_steps=2", "train.eval_every=2"])
    assert rc == 0
    init = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["head"] for r in init if r["event"] == "init_from"] == ["new"]


def test_finetune_on_rotten_tomatoes_same_labels(smoke_run, tmp_path):
    out = tmp_path / "rt"
    config = _smoke_with_data(tmp_path, name="sentiment/rt_polarity", format="rt_polarity", splits={}, columns={},
                              carve={"validation": 100, "test": 100}, train_limit=300)
    rc = main(["--config", config, f"output_dir={out}", f"init_from={smoke_run}", "pretrain.enabled=false",
               "train.max_steps=3", "train.eval_every=3"])
    assert rc == 0
    init = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["head"] for r in init if r["event"] == "init_from"] == ["kept"]


def test_cross_validation_tiny_from_checkpoint(smoke_run, tmp_path):
    """2-fold CV where every fold fine-tunes from the smoke checkpoint."""
    out = tmp_path / "cv"
    config = _smoke_with_data(tmp_path, name="sentiment/rt_polarity", format="rt_polarity", splits={}, columns={},
                              carve={}, cv_folds=2, train_limit=200)
    rc = main(["--config", config, f"output_dir={out}", f"init_from={smoke_run}", "pretrain.enabled=false",
               "train.max_steps=2", "train.eval_every=2"])
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["cv_folds"] == 2 and len(m["folds"]) == 2 and m["n"] == 200
    assert m["accuracy"] == pytest.approx(sum(f["accuracy"] for f in m["folds"]) / 2)
    assert seqnlp.load(out / "fold1").tokenizer.vocab() == seqnlp.load(smoke_run).tokenizer.vocab()


def test_cv_folds_partition():
    items = list(range(103))
    tests = []
    for k in range(5):
        f = sd.cv_fold(items, 5, k, 0.1, seed=3)
        assert sorted(f["train"] + f["validation"] + f["test"]) == items
        assert len(f["validation"]) == round(0.1 * (103 - len(f["test"])))
        tests += f["test"]
    assert sorted(tests) == items  # the test folds partition the data


# ------------------------------------------------------------------------------------------- bad input
def _spec(tmp_path, rows, header=("sentence", "label")):
    _tsv(tmp_path / "d" / "train.tsv", rows, header)
    return DataSpec(str(tmp_path / "d"), splits={"train": "train.tsv"})


def test_missing_label_column(tmp_path, capsys):
    spec = _spec(tmp_path, [("good", "x")], header=("sentence", "other"))
    with pytest.raises(DataError, match="no label column.*data.columns.label"):
        sd.load_labelled(spec, [], {}, "error", lambda *a, **k: None)
    config = _smoke_with_data(tmp_path, name=str(tmp_path / "d"), splits={"train": "train.tsv"},
                              carve={"validation": 0.3, "test": 0.3})
    rc = main(["--config", config, f"output_dir={tmp_path / 'o'}"])
    assert rc == 1 and "column 'label' not found" in capsys.readouterr().err


def test_unknown_labels_error_or_counted_skip(tmp_path):
    spec = _spec(tmp_path, [("good", "1"), ("bad", "0"), ("odd", "7"), ("", "1"), ("so so", "")])
    notes = []
    with pytest.raises(DataError, match="example 3: label '7' is not in the known label set"):
        sd.load_labelled(spec, ["negative", "positive"], {"0": "negative", "1": "positive"}, "error",
                         lambda *a, **k: None)
    splits, labels = sd.load_labelled(spec, ["negative", "positive"], {"0": "negative", "1": "positive"}, "skip",
                                      lambda msg, **k: notes.append((msg, k)))
    assert splits["train"] == [("good", "positive"), ("bad", "negative")]
    assert notes[0][1]["counts"] == {"empty text": 1, "no label": 1, "label outside ['negative', 'positive'] "
                                     "({'7': 1})": 1}
    assert "skipped 3 of 5 examples" in notes[0][0]


def test_hub_id_offline_is_a_clear_error(tmp_path, capsys):
    rc = main(["--config", SMOKE, f"output_dir={tmp_path}", "data.use_hub=true", "data.hub.name=stanfordnlp/sst2"])
    assert rc == 1
    assert "stanfordnlp/sst2" in capsys.readouterr().err


def test_configs_load():
    paths = sorted(CONFIGS.rglob("*.yaml"))
    assert len(paths) > 10 and any(p.parent.name == "experiments" for p in paths)
    for path in paths:
        cfg = load_config(Config, path)
        assert cfg.task == "sentiment", path
        head = "".join(path.read_text().splitlines(keepends=True)[:3])
        assert f"--config recipes/configs/sentiment/{path.relative_to(CONFIGS).as_posix()}" in head, path
        if cfg.data.hub.name:
            assert set(cfg.data.hub.columns) <= {"text", "label"}


# ------------------------------------------------------------------------------------------- model parts
def test_truncate_keeps_head_and_tail():
    ids = list(range(10))
    assert sd.truncate(ids, 6, 2) == [0, 1, 6, 7, 8, 9]
    assert sd.truncate(ids, 6, 0) == [4, 5, 6, 7, 8, 9]
    assert sd.truncate(ids, 0, 2) == ids and sd.truncate(ids, 12, 2) == ids


def test_tokenizer_treats_raw_and_pretokenised_text_alike():
    tok = sd.build_tokenizer(["i do n't like it 's", "Don't <br />LIKE it's!"], 100, 1)
    assert tok.encode("I don't like it's<br />") == tok.encode("i do n't like it 's")


def test_pooling_combinations():
    torch.manual_seed(0)
    m = build_model(ModelConfig(vocab_size=20, num_classes=3, emb_size=6, hidden_size=5,
                                pooling="max+final+attention"))
    assert m.head.in_features == 30
    batch = sd.collate_classify(0)([([4, 5, 6], 0), ([7], 2)])
    assert m(batch).shape == (2, 3)
    with pytest.raises(ValueError, match="pooling"):
        build_model(ModelConfig(vocab_size=20, num_classes=3, emb_size=6, hidden_size=5, pooling="max+sum"))


def _lm(num_layers=1, bidirectional=True, cutoffs=(8,), packed=True):
    torch.manual_seed(0)
    enc = RNNEncoder(6, 5, num_layers, "lstm", bidirectional, 0.0, packed=packed)
    return EncoderLM(Embeddings(20, 6), enc, 20, cutoffs).eval()


@pytest.mark.parametrize("cutoffs,packed", [((8,), True), ((), True), ((8,), False)])
def test_lm_cannot_see_the_token_it_predicts(cutoffs, packed):
    """Changing token t leaves unchanged every distribution that predicts t (forward row t-1, backward row
    t+1), while it does change later forward rows and earlier backward rows (so the check is sensitive)."""
    lm = _lm(cutoffs=cutoffs, packed=packed)
    src = torch.tensor([[2, 5, 9, 11, 7, 13, 3], [2, 6, 8, 3, 0, 0, 0]])  # a padded row beside it
    lengths = torch.tensor([7, 4])
    fwd, bwd = lm.predict(src, lengths)
    for t in range(1, 6):
        alt = src.clone()
        alt[0, t] = 4 if src[0, t] != 4 else 6
        fwd2, bwd2 = lm.predict(alt, lengths)
        assert torch.equal(fwd2[0, :t], fwd[0, :t])  # rows 0..t-1 (row t-1 predicts token t)
        assert torch.equal(bwd2[0, t + 1:], bwd[0, t + 1:])  # rows t+1.. (row t+1 predicts token t)
        assert not torch.allclose(fwd2[0, t], fwd[0, t]) and not torch.allclose(bwd2[0, t], bwd[0, t])


def test_lm_refuses_stacked_bidirectional_encoder():
    with pytest.raises(ValueError, match="2 layers"):
        _lm(num_layers=2)
    uni = _lm(num_layers=2, bidirectional=False)  # a unidirectional stack is fine (forward LM only)
    assert uni.predict(torch.tensor([[2, 5, 3]]), torch.tensor([3]))[1] is None


def test_stacked_bidirectional_lstm_would_leak():
    """Why the refusal: in a 2-layer fused BiLSTM, the forward output at t-1 depends on token t."""
    torch.manual_seed(0)
    rnn = torch.nn.LSTM(4, 3, num_layers=2, bidirectional=True, batch_first=True)
    x = torch.randn(1, 5, 4, requires_grad=True)
    out, _ = rnn(x)
    out[0, 1, :3].sum().backward()  # forward direction at position 1
    assert x.grad[0, 2].abs().sum() > 0  # sees position 2


def test_lm_loss_counts_both_directions():
    lm = _lm()
    batch = sd.collate_lm(0, 2, 3)([[5, 6, 7], [8]])  # lengths 5 and 3 with <s> </s>
    loss, n = lm.loss(batch)
    assert n == 2 * ((5 - 1) + (3 - 1)) and torch.isfinite(loss)
    lp_f, lp_b = lm.predict(batch.src, batch.src_lengths)
    src = batch.src
    ref = -(lp_f[0, :4].gather(-1, src[0, 1:5, None]).sum() + lp_f[1, :2].gather(-1, src[1, 1:3, None]).sum()
            + lp_b[0, 1:5].gather(-1, src[0, :4, None]).sum() + lp_b[1, 1:3].gather(-1, src[1, :2, None]).sum())
    assert float(loss.detach()) == pytest.approx(float(ref) / n, rel=1e-5)


def test_lm_loss_under_bf16_autocast():
    """precision=bf16: the LSTM runs in bfloat16, the adaptive softmax (which needs float32) does not fail."""
    lm = _lm().train()
    batch = sd.collate_lm(0, 2, 3)([[5, 6, 7, 12], [8, 9]])
    full, _ = lm.loss(batch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half, n = lm.loss(batch)
        lp = lm.log_probs(torch.randn(3, lm.hidden_size))
    assert half.dtype == torch.float32 and torch.isfinite(half) and half.item() == pytest.approx(full.item(), rel=0.05)
    half.backward()
    assert lp.shape == (3, 20) and torch.allclose(lp.exp().sum(-1), torch.ones(3), atol=1e-4)


def test_classifier_word_dropout_only_in_training():
    torch.manual_seed(0)
    m = SequenceClassifier(Embeddings(20, 4), RNNEncoder(4, 3), 2, "max", 0.0, word_dropout=1.0)
    batch = sd.collate_classify(0)([([4, 5, 6], 0)])
    m.eval()
    a = m(batch)
    m.train()
    unk = sd.collate_classify(0)([([1, 1, 1], 0)])
    m.eval()
    assert not torch.allclose(a, m(unk))
    m.train()
    torch.manual_seed(1)
    b = m(batch)  # every token replaced by <unk> in training
    torch.manual_seed(1)
    assert torch.allclose(b, m(unk))


def test_pretrained_vectors_initialise_and_extend_the_vocabulary(tmp_path):
    """``model.pretrained``: vocabulary entries start from their (normalised-key) vector, scaled to unit
    variance; words only the vectors know join the vocabulary; a dimension mismatch names the file."""
    from seqnlp.data.word_vectors import write_vectors

    rows = [("a wonderful , moving film", "1"), ("flat and tedious 1999", "0")] * 20
    _tsv(tmp_path / "toy" / "train.tsv", rows)
    _tsv(tmp_path / "toy" / "dev.tsv", rows[:4])
    words = ["wonderful", "tedious", "superb", "0000", "e-mail"]
    vecs = torch.arange(len(words) * 32, dtype=torch.float).reshape(len(words), 32)
    write_vectors(tmp_path / "v.vec", words, vecs)
    config = _smoke_with_data(tmp_path, name=str(tmp_path / "toy"), carve={"validation": 4}, train_limit=0,
                              eval_limit=0)
    out = tmp_path / "run"
    assert main(["--config", config, f"output_dir={out}", "pretrain.enabled=false", "train.max_steps=1",
                 "train.lr=0.0", f"model.pretrained={tmp_path / 'v.vec'}"]) == 0
    pred = seqnlp.load(out)
    vocab, table = pred.tokenizer.vocab(), pred.model.embed.weight.detach()
    scaled = vecs / vecs.std()
    assert torch.allclose(table[vocab["wonderful"]], scaled[0]) and torch.allclose(table[vocab["tedious"]], scaled[1])
    assert torch.allclose(table[vocab["1999"]], scaled[3])  # digits -> 0, as the vectors were keyed
    assert torch.allclose(table[vocab["superb"]], scaled[2])  # only the vectors know it: added
    assert "e-mail" not in vocab and "0000" not in vocab  # never one token here / a digit key
    notes = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["filled"] for r in notes if r["event"] == "pretrained"] == [4]
    with pytest.raises(DataError, match="v.vec.*emb_size=16|emb_size=16"):
        sentiment.read_pretrained(ModelConfig(emb_size=16, pretrained=str(tmp_path / "v.vec")))


def test_pretraining_continues_an_lm_checkpoint(smoke_run, tmp_path):
    """``init_from`` an LM checkpoint with ``pretrain.enabled``: the LM stage starts from that whole LM (its
    softmax too), so with a zero learning rate its weights and validation loss stay the checkpoint's."""
    before = json.loads((smoke_run / "pretrain" / "done.json").read_text())["best"]
    out = tmp_path / "lm2"
    rc = main(["--config", SMOKE, f"output_dir={out}", f"init_from={smoke_run / 'pretrain'}",
               "pretrain.enabled=true", "pretrain.train.lr=0.0", "pretrain.train.max_steps=1",
               "pretrain.train.eval_every=1", "train.max_steps=1", "train.eval_every=1"])
    assert rc == 0
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["event"] for r in log if r["event"] == "pretrain_continue"] == ["pretrain_continue"]
    after = json.loads((out / "pretrain" / "done.json").read_text())["best"]
    assert after == pytest.approx(before, rel=1e-4)
    from safetensors.torch import load_file

    ckpt = seqnlp.train.checkpoint
    init = load_file(str(ckpt.resolve(smoke_run / "pretrain") / ckpt.WEIGHTS))
    cont = load_file(str(ckpt.resolve(out / "pretrain") / ckpt.WEIGHTS))
    assert set(cont) == set(init) and any(not k.startswith(("embed", "encoder")) for k in init)  # the softmax too
    for k in init:
        torch.testing.assert_close(cont[k], init[k], msg=k)


def test_continuing_an_lm_needs_its_cutoffs(smoke_run, tmp_path, capsys):
    rc = main(["--config", SMOKE, f"output_dir={tmp_path / 'x'}", f"init_from={smoke_run / 'pretrain'}",
               "pretrain.enabled=true", "pretrain.cutoffs=[7]", "pretrain.train.max_steps=1"])
    assert rc != 0
    assert "set pretrain.cutoffs=[200, 1000] to continue it" in capsys.readouterr().err


def test_evaluate_an_lm_checkpoint_gives_its_perplexity(tmp_path, capsys):
    """``seqnlp evaluate`` on an LM-pretraining checkpoint scores the language model on a split's texts; on the
    validation split it used during pretraining it gives the loss pretraining logged for that checkpoint."""
    out = tmp_path / "run"
    assert main(["--config", SMOKE, f"output_dir={out}", "pretrain.val_texts=200", "train.max_steps=1",
                 "train.eval_every=1"]) == 0
    best = json.loads((out / "pretrain" / "done.json").read_text())["best"]
    capsys.readouterr()
    assert seqnlp.cli.main(["evaluate", "--model", str(out / "pretrain"), "--split", "validation"]) == 0
    m = json.loads((out / "pretrain" / "metrics_validation.json").read_text())
    assert m["texts"] == 200 and m["loss"] == pytest.approx(best, rel=1e-5)
    assert m["ppl"] == pytest.approx(float(torch.tensor(best).exp()), rel=1e-4)
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["split"] == "validation"
    assert seqnlp.cli.main(["evaluate", "--model", str(out / "pretrain"), "--split", "test"]) == 0
    test = json.loads((out / "pretrain" / "metrics_test.json").read_text())
    assert test["texts"] == 200 and test["predictions"] > test["tokens"]  # both directions predict


def _adv_model_and_batch(adversarial: float, **distill):
    torch.manual_seed(0)
    model = build_model(ModelConfig(vocab_size=40, num_classes=2, emb_size=8, hidden_size=6, pooling="max+final",
                                    dropout=0.0, emb_dropout=0.0, rnn_dropout=0.0, word_dropout=0.0,
                                    adversarial=adversarial), **distill)
    items = [([5, 7, 9, 11], 0), ([3, 4], 1), ([20, 21, 22], 1)]  # ragged: padding must get no perturbation
    return model.train(), sd.collate_classify(0)(items)


def test_adversarial_training_loss_and_gradient():
    """``model.adversarial``: the loss is clean + adversarial (the embedded batch moved along its own loss
    gradient, each example by the same L2 size, padding untouched), and its gradient is that sum's gradient."""
    eps = 0.5
    model, batch = _adv_model_and_batch(eps)
    total, n = model.loss(batch)
    total.backward()
    got = {k: p.grad.clone() for k, p in model.named_parameters()}
    # the same sum computed directly, keeping the whole graph
    model.zero_grad()
    emb = model._embed(batch)
    clean = torch.nn.functional.cross_entropy(model._classify(emb, batch), batch.labels)
    (g,) = torch.autograd.grad(clean, emb, retain_graph=True)
    mask = (batch.src != 0)[..., None]
    g = g * mask
    r = eps * emb.detach().norm(dim=-1)[mask[..., 0]].mean() * g / g.flatten(1).norm(dim=1)[:, None, None]
    adv = torch.nn.functional.cross_entropy(model._classify(emb + r, batch), batch.labels)
    (clean + adv).backward()
    assert n == 3 and total.item() == pytest.approx((clean + adv).item(), rel=1e-5)
    assert adv.item() > clean.item()  # the perturbation points uphill
    assert r[~mask[..., 0]].abs().sum() == 0
    for k, p in model.named_parameters():
        torch.testing.assert_close(got[k], p.grad, msg=k)


def test_adversarial_training_off_in_eval_and_at_zero():
    model, batch = _adv_model_and_batch(0.5)
    plain, _ = _adv_model_and_batch(0.0)
    model.eval(), plain.eval()
    assert model.loss(batch)[0].item() == pytest.approx(plain.loss(batch)[0].item())
    plain.train()
    loss, _ = plain.loss(batch)
    assert loss.item() == pytest.approx(torch.nn.functional.cross_entropy(plain(batch), batch.labels).item())


def test_distillation_loss():
    """Soft targets: (1 - w) CE(gold) + w T² CE(teacher probabilities, student softmax at T); a one-hot teacher
    at T=1 is the plain loss, whatever w; batches without ``soft`` (evaluation) ignore the setting."""
    model, _ = _adv_model_and_batch(0.0, distill_weight=0.4, distill_temperature=2.0)
    items = [([5, 7, 9, 11], 0, [0.8, 0.2]), ([3, 4], 1, [0.3, 0.7]), ([20, 21, 22], 1, [0.5, 0.5])]
    batch = sd.collate_classify(0)(items)
    assert batch.soft.shape == (3, 2) and batch.labels.tolist() == [0, 1, 1]
    logits = model(batch)
    hard = torch.nn.functional.cross_entropy(logits, batch.labels)
    soft = -(batch.soft * torch.log_softmax(logits / 2.0, -1)).sum(-1).mean() * 4.0
    assert model.loss(batch)[0].item() == pytest.approx((0.6 * hard + 0.4 * soft).item(), rel=1e-5)
    model, _ = _adv_model_and_batch(0.0, distill_weight=0.7, distill_temperature=1.0)
    onehot = sd.collate_classify(0)([(x, y, [1.0 - y, float(y)]) for x, y, _ in items])
    assert model.loss(onehot)[0].item() == pytest.approx(hard.item(), rel=1e-5)
    plain = sd.collate_classify(0)([(x, y) for x, y, _ in items])
    assert model.loss(plain)[0].item() == pytest.approx(hard.item(), rel=1e-5)
    # an unlabelled example (-1, a transfer set's) has only its soft term
    model, _ = _adv_model_and_batch(0.0, distill_weight=0.4, distill_temperature=1.0)
    mixed = sd.collate_classify(0)([items[0], (items[1][0], -1, items[1][2])])
    logits = model(mixed)
    lp = torch.log_softmax(logits, -1)
    want = (0.6 * -lp[0, 0] + 0.4 * -(mixed.soft[0] * lp[0]).sum() - (mixed.soft[1] * lp[1]).sum()) / 2
    assert model.loss(mixed)[0].item() == pytest.approx(want.item(), rel=1e-5)


def test_distillation_from_a_trained_model(smoke_run, tmp_path, capsys):
    """``distill.teachers``: the teachers score the training texts once (cached for a resumed run), the student
    trains on gold + soft targets; a teacher with other labels, or cross-validation, is refused."""
    out = tmp_path / "student"
    args = ["--config", SMOKE, f"output_dir={out}", "pretrain.enabled=false", "train.max_steps=6",
            "train.eval_every=3", f"distill.teachers=[{smoke_run},{smoke_run}]", "distill.temperature=2"]
    assert main(args) == 0
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert sum(r["event"] == "distill_teacher" for r in log) == 2
    (done,) = [r for r in log if r["event"] == "distill"]
    assert 0.5 < done["agreement"] <= 1.0 and done["unread"] == 0
    saved = load_file(out / "teacher_probs.safetensors")  # data only: tensors and a JSON key
    assert saved["probs"].shape == (4000, 2)  # train_limit
    torch.testing.assert_close(saved["probs"].sum(-1), torch.ones(4000))
    # each teacher's probabilities are softened to softmax(log p / T), then averaged
    examples = [("a gorgeous , witty film", "positive"), ("dull , dull , dull", "negative")]
    labels, loaded = ["negative", "positive"], []

    def targets(texts, gold, note=lambda *a, **k: None):
        return teacher_targets([str(smoke_run)], lambda p: loaded.append(p) or seqnlp.load(p, "cpu"), texts, gold,
                               labels, tmp_path / "t", note, temperature=2.0)

    got = targets([t for t, _ in examples], [1, -1])
    p = seqnlp.load(smoke_run).probs([t for t, _ in examples])
    torch.testing.assert_close(got, p.sqrt() / p.sqrt().sum(-1, keepdim=True))
    # the cache answers only for the same texts: other texts of the same count are scored afresh
    notes = []
    other = targets(["a dull film", "a witty , gorgeous film"], [0, 1], lambda *a, **k: notes.append(k.get("event")))
    assert "distill_cached" not in notes and not torch.allclose(other, got)
    n_loaded = len(loaded)
    again = targets(["a dull film", "a witty , gorgeous film"], [0, 1], lambda *a, **k: notes.append(k.get("event")))
    assert notes[-1] == "distill_cached" and torch.equal(again, other)
    assert len(loaded) == n_loaded  # a cached answer loads no teacher
    assert json.loads((out / "metrics.json").read_text())["n"] == 200
    assert main(["--config", SMOKE, f"output_dir={tmp_path / 'swapped'}", "pretrain.enabled=false",
                 "data.labels=[positive,negative]", f"distill.teachers=[{smoke_run}]"]) == 2
    err = capsys.readouterr().err
    assert "predicts ['negative', 'positive'], this config's labels are ['positive', 'negative']" in err
    assert main(["--config", SMOKE, f"output_dir={tmp_path / 'cv'}", "data.cv_folds=2",
                 f"distill.teachers=[{smoke_run}]"]) == 2
    assert "teachers would have seen the test folds" in capsys.readouterr().err


def test_distillation_transfer_set(smoke_run, tmp_path):
    """``distill.extra_text``: unlabelled reviews cut into sentences, labelled by the teachers, trained on beside
    the gold-labelled texts (and counted apart from them)."""
    reviews = tmp_path / "reviews.jsonl"
    rows = [{"text": "A fine film. The cast is superb!<br /><br />I loved it. Bad? No."},
            {"text": "Dull and slow. Two hours lost."}]
    reviews.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "student"
    assert main(["--config", SMOKE, f"output_dir={out}", "pretrain.enabled=false", "train.max_steps=4",
                 "train.eval_every=2", f"distill.teachers=[{smoke_run}]",
                 f"distill.extra_text=[{{name: {tmp_path}, splits: {{train: reviews.jsonl}}}}]"]) == 0
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    (done,) = [r for r in log if r["event"] == "distill"]
    assert done["unlabelled"] == 5  # "Bad?" and "No." are too short
    (transfer,) = [r for r in log if r["event"] == "distill_transfer"]
    assert transfer["texts"] == 5
    assert load_file(out / "teacher_probs.safetensors")["probs"].shape == (4000 + 5, 2)


def test_split_sentences():
    text = "It was great. Really!<br />The end... 2 stars? maybe not. Ok go."
    assert sd.split_sentences(text, min_words=1) == ["It was great.", "Really!", "The end...",
                                                     "2 stars? maybe not.", "Ok go."]
    assert sd.split_sentences(text, min_words=3) == ["It was great.", "2 stars? maybe not."]
    assert sd.split_sentences(text, min_words=1, max_words=2) == ["Really!", "The end...", "Ok go."]


# ------------------------------------------------------------------------------------- old checkpoints, precision
V1_USER_MODEL = ("emb_size", "hidden_size", "num_layers", "cell", "bidirectional", "pooling", "dropout", "emb_dropout",
                 "rnn_dropout", "word_dropout", "adversarial", "packed", "pretrained", "pretrained_max_words",
                 "pretrained_extend_vocab")  # the run config's model block before the task API
V1_MODEL_ARGS = ("vocab_size", "num_classes", "emb_size", "hidden_size", "num_layers", "cell", "bidirectional",
                 "pooling", "dropout", "emb_dropout", "rnn_dropout", "word_dropout", "packed", "pad_id", "unk_id",
                 "adversarial")


def _format1_copy(ckpt: Path, dest: Path) -> Path:
    """A copy of checkpoint ``ckpt`` whose config.json has the exact layout the code before the task API wrote:
    ``{"task", "config" (with its model block, record, record_name), "model_args", labels, preprocess, fold}``;
    LM-pretraining checkpoints ``{"task", "stage", "config", "model_args", "labels", "lm_args"}``."""
    import shutil

    shutil.copytree(ckpt, dest)
    new = json.loads((ckpt / "config.json").read_text())
    assert new["format_version"] == 2
    config = {k: v for k, v in new["config"].items() if k != "infer_precision"}
    order = ["task", "output_dir", "data", "tokenizer", "model", "pretrain", "train", "init_from", "distill"]
    config["model"] = {k: new["model"][k] for k in V1_USER_MODEL}
    config = {**{k: config[k] for k in order}, "record": False, "record_name": ""}
    args = {k: new["model"][k] for k in V1_MODEL_ARGS}
    facts = new["data"]
    if facts.get("stage") == "lm_pretraining":
        old = {"task": "sentiment", "stage": facts["stage"], "config": config, "model_args": args,
               "labels": facts["labels"], "lm_args": facts["lm_args"]}
    else:
        old = {"task": "sentiment", "config": config, "model_args": args, "labels": facts["labels"],
               "preprocess": facts["preprocess"], "fold": facts["fold"]}
    (dest / "config.json").write_text(json.dumps(old, indent=2))
    return dest


def test_format1_checkpoints_load_and_predict_alike(smoke_run, tmp_path, capsys):
    ckpt = seqnlp.train.checkpoint
    old = _format1_copy(ckpt.resolve(smoke_run), tmp_path / "v1")
    assert ckpt.read_stored(old).format_version == 1 and "format_version" not in ckpt.read_config(old)
    texts = ["a gorgeous , witty film", "", "dull , dull and slow", "it is a film"]
    assert seqnlp.load(old, "cpu").predict(texts) == seqnlp.load(smoke_run, "cpu").predict(texts)
    assert seqnlp.cli.main(["evaluate", "--model", str(old), "--split", "test"]) == 0
    v1 = json.loads((old / "metrics_test.json").read_text())
    assert v1["accuracy"] == pytest.approx(json.loads((smoke_run / "metrics.json").read_text())["accuracy"])
    # the LM-pretraining checkpoint of the same run: the same perplexity either way
    lm_old = _format1_copy(ckpt.resolve(smoke_run / "pretrain"), tmp_path / "lm_v1")
    scores = []
    for model in (smoke_run / "pretrain", lm_old):
        assert seqnlp.cli.main(["evaluate", "--model", str(model), "--split", "validation"]) == 0
        scores.append(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))
    assert scores[0]["loss"] == pytest.approx(scores[1]["loss"], rel=1e-6) and scores[0]["texts"] == 200
    # and an old checkpoint starts a fine-tuning run
    out = tmp_path / "ft"
    assert main(["--config", SMOKE, f"output_dir={out}", f"init_from={old}", "pretrain.enabled=false",
                 "train.max_steps=1", "train.eval_every=1"]) == 0
    stored = json.loads((ckpt.resolve(out) / "config.json").read_text())
    assert stored["format_version"] == 2 and stored["model"]["vocab_size"] == args_vocab(old)


def args_vocab(ckpt: Path) -> int:
    return json.loads((ckpt / "config.json").read_text())["model_args"]["vocab_size"]


def test_checkpoint_config_holds_each_value_once(smoke_run):
    stored = json.loads((seqnlp.train.checkpoint.resolve(smoke_run) / "config.json").read_text())
    assert set(stored) == {"format_version", "task", "model", "data", "config", "files"}
    assert "model" not in stored["config"] and "record" not in stored["config"]
    assert set(stored["model"]) == set(V1_USER_MODEL) | set(V1_MODEL_ARGS)
    assert stored["data"] == {"labels": ["negative", "positive"], "preprocess": {"max_len": 40, "keep_head": 10},
                              "fold": None}
    lm = json.loads((seqnlp.train.checkpoint.resolve(smoke_run / "pretrain") / "config.json").read_text())
    assert lm["data"] == {"labels": ["negative", "positive"], "stage": "lm_pretraining",
                          "lm_args": {"cutoffs": [200, 1000]}}


def test_bf16_asked_for_on_a_cpu_without_it_runs_in_fp32(smoke_run, monkeypatch, capsys):
    monkeypatch.setattr(seqnlp.train.device, "_bf16_probe", False)  # an AVX2-only CPU: no bf16 LSTM kernels
    monkeypatch.setattr(seqnlp.train.device, "_noted", set())
    texts = ["a gorgeous , witty film", "", "dull , dull and slow"]
    want = seqnlp.load(smoke_run, "cpu").predict(texts)
    capsys.readouterr()
    pred = seqnlp.load(smoke_run, "cpu", precision="bf16")
    assert pred.config.infer_precision == "bf16" and pred.dtype is None
    got = pred.predict(texts) + pred.predict(texts)
    err = capsys.readouterr().err
    assert err.count("precision=bf16 asked for") == 1 and "running in fp32" in err
    assert got == want + want
