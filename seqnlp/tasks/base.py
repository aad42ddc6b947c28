"""The task contract: what a task module provides, and the registry entry that names it.

A task is one shape of sequence problem with its recipe (``sentiment``: many-to-one, ``pos_tagging``:
synchronized many-to-many, ``translation`` and ``dialogue``: many-to-many, ``char_generator``: one-to-many).
Its **task module** (``seqnlp/tasks/<task>.py``) defines, at module level:

``Config``
    The run config dataclass: ``task``, ``output_dir``, ``data``, ``model: ModelConfig``, ``train: TrainConfig``,
    ``infer_precision`` (fp32 | bf16 | fp16 | auto: evaluation and prediction, through
    :func:`seqnlp.train.device.pick_dtype`) and the task's own blocks.
``ModelConfig``
    A dataclass that is both the builder's input and the ``model`` block of a checkpoint's ``config.json``
    (nanoGPT's ``GPT(GPTConfig(**model_args))``): the user's sizes plus the sizes that come from the data
    (vocabulary, labels), which training fills in with :func:`dataclasses.replace`.
``build_model(m: ModelConfig) -> nn.Module``
    The one place where a model config becomes modules.
``load_data(cfg: Config)``
    The task's splits (local files under ``$SEQNLP_DATA`` or Hub ids), checked, with clear errors.
``load_predictor(ckpt: Path, stored: Stored, cfg: Config, device: torch.device) -> Predictor``
    A trained model ready for inference (``stored``: the checkpoint's :class:`~seqnlp.train.checkpoint.Stored`;
    ``cfg``: its run config with the caller's overrides). The predictor keeps ``cfg`` as ``.config``, ``ckpt`` as
    ``.checkpoint`` and has
    ``predict(inputs: list[str], progress=False) -> list[dict]``: exactly one plain-data result per input, in
    order (see :data:`RESULT_SHAPES`).
``evaluate(predictor, split: str) -> dict``
    Metrics of the predictor on ``split`` of its own data config (the runner writes ``metrics_<split>.json``).
``format_text(result: dict) -> str``
    One line of ``--format text`` output for one result.

Optional: ``ensemble(predictors, split) -> dict`` (``seqnlp ensemble``), ``chat_session(predictor)`` (``seqnlp
chat``), ``parse_input(line: str)`` (a predict input line as the predictor takes it), ``summary(metrics) -> str``
(what ``evaluate`` prints), ``upgrade_v1(stored)`` (renames in format-1 checkpoints), ``read_inputs(path)`` /
``OUTPUT_FORMATS`` (task-specific files, e.g. CoNLL-U), and ``EXTRA_MODES`` (``{name: Mode}``: e.g. gates,
attention). Its **recipe** (``seqnlp/recipes/<task>.py``, run as ``recipes/<task>.py`` or ``seqnlp train``) is
the training script: config, data, model, train, test, top to bottom.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

# what one input gives back from Predictor.predict, per task (plain data: str, float, list, dict, None)
RESULT_SHAPES = {
    "sentiment": '{"label": str | None, "probs": {label: float} | None}  (None for a text without tokens)',
    "pos_tagging": '{"tokens": [str], "tags": [str]}',
    "translation": '{"translation": str, "nbest": [{"text": str, "score": float}]}',
    "dialogue": '{"reply": str, "nbest": [{"text": str, "score": float}]}',
    "char_generator": '{"prompt": str, "text": str}  (text: the continuation, without the prompt)',
}


@dataclass(frozen=True)
class Mode:
    """A task-specific command (``seqnlp gates --model RUN ...``): ``add_args(parser)``, then
    ``run(predictor, args)``."""

    help: str
    add_args: Callable[[Any], None]
    run: Callable[[Any, Any], Any]


@dataclass(frozen=True)
class Task:
    """A registry entry: a task's name, where its task module and recipe live, and what it is."""

    name: str
    module: str  # the task module, e.g. seqnlp.tasks.sentiment
    recipe: str  # the training script's module, e.g. seqnlp.recipes.sentiment (main(argv) -> exit status)
    shape: str  # the lecture's task shape
    pipeline_tag: str  # the Hugging Face pipeline tag of such a model
    example: str  # one predict input line
    description: str = ""
    modes: tuple[str, ...] = field(default=())  # the task's own commands (its module's EXTRA_MODES)

    @property
    def api(self) -> ModuleType:
        """The task module (imported on first use: ``seqnlp tasks`` and ``--help`` stay fast)."""
        return importlib.import_module(self.module)

    def recipe_main(self) -> Callable[[list[str] | None], int]:
        return importlib.import_module(self.recipe).main


def as_inputs(inputs: Any, what: str = "inputs") -> list:
    """``inputs`` as a list: a bare string is one input; anything but a sequence is a TypeError, and so is an
    element that is not a string (or, where a task takes them, a list of strings), naming its position."""
    if isinstance(inputs, str):
        return [inputs]
    if not isinstance(inputs, Sequence) and not hasattr(inputs, "__iter__"):
        raise TypeError(f"{what}: expected a string or a list of strings, got {type(inputs).__name__}")
    out = list(inputs)
    for i, x in enumerate(out):
        if isinstance(x, str):
            continue
        if isinstance(x, (list, tuple)) and all(isinstance(t, str) for t in x):
            continue
        raise TypeError(f"{what}[{i}]: expected a string, got {type(x).__name__} ({x!r:.40})")
    return out
