"""Sentiment classification (many-to-one): embeddings -> (Bi)LSTM -> pooling -> classifier, the training script.

    python recipes/sentiment.py --config recipes/configs/sentiment/sst2.yaml [key.sub=value ...] [--record PATH]
    seqnlp predict --model runs/sst2 --input reviews.txt [--format text|jsonl|tsv]   # or text on stdin
    seqnlp evaluate --model runs/sst2 --split validation      # runs/sst2/pretrain: the LM's perplexity
    seqnlp ensemble --model runs/a --ensemble runs/b,runs/c --split test [--record PATH]

Data come from a local folder under ``$SEQNLP_DATA`` (``data.name``) or, with ``data.use_hub=true``, from the Hub
id and column mapping in ``data.hub``. Long texts are truncated to ``data.max_len`` tokens (head + tail);
``data.cv_folds=K`` runs K-fold cross-validation and reports mean ± std.

Features, each off unless configured:

* ``model.pretrained=FILE``: word vectors initialise (and extend) the embeddings.
* ``init_from=DIR`` fine-tunes a trained sentiment model (or an LM-pretraining checkpoint) on this config's
  data: tokenizer and architecture come from the checkpoint; a different label set re-initialises only the
  classifier head (said in the log).
* ``pretrain.enabled=true`` first trains the classifier's own embeddings and encoder as a (bidirectional)
  language model on the training text, labels unused, plus any ``pretrain.extra_text`` (Dai & Le 2015;
  ULMFiT), then fine-tunes the whole classifier from it (:mod:`seqnlp.train.pretrain`). With both, and
  ``init_from`` an LM-pretraining checkpoint, the LM stage continues that language model (softmax included)
  on this config's LM text, e.g. a general movie-review LM fine-tuned on SST-2's phrases (ULMFiT's stage 2).
* ``distill.teachers=[DIR, ...]``: knowledge distillation; the trained models' averaged class probabilities on
  the training texts (and a transfer set, ``distill.extra_text``) become soft targets beside the gold labels
  (:mod:`seqnlp.train.distill`).
* ``model.adversarial=EPS``: adversarial training on the embeddings (Miyato et al. 2017).

``train`` ends by scoring the best checkpoint on the test split: ``output_dir/metrics.json`` holds ``accuracy``,
``macro_f1``, ``loss`` and the confusion matrix (rows gold, columns predicted); ``curves.png`` the validation
curves. The task module (configs, model, predictor, evaluation) is :mod:`seqnlp.tasks.sentiment`.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..config import ConfigError
from ..data import classification as cd
from ..data.tokenizers import Tokenizer
from ..runner import load
from ..tasks.sentiment import (
    ARCHITECTURE,
    TASK,
    TOKENIZER_FILE,
    Config,
    ModelConfig,
    build_lm,
    build_model,
    class_probs,
    classification_metrics,
    load_data,
    load_pretrained,
    read_pretrained,
)
from ..train import checkpoint as ck
from ..train.device import seed_everything
from ..train.distill import teacher_targets
from ..train.loop import Trainer
from ..train.notes import Notes
from ..train.pretrain import is_lm_checkpoint, lm_facts, pretrain_lm
from ..train.rundir import prepare_run, record_result, write_json
from ..viz.curves import plot_curves
from ._common import recipe_main


def train(cfg: Config, config_path: str | None = None) -> dict:
    """Train (optionally LM-pretrain, or fine-tune from ``init_from``), then score the test split."""
    t0 = time.time()
    out = prepare_run(cfg)
    note = Notes(out)
    splits, labels = load_data(cfg, note)
    if cfg.data.cv_folds >= 2:
        if cfg.distill.teachers:
            raise ConfigError("distill.teachers with data.cv_folds: the teachers would have seen the test folds")
        metrics = train_cv(cfg, splits["train"], labels, out, note)
    else:
        extra = cd.load_texts(cfg.pretrain.extra_text, cfg.data.seed, "pretrain.extra_text") \
            if cfg.pretrain.enabled else []
        metrics = fit(cfg, splits, labels, out, note, extra_lm=extra)
    metrics["notes"] = note.messages("skipped", "truncated", "init_from")
    write_json(out / "metrics.json", metrics)
    acc = f"{metrics['accuracy']:.4f}" + (f" ± {metrics['accuracy_std']:.4f}" if "accuracy_std" in metrics else "")
    tqdm.write(f"{metrics['split']}: accuracy {acc}, macro-F1 {metrics['macro_f1']:.4f} "
               f"(metrics in {out / 'metrics.json'})")
    record_result(TASK, config_path, out, metrics, time.time() - t0)
    return metrics


# ------------------------------------------------------------------------------------------- starting point
def new_model(cfg: Config, texts: list[str], labels: list[str], note, vectors: bool = True):
    """A tokenizer built on ``texts`` (plus the words of ``model.pretrained`` vectors) and a fresh model."""
    dist = cfg.distill
    vecs = read_pretrained(cfg.model) if cfg.model.pretrained and vectors else None
    extra_words = [w for w in vecs[0] if not any(c.isdigit() for c in w)] \
        if vecs and cfg.model.pretrained_extend_vocab else []
    t = cfg.tokenizer
    tok = cd.build_tokenizer(texts, t.vocab_size, t.min_freq, t.lowercase, extra_words=extra_words)
    m = replace(cfg.model, vocab_size=tok.vocab_size, num_classes=len(labels), pad_id=tok.pad_id, unk_id=tok.unk_id)
    model = build_model(m, distill_weight=dist.weight, distill_temperature=dist.temperature)
    if vecs:
        filled = load_pretrained(model, tok, *vecs)
        how = " (training words, then words only the vectors know)" if extra_words else ""
        note(f"pretrained vectors {cfg.model.pretrained}: {filled} of the {tok.vocab_size} vocabulary "
             f"entries{how} start from their vector", event="pretrained", filled=filled, vocab=tok.vocab_size)
    return tok, model, m


def from_checkpoint(cfg: Config, labels: list[str], note):
    """Tokenizer, model and model config from ``cfg.init_from``, fitted to ``labels``."""
    ckpt = ck.resolve(cfg.init_from)
    stored = ck.read_stored(ckpt)
    if stored.task != TASK:
        raise ck.CheckpointError(f"init_from={cfg.init_from}: a {stored.task!r} checkpoint, not {TASK!r}")
    tok = Tokenizer.load(ckpt / TOKENIZER_FILE)
    old_labels = list(stored.data["labels"])
    src = stored.model_config(ModelConfig)  # the architecture from the checkpoint, dropouts from the config
    m = replace(cfg.model, **{k: getattr(src, k) for k in ARCHITECTURE}, num_classes=len(old_labels))
    model = build_model(m, distill_weight=cfg.distill.weight, distill_temperature=cfg.distill.temperature)
    if is_lm_checkpoint(stored.data):
        ck.load_weights(build_lm(model, m, list(stored.data["lm_args"]["cutoffs"])), ckpt)
        note(f"init_from {ckpt}: embeddings and encoder from the pretrained language model; new classifier head "
             f"for {labels}", event="init_from", checkpoint=str(ckpt), head="new")
        model.reset_head(len(labels))
    else:
        ck.load_weights(model, ckpt)
        if old_labels == list(labels):
            note(f"init_from {ckpt}: all weights (same labels {labels})", event="init_from",
                 checkpoint=str(ckpt), head="kept")
        else:
            model.reset_head(len(labels))
            note(f"init_from {ckpt}: label set differs ({old_labels} -> {labels}): re-initialising only the "
                 "classifier head; embeddings and encoder are kept", event="init_from", checkpoint=str(ckpt),
                 head="reinitialised", old_labels=old_labels, labels=list(labels))
    note(f"init_from: tokenizer ({tok.vocab_size} entries) and architecture from the checkpoint "
         "(the config's model sizes are ignored; its dropout values apply)", event="init_from_arch")
    return tok, model, replace(m, num_classes=len(labels))


def distill_targets(cfg: Config, train: list[cd.Example], labels: list[str], tok: Tokenizer, out: Path, note):
    """The teachers' soft targets (N, C) of the training examples and the encoded transfer set."""
    dist, d = cfg.distill, cfg.data
    extra = cd.load_texts(dist.extra_text, d.seed, "distill.extra_text")
    if dist.sentences:
        extra = [s for t in extra for s in cd.split_sentences(t, 3, dist.max_words)]
    extra = cd.subsample(extra, dist.extra_limit, d.seed)

    def teacher(path: str):  # this run's device; torch's thread count stays as it is
        return load(path, cfg.train.device, task=TASK, threads=torch.get_num_threads())

    probs = teacher_targets(dist.teachers, teacher, [t for t, _ in train] + extra,
                            [labels.index(y) for _, y in train] + [-1] * len(extra), labels, out, note,
                            temperature=dist.temperature, weight=dist.weight, max_tokens=d.eval_max_tokens,
                            progress=cfg.train.progress)
    ids = cd.encode_texts(tok, extra, d.max_len, d.keep_head)[0]
    transfer = [(x, -1, p) for x, p in zip(ids, probs[len(train):].tolist()) if x and not math.isnan(p[0])]
    if extra:
        note(f"distillation transfer set: {len(transfer)} unlabelled texts with only the teachers' targets",
             event="distill_transfer", texts=len(transfer))
    return probs[:len(train)], transfer


def lm_stage(cfg: Config, model, m: ModelConfig, tok: Tokenizer, texts: list[list[int]], val: list[list[int]],
             labels: list[str], out: Path, note, init_lm: Path | None = None) -> dict:
    """LM pretraining of ``model``'s embeddings and encoder in ``out`` (in place; the best weights kept)."""
    p = cfg.pretrain
    lm = build_lm(model, m, list(p.cutoffs))
    conf = ck.checkpoint_config(TASK, m, cfg, labels=list(labels), **lm_facts(p.cutoffs))
    return pretrain_lm(lm, texts, val, cd.collate_lm(tok.pad_id, tok.bos_id, tok.eos_id), p.train, out, conf,
                       {TOKENIZER_FILE: tok.save}, note, max_tokens=p.max_tokens, max_sentences=p.max_sentences,
                       eval_max_tokens=cfg.data.eval_max_tokens, cutoffs=p.cutoffs, init_from=init_lm)


# ------------------------------------------------------------------------------------------------ training
def fit(cfg: Config, splits: dict[str, list[cd.Example]], labels: list[str], out: Path, note, start=None,
        extra_lm: list[str] = (), fold: int | None = None) -> dict:
    """Train one classifier on ``splits`` in ``out`` and score its best checkpoint on ``splits["test"]``."""
    seed_everything(cfg.train.seed)
    d, p = cfg.data, cfg.pretrain
    if start is not None:
        tok, model, m = start
    elif cfg.init_from:
        tok, model, m = from_checkpoint(cfg, labels, note)
    else:
        tok, model, m = new_model(cfg, [t for t, _ in splits["train"]] + list(extra_lm), labels, note)
    note(f"vocabulary {tok.vocab_size}, labels {labels}, model {sum(x.numel() for x in model.parameters())} "
         f"parameters", event="model", vocab=tok.vocab_size, labels=list(labels), args=asdict(m))
    soft, transfer = distill_targets(cfg, splits["train"], labels, tok, out, note) if cfg.distill.teachers \
        else (None, [])
    enc = {s: cd.encode_examples(tok, ex, labels, d.max_len, d.keep_head, s, note, soft if s == "train" else None)
           for s, ex in splits.items()}

    pre = None
    resuming = (out / "checkpoints" / ck.LATEST).exists() and cfg.train.resume
    if p.enabled and not resuming:  # the LM stage: the training text (and extra text), labels unused
        max_len = p.max_len or d.max_len
        lm_texts = [ex[0] for ex in enc["train"]] if p.own_text else []
        if p.own_text and max_len != d.max_len:
            lm_texts = cd.encode_texts(tok, [t for t, _ in splits["train"]], max_len, d.keep_head)[0]
        extra_ids = [x for x in cd.encode_texts(tok, list(extra_lm), max_len, d.keep_head)[0] if x]
        lm_val = [x for x, _ in enc["validation"]][: p.val_texts]
        if not p.own_text and extra_ids:  # hold LM validation text out of the extra text
            lm_val, extra_ids = extra_ids[: p.val_texts], extra_ids[p.val_texts:]
        init_lm = ck.resolve(cfg.init_from) if start is None and cfg.init_from else None
        if init_lm is not None and not is_lm_checkpoint(ck.read_stored(init_lm).data):
            init_lm = None
        pre = lm_stage(cfg, model, m, tok, lm_texts + extra_ids, lm_val, labels, out / "pretrain", note, init_lm)

    conf = ck.checkpoint_config(TASK, m, cfg, labels=list(labels),
                                preprocess={"max_len": d.max_len, "keep_head": d.keep_head}, fold=fold)
    items = enc["train"] + transfer  # the transfer set only here: not LM text, not in the counts above
    train_it = cd.batches(items, [len(ex[0]) for ex in items], cd.collate_classify(tok.pad_id),
                          max_tokens=d.max_tokens, max_sentences=d.max_sentences, shuffle=True, seed=cfg.train.seed)
    val_seqs, val_gold = [x for x, _ in enc["validation"]], [y for _, y in enc["validation"]]

    def evaluate(model) -> dict[str, float]:
        probs = class_probs(model, val_seqs, tok.pad_id, d.eval_max_tokens, "validation", cfg.train.progress)
        return {k: v for k, v in classification_metrics(val_gold, probs, labels).items()
                if k in ("accuracy", "macro_f1", "loss")}

    trainer = Trainer(model, train_it, cfg.train, out, evaluate, conf, {TOKENIZER_FILE: tok.save})
    summary = trainer.fit()
    best = ck.resolve(out)
    ck.load_weights(model, best)
    probs = class_probs(model, [x for x, _ in enc["test"]], tok.pad_id, d.eval_max_tokens, "test", cfg.train.progress)
    metrics = classification_metrics([y for _, y in enc["test"]], probs, labels)
    metrics.update({"split": "test", "best_validation": summary["best"], "steps": summary["steps"],
                    "stop_reason": summary["reason"], "train_seconds": round(summary["train_seconds"], 1),
                    "checkpoint": str(best)})
    curves = {"validation": [h for h in trainer.history if h.get("event") == "eval"]}
    if pre is not None:
        metrics["pretrain"] = {k: pre[k] for k in ("best", "steps", "train_seconds", "texts", "tokens")}
        curves["lm_validation"] = pre.get("history", [])
    write_json(out / "curves.json", curves)
    plot_curves(out / "curves.png", curves, cfg.train.eval_metric, keys={"lm_validation": "ppl"})
    return metrics


def train_cv(cfg: Config, examples: list[cd.Example], labels: list[str], out: Path, note) -> dict:
    """K-fold cross-validation: K short trainings in ``out/fold{k}``; mean ± std of the test-fold scores.

    With LM pretraining, the LM is trained once, on ``pretrain.extra_text`` only (the task's own text would
    include every test fold), and each fold starts from it."""
    k, p = cfg.data.cv_folds, cfg.pretrain
    start = None
    if p.enabled or cfg.init_from:
        seed_everything(cfg.train.seed)
        if cfg.init_from:
            start = from_checkpoint(cfg, labels, note)
        else:
            extra = cd.load_texts(p.extra_text, cfg.data.seed, "pretrain.extra_text")
            if not extra:
                raise ConfigError("cross-validation with pretrain.enabled needs pretrain.extra_text (the task's "
                                  "own text would include the test folds)")
            start = new_model(cfg, extra, labels, note, vectors=False)
            tok, model, m = start
            ids = [x for x in cd.encode_texts(tok, extra, p.max_len or cfg.data.max_len, cfg.data.keep_head)[0] if x]
            lm_stage(cfg, model, m, tok, ids[p.val_texts:], ids[: p.val_texts], labels, out / "pretrain", note)
        start_state = copy.deepcopy(start[1].state_dict())
    folds = []
    for fold in range(k):
        if start is not None:
            start[1].load_state_dict(start_state)
        fold_cfg = copy.deepcopy(cfg)
        fold_cfg.pretrain.enabled = False
        fold_cfg.train.seed = cfg.train.seed + fold
        parts = cd.cv_fold(examples, k, fold, cfg.data.cv_validation, cfg.data.seed)
        note(f"fold {fold + 1}/{k}: train {len(parts['train'])}, validation {len(parts['validation'])}, "
             f"test {len(parts['test'])}", event="fold", fold=fold)
        m = fit(fold_cfg, parts, labels, out / f"fold{fold}", note, start=start, fold=fold)
        note(f"fold {fold + 1}/{k}: test accuracy {m['accuracy']:.4f}", event="fold_done", fold=fold,
             accuracy=m["accuracy"])
        folds.append(m)
    accs = torch.tensor([m["accuracy"] for m in folds], dtype=torch.float64)
    f1s = torch.tensor([m["macro_f1"] for m in folds], dtype=torch.float64)
    cm = [[sum(m["confusion_matrix"][i][j] for m in folds) for j in range(len(labels))] for i in range(len(labels))]
    return {"accuracy": float(accs.mean()), "accuracy_std": float(accs.std()) if k > 1 else 0.0,
            "macro_f1": float(f1s.mean()), "macro_f1_std": float(f1s.std()) if k > 1 else 0.0,
            "confusion_matrix": cm, "labels": list(labels), "n": sum(m["n"] for m in folds), "cv_folds": k,
            "split": f"{k}-fold cross-validation",
            "folds": [{key: m[key] for key in ("accuracy", "macro_f1", "n", "best_validation", "steps",
                                               "train_seconds")} for m in folds]}


def main(argv: list[str] | None = None) -> int:
    return recipe_main(argv, task=TASK, schema=Config, description=__doc__, train=train)


__all__ = ["fit", "main", "train", "train_cv"]
