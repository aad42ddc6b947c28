"""Translation (many-to-many): a BiLSTM encoder and an attention LSTM decoder on subwords, the training script.

    python recipes/translation.py --config recipes/configs/translation/multi30k_de_en.yaml [key.sub=value ...]
    seqnlp evaluate --model runs/multi30k_de_en [search.beam_size=10]          # writes metrics_test.json
    echo "Ein Hund rennt." | seqnlp predict --model runs/multi30k_de_en [--format text|jsonl|nbest]
    seqnlp attention --model runs/multi30k_de_en --input sents.txt --output att.png [--max-sentences 4]

Features:

* Data: Multi30k, any Hub dataset with one column per language or a ``translation`` dict column
  (:func:`seqnlp.tasks.translation.load_data`).
* Subwords: byte-level BPE or Unigram, joint or separate vocabularies, trained on the training split
  (``init_from=RUN``: the tokenizers and weights of a trained model instead).
* Model: Bahdanau or Luong attention, optional input feeding, bridge, tied output layer, label smoothing
  (:class:`seqnlp.tasks.seq2seq.Seq2SeqConfig`).
* Training: :class:`seqnlp.train.loop.Trainer`, validation BLEU every ``train.eval_every`` steps with
  ``val_search`` (greedy by default); ``cpu_minutes`` caps the CPU time of training steps.
* Test: ``tune_beam_sizes`` x ``tune_length_penalties`` chosen on validation BLEU, then cased detokenised
  sacreBLEU and chrF with their signatures on the test split (``metrics.json``), the hypotheses
  (``hyps.test.txt``) and an attention heatmap of the first ``attention_plot`` test sentences
  (``attention.png``).

The task module (configs, predictor, evaluation, the attention mode) is :mod:`seqnlp.tasks.translation`.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import replace

import torch

from ..config import ConfigError
from ..data.batching import BatchIterator, TokenBucketSampler
from ..data.seq2seq import (
    Seq2SeqCollate,
    encode_pairs,
    load_tokenizers,
    tokenizer_files,
    train_tokenizers,
    training_batches,
)
from ..metrics import bleu_chrf
from ..search import SearchConfig, decode_texts
from ..tasks.seq2seq import Seq2Seq, summed_loss
from ..tasks.translation import (
    TASK,
    Config,
    Translator,
    build_model,
    check_config,
    evaluate_split,
    load_data,
    load_predictor,
)
from ..train import checkpoint as ck
from ..train.loop import Trainer
from ..train.rundir import one_line, prepare_run, record_result, write_json
from ..viz.attention import plot_attention
from ._common import recipe_main


def train(cfg: Config, config_path: str | None) -> dict:
    """Train, keep the checkpoint with the best validation BLEU, evaluate it on test; returns the metrics."""
    t_start = time.time()
    check_config(cfg)
    out = prepare_run(cfg)
    d = cfg.data

    # --- data: subword tokenizers, id pairs, batches
    splits = load_data(cfg)
    if cfg.init_from:
        src_tok, tgt_tok = load_tokenizers(ck.resolve(cfg.init_from))
    else:
        try:
            src_tok, tgt_tok = train_tokenizers(d.tokenizer, d.vocab_size, d.joint_vocab,
                                                [e["source"] for e in splits["train"]],
                                                [e["target"] for e in splits["train"]], d.min_freq)
        except ValueError as e:
            raise ConfigError(f"data.tokenizer / data.vocab_size: {e}") from None
    train_pairs, st = encode_pairs(src_tok, tgt_tok, splits["train"], max_src_len=d.max_src_len,
                                   max_tgt_len=d.max_tgt_len, skip_empty=True, where=f"{d.name}[train]")
    print(st.message("train"), file=sys.stderr)
    val_pairs, vst = encode_pairs(src_tok, tgt_tok, splits["validation"], max_src_len=d.max_src_len,
                                  max_tgt_len=d.max_tgt_len, skip_empty=False, where=f"{d.name}[validation]")
    print(vst.message("validation"), file=sys.stderr)
    collate = Seq2SeqCollate.of(tgt_tok)
    batches = training_batches(train_pairs, collate, max_tokens=d.max_tokens, max_sentences=d.max_sentences,
                               seed=cfg.train.seed)
    val_batches = BatchIterator(val_pairs, TokenBucketSampler([len(s) for s, _ in val_pairs], d.max_tokens * 2,
                                                              shuffle=False), collate)

    # --- model: the config with the vocabulary sizes of the data
    model_cfg = replace(cfg.model, src_vocab=src_tok.vocab_size, tgt_vocab=tgt_tok.vocab_size, pad_id=tgt_tok.pad_id)
    model = build_model(model_cfg)
    if cfg.init_from:
        ck.load_weights(model, ck.resolve(cfg.init_from))
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params / 1e6:.2f}M parameters; vocab {src_tok.vocab_size}/{tgt_tok.vocab_size}; "
          f"{len(train_pairs)} training pairs, {len(batches)} batches an epoch", file=sys.stderr)

    # --- train: validation loss and BLEU (val_search) at every evaluation
    val_srcs = [s for s, _ in val_pairs]
    val_refs = [e["target"] for e in splits["validation"]]
    val_search = replace(cfg.search, method=cfg.val_search, n_best=1)
    eval_seconds = [0.0]

    def evaluate_fn(m: Seq2Seq) -> dict:
        t0 = time.time()
        device = next(m.parameters()).device
        loss, n = summed_loss(m, val_batches, device)
        loss /= max(n, 1)
        hyps = decode_texts(m, tgt_tok, val_srcs, val_search, device=device, progress=cfg.train.progress,
                            desc="validate").best
        sc = bleu_chrf(hyps, val_refs)
        eval_seconds[0] += time.time() - t0
        return {"loss": loss, "ppl": math.exp(min(loss, 50)), "bleu": sc["bleu"], "chrf": sc["chrf"]}

    ckpt_config = ck.checkpoint_config(TASK, model_cfg, cfg, train_pairs=len(train_pairs))
    trainer = Trainer(model, batches, cfg.train, out, evaluate_fn, ckpt_config, tokenizer_files(src_tok, tgt_tok),
                      cpu_minutes=cfg.cpu_minutes)
    summary = trainer.fit()

    # --- test: the best checkpoint, with the search tuned on validation
    best = ck.resolve(out / "checkpoints")
    translator = load_predictor(best, ck.read_stored(best), cfg, trainer.device)
    search, tuning = tune_search(translator, splits["validation"], cfg)
    metrics, hyps = evaluate_split(translator, splits["test"], search, progress=cfg.train.progress)
    (out / "hyps.test.txt").write_text("".join(one_line(h) + "\n" for h in hyps), newline="\n")
    if tuning:
        metrics["search_tuning"] = tuning
    metrics.update({
        "val_bleu_best": summary["best"], "steps": summary["steps"], "stop_reason": summary["reason"],
        "train_minutes": round(summary["train_seconds"] / 60, 2), "eval_minutes": round(eval_seconds[0] / 60, 2),
        "train_cpu_minutes": round(summary["train_cpu_seconds"] / 60, 2), "threads": torch.get_num_threads(),
        "epochs": round(summary["steps"] / max(len(batches), 1), 2), "parameters": n_params,
        "train_skipped_empty": st.skipped_empty, "train_src_truncated": st.src_truncated,
        "train_tgt_truncated": st.tgt_truncated, "checkpoint": best.name,
    })
    write_json(out / "metrics.json", metrics)
    if cfg.attention_plot and cfg.model.attention != "none":
        sents = [e["source"] for e in splits["test"][: cfg.attention_plot]]
        plot_attention(translator.attention(sents), out / "attention.png")
    record_result(TASK, config_path, out, metrics, time.time() - t_start)
    print(f"test: BLEU {metrics['bleu']} chrF {metrics['chrf']} ({metrics['signature']})")
    return metrics


def tune_search(translator: Translator, examples: list[dict], cfg: Config) -> tuple[SearchConfig, dict | None]:
    """The beam size and length penalty with the best BLEU on ``examples`` (validation) over the config's
    grids; ``(cfg.search, None)`` when both grids are empty. Ties keep the earlier grid point."""
    if not (cfg.tune_beam_sizes or cfg.tune_length_penalties) or cfg.search.method != "beam":
        return cfg.search, None
    grid = []
    for beam in cfg.tune_beam_sizes or [cfg.search.beam_size]:
        for lp in cfg.tune_length_penalties or [cfg.search.length_penalty]:
            s = replace(cfg.search, beam_size=int(beam), length_penalty=float(lp))
            sc, _ = evaluate_split(translator, examples, s)
            grid.append({"beam_size": s.beam_size, "length_penalty": s.length_penalty, "bleu": sc["bleu"],
                         "chrf": sc["chrf"]})
            print(f"validation, beam {s.beam_size}, length penalty {s.length_penalty}: BLEU {sc['bleu']}",
                  file=sys.stderr)
    best = max(grid, key=lambda g: g["bleu"])  # max keeps the first of equal scores
    chosen = replace(cfg.search, beam_size=best["beam_size"], length_penalty=best["length_penalty"])
    return chosen, {"split": "validation", "grid": grid,
                    "chosen": {k: best[k] for k in ("beam_size", "length_penalty")}}


def main(argv: list[str] | None = None) -> int:
    return recipe_main(argv, task=TASK, schema=Config, description=__doc__, train=train)
