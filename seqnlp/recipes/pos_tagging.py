"""Part-of-speech tagging: one tag per word (synchronized many-to-many).

Each word is its word embedding concatenated with character features of its spelling (a char BiLSTM or
CNN run once per distinct word of a batch); a BiLSTM contextualises the sentence and each token is tagged
by a softmax, or the whole sentence by a linear-chain CRF with Viterbi decoding (``model.crf``). The
lecture's one-to-one baseline -- a fixed-window MLP over the +-l neighbouring words -- is
``model.encoder=window``. Word embeddings are looked up by the lowercased, digit-normalised form (the
characters keep case and digits); pretrained vectors (``model.pretrained``, built from unlabelled text by
``recipes/word_vectors.py``) can be added as a fixed table that also extends the vocabulary.

    python recipes/pos_tagging.py --config recipes/configs/pos_tagging/ud_ewt.yaml [--record PATH]
    seqnlp evaluate --model runs/pos_ud_ewt --split validation
    echo "I saw her duck ." | seqnlp predict --model runs/pos_ud_ewt [--format text|jsonl|conllu]
    seqnlp predict --model runs/pos_ud_ewt --input test.conllu --format conllu --output tagged.conllu
    seqnlp ensemble --model runs/a --ensemble runs/b,runs/c --split test [--record PATH]

Data: CoNLL-U (UPOS or XPOS, ``data.tag_field``), CoNLL column files (``data.format=conll``), or any
Hub dataset with a token column and a tag column (ClassLabel ids or strings; ``data.columns``).
``metrics.json`` holds token accuracy, accuracy on words unseen in training (``oov_accuracy``) and
per-tag precision/recall/F1, plus the tagging speed; ``confusion_test.png`` the test confusion matrix.
The task (model config, predictor, evaluation, ensembles) is :mod:`seqnlp.tasks.pos_tagging`.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from ..data.batching import BatchIterator, TokenBucketSampler
from ..data.tagging import Featurizer
from ..data.word_vectors import normalize_word, read_embedding_init
from ..tasks.pos_tagging import (
    TASK,
    Config,
    ModelConfig,
    TaggerPredictor,
    build_model,
    check_model_config,
    load_data,
    score,
    tag_encoded,
    tagging_metrics,
)
from ..tasks.tagger import SequenceTagger
from ..train import checkpoint as ck
from ..train.device import pick_device
from ..train.loop import Trainer
from ..train.rundir import prepare_run, record_result, write_json
from ..viz.confusion import plot_confusion
from ._common import recipe_main

__all__ = ["main", "setup_model", "train"]


# ------------------------------------------------------------------------------------------------ model
def read_pretrained(m: ModelConfig, normalize: bool) -> tuple[list[str], torch.Tensor] | None:
    """The pretrained vectors of ``m.pretrained`` keyed like the word vocabulary, scaled to unit variance."""
    if not m.pretrained:
        return None
    return read_embedding_init(m.pretrained, m.word_dim, "model.word_dim",
                               key=normalize_word if normalize else None, max_words=m.pretrained_max_words)


def load_pretrained(model: SequenceTagger, feats: Featurizer, words: list[str], vectors: torch.Tensor) -> int:
    """Copy pretrained vectors into the model's fixed table; words that have one start their trainable
    embedding at zero (the pair sums to the pretrained vector). Returns how many rows were filled."""
    ids = [feats.words.token_to_id(w) for w in words]
    rows = torch.tensor([i for i in ids if i is not None], dtype=torch.long)
    src = torch.tensor([k for k, i in enumerate(ids) if i is not None], dtype=torch.long)
    with torch.no_grad():
        model.fixed_vectors[rows] = vectors[src]
        model.word_embed.lut.weight[rows[rows < model.word_embed.weight.size(0)]] = 0.0
    return len(rows)


def setup_model(cfg: Config, train_sentences: list[dict]) -> tuple[Featurizer, ModelConfig, SequenceTagger]:
    """Vocabularies from the training sentences (and pretrained vectors), the model config with the data's
    sizes filled in, and the freshly initialised model (pretrained vectors loaded, ``<unk>`` replacement set)."""
    check_model_config(cfg.model)
    pretrained = read_pretrained(cfg.model, cfg.data.normalize_words)
    feats, counts = Featurizer.build(train_sentences, cfg.data.max_word_len, cfg.data.normalize_words,
                                     extra_words=pretrained[0] if pretrained else ())
    model_cfg = replace(cfg.model, num_words=feats.words.vocab_size, num_chars=feats.chars.vocab_size,
                        num_tags=len(feats.tags), fixed_vectors=bool(cfg.model.pretrained),
                        trainable_words=feats.trainable_words)
    model = build_model(model_cfg, unk_prob=feats.unk_prob(counts, cfg.data.unk_alpha))
    if pretrained:
        filled = load_pretrained(model, feats, *pretrained)
        print(f"{TASK}: {filled} pretrained vectors from {cfg.model.pretrained} "
              f"({len(feats.forms)} training forms)", file=sys.stderr)
    return feats, model_cfg, model


# ------------------------------------------------------------------------------------------------ train
def train(cfg: Config, config_path: str | None = None) -> dict:
    t_start = time.time()
    out = prepare_run(cfg)
    splits = load_data(cfg)
    feats, model_cfg, model = setup_model(cfg, splits["train"])
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{TASK}: {len(splits['train'])} training sentences, {feats.words.vocab_size} words, "
          f"{feats.chars.vocab_size} chars, {len(feats.tags)} tags, {n_params / 1e6:.2f}M parameters",
          file=sys.stderr)

    encoded, chars, lengths = feats.encode(splits["train"])
    sampler = TokenBucketSampler([len(ex["words"]) for ex in encoded], max_tokens=cfg.data.max_tokens,
                                 max_sentences=cfg.data.max_sentences or None, seed=cfg.train.seed)
    batches = BatchIterator(encoded, sampler, lambda exs: Featurizer.collate(exs, chars, lengths))
    dev = splits["validation"]
    dev_encoded = feats.encode(dev)
    dev_gold = [ex["tags"] for ex in dev]
    dev_oov = feats.oov(dev)
    device = pick_device(cfg.train.device)

    def evaluate(m: SequenceTagger) -> dict:
        ids = tag_encoded(m, *dev_encoded, cfg.data.eval_max_tokens, device, precision=cfg.infer_precision)
        pred = [[feats.tags[i] for i in s] for s in ids]
        metrics = tagging_metrics(dev_gold, pred, dev_oov, per_tag=False)
        return {k: metrics[k] for k in ("accuracy", "oov_accuracy", "sentence_accuracy")}

    ckpt_config = ck.checkpoint_config(TASK, model_cfg, cfg, tags=feats.tags, tag_field=cfg.data.tag_field)
    trainer = Trainer(model, batches, cfg.train, out, evaluate, ckpt_config, feats.files())
    summary = trainer.fit()

    # test: the best checkpoint's weights
    best = ck.resolve(out / "checkpoints")
    ck.load_weights(model, best)
    model.to(device)
    metrics = {"validation": evaluate(model)}
    if "test" in splits and all(ex["tags"] is not None for ex in splits["test"]):
        predictor = TaggerPredictor(model, feats, cfg, device, best)
        test, pred = score(predictor, splits["test"], cfg.train.progress, desc="test")
        metrics.update(test)
        plot_confusion([t for ex in splits["test"] for t in ex["tags"]], [t for s in pred for t in s],
                       out / "confusion_test.png")
    metrics.update({"train": summary, "parameters": n_params, "best_checkpoint": best.name,
                    "train_tokens_per_s": _mean_train_rate(out / "log.jsonl")})
    write_json(out / "metrics.json", metrics)
    record_result(TASK, config_path, out, metrics, time.time() - t_start)
    print(json.dumps({k: v for k, v in metrics.items() if k != "per_tag"}, indent=2, default=str))
    return metrics


def _mean_train_rate(log: Path) -> float | None:
    """Mean training tokens/s over the logged windows of ``log.jsonl``."""
    rates = []
    for line in log.read_text().splitlines():
        rec = json.loads(line)
        if rec.get("event") == "train" and "source_tok_per_s" in rec:
            rates.append(rec["source_tok_per_s"])
    return sum(rates) / len(rates) if rates else None


def main(argv: list[str] | None = None) -> int:
    return recipe_main(argv, task=TASK, schema=Config, description=__doc__, train=train)
