"""Dialogue (many-to-many): the translation task's seq2seq model answering the last k turns, the training script.

    python recipes/dialogue.py --config recipes/configs/dialogue/dailydialog.yaml [key.sub=value ...]
    seqnlp evaluate --model runs/dailydialog [search.top_p=0.8]                # writes metrics_test.json
    echo "Hi , how are you ? __eou__ Fine , thanks . And you ?" | seqnlp predict --model runs/dailydialog
    seqnlp chat --model runs/dailydialog [search.method=beam]                   # /reset, /history, /quit
    printf 'Hello !\\nWhere are you going ?\\n/reset\\nHi .\\n' | seqnlp chat --model runs/dailydialog

Features:

* Data: DailyDialog or any dataset with a list-of-turns column (:func:`seqnlp.tasks.dialogue.load_data`);
  every turn after the first of a dialogue is one example, its source the last ``data.context_turns`` turns
  joined by ``<sep>`` and truncated from the oldest turn (:mod:`seqnlp.data.dialogue`; every cut counted).
* One joint subword vocabulary (BPE or Unigram with the ``<sep>`` special) trained on the training turns
  (``init_from=RUN``: the tokenizer and weights of a trained dialogue model instead).
* Model: :class:`seqnlp.tasks.seq2seq.Seq2SeqConfig` with shared embeddings and the padded (faster) encoder.
* Training: :class:`seqnlp.train.loop.Trainer`, keeping the checkpoint with the lowest validation loss.
* Test: perplexity per subword and per word (whole test split, teacher forced) and, for each decoding in
  ``compare`` (greedy, beam, sample) on ``decode_limit`` evenly spaced test examples, sacreBLEU against the
  reference reply, distinct-1/2 and the average reply length (``metrics.json``); the replies
  (``replies.test.<decoding>.txt``) and ``samples`` test exchanges decoded every way (``samples.test.md``).

The task module (configs, predictor, chat session, evaluation) is :mod:`seqnlp.tasks.dialogue`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ..config import to_dict
from ..data.dialogue import SEP, encode_examples, make_examples
from ..data.errors import DataError
from ..data.seq2seq import Seq2SeqCollate, train_tokenizers, training_batches
from ..data.tokenizers import Tokenizer
from ..tasks.dialogue import (
    TASK,
    TOKENIZER,
    Config,
    build_model,
    check_config,
    load_data,
    load_predictor,
    perplexities,
    reply_nll,
    score_dialogues,
    summary,
)
from ..tasks.seq2seq import Seq2Seq
from ..train import checkpoint as ck
from ..train.loop import Trainer
from ..train.rundir import one_line, prepare_run, record_result, write_json
from ._common import recipe_main


def train(cfg: Config, config_path: str | None) -> dict:
    """Train, keep the checkpoint with the best validation loss, evaluate it on test; returns the metrics."""
    t_start = time.time()
    check_config(cfg)
    out = prepare_run(cfg)
    d = cfg.data

    # --- data: examples of (context, reply), one subword vocabulary, id pairs, batches
    splits = load_data(cfg)
    train_ex, st = make_examples(splits["train"], d.context_turns)
    val_ex, vst = make_examples(splits["validation"][: d.val_limit or None], d.context_turns)
    if not train_ex:
        raise DataError("no training examples (dialogues of one turn only, or empty replies?)", d.name)
    if not val_ex:
        raise DataError("no validation examples", d.name)
    if cfg.init_from:
        tok = Tokenizer.load(ck.resolve(cfg.init_from) / TOKENIZER)
    else:
        turns = list(dict.fromkeys(t for dlg in splits["train"] for t in dlg if t))
        tok, _ = train_tokenizers(d.tokenizer, d.vocab_size, True, turns, [], d.min_freq, extra_specials=[SEP])
    train_pairs = encode_examples(tok, train_ex, d.max_src_len, d.max_tgt_len, st)
    print(st.message("train"), file=sys.stderr)
    val_pairs = encode_examples(tok, val_ex, d.max_src_len, None, vst)
    print(vst.message("validation"), file=sys.stderr)
    batches = training_batches(train_pairs, Seq2SeqCollate.of(tok), max_tokens=d.max_tokens,
                               max_sentences=d.max_sentences, seed=cfg.train.seed)

    # --- model: the config with the vocabulary size of the data
    model_cfg = replace(cfg.model, src_vocab=tok.vocab_size, tgt_vocab=tok.vocab_size, pad_id=tok.pad_id)
    model = build_model(model_cfg)
    if cfg.init_from:
        ck.load_weights(model, ck.resolve(cfg.init_from))
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params / 1e6:.2f}M parameters; vocab {tok.vocab_size}; {len(train_pairs)} training "
          f"examples, {len(batches)} batches an epoch", file=sys.stderr)

    # --- train: validation loss and perplexities at every evaluation
    val_targets = [e["target"] for e in val_ex]
    eval_seconds = [0.0]

    def evaluate_fn(m: Seq2Seq) -> dict:
        t0 = time.time()
        nll, n = reply_nll(m, val_pairs, tok, d.max_tokens * 2, next(m.parameters()).device)
        ppl = perplexities(nll, n, val_targets)
        eval_seconds[0] += time.time() - t0
        return {"loss": nll / max(n, 1), "ppl": ppl["subword"], "word_ppl": ppl["word"]}

    ckpt_config = ck.checkpoint_config(TASK, model_cfg, cfg, train_examples=len(train_pairs))
    trainer = Trainer(model, batches, cfg.train, out, evaluate_fn, ckpt_config, {TOKENIZER: tok.save})
    fit = trainer.fit()

    # --- test: perplexity and every decoding of `compare` with the best checkpoint
    best = ck.resolve(out / "checkpoints")
    responder = load_predictor(best, ck.read_stored(best), cfg, trainer.device)
    metrics, replies, samples = score_dialogues(responder, splits["test"], "test", progress=cfg.train.progress)
    for method, texts in replies.items():
        Path(out, f"replies.test.{method}.txt").write_text("".join(one_line(r) + "\n" for r in texts), newline="\n")
    if samples:
        Path(out, "samples.test.md").write_text(samples_markdown(samples, cfg.compare), newline="\n")
    metrics.update({
        "val_loss_best": fit["best"], "steps": fit["steps"], "stop_reason": fit["reason"],
        "train_minutes": round(fit["train_seconds"] / 60, 2), "eval_minutes": round(eval_seconds[0] / 60, 2),
        "epochs": round(fit["steps"] / max(len(batches), 1), 2), "parameters": n_params,
        "train_examples": len(train_pairs), "train_stats": to_dict(st), "checkpoint": best.name,
    })
    write_json(out / "metrics.json", metrics)
    record_result(TASK, config_path, out, metrics, time.time() - t_start, extra={"samples": samples})
    print(summary(metrics))
    return metrics


def samples_markdown(samples: list[dict], methods: Sequence[str]) -> str:
    """Test exchanges as Markdown: the context turns, the reference reply and each decoding's reply."""
    blocks = []
    for i, s in enumerate(samples, 1):
        lines = [f"**{i}.**", ""]
        lines += [f"> {one_line(t) or '(empty turn)'}  " for t in s["context"]]
        lines += ["", f"- reference: {one_line(s['reference'])}"]
        lines += [f"- {m}: {one_line(s[m]) or '(empty reply)'}" for m in methods]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def main(argv: list[str] | None = None) -> int:
    return recipe_main(argv, task=TASK, schema=Config, description=__doc__, train=train)
