"""``seqnlp export`` (ONNX) and exported models on onnxruntime, for every task of the registry.

Against eager torch on each task's smoke model: raw outputs (classifier logits, tagger emissions, encoder states
and decoder step log-probabilities, LM logits) within 1e-4 on batches of very different lengths (length 1 and
heavily padded rows); identical labels and tags; identical beam-search translations; ``seqnlp predict --model
EXPORT_DIR`` writes the lines it writes with the run directory. int8 exports agree on >= 99% of labels and tags.
An export directory with a truncated graph, an altered tokenizer or a missing file is exit 1 naming the file.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import seqnlp  # noqa: E402
from seqnlp.cli import main as cli  # noqa: E402
from seqnlp.export import export  # noqa: E402
from seqnlp.export.runtime import OrtClassifier, OrtLM, OrtSeq2Seq, OrtTagger  # noqa: E402
from seqnlp.tasks import TASKS, get_task  # noqa: E402

TOL = 1e-4
LONG = ("a man in a blue shirt and a woman in a red dress are walking down the street past a row of old houses "
        "while two children play with a small brown dog near the fountain in the middle of the square")
INPUTS = {  # predict inputs per task: a blank line, a one-word line, the registry's example, a long line
    "sentiment": ["", "good", TASKS["sentiment"].example, LONG],
    "pos_tagging": ["", "Hello", TASKS["pos_tagging"].example, LONG],
    "translation": ["", "Hund", TASKS["translation"].example, "Ein Mann in einem blauen Hemd geht mit zwei Kindern "
                    "und einem kleinen Hund über die Straße an alten Häusern vorbei ."],
    "dialogue": ["", "Hi", TASKS["dialogue"].example, f"Hello ! __eou__ {LONG} ? __eou__ Yes ."],
    "char_generator": ["", "A", TASKS["char_generator"].example],
}
MODELS = {"sentiment": OrtClassifier, "pos_tagging": OrtTagger, "translation": OrtSeq2Seq, "dialogue": OrtSeq2Seq,
          "char_generator": OrtLM}


@pytest.fixture(scope="module")
def exported(smoke_runs, tmp_path_factory):
    """``exported(task, quantize=None)``: the task's smoke run exported once per module."""
    done: dict = {}

    def get(task: str, quantize: str | None = None) -> Path:
        if (task, quantize) not in done:
            out = tmp_path_factory.mktemp(f"export_{task}") / (quantize or "fp32")
            export(smoke_runs(task), out, quantize, log=lambda msg: None)
            done[task, quantize] = out
        return done[task, quantize]

    return get


@pytest.fixture(scope="module")
def pair(smoke_runs, exported):
    """``pair(task)``: (torch predictor of the smoke run, onnxruntime predictor of its fp32 export)."""
    done: dict = {}

    def get(task: str):
        if task not in done:
            done[task] = (seqnlp.load(smoke_runs(task), device="cpu"), seqnlp.load(exported(task)))
        return done[task]

    return get


def close(a: torch.Tensor, b: torch.Tensor, what: str, mask: torch.Tensor | None = None) -> None:
    assert a.shape == b.shape, f"{what}: shapes {tuple(a.shape)} != {tuple(b.shape)}"
    d = (a.float() - b.float()).abs()
    if mask is not None:
        d = d[mask]
    assert float(d.max()) <= TOL, f"{what}: max |onnxruntime - torch| = {float(d.max()):.2e}"


# ------------------------------------------------------------------------------------------------ layout
@pytest.mark.parametrize("task", list(TASKS))
def test_export_directory_is_the_checkpoint_config_plus_graphs(task, smoke_runs, exported, pair):
    out = exported(task)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["format_version"] == 2 and cfg["task"] == task and {"model", "data", "config"} <= set(cfg)
    ex = cfg["export"]
    assert ex["format"] == "onnx" and ex["quantize"] is None and ex["seqnlp_version"] == seqnlp.__version__
    for name, g in ex["graphs"].items():
        assert (out / g["file"]).is_file() and len(g["sha256"]) == 64, name
        assert g["inputs"] and g["outputs"] and all({"name", "dtype", "shape"} <= set(i) for i in g["inputs"])
    assert cfg["files"] and all((out / f).is_file() for f in cfg["files"])  # tokenizers / vocabularies copied
    ckpt = json.loads((Path(pair(task)[0].checkpoint) / "config.json").read_text())
    assert cfg["files"] == ckpt["files"] and cfg["model"] == ckpt["model"]
    torch_pred, ort_pred = pair(task)
    assert type(ort_pred) is type(torch_pred) and isinstance(ort_pred.model, MODELS[task])


# ------------------------------------------------------------------------------------------------ raw outputs
def test_classifier_logits_and_labels_match(pair):
    from seqnlp.data.classification import collate_classify

    tp, op = pair("sentiment")
    ids = tp.encode(["good", LONG, TASKS["sentiment"].example, "bad film"])
    assert min(map(len, ids)) == 1 and max(map(len, ids)) >= 30
    batch = collate_classify(tp.tokenizer.pad_id)([(x, -1) for x in ids])
    with torch.no_grad():
        close(op.model(batch), tp.model(batch), "logits")
    texts = [t for t, _ in get_task("sentiment").api.split_examples(tp.config, tp.labels, tp.fold, "test")]
    assert [r["label"] for r in op.predict(texts)] == [r["label"] for r in tp.predict(texts)]


def test_tagger_emissions_and_tags_match(pair):
    from seqnlp.data.tagging import Featurizer

    tp, op = pair("pos_tagging")
    sents = [{"tokens": s.split()} for s in ("Hello", LONG, "I saw her duck .", "Dogs 12,000 bark-ish !")]
    encoded, chars, lengths = tp.feats.encode(sents)
    batch = Featurizer.collate(encoded, chars, lengths)  # each batch's distinct words' characters
    mask = tp.model.mask(batch)
    with torch.no_grad():
        close(op.model(batch), tp.model(batch), "emissions", mask)
        assert torch.equal(op.model.predict(batch), tp.model.predict(batch))
    test = [" ".join(e["tokens"]) for e in get_task("pos_tagging").api.labelled_split(tp.config, "test")]
    assert [r["tags"] for r in op.predict(test)] == [r["tags"] for r in tp.predict(test)]


@pytest.mark.parametrize("task", ["translation", "dialogue"])
def test_encoder_states_and_decoder_steps_match(task, pair):
    from seqnlp.data.seq2seq import source_batch

    tp, op = pair(task)
    srcs, _ = tp.encode(INPUTS[task])  # the blank input is one token long (</s>); the last one long
    assert min(map(len, srcs)) == 1 and max(map(len, srcs)) >= 20
    batch = source_batch(srcs, tp.tgt_tok.pad_id)
    mask = batch.src != tp.tgt_tok.pad_id
    with torch.no_grad():
        ts, os_ = tp.model.start(batch), op.model.start(batch)
        close(os_.h, ts.h, "h0")
        close(os_.c, ts.c, "c0")
        if ts.memory is not None:
            close(os_.memory, ts.memory, "memory", mask)
            close(os_.keys, ts.keys, "keys", mask)
            assert torch.equal(os_.mask, ts.mask)
        tokens = torch.full((len(srcs),), tp.tgt_tok.bos_id)
        for t in range(4):  # teacher-forced by torch's choice, through the beam search's reorder
            tlp, ts = tp.model.step(tokens, ts)
            olp, os_ = op.model.step(tokens, os_)
            close(olp, tlp, f"log-probs of step {t}")
            close(os_.h, ts.h, f"h after step {t}")
            tokens = tlp.argmax(-1)
            index = torch.arange(len(srcs)).flip(0)
            ts, os_ = tp.model.reorder(ts, index), op.model.reorder(os_, index)
            tokens = tokens[index]
        # beam expansion: 3 rows per sentence sharing its memory row (the decoder graph's memory_rows axis)
        index = torch.arange(len(srcs)).repeat_interleave(3)
        ts, os_ = tp.model.reorder(ts, index), op.model.reorder(os_, index)
        assert os_.h.size(1) == 3 * len(srcs) and (os_.memory is None or os_.memory.size(0) == len(srcs))
        tlp, ts = tp.model.step(tokens[index], ts)
        olp, os_ = op.model.step(tokens[index], os_)
        close(olp, tlp, "log-probs of a beam-expanded step")
        close(os_.h, ts.h, "h after a beam-expanded step")


def test_beam_search_translations_are_identical(pair):
    from dataclasses import replace

    tp, op = pair("translation")
    sources = [e["source"] for e in get_task("translation").api.load_data(tp.config)["test"]]
    for search in (replace(tp.search, method="beam", beam_size=5, n_best=3), replace(tp.search, method="greedy")):
        t, o = tp.predict(sources, search=search), op.predict(sources, search=search)
        assert [r["translation"] for r in o] == [r["translation"] for r in t], search.describe()
        assert [[h["text"] for h in r["nbest"]] for r in o] == [[h["text"] for h in r["nbest"]] for r in t]
        scores = [(a["score"], b["score"]) for x, y in zip(o, t) for a, b in zip(x["nbest"], y["nbest"])]
        assert all(a is None and b is None or abs(a - b) <= TOL for a, b in scores)


def test_lm_logits_and_steps_match(pair):
    tp, op = pair("char_generator")
    g = torch.Generator().manual_seed(0)
    x = torch.randint(1, tp.model.vocab_size, (3, 9), generator=g)
    with torch.no_grad():
        tl, ts = tp.model(x)
        ol, os_ = op.model(x)
        close(ol, tl, "logits")
        tok = tl[:, -1].argmax(-1)
        for t in range(3):
            tlp, ts = tp.model.step(tok, ts)
            olp, os_ = op.model.step(tok, os_)
            close(olp, tlp, f"step {t}")
            tok = tlp.argmax(-1)
    assert op.loss("ROMEO: Is it so?") == pytest.approx(tp.loss("ROMEO: Is it so?"), abs=TOL)


# ------------------------------------------------------------------------------------------------ command line
@pytest.mark.parametrize("task", list(TASKS))
def test_predict_on_the_export_writes_the_same_lines(task, smoke_runs, exported, tmp_path, capsys):
    inputs = tmp_path / "inputs.txt"
    inputs.write_text("\n".join(INPUTS[task]) + "\n", encoding="utf-8")
    outs = []
    for model in (smoke_runs(task), exported(task)):
        assert cli(["predict", "--model", str(model), "--input", str(inputs), "--device", "cpu"]) == 0
        outs.append(capsys.readouterr().out.splitlines())
    assert len(outs[0]) == len(INPUTS[task])
    assert outs[1] == outs[0]


def test_export_command_line(smoke_runs, tmp_path, capsys):
    assert cli(["export", "--help"]) == 0
    assert "--quantize" in capsys.readouterr().out
    out = tmp_path / "exp"
    assert cli(["export", "--model", str(smoke_runs("dialogue")), "--format", "onnx", "--output", str(out)]) == 0
    assert "matches torch" in capsys.readouterr().err and (out / "decoder.onnx").is_file()
    assert cli(["export", "--model", str(smoke_runs("dialogue")), "--output", str(out), "--no-check"]) == 0  # again
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    assert cli(["export", "--model", str(smoke_runs("dialogue")), "--output", str(tmp_path / "other")]) == 2
    assert "not a seqnlp export" in capsys.readouterr().err
    assert cli(["export", "--model", str(tmp_path / "nothing"), "--output", str(tmp_path / "x")]) == 1
    assert cli(["export", "--model", str(out), "--output", str(tmp_path / "y")]) == 2  # an export of an export
    assert cli(["export", "--model", str(out), "--output", str(tmp_path / "z"), "--format", "tflite"]) == 2


# ------------------------------------------------------------------------------------------------ int8
@pytest.mark.parametrize("task", ["sentiment", "pos_tagging"])
def test_int8_labels_and_tags_agree(task, pair, exported):
    tp, _ = pair(task)
    q = seqnlp.load(exported(task, "int8"))
    assert json.loads((exported(task, "int8") / "config.json").read_text())["export"]["quantize"] == "int8"
    api = get_task(task).api
    if task == "sentiment":
        texts = [t for t, _ in api.split_examples(tp.config, tp.labels, tp.fold, "test")]
        want, got = [r["label"] for r in tp.predict(texts)], [r["label"] for r in q.predict(texts)]
    else:
        texts = [" ".join(e["tokens"]) for e in api.labelled_split(tp.config, "test")]
        want = [t for r in tp.predict(texts) for t in r["tags"]]
        got = [t for r in q.predict(texts) for t in r["tags"]]
    agree = sum(a == b for a, b in zip(want, got)) / len(want)
    assert len(want) >= 200 and agree >= 0.99, f"{task} int8: {agree:.2%} of {len(want)} agree"
    fp32 = sum((exported(task) / g).stat().st_size for g in ("classifier.onnx", "tagger.onnx")
               if (exported(task) / g).exists())
    int8 = sum(p.stat().st_size for p in exported(task, "int8").glob("*.onnx"))
    assert int8 < 0.7 * fp32  # smoke models: small weights beside the graph's fixed part


def test_int8_translation_runs(exported):
    q = seqnlp.load(exported("translation", "int8"))
    res = q.predict(INPUTS["translation"])
    assert len(res) == 4 and res[0]["translation"] == "" and all(r["nbest"] for r in res[1:])


# ------------------------------------------------------------------------------------------------ broken exports
@pytest.mark.parametrize("damage", ["truncated graph", "altered tokenizer", "missing graph"])
def test_a_damaged_export_is_exit_1_naming_the_file(damage, exported, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(exported("pos_tagging"), broken)
    if damage == "truncated graph":
        f = broken / "tagger.onnx"
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    elif damage == "altered tokenizer":
        f = broken / "words.json"
        f.write_text(f.read_text().replace("{", '{"_": 0, ', 1))
    else:
        f = broken / "tagger.onnx"
        f.unlink()
    (tmp_path / "in.txt").write_text("I saw her duck .\n")
    assert cli(["predict", "--model", str(broken), "--input", str(tmp_path / "in.txt")]) == 1
    err = capsys.readouterr().err
    assert str(f) in err and err.startswith("error:"), err
    with pytest.raises(seqnlp.train.checkpoint.CheckpointError, match=f.name):
        seqnlp.load(broken)


# ------------------------------------------------------------------------------------------------ other architectures
VARIANTS = {  # smoke configs with the options the five smoke models leave out
    "tagger_softmax_cnn_window": ("pos_tagging", ["model.crf=false", "model.char=cnn", "model.encoder=window"]),
    "seq2seq_feeding_dot_padded": ("translation", ["model.input_feeding=true", "model.attention=luong_dot",
                                                   "model.bidirectional=false", "model.packed=false",
                                                   "model.dec_layers=2", "attention_plot=0",
                                                   "tune_length_penalties=[]"]),
    "lm_gru": ("char_generator", ["model.cell=gru"]),
    "lm_window": ("char_generator", ["model.cell=window", "model.window=5", "model.layers=1"]),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_other_architectures_export_and_predict_alike(variant, smoke_runs, tmp_path, capsys):
    smoke_runs("char_generator")  # puts tests/golden (the smoke runner) on sys.path
    import smoke

    task, overrides = VARIANTS[variant]
    run = tmp_path / "run"
    smoke.run(task, run, overrides)
    out = export(run, tmp_path / "onnx", log=lambda msg: None)
    checked = json.loads((out / "config.json").read_text())["export"]["checked"]["graphs"]
    assert checked and max(g["max_abs_difference"] for g in checked.values()) <= TOL, checked
    inputs = tmp_path / "inputs.txt"
    inputs.write_text("\n".join(INPUTS[task]) + "\n", encoding="utf-8")
    capsys.readouterr()
    lines = []
    for model in (run, out):
        assert cli(["predict", "--model", str(model), "--input", str(inputs), "--device", "cpu"]) == 0
        lines.append(capsys.readouterr().out.splitlines())
    assert lines[1] == lines[0] and len(lines[0]) == len(INPUTS[task])


def test_a_conditioned_lm_starts_from_its_init_graph(tmp_path):
    from types import SimpleNamespace

    from seqnlp.export import onnx_graphs as og
    from seqnlp.export.runtime import OrtGraph
    from seqnlp.tasks.char_generator import ModelConfig, build_model

    model = build_model(ModelConfig(vocab_size=12, num_conditions=3, embed_dim=4, hidden=8, layers=2)).eval()
    specs = og.graphs_of("char_generator", SimpleNamespace(model=model))
    assert [s.name for s in specs] == ["lm", "init"]
    for s in specs:
        og.export_graph(s, tmp_path / f"{s.name}.onnx")
    shape = specs[0].inputs["h"]
    ort_lm = OrtLM({s.name: OrtGraph(tmp_path / f"{s.name}.onnx") for s in specs}, ["h", "c"], shape, True)
    cond = torch.tensor([2, 0, 1, 2])
    x = torch.randint(1, 12, (4, 6))
    with torch.no_grad():
        ts, os_ = model.init_state(4, cond), ort_lm.init_state(4, cond)
        close(os_[0], ts[0], "h0 of the conditions")
        (tl, _), (ol, _) = model(x, ts), ort_lm(x, os_)
        close(ol, tl, "logits from the conditions' states")
    with pytest.raises(ValueError, match="conditions"):
        ort_lm.init_state(4)


@pytest.mark.parametrize("continuous", [None, True], ids=["grouped", "continuous"])
def test_serve_runs_an_export(exported, continuous):
    """``seqnlp serve`` of an export: grouped by default in one process, and with ``--batching continuous`` the
    onnxruntime decoder's running search (requests at the same time join it)."""
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from serve_util import InProcessServer

    from seqnlp.runner import load
    from seqnlp.serve.app import create_app

    out = exported("translation")
    pred = load(out, "cpu", threads=1)
    app = create_app(pred, model=str(out), load=lambda ov: load(out, "cpu", ov, threads=1), max_wait_ms=5,
                     continuous=continuous)
    from serve_util import concurrently

    offline = pred.predict(INPUTS["translation"])
    with InProcessServer(app) as server:
        status, body = server.post("/predict", {"inputs": INPUTS["translation"]})
        assert status == 200, body
        assert [r["translation"] for r in body["results"]] == [r["translation"] for r in offline]
        outs = concurrently([lambda x=x: server.post("/predict", {"inputs": [x]}) for x in INPUTS["translation"]])
        health = server.get("/health")[1]
    assert [o[1]["results"][0]["translation"] for o in outs] == [r["translation"] for r in offline]
    assert ("stream" in health) == bool(continuous), health
    if continuous:
        assert health["stream"]["answered"] >= len(INPUTS["translation"]) + 1 and health["stream"]["steps"] > 0


@pytest.mark.parametrize("task", ["translation", "dialogue"])
def test_continuous_decoding_answers_like_predict_on_the_run_and_the_export(task, smoke_runs, exported):
    """DecodeStream (``seqnlp serve --workers``' continuous batching) on the torch model and on the onnxruntime
    graphs (OrtSeq2Seq.merge): requests joining between steps get what predict() gives them."""
    from dataclasses import replace

    from seqnlp.serve.compare import same

    for model in (smoke_runs(task), exported(task)):
        pred = seqnlp.load(model)
        beam = replace(pred.search, method="beam", beam_size=3, n_best=2)  # the dialogue smoke run samples
        stream = pred.stream(beam)
        assert stream is not None, model
        inputs = [[x] for x in INPUTS[task]]
        answers = dict(stream.add(list(enumerate(inputs[:2])))[0])
        stream.step()
        answers.update(stream.add([(i + 2, x) for i, x in enumerate(inputs[2:])])[0])
        while len(stream):
            answers.update(stream.step())
        assert sorted(answers) == list(range(len(inputs)))
        for i, x in enumerate(inputs):
            assert same(answers[i], pred.predict(x, search=beam), tol=1e-4), (model, x)
