"""seqnlp: recurrent networks for sequence tasks on text."""

from __future__ import annotations

__version__ = "0.1.0"


def load(path, device: str = "cpu"):
    """Load a trained model for inference from a run directory or checkpoint directory.

    Returns the recipe's ``Predictor`` (model, tokenizers and labels together), e.g.
    ``seqnlp.load("runs/sst2").predict(["a fine film"])``.
    """
    from .cli import recipe_module
    from .train.checkpoint import read_config, resolve

    ckpt = resolve(path)
    return recipe_module(read_config(ckpt)["task"]).load_predictor(ckpt, device=device)


__all__ = ["__version__", "load"]
