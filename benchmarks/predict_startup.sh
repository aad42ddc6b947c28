#!/usr/bin/env bash
# Start-up time of `seqnlp predict` (process start to exit, one input line), two source trees side by side.
#
#   benchmarks/predict_startup.sh OLD_TREE NEW_TREE RUN_PREFIX [REPEATS]
#
# RUN_PREFIX: smoke runs named ${RUN_PREFIX}<task> (trained by the OLD tree: format-1 checkpoints, which both
# trees read). Each repeat runs OLD then NEW for every task, so the two see the same machine load; prints the
# median wall seconds per task and tree. PYTHONPATH selects the tree; the active venv provides the packages.
set -euo pipefail
old=$1 new=$2 prefix=$3 n=${4:-5}
export HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 TQDM_DISABLE=1
# char_generator is left out: the pre-task-API `seqnlp predict` took no sampling options, so its start-up cannot
# be separated from generating its default 500 characters.
for task in sentiment pos_tagging translation dialogue; do
  input="a fine film ."; extra_old=(); extra_new=()
  for tree in old new; do : > "/tmp/startup_$tree"; done
  for _ in $(seq "$n"); do
    for tree in old new; do
      dir=$old; extra=("${extra_old[@]}")
      [ "$tree" = new ] && dir=$new && extra=("${extra_new[@]}")
      s=$(date +%s.%N)
      PYTHONPATH=$dir python -m seqnlp.cli predict --model "$prefix$task" "${extra[@]}" <<< "$input" >/dev/null \
        2>"/tmp/startup_$tree.err" || { echo "$tree $task failed: $(tail -1 "/tmp/startup_$tree.err")" >&2; exit 1; }
      e=$(date +%s.%N)
      echo "$e - $s" | bc >> "/tmp/startup_$tree"
    done
  done
  printf '%-15s old %6.2f s   new %6.2f s\n' "$task" \
    "$(sort -n /tmp/startup_old | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')" \
    "$(sort -n /tmp/startup_new | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')"
done
