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
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..config import ConfigError
from . import checkpoint as ck

CACHE = "teacher_probs.safetensors"  # tensors and a JSON key: nothing is unpickled


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
    gets NaNs. Cached in ``out/teacher_probs.safetensors`` (read as data only) under the teachers, T and a
    digest of the texts (a resumed run does not score again; changed data or teachers do). ``weight`` is only
    reported.

    Raises:
        ConfigError: a teacher predicts another label set than ``labels``; a bad ``temperature`` or ``weight``.
    """
    check_distill(weight, temperature)
    paths = [str(ck.resolve(t)) for t in teachers]
    digest = hashlib.sha1("\n".join(texts).encode("utf-8", "surrogatepass")).hexdigest()
    key = {"teachers": paths, "temperature": temperature, "n": len(texts), "texts": digest}
    cache = out / CACHE
    cached = read_cache(cache, key, note)
    if cached is not None:
        note(f"distillation: teacher probabilities from {cache}", event="distill_cached")
        return cached
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
    write_cache(cache, key, probs)
    return probs


def write_cache(path: Path, key: dict, probs: torch.Tensor) -> None:
    """``probs`` as safetensors with ``key`` as JSON metadata, written under a temporary name and renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file({"probs": probs.contiguous()}, str(tmp), metadata={"key": json.dumps(key, sort_keys=True)})
    os.replace(tmp, path)


def read_cache(path: Path, key: dict, note: Callable) -> torch.Tensor | None:
    """The cached probabilities when ``path`` holds them under ``key``; None when it is missing, written for
    other texts/teachers, or unreadable (said, naming the file; the teachers then score again)."""
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            saved_key = json.loads((f.metadata() or {}).get("key", "null"))
            probs = f.get_tensor("probs")
    except (SafetensorError, OSError, ValueError, KeyError, json.JSONDecodeError) as e:
        note(f"distillation: ignoring the unreadable cache {path} ({type(e).__name__}: {e}); scoring again",
             event="distill_cache_refused")
        return None
    return probs if saved_key == json.loads(json.dumps(key, sort_keys=True)) else None


__all__ = ["CACHE", "check_distill", "teacher_targets"]
