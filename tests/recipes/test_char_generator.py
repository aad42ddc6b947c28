"""Char generator: the smoke config end to end (train, metrics, seeded sampling, gate picture), exact resume
with the carried state, the window / Elman baselines at a parameter budget, conditioned generation, the
predictor's contract (one result per prompt, format-1 checkpoints, bf16 on a CPU without it) and bad input
(a prompt outside the vocabulary, undecodable text, bad gates options)."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import seqnlp
import seqnlp.train.device as device
from seqnlp.cli import main as cli
from seqnlp.data.batching import Batch
from seqnlp.data.errors import DataError
from seqnlp.nn import LSTM
from seqnlp.recipes import char_generator as recipe
from seqnlp.runner import EXIT_DATA, EXIT_OK, EXIT_USAGE
from seqnlp.search import sample
from seqnlp.tasks import char_generator as cg
from seqnlp.tasks.lm import CausalWindow, generate
from seqnlp.train.rundir import one_line
from seqnlp.viz.gates import render_html, render_png

CONFIGS = Path(__file__).resolve().parents[2] / "recipes" / "configs" / "char_generator"
SMOKE = str(CONFIGS / "smoke.yaml")
QUICK = ["train.max_steps=4", "train.eval_every=0", "sample.chars=20", "sample.gates_chars=0", "data.max_chars=8000"]
SAMPLING = ["sample.chars=60", "sample.temperature=0.9", "sample.top_k=20", "sample.top_p=0.95"]


DATA = "char/tinyshakespeare"  # the real data the smoke runs read (conftest's data_dir)

@pytest.fixture(autouse=True)
def keep_threads():
    n = torch.get_num_threads()  # the smoke config pins torch to 1 thread; give the other tests theirs back
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def smoke_run(smoke_runs, data_dir) -> Path:
    return smoke_runs("char_generator")  # the golden test's run of smoke.yaml, trained once per session


def _predict(run, tmp_path, lines, *args, fmt="jsonl") -> tuple[int, list]:
    src, dst = tmp_path / "prompts.txt", tmp_path / f"out.{fmt}"
    src.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    rc = cli(["predict", "--model", str(run), "--input", str(src), "--output", str(dst), "--format", fmt, *args])
    if rc:
        return rc, []
    out = dst.read_text(encoding="utf-8").splitlines()
    return rc, [json.loads(x) for x in out] if fmt == "jsonl" else out


def test_smoke_run_writes_metrics_sample_and_pictures(smoke_run):
    m = json.loads((smoke_run / "metrics.json").read_text())
    assert m["val_loss"] < math.log(62) and m["bits_per_char"] == pytest.approx(m["val_loss"] / math.log(2))
    assert m["train_chars"] == 12 * 8 * 32 and m["train_chars_per_s"] > 0
    evals = [r["loss"] for r in map(json.loads, (smoke_run / "log.jsonl").read_text().splitlines())
             if r.get("event") == "eval"]
    assert evals[-1] < evals[0]  # it learns
    assert len((smoke_run / "sample.txt").read_text()) == 80
    assert (smoke_run / "gates.png").stat().st_size > 0 and (smoke_run / "gates.html").stat().st_size > 0
    rec = json.loads((smoke_run / "result.json").read_text())
    assert rec["metrics"]["val_loss"] == m["val_loss"] and rec["commit"] and rec["machine"]
    stored = json.loads((smoke_run / "checkpoints" / "latest" / "config.json").read_text())
    assert stored["format_version"] == 2 and stored["model"]["vocab_size"] == 62 and stored["model"]["hidden"] == 32
    assert stored["data"] == {"mode": "stream", "conditions": []} and "model" not in stored["config"]


def test_seeded_sample_is_reproducible(smoke_run, tmp_path):
    outs = [_predict(smoke_run, tmp_path, ["ROMEO:"], *SAMPLING, f"sample.seed={seed}")[1] for seed in (7, 7, 8)]
    assert outs[0] == outs[1] != outs[2]
    (r,) = outs[0]
    assert r["prompt"] == "ROMEO:" and len(r["text"]) == 60
    rc, text = _predict(smoke_run, tmp_path, ["ROMEO:"], *SAMPLING, "sample.seed=7", fmt="text")
    assert rc == EXIT_OK and text == [one_line("ROMEO:" + r["text"])]  # format_text: prompt + continuation
    gen = seqnlp.load(smoke_run)
    streamed = []
    again = gen.generate("ROMEO:", 60, 0.9, 20, 0.95, seed=7, on_text=streamed.append)[0]
    assert again == r["text"] and "".join(streamed) == again


def test_predict_gives_one_result_per_prompt_in_order(smoke_run):
    gen = seqnlp.load(smoke_run, overrides=["sample.chars=15", "sample.seed=3"])
    prompts = ["ROMEO:", "", "To be", ""]
    results = gen.predict(prompts)
    assert [r["prompt"] for r in results] == prompts
    assert all(set(r) == {"prompt", "text"} and len(r["text"]) == 15 for r in results)
    # the k-th prompt is sampled with seed + k: the same prompt alone with that seed gives the same text
    alone = seqnlp.load(smoke_run, overrides=["sample.chars=15", "sample.seed=5"]).predict("To be")
    assert alone == [results[2]]
    assert results[1]["text"] == gen.generate("", 15, 0.8, seed=4)[0]  # blank: from a newline, seed 3 + 1
    assert gen.predict([]) == []


def test_streaming_generation_equals_batched_search_sample(smoke_run):
    gen = seqnlp.load(smoke_run)
    prompt = torch.tensor([gen.prompt_ids("To be")] * 3)
    kw = {"temperature": 1.3, "top_k": 30, "top_p": 0.9}
    streamed = torch.stack(list(generate(gen.model, prompt, 25, generator=torch.Generator().manual_seed(4), **kw)), 1)
    batched = sample(gen.model, Batch({"inputs": prompt[:, :-1]}), bos=int(prompt[0, -1]), eos=-1, max_len=25,
                     generator=torch.Generator().manual_seed(4), **kw)
    assert streamed.tolist() == batched


def test_prompt_outside_the_vocabulary_is_a_clear_error(smoke_run, tmp_path, capsys):
    gen = seqnlp.load(smoke_run)
    with pytest.raises(DataError, match=r"outside the model's vocabulary: '☃' \(U\+2603\)"):
        gen.generate("ROMEO: ☃", 10)
    with pytest.raises(DataError, match=r"'☃'"):
        gen.predict(["ROMEO:", "ROMEO: ☃"])
    capsys.readouterr()
    rc, _ = _predict(smoke_run, tmp_path, ["fine", "Hi ☃ \u00e9"], "sample.chars=5")
    captured = capsys.readouterr()
    assert rc == EXIT_DATA and "'é' (U+00E9)" in captured.err and "'☃' (U+2603)" in captured.err
    assert not (tmp_path / "out.jsonl").exists()  # nothing written before the error


def test_format_1_checkpoint_loads_and_predicts_the_same(smoke_run, tmp_path):
    old = tmp_path / "v1"
    shutil.copytree(ck_dir := smoke_run / "checkpoints" / "latest", old)
    new = json.loads((ck_dir / "config.json").read_text())
    config = {**new["config"], "model": {k: v for k, v in new["model"].items()
                                         if k not in ("vocab_size", "num_conditions")}, "record": False}
    del config["infer_precision"]  # format 1 had no infer_precision
    model_args = {k: new["model"][k] for k in ("vocab_size", "cell", "embed_dim", "hidden", "layers", "window",
                                                 "activation", "dropout", "embed_dropout", "weight_drop",
                                                 "tie_embeddings", "num_conditions")}
    v1 = {"task": "char_generator", "config": config, "model_args": model_args, "mode": "stream", "conditions": []}
    (old / "config.json").write_text(json.dumps(v1, indent=2))
    assert list(json.loads((old / "config.json").read_text())) == ["task", "config", "model_args", "mode",
                                                                   "conditions"]
    prompts = ["ROMEO:", "", "To be"]
    want = seqnlp.load(ck_dir, overrides=["sample.chars=30"]).predict(prompts)
    got = seqnlp.load(old, overrides=["sample.chars=30"])
    assert got.predict(prompts) == want and got.mode == "stream" and got.config.sample.chars == 30


def test_bf16_on_a_cpu_without_it_predicts_in_fp32_with_one_note(smoke_run, monkeypatch, capsys):
    monkeypatch.setattr(device, "_bf16_probe", False)  # a CPU without bf16 RNN kernels (AVX2 only)
    monkeypatch.setattr(device, "_noted", set())
    want = seqnlp.load(smoke_run, device="cpu", overrides=["sample.chars=20"]).predict(["ROMEO:", ""])
    capsys.readouterr()
    pred = seqnlp.load(smoke_run, device="cpu", overrides=["sample.chars=20", "infer_precision=bf16"])
    assert pred.dtype is None
    got = pred.predict(["ROMEO:", ""])
    err = capsys.readouterr().err
    assert err.count("precision=bf16 asked for") == 1 and "running in fp32" in err
    assert got == want


def test_evaluate_falls_back_to_validation_and_refuses_a_missing_split(smoke_run, capsys):
    assert cli(["evaluate", "--model", str(smoke_run)]) == EXIT_OK
    m = json.loads((smoke_run / "metrics_test.json").read_text())
    want = json.loads((smoke_run / "metrics.json").read_text())
    assert m["split"] == "validation" and m["val_loss"] == pytest.approx(want["val_loss"], rel=1e-6)
    assert m["bits_per_char"] == pytest.approx(want["bits_per_char"], rel=1e-6) and m["chars"] == want["val_chars"]
    capsys.readouterr()
    assert cli(["evaluate", "--model", str(smoke_run), "--split", "nope"]) == EXIT_DATA
    assert "no split 'nope'" in capsys.readouterr().err


def test_gate_picture_shows_the_explicit_lstm_activations(smoke_run, tmp_path):
    text = "First Citizen:\nWe are accounted poor citizens."
    png = tmp_path / "gates.png"
    assert cli(["gates", "--model", str(smoke_run), "--text", text, "--units", "0,3", "--output", str(png)]) == 0
    assert png.stat().st_size > 0
    # the activations, computed independently: the lecture's LSTM with the fused model's weights
    gen = seqnlp.load(smoke_run)
    fused = gen.model.rnn
    explicit = LSTM(fused.input_size, fused.hidden_size, fused.num_layers, batch_first=True)
    explicit.load_state_dict(fused.state_dict())
    ids = torch.tensor([gen.codec.encode(text)])
    with torch.no_grad():
        x = gen.model.embed(ids)
        out, _, acts = explicit(x, return_activations=True)
        assert torch.allclose(out, fused(x)[0], atol=1e-5)  # the explicit LSTM is the trained model
    last = {k: v[0] for k, v in acts[-1].items()}
    pics = [render_png(text, gen.gates(text)[-1], [0, 3], tmp_path / "again.png"),
            render_html(text, gen.gates(text)[-1], [0, 3], tmp_path / "gates.html")]
    html = (tmp_path / "gates.html").read_text()
    from_html = [float(v) for v in re.findall(r"data-v='([-0-9.]+)'", html)]
    for pic in pics:
        for unit in (0, 3):
            for key in ("forget", "input", "output", "cell"):
                want = last[key][:, unit]
                want = torch.tanh(want) if key == "cell" else want
                drawn = torch.tensor(pic.values[(unit, key)], dtype=torch.float64)
                assert torch.allclose(drawn, want.double(), atol=1e-6)
    n = len(text)
    assert len(from_html) == 2 * 4 * n
    assert torch.allclose(torch.tensor(from_html[:n], dtype=torch.float64), last["forget"][:, 0].double(), atol=1e-6)


def test_gates_from_a_file_and_bad_gates_options(smoke_run, tmp_path, capsys):
    src = tmp_path / "text.txt"
    src.write_text("To be, or not to be", encoding="utf-8")
    page = tmp_path / "g.html"
    assert cli(["gates", "--model", str(smoke_run), "--input", str(src), "--output", str(page),
                "--context", "HAMLET:\n", "--layer", "0"]) == EXIT_OK
    assert len(re.findall(r"data-v=", page.read_text())) == 4 * 4 * len("To be, or not to be")
    run = ["gates", "--model", str(smoke_run), "--output", str(tmp_path / "x.png")]
    cases = [(["--text", "abc", "--layer", "5"], EXIT_USAGE, "the model has 2 layers"),
             (["--text", "abc", "--units", "0,99"], EXIT_USAGE, "--units must be in [0, 32)"),
             (["--text", "abc", "--units", "a,b"], EXIT_USAGE, "--units must be auto"),
             (["--text", "abc ☃"], EXIT_DATA, "'☃' (U+2603)"),
             (["--input", str(tmp_path / "missing.txt")], EXIT_DATA, "no such file")]
    for args, code, message in cases:
        capsys.readouterr()
        assert cli([*run, *args]) == code, args
        assert message in capsys.readouterr().err, args


def test_resumed_run_equals_uninterrupted_run(tmp_path, data_dir):
    common = ["--config", SMOKE, *QUICK, "train.decay_steps=6", "train.log_every=1", "train.eval_every=3",
              "data.max_chars=6000", "model.dropout=0.3", "model.weight_drop=0.2"]
    assert recipe.main([*common, "train.max_steps=6", f"output_dir={tmp_path / 'a'}"]) == 0
    assert recipe.main([*common, "train.max_steps=3", f"output_dir={tmp_path / 'b'}"]) == 0
    assert recipe.main([*common, "train.max_steps=6", f"output_dir={tmp_path / 'b'}"]) == 0

    def losses(run):
        return {r["step"]: r["loss"] for r in map(json.loads, (run / "log.jsonl").read_text().splitlines())
                if r.get("event") == "train"}

    a, b = losses(tmp_path / "a"), losses(tmp_path / "b")
    assert sorted(a) == sorted(b) == [1, 2, 3, 4, 5, 6] and a == b
    wa = load_file(tmp_path / "a" / "checkpoints" / "latest" / "model.safetensors")
    wb = load_file(tmp_path / "b" / "checkpoints" / "latest" / "model.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["train_chars"] == 6 * 8 * 32


@pytest.mark.parametrize("cell", ["window", "rnn"])
def test_baselines_at_a_parameter_budget(cell, tmp_path, data_dir, capsys):
    budget = 30_000
    run = tmp_path / "run"
    assert recipe.main(["--config", SMOKE, *QUICK, f"model.cell={cell}", f"model.param_budget={budget}",
                        f"output_dir={run}"]) == 0
    m = json.loads((run / "metrics.json").read_text())
    assert m["cell"] == cell and abs(m["parameters"] - budget) / budget < 0.05
    stored = json.loads((run / "checkpoints" / "latest" / "config.json").read_text())["model"]
    assert stored["hidden"] == m["hidden"] and stored["param_budget"] == budget  # the resolved size is stored
    rc, (r,) = _predict(run, tmp_path, ["the "], "sample.chars=15", "sample.seed=2")
    assert rc == EXIT_OK and r["prompt"] == "the " and len(r["text"]) == 15
    capsys.readouterr()
    assert cli(["gates", "--model", str(run), "--text", "abc"]) == EXIT_USAGE
    assert "gates need an LSTM" in capsys.readouterr().err


def test_window_and_lstm_read_a_stream_across_batches_exactly():
    torch.manual_seed(0)
    for cell in ("window", "lstm", "rnn"):
        m = cg.ModelConfig(cell=cell, embed_dim=6, hidden=10, layers=2, window=5, dropout=0.0, vocab_size=20)
        model = cg.build_model(m).eval()
        ids = torch.randint(4, 20, (3, 17))
        whole, _ = model(ids)
        first, state = model(ids[:, :7])
        second, _ = model(ids[:, 7:], state)
        assert torch.allclose(torch.cat([first, second], 1), whole, atol=1e-6), cell
    win = CausalWindow(seqnlp.nn.WindowEncoder(4, 2))
    x = torch.randn(2, 5, 4)
    win.mlp.eval()
    out, _ = win(x)
    changed = x.clone()
    changed[:, 3] += 1.0
    # position t sees inputs t-2..t only: changing input 3 changes outputs 3, 4 (and 5) but not 0..2
    assert torch.allclose(win(changed)[0][:, :3], out[:, :3]) and not torch.allclose(win(changed)[0][:, 3], out[:, 3])
    with pytest.raises(ValueError, match="model.cell must be one of"):
        cg.build_model(cg.ModelConfig(cell="transformer", vocab_size=20))


def test_hidden_for_budget_matches_the_budget():
    m = cg.ModelConfig(vocab_size=69, cell="lstm", embed_dim=64, hidden=512, layers=2, window=32, dropout=0.0)
    lstm = cg.count_parameters(m)
    for cell in ("rnn", "window", "gru"):
        h = cg.hidden_for_budget(cg.ModelConfig(**{**vars(m), "cell": cell}), lstm)
        assert abs(cg.count_parameters(cg.ModelConfig(**{**vars(m), "cell": cell, "hidden": h})) - lstm) / lstm < 0.01
    assert cg.hidden_for_budget(m, lstm) == 512
    sized = cg.sized(cg.ModelConfig(cell="rnn", param_budget=lstm, embed_dim=64, window=32), 69, 0)
    assert sized.vocab_size == 69 and sized.hidden == cg.hidden_for_budget(cg.ModelConfig(**{**vars(m), "cell": "rnn"}),
                                                                           lstm)


def test_generation_in_the_style_of_a_condition(tmp_path, capsys):
    rows = ["text\tlabel"]
    for i in range(40):
        rows.append(f"what a fine and happy day {i}\tpos" if i % 2 else f"such a sad and gloomy night {i}\tneg")
    (tmp_path / "styles.tsv").write_text("\n".join(rows) + "\n")
    run = tmp_path / "run"
    assert recipe.main(["--config", SMOKE, *QUICK, f"data.name={tmp_path / 'styles.tsv'}",
                        "data.condition_column=label", "data.bptt=16", f"output_dir={run}",
                        "sample.condition=pos"]) == 0
    gen = seqnlp.load(run)
    assert gen.conditions == ["neg", "pos"] and gen.mode == "documents"
    a = gen.generate("", 30, seed=3, condition="pos")[0]
    assert a == gen.generate("", 30, seed=3, condition="pos")[0]
    with torch.no_grad():
        s_pos = gen.model.init_state(1, torch.tensor([1]))[0]
        s_neg = gen.model.init_state(1, torch.tensor([0]))[0]
    assert not torch.allclose(s_pos, s_neg)
    with pytest.raises(DataError, match="unknown condition 'meh'"):
        gen.generate("", 5, condition="meh")
    rc, (r, blank) = _predict(run, tmp_path, ["what", ""], "sample.condition=pos", "sample.chars=10",
                              "sample.seed=1")
    assert rc == EXIT_OK and r["prompt"] == "what" and len(r["text"]) <= 10 and blank["prompt"] == ""
    assert r["text"] == gen.generate("what", 10, 0.8, seed=1, condition="pos")[0]
    capsys.readouterr()
    assert _predict(run, tmp_path, ["what"], "sample.condition=meh")[0] == EXIT_DATA
    assert "unknown condition 'meh'" in capsys.readouterr().err
    assert cli(["evaluate", "--model", str(run), "--split", "validation"]) == EXIT_OK
    assert json.loads((run / "metrics_validation.json").read_text())["val_loss"] > 0


def test_undecodable_text_names_its_line(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"line one\nline two \xff\n")
    with pytest.raises(DataError, match=r"bad.txt:2: invalid utf-8"):
        cg.load_data(cg.Config(data=cg.DataConfig(name=str(bad))))
    assert recipe.main(["--config", SMOKE, f"data.name={bad}", f"output_dir={tmp_path / 'r'}"]) == EXIT_DATA
    assert "bad.txt:2" in capsys.readouterr().err


def test_a_tabular_text_column_becomes_one_stream(tmp_path):
    rows = ["id\tbody"] + [f"{i}\tline number {i}" for i in range(30)]
    (tmp_path / "docs.tsv").write_text("\n".join(rows) + "\n")
    data = cg.load_data(cg.Config(data=cg.DataConfig(name=str(tmp_path / "docs.tsv"), text_column="body")))
    assert data.mode == "stream" and sorted(data.splits()) == ["train", "validation"]
    lines = data.texts["train"].splitlines() + data.texts["validation"].splitlines()
    assert len(data.texts["validation"].splitlines()) == 3  # a seeded random 10% of the documents
    assert sorted(lines) == sorted(f"line number {i}" for i in range(30))
    with pytest.raises(DataError, match="set data.name"):
        cg.load_data(cg.Config(data=cg.DataConfig(name="")))
