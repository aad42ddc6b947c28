"""Dialogue: smoke run end to end, the predictor, scripted chat, runner modes, format-1 checkpoints, the
precision policy, and context building and truncation."""

import io
import json
import math
import sys
from pathlib import Path

import pytest
import seq2seq_checks as checks  # tests/recipes/seq2seq_checks.py

import seqnlp
from seqnlp import cli
from seqnlp.data.dialogue import SEP, DialogueStats, encode_contexts, join_context, make_examples
from seqnlp.data.errors import DataError
from seqnlp.data.tokenizers import Tokenizer
from seqnlp.recipes.dialogue import main
from seqnlp.search import SearchConfig
from seqnlp.tasks.dialogue import (
    Config,
    DataConfig,
    chat_session,
    format_text,
    load_data,
    parse_input,
    perplexities,
    reply_metrics,
    spaced,
)
from seqnlp.train import checkpoint as ck

CONFIG = Path(__file__).parents[2] / "recipes" / "configs" / "dialogue" / "smoke.yaml"
GREEDY = ["search.method=greedy"]
DATA = "dialogue/dailydialog"  # the real data the smoke runs read (conftest's data_dir)


@pytest.fixture(scope="module")
def smoke_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("dialogue_smoke")
    assert main(["--config", str(CONFIG), f"output_dir={out}"]) == 0
    return out


def test_smoke_run_writes_metrics_for_every_decoding(smoke_run):
    metrics = json.loads((smoke_run / "metrics.json").read_text())
    ppl = metrics["perplexity"]
    assert 1.0 < ppl["subword"] < ppl["word"] and ppl["words"] < ppl["subwords"]
    assert metrics["compare"] == ["greedy", "beam", "sample"] and metrics["default"] == "sample"
    assert metrics["decoded"] == 30 and metrics["examples"] > 30
    for method in ("greedy", "beam", "sample"):
        m = metrics[method]
        assert 0.0 <= m["bleu"] <= 100.0 and 0.0 <= m["distinct_1"] <= 1.0 and 0.0 <= m["distinct_2"] <= 1.0
        assert 0.0 <= m["avg_length"] <= 20 and m["signature"].startswith("nrefs:1|case:mixed")
        assert len((smoke_run / f"replies.test.{method}.txt").read_text().split("\n")) == 31
    assert metrics["beam"]["no_repeat_ngram_size"] == 3 and metrics["sample"]["top_p"] == 0.9
    assert metrics["distinct_2"] == metrics["sample"]["distinct_2"]
    assert metrics["distinct_2_vs_greedy"] == pytest.approx(
        metrics["sample"]["distinct_2"] / metrics["greedy"]["distinct_2"], abs=0.01)
    result = json.loads((smoke_run / "result.json").read_text())
    assert result["metrics"]["perplexity"] == ppl and len(result["samples"]) == 3
    assert set(result["samples"][0]) == {"context", "reference", "greedy", "beam", "sample"}
    assert (smoke_run / "samples.test.md").read_text().count("- reference: ") == 3
    stored = json.loads(next((smoke_run / "checkpoints").glob("step_*/config.json")).read_text())
    assert set(stored) == {"format_version", "task", "model", "data", "config", "files"}
    assert stored["format_version"] == 2
    assert stored["task"] == "dialogue" and stored["model"]["src_vocab"] == stored["model"]["tgt_vocab"] == 500
    assert stored["model"]["packed"] is False and stored["model"]["share_src_tgt_embeddings"] is True


def test_predict_gives_one_result_per_input_in_order_empty_contexts_empty(smoke_run):
    bot = seqnlp.load(smoke_run, overrides=GREEDY)
    inputs = ["Hi , how are you ? __eou__ Fine , thanks .", "", ["Hi , how are you ?", "Fine , thanks ."], [],
              [" ", ""], "What time is it ?"]
    results = bot.predict(inputs)
    assert len(results) == 6 and all(set(r) == {"reply", "nbest"} for r in results)
    assert results[1] == results[3] == results[4] == {"reply": "", "nbest": []}
    assert results[0] == results[2]  # "__eou__" separates the turns of a string
    assert results[5]["reply"] == bot.predict("What time is it ?")[0]["reply"] == format_text(results[5])
    assert results[5]["nbest"][0] == {"text": results[5]["reply"], "score": None}  # greedy: no score


def test_responder_handles_long_contexts_and_nbest(smoke_run):
    bot = seqnlp.load(smoke_run)
    long_turn = " ".join(["why ?"] * 200)
    search = SearchConfig(method="greedy", max_len_ratio=0.0, min_max_len=12, max_output_len=12)
    out = bot.predict([["Hello !"], ["Hi .", "How are you ?", long_turn], ["a", "b", "c", "d", "e"]], search=search)
    assert len(out) == 3 and all(isinstance(r["reply"], str) and len(r["reply"].split()) <= 12 for r in out)
    st = bot.last_stats
    assert st.contexts_truncated == 1 and st.turns_dropped == 1 and st.tokens_cut > 0  # k=2: "Hi ." is not used
    beam = SearchConfig(method="beam", beam_size=3, n_best=3, max_output_len=10, max_len_ratio=0.0, min_max_len=10)
    scores = [h["score"] for h in bot.predict(["Hello !"], search=beam)[0]["nbest"]]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)
    sample = SearchConfig(method="sample", n_best=4, top_k=20, temperature=0.7, max_len_ratio=0.0, min_max_len=10,
                          max_output_len=10)
    samples = bot.predict(["Hello !"], search=sample)[0]["nbest"]
    assert len(samples) == 4 and all(h["score"] is None for h in samples)


def _chat(monkeypatch, capsys, script: str, args: list) -> tuple[list[str], str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(script))
    assert args[0](args[1:]) == 0
    captured = capsys.readouterr()
    return captured.out.splitlines(), captured.err


def test_scripted_chat_keeps_history_and_resets(smoke_run, monkeypatch, capsys):
    script = "Hello , how are you ?\n\n/history\n/reset\nHello , how are you ?\nWhat do you do ?\n/quit\nnever read\n"
    replies, err = _chat(monkeypatch, capsys, script, [main, "--mode", "chat", "--model", str(smoke_run), *GREEDY])
    assert len(replies) == 3  # blank line ignored, commands answer on stderr, nothing after /quit
    assert replies[0] == replies[1]  # after /reset the same turn has the same (greedy) answer
    assert "you: Hello , how are you ?" in err and "(conversation reset)" in err
    # the same script through `seqnlp chat`, which dispatches on the checkpoint's task
    replies2, _ = _chat(monkeypatch, capsys, script, [cli.main, "chat", "--model", str(smoke_run), *GREEDY])
    assert replies2 == replies


def test_chat_session_history_and_banner(smoke_run):
    session = chat_session(seqnlp.load(smoke_run))
    assert "sample (temperature 1.0, top-k 0, top-p 0.9)" in session.banner and "last 2 turns" in session.banner
    session.say("Hi !")
    session.say("Where are you going ?")
    assert len(session.history) == 4 and session.history[0] == "Hi !"
    session.reset()
    assert session.history == []


def test_predict_and_evaluate_commands(smoke_run, tmp_path, capsys):
    src = tmp_path / "in.txt"
    src.write_text("Hi , how are you ? __eou__ Fine , and you ? __eou__\n\nWhat time is it ?\n")
    dst = tmp_path / "out.txt"
    assert main(["--mode", "predict", "--model", str(smoke_run), "--input", str(src), "--output", str(dst),
                 *GREEDY]) == 0
    lines = dst.read_text().split("\n")
    assert len(lines) == 4 and lines[1] == ""
    assert cli.main(["predict", "--model", str(smoke_run), "--input", str(src), "--output", str(dst),
                     "--format", "nbest", "search.method=beam", "search.n_best=2", "search.beam_size=2"]) == 0
    lines = dst.read_text().splitlines()
    assert len(lines) == 5 and lines[0].startswith("0 ||| ") and lines[2] == "1 |||  ||| nan"
    assert lines[-1].startswith("2 ||| ")
    assert main(["--mode", "evaluate", "--model", str(smoke_run), "compare=[greedy]", "decode_limit=5"]) == 0
    ev = json.loads((smoke_run / "metrics_test.json").read_text())
    assert ev["compare"] == ["greedy"] and ev["decoded"] == 5 and "distinct_2_vs_greedy" not in ev
    assert "perplexity" in capsys.readouterr().out


def test_clear_errors_instead_of_tracebacks(smoke_run, tmp_path, capsys):
    assert main(["--config", str(CONFIG), f"output_dir={tmp_path / 'x'}", "data.name=no-such-owner/no-such-set",
                 "data.format=auto"]) == 1
    assert "dataset not found" in capsys.readouterr().err
    assert main(["--config", str(CONFIG), f"output_dir={tmp_path / 'y'}", "compare=[nucleus]"]) == 2  # a config error
    assert "compare must list" in capsys.readouterr().err
    assert main(["--mode", "chat", "--model", str(tmp_path / "nothing")]) == 1
    assert "no checkpoint" in capsys.readouterr().err


def test_blank_stdin_contexts_give_empty_replies(smoke_run, monkeypatch, capsys):
    """Empty contexts (a blank line, white space, turn marks only) get empty replies through ``seqnlp predict``."""
    data = b"Hi , how are you ?\n\n   \n__eou__ __eou__\nWhat time is it ? __eou__\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    assert cli.main(["predict", "--model", str(smoke_run), *GREEDY]) == 0
    out = capsys.readouterr().out.split("\n")
    assert len(out) == 6 and out[5] == ""  # one line per input line
    assert out[1] == out[2] == out[3] == "" and out[0] and out[4]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    assert cli.main(["predict", "--model", str(smoke_run), "--format", "jsonl", *GREEDY]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(r["reply"], r["nbest"]) for r in rows[1:4]] == [("", [])] * 3


def test_predict_input_types(smoke_run):
    bot = seqnlp.load(smoke_run, overrides=GREEDY)
    assert len(bot.predict("Hi , how are you ? __eou__ Fine .")) == 1  # a bare string is one input (one context)
    for bad in (None, 3, 2.5, ["Hi", None]):
        with pytest.raises(TypeError, match=r"inputs\[1\]"):
            bot.predict(["Hello !", bad])


def test_format_1_checkpoint_loads_and_predicts_the_same(smoke_run, tmp_path):
    best = ck.resolve(smoke_run)
    v2 = json.loads((best / "config.json").read_text())
    v1, missing = checks.as_format_1(v2, vocab_size=v2["model"]["src_vocab"])
    assert missing == {"infer_precision"}  # dialogue had no precision key
    old = checks.rewrite(best, tmp_path / "v1", v1)
    legacy = seqnlp.load(old, device="cpu")
    assert legacy.config.model.packed is False and legacy.config.infer_precision == "fp32"
    contexts = ["Hi , how are you ? __eou__ Fine , thanks .", "", "What time is it ?"]
    assert legacy.predict(contexts) == seqnlp.load(smoke_run, device="cpu").predict(contexts)


def test_bf16_on_a_cpu_without_it_runs_in_fp32_with_one_note(smoke_run, monkeypatch, capsys):
    contexts = ["Hello !", "", "Hi , how are you ? __eou__ Fine , thanks ."]
    checks.assert_bf16_falls_back_to_fp32(smoke_run, contexts, monkeypatch, capsys)


# ------------------------------------------------------------------------------------------- units
def test_join_context_drops_oldest_turns_first_and_counts():
    st = DialogueStats()
    assert join_context([[5, 6], [7], [8, 9]], 20, sep=4, eos=3, stats=st) == [5, 6, 4, 7, 4, 8, 9, 3]
    assert st.contexts_truncated == 0
    assert join_context([[5, 6], [7], [8, 9]], 5, sep=4, eos=3, stats=st) == [7, 4, 8, 9, 3]
    assert (st.contexts_truncated, st.turns_dropped, st.tokens_cut) == (1, 1, 0)
    # the newest turn alone is too long: older turns go, then its oldest subwords
    assert join_context([[5], list(range(10, 20))], 4, sep=4, eos=3, stats=st) == [17, 18, 19, 3]
    assert (st.contexts_truncated, st.turns_dropped, st.tokens_cut) == (2, 2, 7)
    assert join_context([], 4, sep=4, eos=3) == [3]
    assert join_context([[], [5]], 4, sep=4, eos=3) == [4, 5, 3]  # an empty turn stays a segment


def test_make_examples_skips_empty_replies_and_keeps_empty_context_turns():
    dialogues = [["a", "b", "", "c", "d"], ["only one turn"]]
    ex, st = make_examples(dialogues, k=2)
    assert [e["context"] for e in ex] == [["a"], ["b", ""], ["", "c"]]
    assert [e["target"] for e in ex] == ["b", "c", "d"]
    assert (st.examples, st.kept, st.skipped_empty_target, st.empty_context_turns) == (4, 3, 1, 2)
    assert "1 skipped (empty reply)" in st.message("train")


def test_separator_is_inserted_by_code_never_matched_in_text():
    tok = Tokenizer.train("bpe", ["hello there", "how are you", "fine thanks"] * 10, 300, 1, extra_specials=[SEP])
    sep = tok.token_to_id(SEP)
    (ids,), _ = encode_contexts(tok, [["hello <sep> there", "fine"]], max_len=100)
    assert ids.count(sep) == 1 and ids[-1] == tok.eos_id
    plain = Tokenizer.train("bpe", ["hello there"] * 10, 300, 1)
    with pytest.raises(DataError, match="<sep>"):
        encode_contexts(plain, [["hello"]], max_len=10)


def test_metrics_helpers():
    ppl = perplexities(nll=math.log(10) * 6, n_subwords=6, targets=["a b", "c"])  # 3 + 2 words incl. ends
    assert ppl["subword"] == pytest.approx(10.0) and ppl["word"] == pytest.approx(10 ** (6 / 5), rel=1e-3)
    m = reply_metrics(["i am fine , thanks", "i am fine , thanks", ""], ["i am fine , thanks", "i am ok", "yes"])
    assert m["distinct_1"] == pytest.approx(5 / 10) and m["distinct_2"] == pytest.approx(4 / 8)
    assert m["avg_length"] == pytest.approx(10 / 3, abs=0.01) and m["empty_replies"] == 1 and m["bleu"] > 0
    assert spaced(10, 0) == list(range(10)) and spaced(10, 3) == [0, 3, 6] and spaced(2, 5) == [0, 1]
    assert parse_input("a __eou__ b __eou__") == ["a", "b"] and parse_input("") == [""]


def test_hub_style_list_column_and_bad_rows(tmp_path):
    rows = [{"dialog": ["Hi . ", "Hello !", "Bye ."], "act": [1, 1, 1]}, {"dialog": ["Yes ?", "No ."], "act": [2, 1]}]
    for split in ("train", "validation", "test"):
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    splits = load_data(Config(data=DataConfig(name=str(tmp_path), format="auto")))  # the turns column is guessed
    assert splits["train"] == [["Hi .", "Hello !", "Bye ."], ["Yes ?", "No ."]]
    (tmp_path / "bad").mkdir()
    for split in ("train", "validation"):
        (tmp_path / "bad" / f"{split}.jsonl").write_text(json.dumps({"text": "not a list"}) + "\n")
    with pytest.raises(DataError, match="list of turns"):
        load_data(Config(data=DataConfig(name=str(tmp_path / "bad"), format="auto", columns={"turns": "text"})))
