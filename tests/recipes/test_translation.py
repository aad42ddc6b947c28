"""Translation: smoke run end to end, the predictor, runner modes, format-1 checkpoints, the precision policy,
bad input, and the seq2seq pipeline's units (tokenizers, encoding, batched == unbatched beam search)."""

import io
import json
import math
import sys
from pathlib import Path

import pytest
import seq2seq_checks as checks  # tests/recipes/seq2seq_checks.py
import torch

import seqnlp
from seqnlp import cli
from seqnlp.data.batching import Batch
from seqnlp.data.seq2seq import (
    EncodeStats,
    Seq2SeqCollate,
    encode_pairs,
    encode_sources,
    source_batch,
    train_tokenizers,
)
from seqnlp.data.tokenizers import Tokenizer
from seqnlp.recipes.translation import main
from seqnlp.search import SearchConfig, beam_search, generate, max_lengths
from seqnlp.serve.compare import same
from seqnlp.tasks.seq2seq import build_seq2seq
from seqnlp.tasks.translation import format_text
from seqnlp.train import checkpoint as ck

CONFIG = Path(__file__).parents[2] / "recipes" / "configs" / "translation" / "smoke.yaml"
DATA = "translation/multi30k"  # the real data the smoke runs read (conftest's data_dir)


@pytest.fixture(scope="module")
def smoke_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("translation_smoke")
    assert main(["--config", str(CONFIG), f"output_dir={out}"]) == 0
    return out


def test_smoke_run_writes_metrics_hypotheses_and_heatmap(smoke_run):
    metrics = json.loads((smoke_run / "metrics.json").read_text())
    assert {"bleu", "chrf", "signature"} <= set(metrics)
    assert 0.0 <= metrics["bleu"] <= 100.0 and 0.0 < metrics["chrf"] <= 100.0
    assert metrics["signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    assert metrics["sentences"] == 50 and metrics["beam_size"] == 3
    tuning = metrics["search_tuning"]  # smoke.yaml: length penalty chosen on validation from [0.6, 1.0]
    assert [g["length_penalty"] for g in tuning["grid"]] == [0.6, 1.0]
    best = max(tuning["grid"], key=lambda g: g["bleu"])
    assert tuning["chosen"] == {"beam_size": 3, "length_penalty": best["length_penalty"]}
    assert metrics["length_penalty"] == best["length_penalty"]
    hyps = (smoke_run / "hyps.test.txt").read_text().split("\n")
    assert len(hyps) == 51 and hyps[-1] == ""
    assert (smoke_run / "attention.png").read_bytes()[:4] == b"\x89PNG"
    result = json.loads((smoke_run / "result.json").read_text())
    assert result["metrics"]["bleu"] == metrics["bleu"] and "commit" in result
    stored = json.loads(next((smoke_run / "checkpoints").glob("step_*/config.json")).read_text())
    assert set(stored) == {"format_version", "task", "model", "data", "config", "files"}
    assert stored["format_version"] == 2
    assert stored["task"] == "translation" and stored["model"]["src_vocab"] == 600 and "model" not in stored["config"]
    assert "record" not in stored["config"] and stored["config"]["infer_precision"] == "fp32"


def test_predict_gives_one_result_per_input_in_order_blank_ones_empty(smoke_run):
    translator = seqnlp.load(smoke_run)
    inputs = ["Ein Hund läuft.", "", "   ", "Zwei Katzen schlafen."]
    results = translator.predict(inputs)
    assert len(results) == 4 and all(set(r) == {"translation", "nbest"} for r in results)
    assert results[1] == results[2] == {"translation": "", "nbest": []}
    for r, alone in ((results[0], translator.predict(inputs[0])), (results[3], translator.predict([inputs[3]]))):
        assert len(alone) == 1 and alone[0]["translation"] == r["translation"]  # a bare string is one input
        assert alone[0]["nbest"][0]["score"] == pytest.approx(r["nbest"][0]["score"], rel=1e-5)  # batch effects
    for r in (results[0], results[3]):
        assert r["translation"] == r["nbest"][0]["text"] == format_text(r) and isinstance(r["nbest"][0]["score"], float)
    with pytest.raises(TypeError, match=r"inputs\[1\]"):
        translator.predict(["Ein Hund.", ["Ein", "Hund"]])


def test_predictor_handles_long_and_unseen_input_and_nbest(smoke_run, capsys):
    translator = seqnlp.load(smoke_run)
    long_sentence = " ".join(["Hund"] * 500)
    out = translator.predict(["", "Ein Hund läuft 🐕 über die 橋 ☃.", long_sentence, "Ein Mann."])
    assert len(out) == 4 and all(isinstance(r["translation"], str) for r in out)
    st = translator.last_stats
    assert st.empty_sources == 1 and st.src_truncated == 1 and st.examples == 4
    assert "1 of 4 inputs were longer than data.max_src_len=100" in capsys.readouterr().err
    # output length is bounded by the max-length ratio of the (truncated) source, and the cap
    srcs, _ = encode_sources(translator.src_tok, [long_sentence], translator.max_src_len)
    assert len(srcs[0]) == translator.max_src_len
    tok = translator.tgt_tok
    hyp = generate(translator.model, srcs, translator.search, bos=tok.bos_id, eos=tok.eos_id, progress=False)
    assert len(hyp[0][0][0]) <= translator.search.max_output_len
    nbest = translator.predict(["Ein Mann."], search=SearchConfig(beam_size=3, n_best=3, max_output_len=10))
    scores = [h["score"] for h in nbest[0]["nbest"]]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)
    greedy = translator.predict(["Ein Mann."], search=SearchConfig(method="greedy", max_output_len=10))
    assert greedy[0]["nbest"][0]["score"] is None  # greedy search gives no score


def test_predict_evaluate_and_attention_commands(smoke_run, tmp_path, capsys):
    src = tmp_path / "in.txt"
    src.write_text("Zwei Hunde spielen im Schnee.\n\nEin Mädchen 😀 liest.\n")
    dst = tmp_path / "out.txt"
    assert main(["--mode", "predict", "--model", str(smoke_run), "--input", str(src), "--output", str(dst),
                 "search.method=greedy"]) == 0
    lines = dst.read_text().split("\n")
    assert len(lines) == 4 and lines[1] == "" and lines[0]
    assert cli.main(["predict", "--model", str(smoke_run), "--input", str(src), "--output", str(dst),
                     "--format", "nbest", "search.n_best=2", "search.beam_size=2"]) == 0
    lines = dst.read_text().splitlines()  # two hypotheses per sentence, one empty line for the blank input
    assert len(lines) == 5 and lines[0].startswith("0 ||| ") and lines[2] == "1 |||  ||| nan"
    assert [line.split(" ||| ")[0] for line in lines] == ["0", "0", "1", "2", "2"]
    assert main(["--mode", "evaluate", "--model", str(smoke_run), "search.method=greedy"]) == 0
    ev = json.loads((smoke_run / "metrics_test.json").read_text())
    assert ev["search"] == "greedy" and ev["sentences"] == 50 and "BLEU" in capsys.readouterr().out
    png = tmp_path / "att.png"
    assert cli.main(["attention", "--model", str(smoke_run), "--input", str(src), "--output", str(png),
                     "--max-sentences", "1"]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    assert cli.main(["attention", "--model", str(smoke_run), "--input", str(empty)]) == 1
    assert "no non-empty sentences" in capsys.readouterr().err


def test_predict_from_stdin(smoke_run, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"Ein Hund.\n\n"), encoding="utf-8"))
    assert cli.main(["predict", "--model", str(smoke_run), "--format", "jsonl"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["input"] for r in rows] == ["Ein Hund.", ""] and rows[1]["translation"] == ""


def test_blank_stdin_lines_give_empty_output_lines(smoke_run, monkeypatch, capsys):
    """``printf 'Ein Hund rennt.\\n\\nZwei Männer.\\n' | seqnlp predict --model RUN``: the blank line (and a line of
    white space) gives an empty line, not a made-up translation."""
    data = "Ein Hund rennt.\n\n   \nZwei Männer.\n".encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    assert cli.main(["predict", "--model", str(smoke_run)]) == 0
    out = capsys.readouterr().out.split("\n")
    assert len(out) == 5 and out[4] == ""  # one line per input line
    assert out[1] == out[2] == "" and out[0] and out[3]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    assert cli.main(["predict", "--model", str(smoke_run), "--format", "jsonl"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(r["translation"], r["nbest"]) for r in rows[1:3]] == [("", []), ("", [])]


def test_predict_input_types(smoke_run):
    translator = seqnlp.load(smoke_run)
    assert len(translator.predict("Ein Hund rennt.")) == 1  # a bare string is one input
    for bad in (None, 3, 2.5):
        with pytest.raises(TypeError, match=r"inputs\[1\]"):
            translator.predict(["Ein Hund rennt.", bad])


def test_format_1_checkpoint_loads_and_predicts_the_same(smoke_run, tmp_path):
    best = ck.resolve(smoke_run)
    v2 = json.loads((best / "config.json").read_text())
    v1, missing = checks.as_format_1(v2, {"infer_precision": "decode_precision"},
                                      src_vocab_size=v2["model"]["src_vocab"], tgt_vocab_size=v2["model"]["tgt_vocab"])
    assert not missing  # nothing else was renamed
    v1["config"]["decode_precision"] = "bf16"  # the old name of infer_precision
    old = checks.rewrite(best, tmp_path / "v1", v1)
    legacy = seqnlp.load(old, device="cpu")
    assert legacy.config.infer_precision == "bf16" and legacy.config.model.src_vocab == 600
    legacy = seqnlp.load(old, device="cpu", precision="fp32")
    sents = ["Ein Hund läuft über die Wiese.", "", "Zwei Männer spielen Fußball."]
    assert legacy.predict(sents) == seqnlp.load(smoke_run, device="cpu").predict(sents)


def test_bf16_on_a_cpu_without_it_runs_in_fp32_with_one_note(smoke_run, monkeypatch, capsys):
    checks.assert_bf16_falls_back_to_fp32(smoke_run, ["Ein Hund läuft.", "", "Zwei Katzen."], monkeypatch, capsys)


def test_clear_errors_instead_of_tracebacks(smoke_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    code = main(["--config", str(CONFIG), f"output_dir={tmp_path / 'x'}", "data.name=no-such-owner/no-such-set",
                 "data.format=auto"])
    assert code == 1 and "dataset not found" in capsys.readouterr().err
    assert main(["--config", str(CONFIG), f"output_dir={tmp_path / 'y'}", "data.joint_vocab=false",
                 "model.share_src_tgt_embeddings=true"]) == 2
    assert "needs data.joint_vocab=true" in capsys.readouterr().err
    assert main(["--mode", "predict", "--model", str(tmp_path / "nothing")]) == 1
    assert "no checkpoint" in capsys.readouterr().err
    assert main(["--mode", "predict", "--model", str(smoke_run), "--input", str(tmp_path / "missing.txt")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_cpu_minutes_budget_stops_training(data_dir, tmp_path):
    out = tmp_path / "cpu"
    assert main(["--config", str(CONFIG), f"output_dir={out}", "cpu_minutes=0.0001", "train.max_steps=0",
                 "data.eval_limit=5", "attention_plot=0"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["stop_reason"] == "cpu_minutes" and metrics["steps"] == 1
    end = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()][-1]
    assert end["event"] == "end" and end["reason"] == "cpu_minutes" and end["train_cpu_seconds"] > 0


# ------------------------------------------------------------------------------------------- units
@pytest.fixture(scope="module")
def toy_tok():
    texts = ["ein hund läuft", "a dog runs", "zwei katzen schlafen", "two cats sleep"] * 20
    return Tokenizer.train("bpe", texts, vocab_size=300, min_freq=1)


@pytest.mark.parametrize("kind,joint", [("bpe", True), ("unigram", False)])
def test_train_tokenizers_joint_or_separate_and_lossless(kind, joint):
    src = ["ein hund läuft über die straße", "zwei katzen schlafen"] * 30
    tgt = ["a dog runs across the street", "two cats sleep"] * 30
    s, t = train_tokenizers(kind, 400, joint, src, tgt, min_freq=1)
    assert (s is t) == joint
    for tok, text in ((s, "Ünseen çharacters 🐕 橋"), (t, "two dogs")):
        assert tok.decode(tok.encode(text)) == text  # byte-level: nothing becomes <unk>
    with pytest.raises(ValueError, match="vocab_size >= 300"):
        train_tokenizers("unigram", 100, True, src, tgt)


def test_encode_pairs_counts_truncation_and_empty_pairs(toy_tok):
    examples = [{"source": "ein hund", "target": "a dog"}, {"source": "  ", "target": "x"},
                {"source": "ein " * 40, "target": "a " * 40}, {"source": "katzen", "target": ""}]
    pairs, st = encode_pairs(toy_tok, toy_tok, examples, max_src_len=8, max_tgt_len=6)
    assert st == EncodeStats(examples=4, kept=2, skipped_empty=2, src_truncated=1, tgt_truncated=1)
    assert all(s[-1] == toy_tok.eos_id and len(s) <= 8 and len(t) <= 5 for s, t in pairs)
    srcs, st = encode_sources(toy_tok, ["", "ein hund"], max_len=8)
    assert srcs[0] == [toy_tok.eos_id] and st.empty_sources == 1
    batch = Seq2SeqCollate.of(toy_tok)(pairs)
    assert batch.tgt_in[:, 0].eq(toy_tok.bos_id).all()
    assert batch.n_tokens["target"] == sum(len(t) + 1 for _, t in pairs)
    assert batch.n_tokens["source"] == sum(len(s) for s, _ in pairs)


def _tiny_model(attention: str, input_feeding: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    m = build_seq2seq(23, 19, emb_size=8, hidden_size=8, attention=attention, input_feeding=input_feeding,
                      dropout=0.0, emb_dropout=0.0, pad_id=0).double().eval()
    with torch.no_grad():
        m.decoder.out.weight.mul_(3.0)  # peaked distributions so that sentences differ
        m.decoder.out.bias[3] -= 1.0  # EOS (id 3) neither always first nor never
    return m


@pytest.mark.parametrize("attention,input_feeding", [("bahdanau", True), ("luong_general", False), ("none", False)])
def test_sentences_joining_a_running_beam_search_equal_one_at_a_time(attention, input_feeding):
    """Continuous batching on the real decoder: sentences of other lengths join while others are decoded (their
    memories padded to the longest source: DecoderState.merge) and get what they get alone."""
    from seqnlp.search import BeamSearch

    m = _tiny_model(attention, input_feeding)
    g = torch.Generator().manual_seed(2)
    srcs = [torch.randint(4, 23, (n,), generator=g).tolist() + [3] for n in (4, 1, 9, 0, 6, 2)]
    joins = [0, 0, 2, 2, 3, 5]
    kw = dict(bos=2, eos=3, beam_size=4, n_best=3, length_penalty=1.0)
    search, out, step = BeamSearch(m, **kw), {}, 0
    with torch.no_grad():
        while len(out) < len(srcs):
            new = [i for i, j in enumerate(joins) if j == step]
            if new:
                batch = source_batch([srcs[i] for i in new], 0)
                search.add(batch, max_lengths(batch.src_lengths, 1.5, min_len=3, cap=12), ids=new)
            out.update(search.step())
            step += 1
        for i, s in enumerate(srcs):
            one = source_batch([s], 0)
            alone = beam_search(m, one, max_len=max_lengths(one.src_lengths, 1.5, min_len=3, cap=12), **kw)[0]
            assert [h for h, _ in out[i]] == [h for h, _ in alone], i
            assert [sc for _, sc in out[i]] == pytest.approx([sc for _, sc in alone], abs=1e-5)
    assert len({tuple(r[0][0]) for r in out.values()}) > 2  # not a degenerate model


def test_decode_stream_answers_requests_like_predict(smoke_run):
    """The predictor's DecodeStream (the server's continuous batching): requests added between steps, blank and
    bad inputs included, are answered with what predict() gives them."""
    pred = seqnlp.load(smoke_run)
    requests = {"a": ["Ein Hund läuft .", "Zwei Männer"], "b": ["  "], "c": ["Eine Frau sitzt auf einer Bank ."],
                "d": [3], "e": ["Ein Mann", "", "Kinder spielen im Park ."]}
    stream = pred.stream()
    assert stream is not None and len(stream) == 0
    done, failed = stream.add([(k, requests[k]) for k in "ab"])
    assert done == [("b", pred.predict(requests["b"]))] and failed == []
    answers = dict(done)
    stream.step()
    done, failed = stream.add([(k, requests[k]) for k in "cde"])
    assert [k for k, _ in failed] == ["d"] and isinstance(failed[0][1], TypeError)
    while len(stream):
        answers.update(stream.step())
    for k in "abce":
        assert same(answers[k], pred.predict(requests[k])), k
    assert pred.stream(SearchConfig(method="greedy")) is None  # greedy / sampling: batched whole


@pytest.mark.parametrize("attention,input_feeding", [("bahdanau", True), ("bahdanau", False),
                                                     ("luong_general", False)])
def test_batched_beam_search_equals_one_sentence_at_a_time(attention, input_feeding):
    m = _tiny_model(attention, input_feeding)
    g = torch.Generator().manual_seed(1)
    srcs = [torch.randint(4, 23, (n,), generator=g).tolist() + [3] for n in (0, 1, 6, 3, 9, 2, 5)]
    batch = source_batch(srcs, 0)
    max_len = max_lengths(batch.src_lengths, 1.5, min_len=3, cap=12)
    kw = dict(bos=2, eos=3, beam_size=4, n_best=3, length_penalty=1.0)
    batched = beam_search(m, batch, max_len=max_len, **kw)
    for i, s in enumerate(srcs):
        alone = beam_search(m, source_batch([s], 0), max_len=max_len[i : i + 1], **kw)[0]
        assert [h for h, _ in alone] == [h for h, _ in batched[i]]
        assert [sc for _, sc in alone] == pytest.approx([sc for _, sc in batched[i]], abs=1e-9)
    assert len({tuple(b[0][0]) for b in batched}) > 2  # not a degenerate model
    # generate() (length-sorted token-budget batches) returns the same, in input order
    search = SearchConfig(beam_size=4, n_best=3, max_len_ratio=1.5, min_max_len=3, max_output_len=12, max_tokens=12)
    assert [[h for h, _ in r] for r in generate(m, srcs, search, bos=2, eos=3)] == \
        [[h for h, _ in r] for r in batched]


def test_generate_greedy_and_sampling_shapes():
    m = _tiny_model("bahdanau", False)
    srcs = [[5, 6, 3], [3], [7, 8, 9, 10, 3]]
    greedy = generate(m, srcs, SearchConfig(method="greedy", max_output_len=6), bos=2, eos=3, progress=False)
    assert [len(r) for r in greedy] == [1, 1, 1] and all(math.isnan(r[0][1]) for r in greedy)
    samples = generate(m, srcs, SearchConfig(method="sample", n_best=2, top_p=0.9, max_output_len=6),
                       bos=2, eos=3, progress=False)
    assert [len(r) for r in samples] == [2, 2, 2] and all(len(h) <= 6 for r in samples for h, _ in r)
    assert isinstance(source_batch(srcs, 0), Batch)


def test_a_model_without_attention_trains_and_says_it_has_none_to_draw(tmp_path, capsys, data_dir):
    from seqnlp.cli import main as cli

    out = tmp_path / "noatt"
    assert cli(["train", "--config", str(CONFIG), f"output_dir={out}", "model.attention=none",
                "train.max_steps=2", "train.progress=false"]) == 0
    assert (out / "metrics.json").is_file() and not (out / "attention.png").exists()
    src = tmp_path / "s.txt"
    src.write_text("Ein Hund rennt .\n")
    assert cli(["attention", "--model", str(out), "--input", str(src), "--output", str(tmp_path / "a.png")]) == 2
    assert "no attention to draw" in capsys.readouterr().err
