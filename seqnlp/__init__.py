"""seqnlp: recurrent networks for sequence tasks on text."""

from __future__ import annotations

__version__ = "0.1.0"


def load(path, device: str = "auto", overrides=(), precision: str | None = None):
    """Load a trained model of any task for inference from a run directory or checkpoint directory.

    Returns the task's predictor; ``predict(list_of_strings)`` gives one plain-data result per input, e.g.
    ``seqnlp.load("runs/sst2").predict(["a fine film"])`` -> ``[{"label": "positive", "probs": {...}}]``
    (see :data:`seqnlp.tasks.base.RESULT_SHAPES`). ``overrides``: dotted keys of the stored run config
    (``["search.beam_size=10"]``); ``precision``: fp32 | bf16 | fp16 | auto for inference.
    """
    from .runner import load as _load

    return _load(path, device, overrides, precision=precision)


__all__ = ["__version__", "load"]
