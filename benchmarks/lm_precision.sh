#!/usr/bin/env bash
# What pretrain.train.precision=bf16 (autocast: the LSTM in bfloat16, the adaptive softmax in float32) does to
# the speed of the sentiment recipe's LM pretraining on a CPU, on the real recipe (imdb_lm_80min.yaml: the
# BiLSTM 128 bidirectional LM on the IMDB training reviews, one thread), side by side in one run: 250 LM
# updates with fp32, then with bf16; prints source tokens/s (mean over the logged windows after the first) and
# the training loss at the end (the two should track each other). Run it with the machine otherwise idle:
#     bash benchmarks/lm_precision.sh > results/benchmarks/lm_precision.txt
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "commit $(git rev-parse --short HEAD), $(date -u +%FT%TZ), $(nproc) cores"
for precision in fp32 bf16; do
  out="$work/$precision"
  python recipes/sentiment.py --config recipes/configs/sentiment/imdb_lm_80min.yaml output_dir="$out" \
    train.progress=false pretrain.train.progress=false pretrain.train.precision=$precision \
    pretrain.train.max_steps=250 pretrain.train.max_minutes=0 pretrain.train.decay_over=steps \
    pretrain.train.eval_every=100000 train.max_steps=1 train.eval_every=100000 > "$work/$precision.out" 2>&1
  python - "$out/pretrain/log.jsonl" "$precision" <<'PY'
import json, sys
log, label = sys.argv[1:3]
recs = [r for r in map(json.loads, open(log)) if r.get("event") == "train"]
rates = [r["source_tok_per_s"] for r in recs]
print(f"LM precision {label}: source tok/s {sum(rates[1:]) / max(len(rates) - 1, 1):7.0f} "
      f"(windows {len(rates) - 1}), loss at update {recs[-1]['step']} {recs[-1]['loss']:.3f}", flush=True)
PY
done
