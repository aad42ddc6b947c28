"""POS tagging: the smoke config end to end (train, metrics, evaluate, predict -> text / jsonl / CoNLL-U,
ensembles), format-1 checkpoints, the precision policy, toy data with multiword tokens / empty nodes /
malformed lines, Hub-style tag columns (ClassLabel ids, strings)."""

import io
import json
import shutil
from pathlib import Path

import conllu
import pytest

import seqnlp
import seqnlp.train.device as device_policy
from seqnlp.cli import main as cli
from seqnlp.config import load_config
from seqnlp.recipes.pos_tagging import main
from seqnlp.tasks.base import RESULT_SHAPES
from seqnlp.tasks.pos_tagging import Config, ensemble_tag, format_text, tagging_metrics, write_conllu_results

CONFIGS = Path(__file__).parents[2] / "recipes" / "configs" / "pos_tagging"
TOY = Path(__file__).parents[1] / "data" / "toy" / "tagged.conllu"
DATA = "pos/ud_english_ewt"  # the real data the smoke runs read (conftest's data_dir)
TINY = ["model.word_dim=8", "model.char_dim=4", "model.char_hidden=4", "model.hidden=8", "train.max_steps=2",
        "train.epochs=1", "train.progress=false", "data.max_tokens=64", "train.threads=1"]
RESULT_KEYS = {"tokens", "tags"}  # RESULT_SHAPES["pos_tagging"]


@pytest.fixture(scope="module")
def smoke_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("pos_smoke")
    assert main(["--config", str(CONFIGS / "smoke.yaml"), f"output_dir={out}"]) == 0
    return out


def stored_config(run: Path) -> dict:
    return json.loads((run / "checkpoints" / "best" / "config.json").read_text())


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


def test_checkpoint_config_is_format_2_with_one_model_block(smoke_run):
    stored = stored_config(smoke_run)
    assert set(stored) == {"format_version", "task", "model", "data", "config", "files"}
    assert stored["format_version"] == 2
    model = stored["model"]
    assert model["num_tags"] == len(stored["data"]["tags"]) == 17 and model["num_words"] > model["num_chars"] > 0
    assert model["trainable_words"] == model["num_words"] and model["fixed_vectors"] is False
    assert stored["data"]["tag_field"] == "upos" and "model" not in stored["config"]
    assert "record" not in stored["config"] and stored["config"]["infer_precision"] == "fp32"
    ckpt = smoke_run / "checkpoints" / "best"
    assert all((ckpt / f).is_file() for f in ("words.json", "chars.json", "forms.json"))


def test_predict_gives_one_result_per_input_in_order(smoke_run):
    assert "tokens" in RESULT_SHAPES["pos_tagging"] and "tags" in RESULT_SHAPES["pos_tagging"]
    tagger = seqnlp.load(smoke_run)
    inputs = ["Dogs bark .", "", "   ", ["A", "cat"], "I saw her duck ."]
    results = tagger.predict(inputs)
    assert len(results) == len(inputs) and all(set(r) == RESULT_KEYS for r in results)
    assert [r["tokens"] for r in results] == [["Dogs", "bark", "."], [], [], ["A", "cat"], "I saw her duck .".split()]
    assert [len(r["tags"]) for r in results] == [3, 0, 0, 2, 5]
    assert results[4] == tagger.predict("I saw her duck .")[0]  # a bare string is one input; batching changes nothing
    assert format_text(results[0]) == " ".join(f"{w}/{t}" for w, t in zip(results[0]["tokens"], results[0]["tags"]))
    assert format_text(results[1]) == ""
    with pytest.raises(TypeError, match=r"inputs\[1\]"):
        tagger.predict(["fine", 3])


def test_predict_writes_conllu_that_conllu_parses(smoke_run, tmp_path):
    raw = tmp_path / "in.txt"
    raw.write_text("I saw her duck .\n\n  The   cat sat .  \nCafé naïveté 2,000 http://x.org/a\n")
    out = tmp_path / "out.conllu"
    assert cli(["predict", "--model", str(smoke_run), "--input", str(raw), "--output", str(out),
                "--format", "conllu"]) == 0
    sentences = conllu.parse(out.read_text(encoding="utf-8"))
    assert [[t["form"] for t in s] for s in sentences] == [  # CoNLL-U has no empty sentences
        "I saw her duck .".split(), "The cat sat .".split(), "Café naïveté 2,000 http://x.org/a".split()]
    tagset = set(stored_config(smoke_run)["data"]["tags"])
    for s in sentences:
        assert [t["id"] for t in s] == list(range(1, len(s) + 1))
        assert all(t["upos"] in tagset for t in s)


def test_predict_text_and_jsonl_give_one_line_per_input_line(smoke_run, tmp_path):
    raw = tmp_path / "in.txt"
    raw.write_text("I saw her duck .\n\nThe cat sat .\n")
    text, jsonl = tmp_path / "out.txt", tmp_path / "out.jsonl"
    assert cli(["predict", "--model", str(smoke_run), "--input", str(raw), "--output", str(text)]) == 0
    lines = text.read_text().split("\n")[:-1]
    assert len(lines) == 3 and lines[1] == ""
    assert [w.rsplit("/", 1)[0] for w in lines[2].split()] == ["The", "cat", "sat", "."]
    assert cli(["predict", "--model", str(smoke_run), "--input", str(raw), "--output", str(jsonl),
                "--format", "jsonl"]) == 0
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [r["input"] for r in records] == ["I saw her duck .", "", "The cat sat ."]
    assert records[1]["tokens"] == records[1]["tags"] == [] and len(records[2]["tags"]) == 4


def test_predict_keeps_conllu_tokenisation_and_skips_multiword_and_empty_nodes(smoke_run, tmp_path):
    out = tmp_path / "out.conllu"
    assert cli(["predict", "--model", str(smoke_run), "--input", str(TOY), "--output", str(out),
                "--format", "conllu"]) == 0
    words = [[t["form"] for t in s if isinstance(t["id"], int)] for s in conllu.parse(out.read_text(encoding="utf-8"))]
    assert words[0] == ["Do", "n't", "stop", "."]  # the 1-2 "Don't" line is kept, but is not a word to tag
    assert "likes" not in words[1][5:]  # empty node 5.1 kept, not tagged
    assert _without_column(out.read_text(encoding="utf-8"), 3) == _without_column(TOY.read_text(encoding="utf-8"), 3)


def test_load_predict_and_evaluate(smoke_run, capsys):
    tagger = seqnlp.load(smoke_run)
    tags = [r["tags"] for r in tagger.predict(["Dogs bark .", ["A", "cat"], ""])]
    assert [len(t) for t in tags] == [3, 2, 0]
    tagger.config.infer_precision = "bf16"  # autocast inference path (fp32 with a note where the CPU lacks it)
    assert [len(r["tags"]) for r in tagger.predict(["Dogs bark .", "A cat"])] == [3, 2]
    assert main(["--mode", "evaluate", f"--model={smoke_run}", "--split", "validation"]) == 0
    metrics = json.loads((smoke_run / "metrics_validation.json").read_text())
    stored = json.loads((smoke_run / "metrics.json").read_text())["validation"]["accuracy"]
    assert metrics["accuracy"] == pytest.approx(stored)
    assert cli(["evaluate", "--model", str(smoke_run), "--split", "nosuch"]) == 1
    assert "no split 'nosuch'" in capsys.readouterr().err


def test_bf16_on_a_cpu_without_it_runs_in_fp32_with_one_note(smoke_run, monkeypatch, capsys):
    inputs = ["Dogs bark .", "I saw her duck ."]
    fp32 = seqnlp.load(smoke_run, device="cpu").predict(inputs)
    monkeypatch.setattr(device_policy, "_bf16_probe", False)  # a CPU without bf16 LSTM kernels
    monkeypatch.setattr(device_policy, "_noted", set())
    capsys.readouterr()
    tagger = seqnlp.load(smoke_run, device="cpu", precision="bf16")
    assert tagger.config.infer_precision == "bf16"
    assert tagger.predict(inputs) == fp32 and tagger.predict(inputs) == fp32
    err = capsys.readouterr().err
    assert err.count("note: precision=bf16") == 1 and "running in fp32" in err


MODEL_OPTIONS = ["encoder", "word_dim", "char", "char_dim", "char_hidden", "char_kernel", "hidden", "layers",
                 "window", "crf", "dropout", "char_dropout", "pretrained", "pretrained_max_words"]
MODEL_ARGS = ["num_words", "num_chars", "num_tags", "word_dim", "char", "char_dim", "char_hidden", "char_kernel",
              "encoder", "hidden", "layers", "window", "crf", "dropout", "char_dropout", "fixed_vectors",
              "trainable_words"]


def as_format_1(v2: dict) -> dict:
    """The config.json the code before the task API wrote (run config + model_args + facts at the top)."""
    run = v2["config"]
    config = {"task": run["task"], "output_dir": run["output_dir"], "data": run["data"],
              "model": {k: v2["model"][k] for k in MODEL_OPTIONS}, "train": run["train"],
              "infer_precision": run["infer_precision"], "record": False}
    return {"task": "pos_tagging", "config": config, "model_args": {k: v2["model"][k] for k in MODEL_ARGS},
            "tags": v2["data"]["tags"], "tag_field": v2["data"]["tag_field"]}


def test_format_1_checkpoint_loads_and_predicts_the_same(smoke_run, tmp_path):
    old = tmp_path / "v1"
    shutil.copytree(smoke_run / "checkpoints" / "best", old)
    v1 = as_format_1(stored_config(smoke_run))
    assert list(v1) == ["task", "config", "model_args", "tags", "tag_field"]
    (old / "config.json").write_text(json.dumps(v1, indent=2))
    inputs = ["I saw her duck .", "", "Café naïveté 2,000 http://x.org/a", ["A", "cat"]]
    new_tagger, old_tagger = seqnlp.load(smoke_run), seqnlp.load(old)
    assert old_tagger.predict(inputs) == new_tagger.predict(inputs)
    assert old_tagger.config.model == new_tagger.config.model
    assert old_tagger.feats.forms == new_tagger.feats.forms


def test_ensemble_of_crf_and_softmax_models(smoke_run, tmp_path):
    other = tmp_path / "softmax"
    assert main(["--config", str(CONFIGS / "smoke.yaml"), f"output_dir={other}", "model.crf=false",
                 "train.seed=2"]) == 0
    a, b = seqnlp.load(smoke_run), seqnlp.load(other)
    sentences = [["Dogs", "bark", "."], ["A", "cat"], ["I", "saw", "her", "duck", "today", "."]]
    assert ensemble_tag([a, a], sentences) == [r["tags"] for r in a.predict(sentences)]  # doubling changes nothing
    assert [len(t) for t in ensemble_tag([a, b], sentences)] == [3, 2, 6]
    record = tmp_path / "records" / "ens.json"
    assert cli(["ensemble", "--model", str(smoke_run), "--ensemble", str(other), "--split", "validation",
                "--record", str(record)]) == 0
    metrics = json.loads((smoke_run / "metrics_ensemble_validation.json").read_text())
    assert metrics["members_paths"] == [str(smoke_run), str(other)] and 0 < metrics["accuracy"] <= 1
    assert len(metrics["members"]) == 2 and metrics["split"] == "validation"
    assert json.loads(record.read_text())["metrics"]["accuracy"] == metrics["accuracy"]
    assert main(["--mode", "ensemble", f"--model={smoke_run}", f"--ensemble={other}", "--split=validation"]) == 0


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
    assert "VBZ" in stored_config(xpos)["data"]["tags"]
    tagger = seqnlp.load(xpos)
    sink = io.StringIO()
    write_conllu_results(sink, ["Sue likes tea .", ""], tagger.predict(["Sue likes tea .", ""]), tagger)
    tagged = conllu.parse(sink.getvalue())
    assert len(tagged) == 1 and all(t["upos"] == "_" and t["xpos"] != "_" for t in tagged[0])  # the model's tag field


# ------------------------------------------------------------------- predict on CoNLL-U: the file kept as it was
ROUND_TRIP = (  # comments, a comment-only block, a multiword token, an empty node, filled columns, 2 blank lines
    "# newdoc id = doc-1\n"
    "# global.columns = ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC\n"
    "\n"
    "# sent_id = weird-7\n"
    "# text = Don't   stop.\n"
    "1-2\tDon't\t_\t_\t_\t_\t_\t_\t_\tSpaceAfter=No\n"
    "1\tDo\tdo\tAUX\tVBP\tMood=Ind|Tense=Pres\t3\taux\t3:aux\t_\n"
    "2\tn't\tnot\tPART\tRB\tPolarity=Neg\t3\tadvmod\t3:advmod\t_\n"
    "3\tstop\tstop\t_\t_\tVerbForm=Inf\t0\troot\t0:root\tSpaceAfter=No\n"
    "4\t.\t.\tPUNCT\t.\t_\t3\tpunct\t3:punct\tGloss=dot|Foo=bar\n"
    "\n"
    "\n"
    "# sent_id = 2b\n"
    "# text = Sue likes tea and Tom coffee\n"
    "1\tSue\tSue\tPROPN\tNNP\tNumber=Sing\t2\tnsubj\t2:nsubj\t_\n"
    "2\tlikes\tlike\tVERB\tVBZ\tNumber=Sing|Person=3\t0\troot\t0:root\t_\n"
    "3\ttea\ttea\tNOUN\tNN\tNumber=Sing\t2\tobj\t2:obj\t_\n"
    "4\tand\tand\tCCONJ\tCC\t_\t5\tcc\t5.1:cc\t_\n"
    "5\tTom\tTom\tPROPN\tNNP\tNumber=Sing\t2\tconj\t5.1:nsubj\t_\n"
    "5.1\tlikes\tlike\tVERB\tVBZ\t_\t_\t_\t2:conj\tCopyOf=2\n"
    "6\tcoffee\tcoffee\tNOUN\tNN\tNumber=Sing\t2\tconj\t5.1:obj\tSpaceAfter=No\n"
    "\n"
)
ROUND_TRIP_WORDS = [["Do", "n't", "stop", "."], ["Sue", "likes", "tea", "and", "Tom", "coffee"]]
COLUMN = {"upos": 3, "xpos": 4}


def _is_word_line(cols: list[str]) -> bool:
    return len(cols) == 10 and cols[0].lstrip("\ufeff").isdigit()


def _without_column(text: str, col: int) -> str:
    """``text`` with column ``col`` of every word line (integer ID) blanked out; every other byte as it is."""
    out = []
    for line in text.split("\n"):
        cols = line.rstrip("\r").split("\t")
        if _is_word_line(cols):
            line = "\t".join(cols[:col] + ["<tag>"] + cols[col + 1:]) + ("\r" if line.endswith("\r") else "")
        out.append(line)
    return "\n".join(out)


@pytest.fixture(scope="module")
def toy_runs(tmp_path_factory):
    """Tiny taggers trained on the toy CoNLL-U file: ``{"upos": run, "xpos": run}`` (the model's tag_field)."""
    base = tmp_path_factory.mktemp("pos_toy")
    root = toy_dataset(base / "toy", TOY.read_text())
    runs = {}
    for field, extra in (("upos", []), ("xpos", ["model.crf=false", "model.encoder=window"])):
        runs[field] = base / f"run_{field}"
        assert main([f"data.name={root}", f"output_dir={runs[field]}", f"data.tag_field={field}", *extra, *TINY]) == 0
    return runs


@pytest.mark.parametrize("tag_field", ["upos", "xpos"])
def test_predict_conllu_round_trip_fills_only_the_predicted_column(toy_runs, tmp_path, tag_field):
    run, col = toy_runs[tag_field], COLUMN[tag_field]
    src, out = tmp_path / "in.conllu", tmp_path / "out.conllu"
    src.write_bytes(ROUND_TRIP.encode("utf-8"))
    assert cli(["predict", "--model", str(run), "--input", str(src), "--output", str(out), "--format", "conllu"]) == 0
    got = out.read_bytes().decode("utf-8")
    in_lines, out_lines = ROUND_TRIP.split("\n"), got.split("\n")
    assert len(out_lines) == len(in_lines)  # same lines, same order, blank lines and comments included
    tagset = set(stored_config(run)["data"]["tags"])
    predicted = []
    for a, b in zip(in_lines, out_lines):
        ca, cb = a.split("\t"), b.split("\t")
        if _is_word_line(ca):  # every field but the predicted one as in the input
            assert len(cb) == 10 and ca[:col] + ca[col + 1:] == cb[:col] + cb[col + 1:], (a, b)
            assert cb[col] in tagset
            predicted.append(cb[col])
        else:  # comments, multiword tokens, empty nodes, blank lines: byte for byte
            assert a == b
    assert len(predicted) == 10
    assert _without_column(got, col) == _without_column(ROUND_TRIP, col)  # the file otherwise equals the input
    api = [t for r in seqnlp.load(run).predict(ROUND_TRIP_WORDS) for t in r["tags"]]
    assert predicted == api  # the tags are the model's, in word order
    parsed = [s for s in conllu.parse(got) if len(s)]  # (the comment-only block parses as a sentence without words)
    assert [s.metadata["sent_id"] for s in parsed] == ["weird-7", "2b"]
    assert parsed[0].metadata["text"] == "Don't   stop."


def test_predict_conllu_keeps_crlf_bom_gzip_and_a_missing_final_newline(toy_runs, tmp_path):
    import gzip

    text = "\ufeff" + ROUND_TRIP.replace("\n", "\r\n").rstrip("\r\n") + "\r\n\r\n# trailing comment only"
    src, out = tmp_path / "in.conllu.gz", tmp_path / "out.conllu"
    src.write_bytes(gzip.compress(text.encode("utf-8")))
    assert cli(["predict", "--model", str(toy_runs["upos"]), "--input", str(src), "--output", str(out),
                "--format", "conllu"]) == 0
    got = out.read_bytes().decode("utf-8")
    assert got.startswith("\ufeff# newdoc") and got.endswith("\r\n\r\n# trailing comment only")
    assert got.count("\r\n") == text.count("\r\n") and got.count("\n") == text.count("\n")
    assert _without_column(got, 3) == _without_column(text, 3) and got != text  # the UPOS column is the model's


def test_predict_conllu_input_as_text_or_jsonl_gives_one_result_per_sentence(toy_runs, tmp_path):
    run = toy_runs["upos"]
    src, out = tmp_path / "in.conllu", tmp_path / "out.jsonl"
    src.write_bytes(ROUND_TRIP.encode("utf-8"))
    assert cli(["predict", "--model", str(run), "--input", str(src), "--output", str(out), "--format", "jsonl"]) == 0
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["input"] for r in records] == ROUND_TRIP_WORDS == [r["tokens"] for r in records]
    assert [len(r["tags"]) for r in records] == [4, 6]
    text = tmp_path / "out.txt"
    assert cli(["predict", "--model", str(run), "--input", str(src), "--output", str(text)]) == 0
    lines = text.read_text(encoding="utf-8").split("\n")
    assert len(lines) == 3 and lines[2] == ""  # one line per sentence
    assert [[w.rsplit("/", 1)[0] for w in line.split()] for line in lines[:2]] == ROUND_TRIP_WORDS
    plain = tmp_path / "plain.txt"  # text input with --format conllu: fresh CoNLL-U as before
    plain.write_text("Sue likes tea .\n\nDo n't stop\n")
    fresh = tmp_path / "fresh.conllu"
    assert cli(["predict", "--model", str(run), "--input", str(plain), "--output", str(fresh),
                "--format", "conllu"]) == 0
    parsed = conllu.parse(fresh.read_text(encoding="utf-8"))
    assert [s.metadata["sent_id"] for s in parsed] == ["1", "2"]
    assert [[t["form"] for t in s] for s in parsed] == [["Sue", "likes", "tea", "."], ["Do", "n't", "stop"]]


def test_conllu_document_reads_and_writes_back_byte_for_byte(tmp_path):
    from seqnlp.data.conllu_io import read_document
    from seqnlp.data.errors import DataError

    src = tmp_path / "x.conllu"
    src.write_bytes(ROUND_TRIP.encode("utf-8"))
    doc = read_document(src)
    assert doc == ROUND_TRIP_WORDS and doc.text() == ROUND_TRIP
    sink = io.StringIO()
    write_conllu_results(sink, doc, [{"tokens": list(s), "tags": ["X"] * len(s)} for s in doc])
    written = sink.getvalue()
    assert written.count("\tX\t") == 10 and _without_column(written, 3) == _without_column(ROUND_TRIP, 3)
    bad = tmp_path / "bad.conllu"
    bad.write_text(ROUND_TRIP.replace("3\ttea\ttea\tNOUN", "3\ttea\ttea"))
    with pytest.raises(DataError, match=r"bad\.conllu:17: expected 10 tab-separated columns, found 9"):
        read_document(bad)


def test_predict_input_types(toy_runs):
    tagger = seqnlp.load(toy_runs["upos"])
    assert len(tagger.predict("Sue likes tea .")) == 1  # a bare string is one input
    for bad in (None, 3, 2.5):
        with pytest.raises(TypeError, match=r"inputs\[1\]"):
            tagger.predict(["Sue likes tea .", bad])


def test_bad_model_options_are_config_errors(tmp_path, capsys):
    root = toy_dataset(tmp_path / "toy", TOY.read_text())
    for bad in ("model.encoder=gru", "model.char=bytes"):
        assert main([f"data.name={root}", f"output_dir={tmp_path / 'run'}", bad, *TINY]) == 2
        err = capsys.readouterr().err
        assert "must be one of" in err and "Traceback" not in err


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
    assert tagger.config.model.fixed_vectors and tagger.config.model.trainable_words == model.word_embed.weight.size(0)
    assert feats.oov([{"tokens": ["zebra", "Sue", "sue"]}]) == [[True, False, True]]  # OOV: forms as written
    assert len(tagger.predict(["Zebra likes tea"])[0]["tags"]) == 3
    assert main([f"data.name={root}", f"output_dir={tmp_path / 'bad'}", f"model.pretrained={vectors}",
                 "model.word_dim=16", *TINY[1:]]) == 1  # 8-d vectors, 16-d embeddings: a data error


@pytest.mark.parametrize("bad_line,expect", [
    ("1\tDogs\tdog\tNOUN\n", "expected 10 tab-separated columns, found 4"),
    ("x\tDogs\tdog\tNOUN\tNNS\t_\t_\t_\t_\t_\n", "field 'id'"),
])
def test_malformed_conllu_is_an_error_with_file_and_line(tmp_path, capsys, bad_line, expect):
    text = TOY.read_text().replace("1\tSue\tSue\tPROPN\tNNP\t_\t2\tnsubj\t2:nsubj\t_\n", bad_line)
    root = toy_dataset(tmp_path / "bad", text)
    assert main([f"data.name={root}", f"output_dir={tmp_path / 'run'}", *TINY]) == 1
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
    assert stored_config(out)["data"]["tags"] == names
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


@pytest.mark.parametrize("path", sorted(CONFIGS.rglob("*.yaml")), ids=lambda p: str(p.relative_to(CONFIGS)))
def test_configs_load_and_start_with_their_command(path):
    cfg = load_config(Config, path)
    assert cfg.task == "pos_tagging"
    header = [line for line in path.read_text().splitlines() if line.startswith("#")][:3]
    rel = path.relative_to(CONFIGS.parents[2]).as_posix()
    assert any(line in (f"# seqnlp train --config {rel}", f"# python recipes/pos_tagging.py --config {rel}")
               for line in header), header


def test_help_lists_config_keys(capsys):
    assert main(["--help"]) == 0
    assert "model:" in capsys.readouterr().out
