"""The language-model pretraining stage (Dai & Le 2015; ULMFiT, Howard & Ruder 2018): a classifier's own
embeddings and encoder, under a language-model head (:class:`seqnlp.tasks.bilm.EncoderLM`, built by the
caller), trained on unlabelled text before fine-tuning. The stage has its own run directory
(``output_dir/pretrain``: ``log.jsonl``, ``checkpoints/``, ``done.json``); its checkpoints are marked with
:data:`LM_STAGE` and keep the LM head's ``lm_args`` (:func:`lm_facts`) beside the task's facts.

    lm = EncoderLM(model.embed, model.encoder, vocab_size, cutoffs)
    summary = pretrain_lm(lm, texts, val, collate, cfg.pretrain.train, out / "pretrain", ckpt_config, ...)
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..config import ConfigError
from ..data.batching import BatchIterator
from ..data.classification import batches as make_batches
from . import checkpoint as ck
from .device import autocast
from .loop import TrainConfig, Trainer
from .rundir import write_json

LM_STAGE = "lm_pretraining"  # the `stage` fact of an LM-pretraining checkpoint
DONE = "done.json"  # the stage's summary, written when it finished (a rerun loads its best weights instead)


def lm_facts(cutoffs: Sequence[int]) -> dict:
    """The data facts that mark an LM-pretraining checkpoint (``stage``, ``lm_args``)."""
    return {"stage": LM_STAGE, "lm_args": {"cutoffs": list(cutoffs)}}


def is_lm_checkpoint(facts: dict) -> bool:
    """Whether a checkpoint's data facts (``Stored.data``) are an LM-pretraining stage's."""
    return facts.get("stage") == LM_STAGE


@torch.no_grad()
def lm_scores(lm: torch.nn.Module, batches: BatchIterator, progress: bool = False,
              dtype: torch.dtype | None = None) -> dict[str, float]:
    """Mean per-token loss (nats; both directions' predictions counted), perplexity and the number of
    predictions of ``lm`` (``loss(batch) -> (mean loss, n)``) on ``batches``."""
    was_training = lm.training
    lm.eval()
    device = next(lm.parameters()).device
    tot, n = 0.0, 0
    for batch in tqdm(batches, desc="LM validation", leave=False, disable=not progress or len(batches) < 4):
        with autocast(device, dtype):
            loss, k = lm.loss(batch.to(device))
        tot, n = tot + float(loss) * k, n + k
    lm.train(was_training)
    return {"loss": tot / max(n, 1), "ppl": math.exp(min(tot / max(n, 1), 50)), "predictions": n}


def lm_batches(seqs: list[list[int]], collate: Callable, *, max_tokens: int, max_sentences: int | None = None,
               shuffle: bool = False, seed: int = 0) -> BatchIterator:
    """Token-budget batches of token-id lists for ``collate`` (which adds ``<s>`` and ``</s>``: 2 tokens)."""
    return make_batches(seqs, [len(t) + 2 for t in seqs], collate, max_tokens=max_tokens,
                        max_sentences=max_sentences, shuffle=shuffle, seed=seed)


def pretrain_lm(lm: torch.nn.Module, texts: list[list[int]], val: list[list[int]], collate: Callable,
                cfg: TrainConfig, out: Path, checkpoint_config: dict, extra_files: dict, note: Callable, *,
                max_tokens: int, max_sentences: int, eval_max_tokens: int, cutoffs: Sequence[int],
                init_from: Path | None = None) -> dict:
    """Train ``lm`` (in place; its embeddings and encoder are the classifier's) on ``texts`` in ``out``,
    validate on ``val`` (loss), keep the best weights; returns the stage's summary (``best``, ``steps``,
    ``train_seconds``, ``texts``, ``tokens``, ``history``). A stage already done in ``out`` is loaded, not rerun.

    ``init_from``: an LM-pretraining checkpoint (same tokenizer) whose whole LM, softmax included, this stage
    continues (ULMFiT's second stage: a general LM fine-tuned on the task's text); its ``cutoffs`` must be
    ``cutoffs``.
    """
    done = out / DONE
    if done.is_file():
        ck.load_weights(lm, ck.resolve(out))
        note(f"LM pretraining already done in {out}: loaded its best weights", event="pretrain_skipped")
        return json.loads(done.read_text())
    if init_from is not None:
        theirs = list(ck.read_stored(init_from).data["lm_args"]["cutoffs"])
        if theirs != list(cutoffs):
            raise ConfigError(f"init_from={init_from}: its LM has pretrain.cutoffs={theirs}, this config "
                              f"{list(cutoffs)}; set pretrain.cutoffs={theirs} to continue it")
        ck.load_weights(lm, init_from)
        note(f"LM pretraining continues the language model of {init_from} (its adaptive softmax too)",
             event="pretrain_continue", checkpoint=str(init_from))
    n_tok = sum(len(t) for t in texts)
    note(f"LM pretraining on {len(texts)} texts ({n_tok} tokens), validation {len(val)} texts", event="pretrain",
         texts=len(texts), tokens=n_tok)
    train_it = lm_batches(texts, collate, max_tokens=max_tokens, max_sentences=max_sentences, shuffle=True,
                          seed=cfg.seed)
    val_it = lm_batches(val, collate, max_tokens=eval_max_tokens)
    evaluate = functools.partial(lm_scores, batches=val_it, progress=cfg.progress)
    trainer = Trainer(lm, train_it, cfg, out, evaluate, checkpoint_config, extra_files)
    summary = trainer.fit()
    ck.load_weights(lm, ck.resolve(out))
    summary.update({"texts": len(texts), "tokens": n_tok,
                    "history": [h for h in trainer.history if h.get("event") == "eval"]})
    write_json(done, summary)
    note(f"LM pretraining: best validation loss {summary['best']:.4f} (ppl {math.exp(summary['best']):.1f}) "
         f"after {summary['steps']} steps, {summary['train_seconds']:.0f} s", event="pretrain_done")
    return summary


__all__ = ["DONE", "LM_STAGE", "is_lm_checkpoint", "lm_batches", "lm_facts", "lm_scores", "pretrain_lm"]
