"""A run directory belongs to one run and one dataset; every file read back is data only; interrupted and
failed runs say so. The adversarial cases themselves, at smoke size (see docs/reliability.md)."""

from __future__ import annotations

import errno
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from seqnlp.cli import main
from seqnlp.exit_codes import EXIT_DATA, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from seqnlp.tasks import TASKS
from seqnlp.train import checkpoint as ck
from seqnlp.train import loop
from seqnlp.train.distill import read_cache, write_cache
from seqnlp.train.lock import LOCK, RunLock, RunLocked

ROOT = Path(__file__).resolve().parent.parent
SMOKE = {t: str(ROOT / "recipes" / "configs" / t / "smoke.yaml") for t in TASKS}
QUIET = ["train.progress=false", "train.threads=1", "train.device=cpu"]


def _train(task: str, out: Path, *extra: str) -> int:
    return main(["train", "--config", SMOKE[task], f"output_dir={out}", *QUIET, *extra])


def _copy(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest, symlinks=True)
    return dest


# ------------------------------------------------------------------------------------------- resuming
@pytest.mark.parametrize("task", list(TASKS))
def test_the_same_command_again_resumes(task, smoke_runs, tmp_path, capsys):
    """Same data, same model: the run is continued (tokenizers are rebuilt byte-identical), not refused."""
    run = _copy(smoke_runs(task), tmp_path / "run")
    capsys.readouterr()
    assert _train(task, run, "train.log_every=1") == EXIT_OK
    assert "resumed from" in capsys.readouterr().err


def test_resuming_with_other_data_is_refused_naming_what_differs(smoke_runs, tmp_path, capsys):
    """The issue's case: the sentiment smoke run continued with data.train_limit=1500 data.seed=7 rebuilt the
    tokenizer from the new data and wrote a wrong metrics.json. Now it stops before training."""
    run = _copy(smoke_runs("sentiment"), tmp_path / "run")
    before = (run / "metrics.json").read_text()
    assert _train("sentiment", run, "data.train_limit=1500", "data.seed=7") == EXIT_USAGE
    err = capsys.readouterr().err
    assert "cannot be continued" in err and "train_limit: 4000 -> 1500" in err and "train.restart=true" in err
    assert (run / "metrics.json").read_text() == before  # nothing of the old run was overwritten


def test_resuming_with_another_model_is_refused(smoke_runs, tmp_path, capsys):
    run = _copy(smoke_runs("char_generator"), tmp_path / "run")
    assert _train("char_generator", run, "model.hidden=40") == EXIT_USAGE
    assert "the model config: hidden: 32 -> 40" in capsys.readouterr().err


def test_restart_keeps_the_old_run_and_starts_afresh(smoke_runs, tmp_path, capsys):
    run = _copy(smoke_runs("char_generator"), tmp_path / "run")
    old_best = (run / "checkpoints" / "best").resolve().name
    assert _train("char_generator", run, "model.hidden=40", "train.restart=true") == EXIT_OK
    err = capsys.readouterr().err
    assert "kept as" in err and "resumed" not in err
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("run.previous-")]
    assert len(kept) == 1 and (kept[0] / "checkpoints" / old_best).is_dir()
    assert json.loads((run / "checkpoints" / "best" / "config.json").read_text())["model"]["hidden"] == 40


def test_a_tokenizer_that_does_not_belong_to_the_weights_is_refused(smoke_runs, tmp_path, capsys):
    run = _copy(smoke_runs("sentiment"), tmp_path / "run")
    best = (run / "checkpoints" / "best").resolve()
    other = smoke_runs("char_generator") / "checkpoints" / "best" / "tokenizer.json"
    shutil.copyfile(other, best / "tokenizer.json")  # another run's tokenizer: silently wrong before
    sys.stdin = io.TextIOWrapper(io.BytesIO(b"a fine film\n"), encoding="utf-8")
    try:
        assert main(["predict", "--model", str(run)]) == EXIT_DATA
    finally:
        sys.stdin = sys.__stdin__
    err = capsys.readouterr().err
    assert "tokenizer.json does not belong to these weights" in err and "sha256" in err


# ------------------------------------------------------------------------------------------- one run, one directory
def test_a_second_training_into_a_locked_directory_stops(tmp_path, capsys):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        run = tmp_path / "run"
        run.mkdir()
        (run / LOCK).write_text(json.dumps({"pid": sleeper.pid, "started": "now", "command": "seqnlp train ..."}))
        assert _train("char_generator", run) == EXIT_DATA
        err = capsys.readouterr().err
        assert f"in use by another training run (pid {sleeper.pid}" in err
        assert not (run / "log.jsonl").exists()  # it did not start
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_stale_lock_is_taken_over_and_the_lock_is_released(tmp_path, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK).write_text(json.dumps({"pid": dead.pid}))
    assert _train("char_generator", run) == EXIT_OK
    assert "no longer runs" in capsys.readouterr().err
    assert not (run / LOCK).exists()


def test_the_lock_is_exclusive_within_a_process(tmp_path):
    with RunLock(tmp_path):
        with pytest.raises(RunLocked, match=f"pid {os.getpid()}"):
            RunLock(tmp_path).acquire()
    assert not (tmp_path / LOCK).exists()


# ------------------------------------------------------------------------------------------- interrupted / failed runs
def test_ctrl_c_saves_exits_130_and_writes_no_final_metrics(tmp_path, monkeypatch, capsys):
    orig = loop.Trainer._train_step

    def step_then_interrupt(self, batch):
        out = orig(self, batch)
        if self.step == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(loop.Trainer, "_train_step", step_then_interrupt)
    run = tmp_path / "run"
    assert _train("char_generator", run) == EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert "Run the same command again to resume" in err and "no final metrics" in err
    assert not (run / "metrics.json").exists() and not (run / "result.json").exists()
    assert (run / "checkpoints" / "latest").resolve().name == "step_00000003"
    assert not (run / LOCK).exists()


def test_a_full_disk_says_so_and_leaves_no_temporary_directory(tmp_path, monkeypatch, capsys):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ck, "save_file", full)
    run = tmp_path / "run"
    assert _train("char_generator", run) == EXIT_DATA
    err = capsys.readouterr().err
    assert "no space left on device" in err and "Traceback" not in err
    assert not [p for p in (run / "checkpoints").iterdir() if ".tmp-" in p.name]


def test_stale_temporary_checkpoints_are_removed_at_start(tmp_path, capsys):
    stale = tmp_path / "run" / "checkpoints" / ".step_00000005.tmp-999999"
    stale.mkdir(parents=True)
    (stale / "model.safetensors").write_bytes(b"half")
    assert _train("char_generator", tmp_path / "run") == EXIT_OK
    assert not stale.exists() and "left by an interrupted save" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- data only, always
SOURCES = [p for d in ("seqnlp", "recipes", "benchmarks") for p in (ROOT / d).rglob("*.py")]


def test_nothing_in_the_tree_unpickles():
    """The audit: every torch.load passes weights_only=True; no pickle.load(s), no numpy allow_pickle."""
    bad = []
    for p in SOURCES:
        text = p.read_text()
        for m in re.finditer(r"torch\.load\(([^)]*)\)", text):
            if "weights_only=True" not in m.group(1):
                bad.append(f"{p.relative_to(ROOT)}: {m.group(0)}")
        for pat in (r"pickle\.loads?\(", r"allow_pickle\s*=\s*True", r"dill\.", r"joblib\.load"):
            bad += [f"{p.relative_to(ROOT)}: {m.group(0)}" for m in re.finditer(pat, text)]
    assert not bad, bad


class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_a_crafted_distillation_cache_is_never_unpickled(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    marker = tmp_path / "pwned"
    payload = _Payload()
    payload.path = marker
    torch.save({"key": payload}, tmp_path / "teacher_probs.pt")  # the old cache name: never read
    shutil.copyfile(tmp_path / "teacher_probs.pt", tmp_path / "teacher_probs.safetensors")  # a pickle, renamed
    notes = []
    key = {"teachers": ["a"], "temperature": 1.0, "n": 2, "texts": "x"}
    assert read_cache(tmp_path / "teacher_probs.safetensors", key, lambda m, **k: notes.append(m)) is None
    assert not marker.exists()
    assert "ignoring the unreadable cache" in notes[0] and "teacher_probs.safetensors" in notes[0]
    probs = torch.tensor([[0.25, 0.75], [0.5, 0.5]])
    write_cache(tmp_path / "teacher_probs.safetensors", key, probs)
    assert torch.equal(read_cache(tmp_path / "teacher_probs.safetensors", key, notes.append), probs)
    assert read_cache(tmp_path / "teacher_probs.safetensors", {**key, "n": 3}, notes.append) is None


# ------------------------------------------------------------------------------------------- entry points
@pytest.mark.parametrize("cmd", ["predict", "evaluate", "chat", "ensemble", "gates", "attention"])
def test_help_works_without_a_model(cmd, capsys):
    assert main([cmd, "--help"]) == EXIT_OK
    assert "--model" in capsys.readouterr().out


def test_train_help_works_without_a_config(capsys):
    assert main(["train", "--help"]) == EXIT_OK
    assert "--config" in capsys.readouterr().out


def test_chat_with_a_model_that_cannot_chat(smoke_runs, capsys):
    assert main(["chat", "--model", str(smoke_runs("sentiment"))]) == EXIT_USAGE
    assert "task sentiment has no chat mode" in capsys.readouterr().err


def test_undecodable_stdin_names_the_line(smoke_runs, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"a fine film\n\xff\xfe\n"), encoding="utf-8"))
    assert main(["predict", "--model", str(smoke_runs("sentiment"))]) == EXIT_DATA
    assert "<stdin>:2: not valid UTF-8" in capsys.readouterr().err


def test_a_model_of_another_task_given_to_a_recipe_names_both(smoke_runs, capsys):
    from seqnlp.recipes.pos_tagging import main as pos_main

    assert pos_main(["--mode", "predict", "--model", str(smoke_runs("sentiment"))]) == EXIT_DATA
    assert "is a 'sentiment' model, not a 'pos_tagging' model" in capsys.readouterr().err


def test_a_config_of_another_task_given_to_a_recipe_is_refused(tmp_path, capsys):
    from seqnlp.recipes.pos_tagging import main as pos_main

    assert pos_main(["--config", SMOKE["sentiment"], f"output_dir={tmp_path / 'x'}"]) == EXIT_USAGE
    assert "is a config for task 'sentiment', not 'pos_tagging'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_an_unknown_format_version_is_refused(smoke_runs, tmp_path, capsys):
    run = _copy(smoke_runs("char_generator"), tmp_path / "run")
    conf = (run / "checkpoints" / "best").resolve() / "config.json"
    conf.write_text(json.dumps({**json.loads(conf.read_text()), "format_version": 99}))
    assert main(["evaluate", "--model", str(run)]) == EXIT_DATA
    assert "format_version 99" in capsys.readouterr().err
