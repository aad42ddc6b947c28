"""Knowledge distillation's targets (Hinton et al. 2015): the averaged class probabilities of trained teacher
models on the training texts (and on a transfer set of unlabelled texts), softened at a temperature, cached in
the run directory so that a resumed run does not score again.

The teachers are loaded by the caller's ``load_teacher(path)``: anything with ``labels`` and
``probs(texts, max_tokens=, progress=) -> (N, C)`` (NaN rows for texts without tokens), e.g. a sentiment
predictor. The student's loss with these targets is the classifier's (:class:`seqnlp.tasks.classifier.
SequenceClassifier`, ``distill_weight`` and ``distill_temperature``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from ..config import ConfigError
from . import checkpoint as ck

CACHE = "teacher_probs.pt"


def check_distill(weight: float, temperature: float) -> None:
    """``temperature`` > 0 and ``weight`` in [0, 1], else a ConfigError naming the ``distill.*`` keys."""
    if temperature <= 0 or not 0 <= weight <= 1:
        raise ConfigError(f"distill.temperature must be > 0 and distill.weight in [0, 1], got "
                          f"{temperature} and {weight}")


def teacher_targets(teachers: Sequence[str], load_teacher: Callable, texts: list[str], gold: list[int],
                    labels: list[str], out: Path, note: Callable, *, temperature: float = 1.0,
                    weight: float = 0.5, max_tokens: int = 20000, progress: bool = False) -> torch.Tensor:
    """(N, C) soft targets for ``texts``: the mean over ``teachers`` (run or checkpoint paths) of each teacher's
    class probabilities at temperature T (``softmax(log p / T)``). ``gold``: label indices, -1 for unlabelled
    texts. A labelled text a teacher cannot read (no tokens) keeps its gold label as target, an unlabelled one
    gets NaNs. Cached in ``out/teacher_probs.pt`` under the teachers, T and a digest of the texts (a resumed run
    does not score again; changed data or teachers do). ``weight`` is only reported.

    Raises:
        ConfigError: a teacher predicts another label set than ``labels``; a bad ``temperature`` or ``weight``.
    """
    check_distill(weight, temperature)
    paths = [str(ck.resolve(t)) for t in teachers]
    digest = hashlib.sha1("\n".join(texts).encode("utf-8", "surrogatepass")).hexdigest()
    key = {"teachers": paths, "temperature": temperature, "n": len(texts), "texts": digest}
    cache = out / CACHE
    if cache.is_file():
        saved = torch.load(cache)
        if saved["key"] == key:
            note(f"distillation: teacher probabilities from {cache}", event="distill_cached")
            return saved["probs"]
    gold_t = torch.as_tensor(gold, dtype=torch.long)
    known = gold_t >= 0
    total = torch.zeros(len(texts), len(labels))
    for path in paths:
        teacher = load_teacher(path)
        if teacher.labels != list(labels):
            raise ConfigError(f"distill.teachers: {path} predicts {teacher.labels}, this config's labels are {labels}")
        probs = teacher.probs(texts, max_tokens=max_tokens, progress=progress)
        acc = float((probs.argmax(-1) == gold_t)[known].float().mean())
        note(f"distillation: teacher {path}: accuracy {acc:.4f} on the {int(known.sum())} labelled training texts",
             event="distill_teacher", teacher=path)
        total += torch.softmax(probs.clamp_min(1e-12).log() / temperature, dim=-1)
    probs = total / len(paths)
    unread = probs.isnan().any(-1) & known
    probs[unread] = torch.nn.functional.one_hot(gold_t[unread], len(labels)).float()
    acc = float((probs.argmax(-1) == gold_t)[known].float().mean())
    note(f"distillation from {len(paths)} teachers (T={temperature}, weight {weight}): their averaged "
         f"probabilities agree with the gold label on {acc:.4f} of the labelled training texts; {int(unread.sum())} "
         f"texts no teacher could read keep their gold label; {int((~known).sum())} unlabelled texts",
         event="distill", teachers=paths, agreement=acc, unread=int(unread.sum()), unlabelled=int((~known).sum()))
    out.mkdir(parents=True, exist_ok=True)
    torch.save({"key": key, "probs": probs}, cache)
    return probs


__all__ = ["CACHE", "check_distill", "teacher_targets"]
