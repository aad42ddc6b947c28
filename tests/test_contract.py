"""The one contract every registered task keeps, checked for each entry of the registry.

smoke training (``seqnlp train``, shared with the golden test) -> ``seqnlp evaluate`` writes
``metrics_test.json`` -> ``seqnlp predict`` from stdin and from a file, text and jsonl, exactly one output per
input line and in order -> ``seqnlp.load(run).predict(list)`` -> the documented exit codes for a missing model,
a bad config key and unreadable input -> bf16 asked for on a CPU without it runs in fp32 with one note.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

import seqnlp
import seqnlp.train.device as device
from seqnlp.cli import main
from seqnlp.runner import EXIT_DATA, EXIT_OK, EXIT_USAGE
from seqnlp.tasks import TASKS

KEYS = {  # the result of one input (seqnlp.tasks.base.RESULT_SHAPES)
    "sentiment": {"label", "probs"},
    "pos_tagging": {"tokens", "tags"},
    "translation": {"translation", "nbest"},
    "dialogue": {"reply", "nbest"},
    "char_generator": {"prompt", "text"},
}
CONFIGS = Path(__file__).resolve().parent.parent / "recipes" / "configs"
FAST = {"char_generator": ["sample.chars=20"]}  # keep sampling short in the tests


def test_every_task_is_covered():
    assert set(KEYS) == set(TASKS)


def _inputs(task: str) -> list[str]:
    ex = TASKS[task].example
    return [ex, "", ex.lower()]  # a blank line in the middle: one (empty) result for it, order kept


def _stdin(monkeypatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


@pytest.mark.parametrize("task", list(TASKS))
def test_evaluate_writes_metrics_test_json(task, smoke_runs, capsys):
    run = smoke_runs(task)
    (run / "metrics_test.json").unlink(missing_ok=True)
    assert main(["evaluate", "--model", str(run), "--split", "test"]) == EXIT_OK
    metrics = json.loads((run / "metrics_test.json").read_text())
    assert metrics["split"] in ("test", "validation")  # a task without a test split says which it scored
    assert any(isinstance(v, (int, float)) for v in metrics.values())


@pytest.mark.parametrize("task", list(TASKS))
def test_predict_from_stdin_one_output_per_line(task, smoke_runs, monkeypatch, capsys):
    run, lines = smoke_runs(task), _inputs(task)
    for fmt in ("text", "jsonl"):
        _stdin(monkeypatch, ("\n".join(lines) + "\n").encode())
        capsys.readouterr()
        assert main(["predict", "--model", str(run), "--format", fmt, *FAST.get(task, [])]) == EXIT_OK
        out = capsys.readouterr().out.split("\n")
        assert out[-1] == "" and len(out) - 1 == len(lines), (fmt, out)
        if fmt == "jsonl":
            rows = [json.loads(x) for x in out[:-1]]
            assert [r["input"] for r in rows] == lines
            assert all(KEYS[task] <= set(r) for r in rows)


@pytest.mark.parametrize("task", list(TASKS))
def test_predict_from_a_file_to_a_file(task, smoke_runs, tmp_path):
    run, lines = smoke_runs(task), _inputs(task)
    src = tmp_path / "in.txt"
    src.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")  # CRLF input is read as the same lines
    for fmt in ("text", "jsonl"):
        dst = tmp_path / f"out.{fmt}"
        rc = main(["predict", "--model", str(run), "--input", str(src), "--output", str(dst), "--format", fmt,
                   *FAST.get(task, [])])
        assert rc == EXIT_OK
        out = dst.read_text(encoding="utf-8").split("\n")
        assert len(out) - 1 == len(lines) and out[-1] == ""
        if fmt == "jsonl":
            assert [json.loads(x)["input"] for x in out[:-1]] == lines


@pytest.mark.parametrize("task", list(TASKS))
def test_python_api_returns_plain_data(task, smoke_runs):
    pred = seqnlp.load(smoke_runs(task), overrides=FAST.get(task, []))
    lines = _inputs(task)
    results = pred.predict(lines)
    assert len(results) == len(lines)
    for r in results:
        assert KEYS[task] <= set(r)
        json.dumps(r)  # plain data: nothing a JSON encoder cannot write
    assert len(pred.predict(lines[0])) == 1  # a bare string is one input, not one per character
    with pytest.raises(TypeError, match=r"\[1\]"):
        pred.predict([lines[0], 3])


@pytest.mark.parametrize("task", list(TASKS))
def test_exit_codes(task, smoke_runs, tmp_path, capsys):
    run = smoke_runs(task)
    assert main(["predict", "--model", str(tmp_path / "no_such_run")]) == EXIT_DATA
    assert main(["evaluate", "--model", str(run), "no_such_key=1"]) == EXIT_USAGE
    assert main(["train", "--config", str(CONFIGS / task / "smoke.yaml"), "train.no_such_key=1"]) == EXIT_USAGE
    assert main(["predict", "--model", str(run), "--input", str(tmp_path / "missing.txt")]) == EXIT_DATA
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine line\n\xff\xfe broken\n")
    assert main(["predict", "--model", str(run), "--input", str(bad)]) == EXIT_DATA
    err = capsys.readouterr().err
    assert "bad.txt:2" in err  # the file and line of the bad bytes
    assert main(["predict", "--model", str(run), "--no-such-option"]) == EXIT_USAGE


@pytest.mark.parametrize("task", list(TASKS))
def test_bf16_on_a_cpu_without_it_runs_in_fp32_with_a_note(task, smoke_runs, monkeypatch, capsys):
    monkeypatch.setattr(device, "_bf16_probe", False)  # a CPU without bf16 RNN kernels (AVX2 only)
    monkeypatch.setattr(device, "_noted", set())
    fp32 = seqnlp.load(smoke_runs(task), device="cpu", overrides=FAST.get(task, []))
    want = fp32.predict(_inputs(task))
    capsys.readouterr()
    pred = seqnlp.load(smoke_runs(task), device="cpu", overrides=FAST.get(task, []), precision="bf16")
    got = pred.predict(_inputs(task))
    err = capsys.readouterr().err
    assert err.count("precision=bf16 asked for") == 1 and "fp32" in err
    assert got == want
