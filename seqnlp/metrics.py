"""Metrics: accuracy, precision/recall/F1, confusion matrix, BLEU/chrF (sacreBLEU), perplexity,
bits per character, distinct-n."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence


def accuracy(gold: Sequence, pred: Sequence) -> float:
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold labels but {len(pred)} predictions")
    if not gold:
        raise ValueError("accuracy of an empty set")
    return sum(g == p for g, p in zip(gold, pred)) / len(gold)


def confusion_matrix(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> list[list[int]]:
    """rows = gold label, columns = predicted label, in the order of ``labels``."""
    ix = {lab: i for i, lab in enumerate(labels)}
    m = [[0] * len(labels) for _ in labels]
    for g, p in zip(gold, pred):
        m[ix[g]][ix[p]] += 1
    return m


def per_class_prf(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str] | None = None) -> dict:
    """``{label: {"precision", "recall", "f1", "support"}}``."""
    labels = list(labels) if labels is not None else sorted(set(gold) | set(pred))
    tp, fp, fn = Counter(), Counter(), Counter()
    for g, p in zip(gold, pred):
        if g == p:
            tp[g] += 1
        else:
            fp[p] += 1
            fn[g] += 1
    out = {}
    for lab in labels:
        p = tp[lab] / (tp[lab] + fp[lab]) if tp[lab] + fp[lab] else 0.0
        r = tp[lab] / (tp[lab] + fn[lab]) if tp[lab] + fn[lab] else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        out[lab] = {"precision": p, "recall": r, "f1": f, "support": tp[lab] + fn[lab]}
    return out


def macro_f1(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str] | None = None) -> float:
    prf = per_class_prf(gold, pred, labels)
    return sum(v["f1"] for v in prf.values()) / max(len(prf), 1)


def bleu(hyps: Sequence[str], refs: Sequence[str]) -> tuple[float, str]:
    """Corpus sacreBLEU (cased, detokenised, 13a) → (score, signature)."""
    from sacrebleu.metrics import BLEU

    m = BLEU()
    score = m.corpus_score(list(hyps), [list(refs)])
    return score.score, str(m.get_signature())


def chrf(hyps: Sequence[str], refs: Sequence[str]) -> tuple[float, str]:
    from sacrebleu.metrics import CHRF

    m = CHRF()
    score = m.corpus_score(list(hyps), [list(refs)])
    return score.score, str(m.get_signature())


def bleu_chrf(hyps: Sequence[str], refs: Sequence[str]) -> dict:
    """sacreBLEU (cased, detokenised, 13a tokenizer) and chrF of detokenised hypotheses against references.

    Returns ``{"bleu", "chrf", "signature", "chrf_signature"}`` (scores rounded to 2 decimals); ``signature``
    is BLEU's.
    """
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")
    b, b_sig = bleu(hyps, refs)
    c, c_sig = chrf(hyps, refs)
    return {"bleu": round(b, 2), "chrf": round(c, 2), "signature": b_sig, "chrf_signature": c_sig}


def perplexity(nll_sum: float, n_items: int) -> float:
    return math.exp(min(nll_sum / max(n_items, 1), 700.0))


def bits_per_char(nats_per_char: float) -> float:
    return nats_per_char / math.log(2)


def distinct_n(texts: Sequence[Sequence[str]], n: int) -> float:
    """Distinct n-grams / all n-grams over a corpus of token lists (Li et al., 2016)."""
    grams = Counter()
    total = 0
    for toks in texts:
        for i in range(len(toks) - n + 1):
            grams[tuple(toks[i : i + n])] += 1
            total += 1
    return len(grams) / total if total else 0.0
