"""Checks the translation and dialogue tests share: a trained checkpoint rewritten into the format-1 layout
(``format1/translation.json`` and ``format1/dialogue.json`` are ``config.json`` files the code before the task
API wrote, kept for their layout), and the precision policy's bf16 fallback on a CPU without bf16."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import seqnlp
import seqnlp.train.device as device_policy

HERE = Path(__file__).parent / "format1"


def example(task: str) -> dict:
    return json.loads((HERE / f"{task}.json").read_text())


def layout(d: dict) -> dict:
    """The key tree of a config (values dropped; the free-form ``splits`` / ``columns`` maps are leaves)."""
    return {k: layout(v) if isinstance(v, dict) and k not in ("splits", "columns") else None for k, v in d.items()}


def as_format_1(v2: dict, renamed: dict[str, str] | None = None, **top) -> tuple[dict, set[str]]:
    """A format-2 ``config.json`` in the layout of the task's example: the run config (keys in ``renamed``
    under their old names) with the example's model keys and ``record: false``, ``model_args`` (the example's
    keys of the model block) and the ``top`` keys. Returns it and the run-config keys the old layout lacks."""
    old = example(v2["task"])
    model = v2["model"]
    run = {(renamed or {}).get(k, k): v for k, v in v2["config"].items()}
    run.update(model={k: model[k] for k in old["config"]["model"]}, record=False)
    v1 = {"task": v2["task"], "config": restrict(run, old["config"]),
          "model_args": {k: model[k] for k in old["model_args"]}, **top}
    assert layout(v1) == layout(old)  # exactly the old layout
    return v1, set(run) - set(old["config"])


def restrict(d: dict, like: dict) -> dict:
    """``d`` with only the keys ``like`` has, recursively (options added since, like ``train.restart``, dropped)."""
    return {k: restrict(d[k], like[k]) if isinstance(like[k], dict) and k not in ("splits", "columns")
            and isinstance(d.get(k), dict) else d[k] for k in like}


def rewrite(ckpt: Path, dest: Path, v1: dict) -> Path:
    """A copy of checkpoint ``ckpt`` at ``dest`` whose ``config.json`` is ``v1``."""
    shutil.copytree(ckpt, dest)
    (dest / "config.json").write_text(json.dumps(v1, indent=2))
    return dest


def assert_bf16_falls_back_to_fp32(run: Path, inputs: list, monkeypatch, capsys) -> None:
    """``infer_precision=bf16`` on a CPU faked to have no bf16 LSTM kernels: the predictions of fp32, one note."""
    monkeypatch.setattr(device_policy, "_bf16_probe", False)  # a CPU without bf16 LSTM kernels (AVX2 only)
    monkeypatch.setattr(device_policy, "_noted", set())
    want = seqnlp.load(run, device="cpu").predict(inputs)
    capsys.readouterr()
    pred = seqnlp.load(run, device="cpu", overrides=["infer_precision=bf16"])
    assert pred.amp_dtype is None
    assert pred.predict(inputs) == want and pred.predict(inputs) == want
    err = capsys.readouterr().err
    assert err.count("precision=bf16 asked for") == 1 and "running in fp32" in err
