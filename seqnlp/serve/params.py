"""The request bodies and the per-task ``parameters`` of ``POST /predict``, as pydantic models.

Every model forbids unknown fields, so that a misspelt field or a parameter the task does not take is a 422
naming it. A parameter is a key of the stored run config that the runner already knows (``seqnlp predict
--model RUN search.beam_size=10``): translation and dialogue take ``search.*``, the char generator
``sample.*``; sentiment and POS tagging take none. A parameter left out keeps the model's own value (its run
config with the server's overrides). Requests with different parameters are never batched together: each
parameter set has its own predictor (see :mod:`seqnlp.serve.models`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["OPENNMT_ITEM", "PARAMS", "PREFIX", "CharParams", "NoParams", "OpenNMTItem", "SearchParams",
           "check_inputs", "request_model"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class NoParams(_Strict):
    """Sentiment and POS tagging: no parameters."""


class SearchParams(_Strict):
    """Translation and dialogue: how to decode (``search.*``)."""

    method: Literal["greedy", "beam", "sample"] | None = None
    beam_size: int | None = Field(None, ge=1, le=64)
    n_best: int | None = Field(None, ge=1, le=64, description="hypotheses per input (beam: at most beam_size)")
    length_penalty: float | None = Field(None, ge=0.0, le=5.0)
    max_output_len: int | None = Field(None, ge=1, le=1000)
    no_repeat_ngram_size: int | None = Field(None, ge=0, le=10)
    temperature: float | None = Field(None, gt=0.0, le=10.0)
    top_k: int | None = Field(None, ge=0, le=100_000)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    seed: int | None = Field(None, ge=0, le=2**31 - 1)


class CharParams(_Strict):
    """The char generator: how to sample (``sample.*``)."""

    chars: int | None = Field(None, ge=1, description="characters to sample (at most the server's --max-chars)")
    temperature: float | None = Field(None, gt=0.0, le=10.0)
    top_k: int | None = Field(None, ge=0, le=100_000)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    condition: str | None = Field(None, max_length=200)


PARAMS: dict[str, type[_Strict]] = {"sentiment": NoParams, "pos_tagging": NoParams, "translation": SearchParams,
                                    "dialogue": SearchParams, "char_generator": CharParams}
PREFIX = {"translation": "search", "dialogue": "search", "char_generator": "sample"}  # run-config block

# what one input is, per task (checked by check_inputs, so that the message says what the task wants)
INPUT_KINDS = {
    "sentiment": ("str", "a string (a text)"),
    "pos_tagging": ("str|tokens", "a string (a sentence, split at white space) or a list of token strings"),
    "translation": ("str", "a string (a sentence)"),
    "dialogue": ("str|tokens", "a list of turn strings, oldest first, or a string of turns separated by __eou__"),
    "char_generator": ("str", "a string (a prompt; may be empty)"),
}


def check_inputs(task: str, inputs: list) -> list:
    """``inputs`` as the task takes them; a ValueError naming ``inputs[i]`` for an element of the wrong type."""
    kind, what = INPUT_KINDS[task]
    for i, x in enumerate(inputs):
        if isinstance(x, str):
            continue
        if kind == "str|tokens" and isinstance(x, list) and all(isinstance(t, str) for t in x):
            continue
        got = type(x).__name__ if not isinstance(x, list) else "a list with a non-string element"
        raise ValueError(f"inputs[{i}]: expected {what}, got {got}")
    return inputs


def request_model(task: str) -> type[BaseModel]:
    """The ``POST /predict`` body of ``task``: ``{"inputs": [...], "parameters": {...}}``."""
    params = PARAMS[task]

    class PredictRequest(_Strict):
        inputs: list[Any] = Field(..., min_length=1, description=INPUT_KINDS[task][1] + ", one per input")
        parameters: params = Field(default_factory=params)  # type: ignore[valid-type]

        @field_validator("inputs")
        @classmethod
        def _kinds(cls, v: list) -> list:
            return check_inputs(task, v)

    PredictRequest.__name__ = PredictRequest.__qualname__ = f"{''.join(w.title() for w in task.split('_'))}Request"
    return PredictRequest


class OpenNMTItem(BaseModel):
    """One element of OpenNMT-py's ``POST /translator/translate`` body: ``{"src": "...", "id": 100}``."""

    model_config = ConfigDict(extra="forbid", strict=True)
    src: str
    id: int | str | None = None  # OpenNMT-py's model id; this server has one model and accepts any
    ref: str | None = None  # a reference translation: OpenNMT-py scores it; accepted and ignored here


OPENNMT_ITEM = OpenNMTItem
