#!/usr/bin/env bash
# What train.keep_freed_memory (glibc keeps freed memory in the heap instead of unmapping every tensor above
# 32 MiB, seqnlp.train.device.keep_freed_memory) does to training speed and peak memory on a CPU, on the real
# recipes, side by side in one run:
#   * translation, Multi30k de->en, the 45-minute configs of session 3 (Bahdanau, no input feeding) and
#     session 4 (Luong general + input feeding, dropout 0.3: experiments/multi30k_de_en_45min_d30.yaml, as measured):
#     200 training steps each, 2 threads, bf16 autocast;
#   * the character LM (experiments/tinyshakespeare_ema.yaml, 2x512 LSTM, bf16): 120 steps, 1 thread.
# Each with keep_freed_memory=false, then true; prints tokens/s (mean over the logged windows after the first)
# and peak RSS. Run it with the machine otherwise idle:
#     bash benchmarks/keep_freed_memory.sh > results/benchmarks/keep_freed_memory.txt
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "commit $(git rev-parse --short HEAD), $(date -u +%FT%TZ), $(nproc) cores"
report() {  # log.jsonl, rss file, label, rate key
  python - "$@" <<'PY'
import json, sys
log, rss, label, key = sys.argv[1:5]
rates = [r[key] for r in map(json.loads, open(log)) if r.get("event") == "train" and key in r]
rss_gb = int(open(rss).read().split()[-1]) / 1024 / 1024
print(f"{label:44s} {key} {sum(rates[1:]) / max(len(rates) - 1, 1):8.0f} (windows {len(rates) - 1}), "
      f"peak RSS {rss_gb:.2f} GB", flush=True)
PY
}
for cfg in experiments/multi30k_de_en_45min_bahdanau experiments/multi30k_de_en_45min_d30; do
  for keep in false true; do
    out="$work/${cfg##*/}_$keep"
    /usr/bin/time -f "%M" -o "$work/rss" python recipes/translation.py \
      --config "recipes/configs/translation/$cfg.yaml" output_dir="$out" train.progress=false \
      train.max_steps=200 train.eval_every=100000 train.epochs=1 train.threads=2 train.log_every=50 \
      train.keep_freed_memory=$keep data.eval_limit=50 tune_beam_sizes=[] tune_length_penalties=[] \
      >/dev/null 2>"$work/err" || { tail -5 "$work/err"; exit 1; }
    report "$out/log.jsonl" "$work/rss" "$cfg keep_freed_memory=$keep" target_tok_per_s
  done
done
for keep in false true; do
  out="$work/char_$keep"
  /usr/bin/time -f "%M" -o "$work/rss" python recipes/char_generator.py \
    --config recipes/configs/char_generator/experiments/tinyshakespeare_ema.yaml output_dir="$out" train.progress=false \
    train.max_steps=120 train.eval_every=100000 train.log_every=20 train.threads=1 train.ema_decay=0 \
    train.keep_freed_memory=$keep sample.gates_chars=0 >/dev/null 2>"$work/err" || { tail -5 "$work/err"; exit 1; }
  report "$out/log.jsonl" "$work/rss" "char tinyshakespeare keep_freed_memory=$keep" chars_tok_per_s
done
