"""Training memory is bounded by the batch token budget: one pathological example does not blow it up.

A translation run on a toy corpus is repeated with one extra pair whose source and target are
20,000 words long. Untruncated, that pair alone would need a 20k x 20k attention matrix (1.6 GB in
float32) plus 20k decoder steps of activations; with the recipe's counted truncation and token-budget
batches, peak memory must stay within 150 MB of the run without it.
"""

import gzip
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORDS = "ein mann hund katze rennt spielt im park mit dem ball auf der straße".split()
EN = "a man dog cat runs plays in the park with the ball on the street".split()

PEAK = """
import resource, runpy, sys
sys.argv = ["recipes/translation.py"] + sys.argv[1:]
try:
    runpy.run_path("recipes/translation.py", run_name="__main__")
except SystemExit as e:
    assert not e.code, e.code
print("PEAK_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def corpus(tmp: Path, long_pair: bool) -> Path:
    d = tmp / ("long" if long_pair else "plain")
    d.mkdir()
    src = [" ".join(WORDS[(i + j) % len(WORDS)] for j in range(3 + i % 7)) for i in range(300)]
    tgt = [" ".join(EN[(i + j) % len(EN)] for j in range(3 + i % 7)) for i in range(300)]
    if long_pair:
        src.append(" ".join(WORDS[j % len(WORDS)] for j in range(20_000)))
        tgt.append(" ".join(EN[j % len(EN)] for j in range(20_000)))
    for split in ("train", "val", "test"):
        for lang, lines in (("de", src), ("en", tgt)):
            with gzip.open(d / f"{split}.{lang}.gz", "wt") as f:
                f.write("\n".join(lines if split == "train" else lines[:20]) + "\n")
    return d


def peak_kb(data: Path, out: Path) -> tuple[int, dict]:
    args = ["--config", "recipes/configs/translation/smoke.yaml", f"output_dir={out}", f"data.name={data}",
            "data.splits.test=test", "data.train_limit=0", "data.eval_limit=10", "data.max_src_len=100",
            "data.max_tgt_len=100", "train.max_steps=8", "train.eval_every=0", "train.threads=1"]
    p = subprocess.run([sys.executable, "-c", PEAK, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    kb = int(p.stdout.split("PEAK_KB")[-1].split()[0])
    return kb, {"stderr": p.stderr}


def test_one_huge_pair_stays_within_budget(tmp_path):
    base, _ = peak_kb(corpus(tmp_path, False), tmp_path / "run_plain")
    big, info = peak_kb(corpus(tmp_path, True), tmp_path / "run_long")
    assert big - base < 150 * 1024, (base, big)
    assert "truncated" in info["stderr"]  # the cut is counted and reported, not silent
    metrics = json.loads((tmp_path / "run_long" / "metrics.json").read_text())
    assert "bleu" in metrics
