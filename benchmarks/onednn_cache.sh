#!/usr/bin/env bash
# What capping oneDNN's primitive cache costs in speed and saves in memory for bf16-autocast training on a CPU.
# Runs the same 200 training steps of the Multi30k de->en 45-minute config of session 3 (experiments/multi30k_de_en_45min_bahdanau.yaml) (2 threads; validation and test cut to 50 sentences) three times, with the
# cache at its default, at 128 and at 0 entries, one after the other, and prints target tokens/s (mean over the logged
# windows after the first) and peak RSS for each. Run it with the machine otherwise idle:
#     bash benchmarks/onednn_cache.sh [steps] > results/benchmarks/onednn_cache.txt
set -euo pipefail
steps=${1:-200}
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "commit $(git rev-parse --short HEAD), $(date -u +%FT%TZ), $(nproc) cores, steps $steps"
for cap in default 128 0; do
  if [ "$cap" = default ]; then env_cap=(); else env_cap=(ONEDNN_PRIMITIVE_CACHE_CAPACITY="$cap"); fi
  out="$work/run_$cap"
  /usr/bin/time -f "%M" -o "$work/rss_$cap" env "${env_cap[@]}" python recipes/translation.py \
    --config recipes/configs/translation/experiments/multi30k_de_en_45min_bahdanau.yaml output_dir="$out" train.progress=false \
    train.max_steps="$steps" train.eval_every=100000 train.epochs=1 train.threads=2 \
    train.log_every=50 data.eval_limit=50 >/dev/null 2>"$work/err_$cap" || true
  python - "$out/log.jsonl" "$work/rss_$cap" "$cap" <<'PY'
import json, sys
rates = [r["target_tok_per_s"] for r in map(json.loads, open(sys.argv[1])) if r.get("event") == "train"]
rss_gb = int(open(sys.argv[2]).read().split()[-1]) / 1024 / 1024
print(f"cache={sys.argv[3]:>7}: target tok/s {sum(rates[1:]) / max(len(rates) - 1, 1):8.0f} "
      f"(windows {len(rates) - 1}), peak RSS {rss_gb:.2f} GB")
PY
done
