"""Translation recipe: smoke run end to end, predict/evaluate paths, bad input, batched == unbatched beam."""

import json
import math
from pathlib import Path

import pytest
import torch

import seqnlp
from seqnlp.data.batching import Batch
from seqnlp.data.tokenizers import Tokenizer
from seqnlp.recipes._seq2seq import (
    EncodeStats,
    SearchConfig,
    Seq2SeqCollate,
    encode_pairs,
    encode_sources,
    generate,
    source_batch,
    train_tokenizers,
)
from seqnlp.recipes.translation import main
from seqnlp.search import beam_search, max_lengths
from seqnlp.tasks.seq2seq import build_seq2seq

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
    cfg = json.loads(next((smoke_run / "checkpoints").glob("step_*/config.json")).read_text())
    assert cfg["task"] == "translation" and cfg["model_args"]["src_vocab"] == 600


def test_predictor_handles_empty_long_and_unseen_input(smoke_run):
    translator = seqnlp.load(smoke_run)
    long_sentence = " ".join(["Hund"] * 500)
    out = translator.translate(["", "Ein Hund läuft 🐕 über die 橋 ☃.", long_sentence, "Ein Mann."])
    assert len(out) == 4 and all(isinstance(t, str) for t in out)
    st = translator.last_stats
    assert st.empty_sources == 1 and st.src_truncated == 1 and st.examples == 4
    # output length is bounded by the max-length ratio of the (truncated) source, and the cap
    srcs, _ = encode_sources(translator.src_tok, [long_sentence], translator.max_src_len)
    assert len(srcs[0]) == translator.max_src_len
    tok = translator.tgt_tok
    hyp = generate(translator.model, srcs, translator.search, bos=tok.bos_id, eos=tok.eos_id, progress=False)
    assert len(hyp[0][0][0]) <= translator.search.max_output_len
    nbest = translator.translate_nbest(["Ein Mann."], SearchConfig(beam_size=3, n_best=3, max_output_len=10))
    assert len(nbest[0]) == 3 and [s for _, s in nbest[0]] == sorted((s for _, s in nbest[0]), reverse=True)


def test_predict_and_evaluate_modes(smoke_run, tmp_path, capsys):
    src = tmp_path / "in.txt"
    src.write_text("Zwei Hunde spielen im Schnee.\n\nEin Mädchen 😀 liest.\n")
    dst = tmp_path / "out.txt"
    assert main(["--mode", "predict", "--model", str(smoke_run), "--input", str(src), "--output", str(dst),
                 "search.method=greedy"]) == 0
    assert len(dst.read_text().split("\n")) == 4
    assert main(["--mode", "predict", "--model", str(smoke_run), "--input", str(src), "--output", str(dst),
                 "search.n_best=2", "search.beam_size=2"]) == 0
    lines = dst.read_text().splitlines()
    assert len(lines) == 6 and lines[0].startswith("0 ||| ")
    assert main(["--mode", "evaluate", "--model", str(smoke_run), "search.method=greedy"]) == 0
    ev = json.loads((smoke_run / "eval_test.json").read_text())
    assert ev["search"] == "greedy" and ev["sentences"] == 50 and "BLEU" in capsys.readouterr().out
    png = tmp_path / "att.png"
    assert main(["--mode", "attention", "--model", str(smoke_run), "--input", str(src), "--output", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_clear_errors_instead_of_tracebacks(smoke_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    code = main(["--config", str(CONFIG), f"output_dir={tmp_path / 'x'}", "data.name=no-such-owner/no-such-set",
                 "data.format=auto"])
    assert code == 1 and "dataset not found" in capsys.readouterr().err
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
    batch = Seq2SeqCollate(0, toy_tok.bos_id, toy_tok.eos_id)(pairs)
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
    # the recipe's generate() (length-sorted token-budget batches) returns the same, in input order
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
