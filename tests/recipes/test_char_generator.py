"""Char generator recipe: the smoke config end to end (train, metrics, seeded sampling, gate picture), exact
resume with the carried state, the window / Elman baselines at a parameter budget, conditioned generation,
and bad input (a prompt outside the vocabulary, undecodable text)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import seqnlp
from seqnlp.data.batching import Batch
from seqnlp.data.errors import DataError
from seqnlp.gates import render_html, render_png
from seqnlp.nn import LSTM
from seqnlp.recipes import char_generator as cg
from seqnlp.search import sample
from seqnlp.tasks.lm import CausalWindow, generate

CONFIGS = Path(__file__).resolve().parents[2] / "recipes" / "configs" / "char_generator"
SMOKE = str(CONFIGS / "smoke.yaml")
QUICK = ["train.max_steps=4", "train.eval_every=0", "sample.chars=20", "sample.gates_chars=0", "data.max_chars=8000"]


DATA = "char/tinyshakespeare"  # the real data the smoke runs read (conftest's data_dir)

@pytest.fixture(autouse=True)
def keep_threads():
    n = torch.get_num_threads()  # the smoke config pins torch to 1 thread; give the other tests theirs back
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, data_dir) -> Path:
    out = tmp_path_factory.mktemp("char_smoke")
    assert cg.main(["--config", SMOKE, f"output_dir={out}"]) == 0
    return out


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


def test_seeded_sample_is_reproducible_and_streams(smoke_run, capsys):
    args = ["--mode", "predict", "--model", str(smoke_run), "--prompt", "ROMEO:", "--chars", "60",
            "--temperature", "0.9", "--top-k", "20", "--top-p", "0.95"]
    outs = []
    for seed in (7, 7, 8):
        assert cg.main([*args, "--seed", str(seed)]) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1] != outs[2]
    assert outs[0].startswith("ROMEO:") and len(outs[0]) == len("ROMEO:") + 60 + 1
    gen = seqnlp.load(smoke_run)
    streamed = []
    text = gen.generate("ROMEO:", 60, 0.9, 20, 0.95, seed=7, on_text=streamed.append)[0]
    assert outs[0] == "ROMEO:" + text + "\n" and "".join(streamed) == text


def test_streaming_generation_equals_batched_search_sample(smoke_run):
    gen = seqnlp.load(smoke_run)
    prompt = torch.tensor([gen.prompt_ids("To be")] * 3)
    kw = {"temperature": 1.3, "top_k": 30, "top_p": 0.9}
    streamed = torch.stack(list(generate(gen.model, prompt, 25, generator=torch.Generator().manual_seed(4), **kw)), 1)
    batched = sample(gen.model, Batch({"inputs": prompt[:, :-1]}), bos=int(prompt[0, -1]), eos=-1, max_len=25,
                     generator=torch.Generator().manual_seed(4), **kw)
    assert streamed.tolist() == batched


def test_prompt_outside_the_vocabulary_is_a_clear_error(smoke_run, capsys):
    gen = seqnlp.load(smoke_run)
    with pytest.raises(DataError, match=r"outside the model's vocabulary: '☃' \(U\+2603\)"):
        gen.generate("ROMEO: ☃", 10)
    assert cg.main(["--mode", "predict", "--model", str(smoke_run), "--prompt", "Hi ☃ \u00e9", "--seed", "1"]) == 2
    captured = capsys.readouterr()
    assert "'é' (U+00E9)" in captured.err and "'☃' (U+2603)" in captured.err and captured.out == ""


def test_gate_picture_shows_the_explicit_lstm_activations(smoke_run, tmp_path):
    text = "First Citizen:\nWe are accounted poor citizens."
    png = tmp_path / "gates.png"
    assert cg.main(["--mode", "gates", "--model", str(smoke_run), "--text", text, "--units", "0,3",
                    "--output", str(png)]) == 0
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


def test_resumed_run_equals_uninterrupted_run(tmp_path, data_dir):
    common = ["--config", SMOKE, *QUICK, "train.decay_steps=6", "train.log_every=1", "train.eval_every=3",
              "data.max_chars=6000", "model.dropout=0.3", "model.weight_drop=0.2"]
    assert cg.main([*common, "train.max_steps=6", f"output_dir={tmp_path / 'a'}"]) == 0
    assert cg.main([*common, "train.max_steps=3", f"output_dir={tmp_path / 'b'}"]) == 0
    assert cg.main([*common, "train.max_steps=6", f"output_dir={tmp_path / 'b'}"]) == 0

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
    assert cg.main(["--config", SMOKE, *QUICK, f"model.cell={cell}", f"model.param_budget={budget}",
                    f"output_dir={tmp_path}"]) == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["cell"] == cell and abs(m["parameters"] - budget) / budget < 0.05
    capsys.readouterr()
    assert cg.main(["--mode", "predict", "--model", str(tmp_path), "--prompt", "the ", "--chars", "15",
                    "--seed", "2"]) == 0
    assert len(capsys.readouterr().out) == len("the ") + 15 + 1
    with pytest.raises(SystemExit, match="gates need an LSTM"):
        cg.main(["--mode", "gates", "--model", str(tmp_path), "--text", "abc"])


def test_window_and_lstm_read_a_stream_across_batches_exactly():
    torch.manual_seed(0)
    for cell in ("window", "lstm", "rnn"):
        model = cg.build_model(20, cell, 6, 10, 2, 5, "tanh", 0.0, 0.0, False, 0).eval()
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


def test_hidden_for_budget_matches_the_budget():
    args = {"vocab_size": 69, "cell": "lstm", "embed_dim": 64, "hidden": 512, "layers": 2, "window": 32,
            "activation": "tanh", "dropout": 0.0, "embed_dropout": 0.0, "tie_embeddings": False, "num_conditions": 0}
    lstm = cg.count_parameters(args)
    for cell in ("rnn", "window", "gru"):
        h = cg.hidden_for_budget({**args, "cell": cell}, lstm)
        assert abs(cg.count_parameters({**args, "cell": cell, "hidden": h}) - lstm) / lstm < 0.01
    assert cg.hidden_for_budget(args, lstm) == 512


def test_generation_in_the_style_of_a_condition(tmp_path, capsys):
    rows = ["text\tlabel"]
    for i in range(40):
        rows.append(f"what a fine and happy day {i}\tpos" if i % 2 else f"such a sad and gloomy night {i}\tneg")
    (tmp_path / "styles.tsv").write_text("\n".join(rows) + "\n")
    run = tmp_path / "run"
    assert cg.main(["--config", SMOKE, *QUICK, f"data.name={tmp_path / 'styles.tsv'}", "data.condition_column=label",
                    "data.bptt=16", f"output_dir={run}", "sample.condition=pos"]) == 0
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
    capsys.readouterr()
    assert cg.main(["--mode", "predict", "--model", str(run), "--prompt", "what", "--condition", "pos",
                    "--chars", "10", "--seed", "1"]) == 0
    assert capsys.readouterr().out.startswith("what")


def test_undecodable_text_names_its_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"line one\nline two \xff\n")
    with pytest.raises(DataError, match=r"bad.txt:2: invalid utf-8"):
        cg.load_data(cg.DataConfig(name=str(bad)))
    assert cg.main(["--config", SMOKE, f"data.name={bad}", f"output_dir={tmp_path / 'r'}"]) == 2


def test_a_tabular_text_column_becomes_one_stream(tmp_path):
    rows = ["id\tbody"] + [f"{i}\tline number {i}" for i in range(30)]
    (tmp_path / "docs.tsv").write_text("\n".join(rows) + "\n")
    data = cg.load_data(cg.DataConfig(name=str(tmp_path / "docs.tsv"), text_column="body"))
    assert data.mode == "stream" and sorted(data.splits()) == ["train", "validation"]
    lines = data.texts["train"].splitlines() + data.texts["validation"].splitlines()
    assert len(data.texts["validation"].splitlines()) == 3  # a seeded random 10% of the documents
    assert sorted(lines) == sorted(f"line number {i}" for i in range(30))
    with pytest.raises(DataError, match="set data.name"):
        cg.load_data(cg.DataConfig(name=""))
