"""The task registry: the one list of tasks. The command line, :func:`seqnlp.load`, the runner, the tests
(and later serving and export) read it; adding a task means adding its entry here, its task module, its recipe,
its configs and its tests. See :mod:`seqnlp.tasks.base` for what a task module provides."""

from __future__ import annotations

from .base import Mode, Task, as_inputs

TASKS: dict[str, Task] = {t.name: t for t in (
    Task("sentiment", "seqnlp.tasks.sentiment", "seqnlp.recipes.sentiment", shape="many-to-one",
         pipeline_tag="text-classification", example="a gorgeous , witty , seductive movie .",
         description="text classification: embeddings -> BiLSTM -> pooling -> softmax"),
    Task("pos_tagging", "seqnlp.tasks.pos_tagging", "seqnlp.recipes.pos_tagging",
         shape="synchronized many-to-many", pipeline_tag="token-classification", example="I saw her duck .",
         description="one tag per word: word + char features -> BiLSTM -> softmax or CRF"),
    Task("translation", "seqnlp.tasks.translation", "seqnlp.recipes.translation", shape="many-to-many",
         pipeline_tag="translation", example="Ein Hund rennt über die Wiese .",
         description="BiLSTM encoder -> attention LSTM decoder on subwords; greedy / beam / sampling",
         modes=("attention",)),
    Task("dialogue", "seqnlp.tasks.dialogue", "seqnlp.recipes.dialogue", shape="many-to-many",
         pipeline_tag="text-generation", example="Hi , how are you ? __eou__ Fine , thanks . And you ?",
         description="the seq2seq model answering the last k turns (turns separated by __eou__)"),
    Task("char_generator", "seqnlp.tasks.char_generator", "seqnlp.recipes.char_generator", shape="one-to-many",
         pipeline_tag="text-generation", example="ROMEO:",
         description="char-level LSTM / Elman RNN / window LM continuing a prompt", modes=("gates",)),
)}  # fmt: skip


def get_task(name: str) -> Task:
    """The registry entry of ``name``; an unknown name is a ValueError listing the known ones."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}") from None


__all__ = ["TASKS", "Mode", "Task", "as_inputs", "get_task"]
