#!/usr/bin/env bash
# One prepared session on a lent GPU machine (H100/H200): the recipes' CUDA path (cuDNN LSTMs, bf16
# autocast), GPU throughput measured alone, then the "any budget" full runs side by side on the one GPU.
#
#   bash benchmarks/gpu_session.sh            # on the GPU machine; OUT=<dir> receives gpu_results.tgz
#   DRY=1 bash benchmarks/gpu_session.sh      # here: only validates every command's config (--print-config)
#
# Data: SEQNLP_DATA (default .devdata/, a copy of ../shared/data carried to the machine); the window taggers
# need runs/pos_vectors/ppmi100.vec.gz (recipes/word_vectors.py), carried too. Python packages the
# machine's image lacks (omegaconf, conllu, datasets, dill, multiprocess; fastapi, uvicorn, httptools for the
# serving step) come as wheels from .whl/. The serving step adds up to 90 s to phase 1: with it, keep the whole
# script within one 600 s command (PHASE2_MIN=3.5), or SERVE=0.
# Phase 2 runs many trainings at once on one GPU: their own throughput figures are contended; phase 1's are not.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=${OUT:-/tmp/gpu_out}
DRY=${DRY:-0}
PHASE2_MIN=${PHASE2_MIN:-4.5}      # training minutes of each phase-2 run (evaluation comes on top)
JOB_LIMIT=${JOB_LIMIT:-380}        # hard wall limit of each phase-2 job, seconds
mkdir -p "$OUT" logs gpu_runs
export SEQNLP_DATA=${SEQNLP_DATA:-$ROOT/.devdata} HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
export PYTHONPATH=$ROOT
PY=python3
if [ "$DRY" = 1 ]; then
  PY=${PY_DRY:-python}
elif ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=$ROOT:/tmp/site
fi

GPU="train.device=cuda train.progress=false"  # each run's result.json comes back in gpu_results.tgz; precision: each config's own (auto = bf16 autocast on CUDA)

# name | recipe | config | extra overrides (phase 2: all at once). Only rows whose CPU run is missing or
# whose target is "any budget": the CPU already has the BiLSTM tagger and char-model results.
JOBS=$(cat <<'EOF'
mt_de_en|translation|multi30k_de_en|train.threads=2 cpu_minutes=0
mt_en_de|translation|multi30k_en_de|train.threads=2 cpu_minutes=0
mt_en_fr|translation|multi30k_en_fr|train.threads=2 cpu_minutes=0
pos_ud_ewt_window|pos_tagging|ud_ewt_window|train.threads=2
pos_conll2000_window|pos_tagging|conll2000_window|train.threads=2
sst2|sentiment|sst2|train.threads=2
sst2_lm|sentiment|experiments/sst2_lm|train.threads=2 pretrain.train.threads=2 pretrain.train.device=cuda pretrain.train.max_minutes=2
imdb_lm|sentiment|experiments/imdb_lm|train.threads=2 pretrain.train.threads=2 pretrain.train.device=cuda pretrain.train.max_minutes=2.5
rotten_tomatoes|sentiment|rotten_tomatoes|train.threads=2 train.max_minutes=0.35
dialogue|dialogue|dailydialog|train.threads=2
EOF
)

if [ "$DRY" = 1 ]; then
  fail=0
  while IFS='|' read -r name recipe config extra; do
    # shellcheck disable=SC2086
    if ! $PY recipes/$recipe.py --config recipes/configs/$recipe/$config.yaml --print-config $GPU \
         train.max_minutes=$PHASE2_MIN $extra output_dir=gpu_runs/$name >/dev/null 2>logs/dry_$name.err; then
      echo "BAD $name: $(tail -1 logs/dry_$name.err)"; fail=1
    else
      echo "ok  $name"
    fi
  done <<< "$JOBS"
  for extra in "experiments/sst2_ft train.max_minutes=1.25" "experiments/rotten_tomatoes_ft train.max_minutes=0.2"; do
    set -- $extra
    $PY recipes/sentiment.py --config recipes/configs/sentiment/$1.yaml --print-config $GPU $2 \
      init_from=gpu_runs/imdb >/dev/null 2>"logs/dry_${1##*/}.err" && echo "ok  $1" || { echo "BAD $1"; fail=1; }
  done
  $PY benchmarks/serve_load.py --help >/dev/null 2>logs/dry_serve_load.err && echo "ok  serve_load" \
    || { echo "BAD serve_load: $(tail -1 logs/dry_serve_load.err)"; fail=1; }
  exit $fail
fi

nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
$PY -c "import torch; print(torch.__version__, torch.version.cuda, torch.backends.cudnn.version(), torch.cuda.get_device_name(0))" \
  > logs/env.txt 2>&1
start=$(date +%s)

# --- phase 1: throughput alone ---------------------------------------------------------------
timeout 40 $PY benchmarks/lstm_step.py --device cuda --json results/benchmarks/lstm_step_cuda.json \
  > logs/lstm_step_cuda.log 2>&1
# translation and tagging training throughput on the otherwise idle GPU (steps capped; log_every small)
timeout 60 $PY recipes/translation.py --config recipes/configs/translation/multi30k_de_en.yaml $GPU \
  train.threads=4 cpu_minutes=0 train.max_steps=400 train.log_every=50 train.eval_every=100000 data.eval_limit=200 \
  output_dir=gpu_runs/throughput_mt > logs/throughput_mt.log 2>&1
timeout 45 $PY recipes/pos_tagging.py --config recipes/configs/pos_tagging/ud_ewt.yaml $GPU \
  train.threads=4 train.max_steps=400 train.log_every=50 output_dir=gpu_runs/throughput_pos \
  > logs/throughput_pos.log 2>&1
# serving on the GPU (issue #19; SERVE=0 skips it, up to 90 s): smoke models trained by serve_load.py itself
# (runs/ is not carried), 32 clients x 10 requests of 1 and 8 sentences, continuous batching in one worker process
if [ "${SERVE:-1}" = 1 ] && $PY -c "import fastapi, uvicorn" 2>/dev/null; then
  timeout 90 $PY benchmarks/serve_load.py --tasks translation,pos_tagging --device cuda --workers 1 --requests 10 \
    --sentences-per-request 1,8 --out results/benchmarks/serve_load_cuda.json > logs/serve_load_cuda.log 2>&1
  echo "serve_load cuda rc=$? at $(( $(date +%s) - start )) s" >> logs/timeline.txt
else
  echo "serve_load cuda skipped (SERVE=0, or fastapi / uvicorn missing: put their wheels in .whl/)" >> logs/timeline.txt
fi
echo "phase 1 done after $(( $(date +%s) - start )) s" >> logs/timeline.txt
tar czf "$OUT/phase1.tgz" results logs 2>/dev/null   # phase 1 comes back even if phase 2 overruns

# --- phase 2: full runs side by side ---------------------------------------------------------
# MPS lets the many small-kernel processes share the GPU at once instead of time-slicing; kept only if a
# CUDA call works under it.
if command -v nvidia-cuda-mps-control >/dev/null 2>&1; then
  export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps_pipe CUDA_MPS_LOG_DIRECTORY=/tmp/mps_log
  mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
  nvidia-cuda-mps-control -d >> logs/mps.txt 2>&1
  if timeout 40 $PY -c "import torch; print('mps ok', float(torch.ones(4, device='cuda').sum()))" >> logs/mps.txt 2>&1; then
    echo "MPS on" >> logs/timeline.txt
  else
    echo quit | nvidia-cuda-mps-control >> logs/mps.txt 2>&1
    unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
    echo "MPS off (failed)" >> logs/timeline.txt
  fi
fi
while IFS='|' read -r name recipe config extra; do
  # shellcheck disable=SC2086
  ( timeout "$JOB_LIMIT" $PY recipes/$recipe.py --config recipes/configs/$recipe/$config.yaml $GPU \
      train.max_minutes=$PHASE2_MIN $extra output_dir=gpu_runs/$name > logs/$name.log 2>&1
    echo "$name rc=$? at $(( $(date +%s) - start )) s" >> logs/timeline.txt ) &
  sleep 1
done <<< "$JOBS"
# chained: a plain IMDB classifier, then fine-tuning it on SST-2 and on Rotten Tomatoes (10 folds) at once
( timeout 190 $PY recipes/sentiment.py --config recipes/configs/sentiment/imdb.yaml $GPU train.threads=2 \
    train.max_minutes=2.5 output_dir=gpu_runs/imdb > logs/imdb.log 2>&1
  echo "imdb rc=$? at $(( $(date +%s) - start )) s" >> logs/timeline.txt
  ( timeout 170 $PY recipes/sentiment.py --config recipes/configs/sentiment/experiments/sst2_ft.yaml $GPU train.threads=2 \
      train.max_minutes=1.25 init_from=gpu_runs/imdb output_dir=gpu_runs/sst2_ft > logs/sst2_ft.log 2>&1
    echo "sst2_ft rc=$? at $(( $(date +%s) - start )) s" >> logs/timeline.txt ) &
  ( timeout 170 $PY recipes/sentiment.py --config recipes/configs/sentiment/experiments/rotten_tomatoes_ft.yaml $GPU \
      train.threads=2 train.max_minutes=0.2 init_from=gpu_runs/imdb output_dir=gpu_runs/rotten_tomatoes_ft \
      > logs/rotten_tomatoes_ft.log 2>&1
    echo "rotten_tomatoes_ft rc=$? at $(( $(date +%s) - start )) s" >> logs/timeline.txt ) &
  wait ) &
wait
nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv >> logs/timeline.txt 2>&1

# --- pack what comes back (no checkpoints) ----------------------------------------------------
find gpu_runs -maxdepth 2 \( -name '*.json' -o -name '*.jsonl' -o -name '*.txt' -o -name '*.png' -o -name '*.yaml' \
  -o -name 'hyp*' \) -print0 > /tmp/files.lst
tar czf "$OUT/gpu_results.tgz" --null -T /tmp/files.lst results logs 2>/dev/null
cp logs/timeline.txt "$OUT/" 2>/dev/null
echo "total $(( $(date +%s) - start )) s"
