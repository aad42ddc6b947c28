"""Golden smoke runs: every task's ``smoke.yaml`` trained with a fixed seed on the CPU, one thread, a loss
logged every step. ``python tests/golden/smoke.py`` (from the project root, ``SEQNLP_DATA`` set) records
the per-step training losses and the final metrics into ``tests/golden/smoke_losses.json``;
``tests/test_golden.py`` trains the same runs and compares (see its docstring for the tolerances).

It drives the runs through the ``seqnlp`` command line only, the interface that stays fixed while the code
behind it moves.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
RECORD = HERE / "smoke_losses.json"

# the final metrics compared, per task: (key path in metrics.json, ...)
METRICS = {
    "sentiment": ["accuracy", "macro_f1", "loss"],
    "pos_tagging": ["accuracy", "oov_accuracy", "macro_f1"],
    "translation": ["bleu", "chrf", "val_bleu_best"],
    "dialogue": ["perplexity.subword", "perplexity.word", "val_loss_best", "greedy.bleu", "greedy.distinct_2"],
    "char_generator": ["val_loss", "bits_per_char"],
}
OVERRIDES = ["train.log_every=1", "train.threads=1", "train.device=cpu", "train.progress=false"]


def smoke_config(task: str) -> Path:
    return ROOT / "recipes" / "configs" / task / "smoke.yaml"


def run(task: str, out: Path, extra: list[str] = ()) -> dict:
    """Train ``task``'s smoke config into ``out``; returns ``{"losses": [...], "metrics": {...}}``."""
    from seqnlp.cli import main

    rc = main(["train", "--config", str(smoke_config(task)), f"output_dir={out}", *OVERRIDES, *extra])
    if rc:
        raise RuntimeError(f"{task} smoke training exited with {rc}")
    return read(task, out)


def read(task: str, out: Path) -> dict:
    losses = []
    for line in (Path(out) / "log.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec.get("event") == "train" and "loss" in rec:
            losses.append([rec["step"], rec["loss"]])
    metrics = json.loads((Path(out) / "metrics.json").read_text())
    picked = {}
    for path in METRICS[task]:
        v = metrics
        for k in path.split("."):
            v = v[k]
        picked[path] = v
    return {"losses": losses, "metrics": picked}


def main(argv: list[str]) -> int:
    import tempfile

    tasks = argv or list(METRICS)
    record = json.loads(RECORD.read_text()) if RECORD.is_file() else {}
    with tempfile.TemporaryDirectory() as tmp:
        for task in tasks:
            record[task] = run(task, Path(tmp) / task)
            print(f"{task}: {len(record[task]['losses'])} steps, {record[task]['metrics']}", file=sys.stderr)
    RECORD.write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main(sys.argv[1:]))
