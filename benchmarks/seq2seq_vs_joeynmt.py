"""seqnlp's seq2seq against Joey NMT 2.3.0's RNN, side by side on Multi30k de->en, on this machine's CPU.

Same data (Multi30k train / test_2016_flickr, raw text), same sizes (BiLSTM 256 encoder, LSTM 256 decoder,
256-dim embeddings tied with the output layer, Bahdanau attention, joint 8k BPE), same torch threads. Measured
one after the other in this one script:

* training throughput: target tokens/s and source tokens/s (each counts the tokens the model reads or is scored
  on, ``</s>`` included). Joey logs ``Tokens per Sec`` for target tokens only; its source rate is that times the
  source/target token ratio of the training data (from its own sentencepiece model). The first logging window
  (start-up) is left out on both sides.
* beam-5 decoding of test2016 (1,000 sentences): sentences/s, from each toolkit's own timing of generation
  (Joey: its "Generation took" line, batch 64 sentences, after one epoch of training; ours: ``decode_seconds``
  of ``--mode evaluate``, token-budget batches sorted by length, in the variant's precision). Both decode a model
  trained for the few minutes above.
* peak resident memory of each training process (``/usr/bin/time``'s maximum RSS).

Differences kept on purpose, and reported: Joey runs its configuration with input feeding, fp32 and
64-sentence batches; our fast path has no input feeding (one fused LSTM call for the whole target), bf16 autocast
on CPUs with AMX, and 2,000-token batches. Our input-feeding and fp32 variants are measured too.

Joey NMT lives in its own virtual environment (not a seqnlp dependency)::

    python -m venv ../joey-venv
    ../joey-venv/bin/pip install torch==2.13.0 joeynmt==2.3.0 importlib_metadata sentencepiece==0.2.0

    python benchmarks/seq2seq_vs_joeynmt.py --joey-python ../joey-venv/bin/python \\
        --json results/benchmarks/seq2seq_vs_joeynmt.json
    python benchmarks/seq2seq_vs_joeynmt.py --update-bleu --json results/benchmarks/seq2seq_vs_joeynmt.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "recipes" / "configs" / "translation" / "experiments" / "multi30k_de_en_45min_1thread.yaml"
SPLITS = ("train", "val", "test_2016_flickr")

JOEY_CONFIG = """\
name: joey_bench
joeynmt_version: 2.3.0
data:
  train: {work}/train
  dev: {work}/val
  test: {work}/test_2016_flickr
  dataset_type: plain
  src: {{lang: de, level: bpe, lowercase: false, max_length: 100, voc_file: {work}/vocab.txt,
        tokenizer_type: sentencepiece, tokenizer_cfg: {{model_file: {work}/spm.model}}}}
  trg: {{lang: en, level: bpe, lowercase: false, max_length: 100, voc_file: {work}/vocab.txt,
        tokenizer_type: sentencepiece, tokenizer_cfg: {{model_file: {work}/spm.model}}}}
testing:
  n_best: 1
  beam_size: 5
  beam_alpha: 1.0
  batch_size: 64
  batch_type: sentence
  max_output_length: 100
  eval_metrics: [bleu]
  sacrebleu_cfg: {{tokenize: 13a}}
training:
  random_seed: 42
  optimizer: adam
  learning_rate: 0.001
  scheduling: exponential   # torch 2.13 rejects the `verbose` argument of Joey's plateau scheduler
  decrease_factor: 1.0
  batch_size: 64
  batch_type: sentence
  epochs: {epochs}                 # 453 updates an epoch (its max_updates does not stop 2.3.0's loop)
  validation_freq: 450
  logging_freq: 50
  eval_metric: [bleu]
  early_stopping_metric: bleu
  label_smoothing: 0.1
  model_dir: {work}/joey_model
  overwrite: true
  shuffle: true
  use_cuda: false
  print_valid_sents: []
  keep_best_ckpts: 1
model:
  initializer: xavier_uniform
  embed_initializer: xavier_uniform
  bias_initializer: zeros
  tied_embeddings: true
  tied_softmax: true
  encoder:
    type: recurrent
    rnn_type: lstm
    embeddings: {{embedding_dim: 256, scale: false}}
    hidden_size: 256
    bidirectional: true
    dropout: 0.3
    num_layers: 1
  decoder:
    type: recurrent
    rnn_type: lstm
    embeddings: {{embedding_dim: 256, scale: false}}
    hidden_size: 256
    dropout: 0.3
    hidden_dropout: 0.3
    num_layers: 1
    input_feeding: true
    init_hidden: bridge
    attention: bahdanau
"""


def prepare(data: Path, work: Path, joey_python: str) -> dict:
    """Plain-text copies of the Multi30k files, a joint 8k sentencepiece BPE model and Joey's vocab file."""
    work.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        for lang in ("de", "en"):
            with gzip.open(data / f"{split}.{lang}.gz", "rt", encoding="utf-8") as f:
                (work / f"{split}.{lang}").write_text(f.read(), encoding="utf-8")
    script = f"""
import sentencepiece as spm
spm.SentencePieceTrainer.train(input="{work}/train.de,{work}/train.en", model_prefix="{work}/spm",
    vocab_size=8000, model_type="bpe", character_coverage=1.0, minloglevel=2)
sp = spm.SentencePieceProcessor(model_file="{work}/spm.model")
pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
open("{work}/vocab.txt", "w").write("\\n".join(p for p in pieces if p not in ("<unk>", "<s>", "</s>")) + "\\n")
n = {{}}
for lang in ("de", "en"):
    n[lang] = sum(len(sp.encode(line)) + 1 for line in open(f"{work}/train.{{lang}}", encoding="utf-8"))
print(n["de"], n["en"])
"""
    out = subprocess.run([joey_python, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    return {"source_tokens": int(out[0]), "target_tokens": int(out[1])}


def timed(cmd: list[str], log: Path, env: dict | None = None, timeout: float | None = None) -> tuple[float, float]:
    """Run ``cmd`` under /usr/bin/time; returns (wall seconds, peak RSS in GB). Output goes to ``log``."""
    rss_file = log.with_suffix(".rss")
    t0 = time.time()
    with open(log, "w") as f:
        subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(rss_file), *cmd], stdout=f, stderr=subprocess.STDOUT,
                       env=env, timeout=timeout, check=True)
    wall = time.time() - t0
    return wall, int(rss_file.read_text().split()[-1]) / 1024**2


def run_joey(args, work: Path, ratio: float) -> dict:
    cfg = work / "joey.yaml"
    epochs = getattr(args, "joey_epochs", 1)
    cfg.write_text(JOEY_CONFIG.format(work=work, epochs=epochs))
    log = work / "joey_train.log"
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    wall, rss = timed([args.joey_python, "-m", "joeynmt", "train", str(cfg)], log, env, timeout=3600)
    text = log.read_text()
    rates = [float(x) for x in re.findall(r"Tokens per Sec:\s+([\d.]+)", text)]
    gens = [float(x) for x in re.findall(r"Generation took ([\d.]+)\[sec\]", text)]
    bleus = re.findall(r"Evaluation result \(beam search\).*?bleu:\s+([\d.]+)", text)
    if len(rates) < 2 or not gens:
        raise SystemExit(f"could not read Joey's log {log}: {len(rates)} rate lines, {len(gens)} generation lines")
    tgt = sum(rates[1:]) / len(rates[1:])
    return {
        "train_target_tok_per_s": round(tgt, 1),
        "train_source_tok_per_s": round(tgt * ratio, 1),
        "decode_sent_per_s": round(1000 / gens[-1], 1),  # the last generation is test2016 (after dev)
        "decode_seconds": gens[-1],
        "peak_rss_gb": round(rss, 3),
        "updates": 453 * epochs,
        "epochs": epochs,
        "wall_seconds": round(wall, 1),
        "bleu_test_short_run": float(bleus[-1]) if bleus else None,
        "config": "input feeding, fp32, 64 sentences a batch, beam 5 / alpha 1.0 / batch 64",
    }


def run_ours(args, work: Path, name: str, overrides: list[str]) -> dict:
    out = work / name
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "SEQNLP_DATA": str(args.data_root), "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    train_cmd = [sys.executable, str(ROOT / "recipes" / "translation.py"), "--config", str(CONFIG),
                 f"output_dir={out}", f"train.threads={args.threads}", f"train.max_minutes={args.minutes}",
                 "train.eval_every=100000", "train.progress=false", "train.log_every=25", "attention_plot=0",
                 *overrides]
    wall, rss = timed(train_cmd, work / f"{name}_train.log", env, timeout=3600)
    logs = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    windows = [r for r in logs if r.get("event") == "train"][1:]
    tgt = sum(r["target_tok_per_s"] for r in windows) / max(len(windows), 1)
    src = sum(r["source_tok_per_s"] for r in windows) / max(len(windows), 1)
    eval_cmd = [sys.executable, str(ROOT / "recipes" / "translation.py"), "--mode", "evaluate", "--model", str(out),
                "search.beam_size=5", f"train.threads={args.threads}", *[o for o in overrides if "precision" in o]]
    timed(eval_cmd, work / f"{name}_eval.log", env, timeout=1800)
    ev = json.loads((out / "metrics_test.json").read_text())
    return {
        "train_target_tok_per_s": round(tgt, 1),
        "train_source_tok_per_s": round(src, 1),
        "decode_sent_per_s": round(ev["sentences"] / ev["decode_seconds"], 1),
        "decode_seconds": ev["decode_seconds"],
        "peak_rss_gb": round(rss, 3),
        "steps": logs[-1]["step"],
        "wall_seconds": round(wall, 1),
        "bleu_test_short_run": ev["bleu"],
        "overrides": overrides,
    }


def add_full_run_bleu(results: dict, results_dir: Path = ROOT / "results") -> None:
    """Quality of the full runs (this benchmark's models train only for minutes), from ``results_dir``."""
    results["bleu_joeynmt_45min"] = 38.3  # Joey NMT RNN, 45 min on this machine, beam 5 (given in issue 5)
    results["bleu_joeynmt_45min_greedy"] = 36.8
    for key, names in (("bleu_seqnlp_45min", ["multi30k_de_en_45min_bahdanau", "multi30k_de_en_45min_1thread"]),
                       ("bleu_seqnlp_any_budget", ["multi30k_de_en", "multi30k_de_en_h200"])):
        found = [(json.loads(f.read_text())["metrics"]["bleu"], f.name) for name in names
                 for f in (results_dir / "translation" / f"{name}.json",
                           results_dir / "translation" / "experiments" / f"{name}.json") if f.is_file()]
        best = max(found, default=(None, None))
        results[key], results[key + "_record"] = best


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--joey-python", default="../joey-venv/bin/python", help="python of Joey NMT's venv")
    p.add_argument("--data-root", type=Path,
                   default=Path(os.environ.get("SEQNLP_DATA", ROOT.parent / "shared" / "data")))
    p.add_argument("--work", type=Path, default=Path("/tmp/seq2seq_vs_joeynmt"))
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads of both toolkits (1: two threads collapse when other jobs share the cores)")
    p.add_argument("--minutes", type=float, default=3.0, help="our training minutes per variant")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--results", type=Path, default=ROOT / "results",
                   help="where the full runs' results/translation/[experiments/]*.json are (for the BLEU fields)")
    p.add_argument("--update-bleu", action="store_true",
                   help="only fill in the full runs' BLEU (results/translation/*.json) in an existing --json file")
    args = p.parse_args()
    if args.update_bleu:
        results = json.loads(args.json.read_text())
        add_full_run_bleu(results, args.results)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps({k: v for k, v in results.items() if k.startswith("bleu")}, indent=2))
        return 0
    data = args.data_root / "translation" / "multi30k"
    counts = prepare(data, args.work, args.joey_python)
    ratio = counts["source_tokens"] / counts["target_tokens"]
    results = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
               "threads": args.threads, "load_before": os.getloadavg()}
    results["joeynmt"] = run_joey(args, args.work, ratio)
    results["load_after_joey"] = os.getloadavg()
    variants = {
        "seqnlp": ["train.precision=bf16", "infer_precision=bf16"],  # fast path: no input feeding, bf16 autocast
        "seqnlp_fp32": ["train.precision=fp32", "infer_precision=fp32"],
        "seqnlp_input_feeding": ["train.precision=bf16", "infer_precision=bf16", "model.input_feeding=true"],
    }
    for name, overrides in variants.items():
        results[name] = run_ours(args, args.work, name, overrides)
        results[f"load_after_{name}"] = os.getloadavg()
    joey, ours = results["joeynmt"], results["seqnlp"]
    results["train_speedup"] = round(ours["train_target_tok_per_s"] / joey["train_target_tok_per_s"], 2)
    results["train_speedup_source"] = round(ours["train_source_tok_per_s"] / joey["train_source_tok_per_s"], 2)
    results["decode_speedup"] = round(ours["decode_sent_per_s"] / joey["decode_sent_per_s"], 2)
    for name in ("seqnlp_fp32", "seqnlp_input_feeding"):
        results[f"train_speedup_{name}"] = round(results[name]["train_target_tok_per_s"]
                                                 / joey["train_target_tok_per_s"], 2)
        results[f"decode_speedup_{name}"] = round(results[name]["decode_sent_per_s"] / joey["decode_sent_per_s"], 2)
    results["source_target_ratio"] = round(ratio, 4)
    add_full_run_bleu(results, args.results)
    results["command"] = " ".join(sys.argv)
    sys.path.insert(0, str(ROOT))
    from seqnlp.train.rundir import portable

    results = portable(results, ROOT)  # paths inside the repository relative to it
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
