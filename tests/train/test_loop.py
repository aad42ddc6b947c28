"""The training loop: learning, checkpoints, exact resume, Ctrl-C, non-finite losses, safe loading."""

import json
import os
import pickle
import signal

import pytest
import torch
from toy import collate, make_model, make_trainer, toy_data

from seqnlp.train import checkpoint as ck
from seqnlp.train.loop import TrainingError, TrainingInterrupted


def train_losses(trainer):
    return [r["loss"] for r in trainer.history if r.get("event") == "train"]


def test_learns_and_writes_run_directory(tmp_path):
    data = toy_data()
    t = make_trainer(tmp_path, data, epochs=8, eval_metric="accuracy", eval_mode="max")
    summary = t.fit()
    assert summary["reason"] == "epochs" and summary["best"] >= 0.9
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert any(r["event"] == "train" and "source_tok_per_s" in r for r in log)
    assert log[-1]["event"] == "end"
    best = (tmp_path / "checkpoints" / "best").resolve()
    assert {p.name for p in best.iterdir()} == {"config.json", "model.safetensors", "labels.json", "train_state.pt"}


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    data = toy_data(40)
    t = make_trainer(tmp_path, data, epochs=1)
    t.fit()
    model = make_model()
    model.embed.lut.weight.data.zero_()
    ck.load_weights(model, ck.resolve(tmp_path))
    b = collate(data[:10])
    t.model.eval(), model.eval()
    torch.testing.assert_close(model(b), t.model(b), rtol=0, atol=0)


def test_resume_equals_uninterrupted_run(tmp_path):
    data = toy_data(80)
    full = make_trainer(tmp_path / "full", data, epochs=2, max_steps=14)
    full.fit()
    first = make_trainer(tmp_path / "cut", data, epochs=2, max_steps=6)
    first.fit()
    second = make_trainer(tmp_path / "cut", data, epochs=2, max_steps=14)
    second.fit()
    assert train_losses(first) + train_losses(second) == train_losses(full)
    for (k, a), (_, b) in zip(full.model.state_dict().items(), second.model.state_dict().items()):
        assert torch.equal(a, b), k


def test_early_stopping(tmp_path):
    calls = []

    def flat(m):
        calls.append(1)
        return {"loss": 1.0}

    t = make_trainer(tmp_path, toy_data(40), evaluate=flat, epochs=50, patience=2)
    assert t.fit()["reason"] == "early_stopping"
    assert len(calls) == 3


def test_sigint_saves_and_exits_cleanly(tmp_path, capsys):
    t = make_trainer(tmp_path, toy_data(80), epochs=5)
    orig = t._train_step

    def step_then_interrupt(batch):
        out = orig(batch)
        if t.step == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return out

    t._train_step = step_then_interrupt
    with pytest.raises(TrainingInterrupted):  # the recipe then exits 130 and writes no final metrics
        t.fit()
    assert t.step == 3
    assert (tmp_path / "checkpoints" / "latest").resolve().name == "step_00000003"
    assert "resume" in capsys.readouterr().err


def test_nan_loss_stops_with_step_and_keeps_last_checkpoint(tmp_path):
    t = make_trainer(tmp_path, toy_data(80), epochs=5, save_every=2)
    orig = t.model.loss

    def bad_at_step_5(batch):
        loss, n = orig(batch)
        return (loss * float("nan") if t.step == 4 else loss), n

    t.model.loss = bad_at_step_5
    with pytest.raises(TrainingError, match="step 5"):
        t.fit()
    assert (tmp_path / "checkpoints" / "latest").resolve().name == "step_00000004"


def test_nan_loss_skipped_when_configured(tmp_path):
    t = make_trainer(tmp_path, toy_data(80), epochs=1, nan_policy="skip")
    orig = t.model.loss
    calls = {"n": 0}

    def every_third_nan(batch):
        calls["n"] += 1
        loss, n = orig(batch)
        return (loss * float("inf") if calls["n"] % 3 == 0 else loss), n

    t.model.loss = every_third_nan
    summary = t.fit()
    assert summary["skipped_batches"] == calls["n"] // 3 > 0


class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_malicious_train_state_is_refused(tmp_path, monkeypatch):
    # whatever the environment says: torch honours an explicit weights_only=True over this variable
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    t = make_trainer(tmp_path, toy_data(40), epochs=1)
    t.fit()
    latest = (tmp_path / "checkpoints" / "latest").resolve()
    marker = tmp_path / "pwned"
    payload = _Payload()
    payload.path = marker
    with open(latest / ck.TRAIN_STATE, "wb") as f:
        pickle.dump({"step": payload}, f)
    with pytest.raises(ck.CheckpointError, match="train_state.pt"):
        ck.load_train_state(latest)
    assert not marker.exists()
    t2 = make_trainer(tmp_path, toy_data(40), epochs=2)
    with pytest.raises(ck.CheckpointError):
        t2.fit()
    assert not marker.exists()


def test_truncated_weights_give_clear_error(tmp_path):
    t = make_trainer(tmp_path, toy_data(40), epochs=1)
    t.fit()
    latest = (tmp_path / "checkpoints" / "latest").resolve()
    w = latest / ck.WEIGHTS
    w.write_bytes(w.read_bytes()[:100])
    with pytest.raises(ck.CheckpointError, match="model.safetensors"):
        ck.load_weights(make_model(), latest)


def test_partial_checkpoint_directory_never_becomes_latest(tmp_path):
    t = make_trainer(tmp_path, toy_data(40), epochs=1)
    t.fit()
    before = (tmp_path / "checkpoints" / "latest").resolve()

    def crash(path):
        raise OSError("disk full")

    with pytest.raises(OSError):
        ck.save_checkpoint(tmp_path / "checkpoints", "step_99999999", t.model, {"task": "toy"},
                           extra_files={"boom.json": crash})
    assert (tmp_path / "checkpoints" / "latest").resolve() == before
    assert not (tmp_path / "checkpoints" / "step_99999999").exists()
