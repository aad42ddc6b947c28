"""The served model: its predictors (one per parameter set), the limits on inputs, and what ``GET /info`` says.

``parameters`` become dotted overrides of the stored run config (``{"beam_size": 5}`` -> ``search.beam_size=5``,
see :mod:`seqnlp.serve.params`), after the server's own overrides. The empty parameter set is the predictor
the server loaded at start; any other set gets its own predictor, loaded by :func:`seqnlp.runner.load` with
its overrides the first time it is asked for and kept in a small LRU cache (``--max-param-sets``; the least
recently used one is dropped).
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .params import PARAMS, PREFIX

__all__ = ["Limits", "ParameterError", "PredictorPool", "card_metadata", "describe", "truncate"]


class ParameterError(ValueError):
    """A parameter value that the model cannot take; ``field`` names it (``parameters.n_best``)."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True)
class Limits:
    """What one request may hold (the server's command line)."""

    max_input_chars: int = 10_000  # longer inputs are truncated to this many characters (said in the answer)
    max_inputs: int = 1024  # more inputs in one request: 413
    max_body_bytes: int = 8 * 2**20  # a bigger body: 413
    max_chars: int = 10_000  # char generator: at most this many sampled characters per input


def truncate(task: str, inputs: list, limit: int) -> tuple[list, list[int]]:
    """``inputs`` cut to ``limit`` characters each, and the indices of those that were cut.

    A string keeps its first ``limit`` characters; a dialogue context (a list of turns) keeps its *last* turns
    (the ones the model answers) up to ``limit`` characters, the oldest kept turn cut from its start; a token
    list keeps its first tokens up to ``limit`` characters."""
    out, cut = [], []
    for i, x in enumerate(inputs):
        if isinstance(x, str):
            if len(x) > limit:
                x = x[:limit]
                cut.append(i)
        elif sum(len(t) for t in x) > limit:
            cut.append(i)
            items = list(reversed(x)) if task == "dialogue" else list(x)
            kept, left = [], limit
            for t in items:
                if left <= 0:
                    break
                kept.append(t if len(t) <= left else (t[-left:] if task == "dialogue" else t[:left]))
                left -= len(t)
            x = list(reversed(kept)) if task == "dialogue" else kept
        out.append(x)
    return out, cut


class PredictorPool:
    """The base predictor and the predictors of other parameter sets (keys: tuples of overrides).

    ``load(overrides)`` makes a predictor (``seqnlp.runner.load(model, overrides=server_overrides + overrides,
    ...)`` in the server); it is called in the model thread, by :meth:`get`."""

    def __init__(self, base: Any, load: Callable[[list[str]], Any] | None = None, max_sets: int = 4,
                 limits: Limits = Limits(), trim_memory: bool = True):
        self.base = base
        self.trim_memory = trim_memory
        self.task: str = base.config.task
        self.load = load
        self.max_sets = max(0, max_sets)
        self.limits = limits
        self._cache: OrderedDict[tuple[str, ...], Any] = OrderedDict()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------------------ parameters
    def defaults(self) -> dict:
        """The model's value of every parameter the task takes (its run config with the server's overrides)."""
        block = PREFIX.get(self.task)
        if block is None:
            return {}
        cfg = getattr(self.base.config, block)
        return {k: getattr(cfg, k) for k in PARAMS[self.task].model_fields if hasattr(cfg, k)}

    def key(self, params: Any) -> tuple[str, ...]:
        """The overrides of a validated parameter model (``()``: the model's defaults); a
        :class:`ParameterError` for a value that does not fit the model."""
        given = params.model_dump(exclude_none=True)
        if not given:
            return ()
        block = PREFIX[self.task]
        merged = {**self.defaults(), **given}
        if self.task == "char_generator":
            if merged.get("chars", 0) > self.limits.max_chars:
                raise ParameterError("parameters.chars", f"at most {self.limits.max_chars} (the server's --max-chars)")
            conditions = getattr(self.base, "conditions", [])
            if given.get("condition") and given["condition"] not in conditions:
                raise ParameterError("parameters.condition", f"unknown condition {given['condition']!r}; "
                                     f"the model knows {conditions or 'none'}")
        elif merged.get("method") == "beam" and merged.get("n_best", 1) > merged.get("beam_size", 1):
            raise ParameterError("parameters.n_best", f"at most beam_size ({merged['beam_size']}) in beam search")
        if self.max_sets == 0 or self.load is None:
            raise ParameterError("parameters", "this server takes no parameters (started with --max-param-sets 0)")
        return tuple(f"{block}.{k}={json.dumps(v) if isinstance(v, str) else v}" for k, v in sorted(given.items()))

    def solo(self, key: tuple[str, ...]) -> bool:
        """Whether requests of ``key`` must run on their own (their results depend on their batch mates)."""
        if self.task == "char_generator":
            return True  # the k-th prompt of a call is sampled with seed + k
        if self.task in ("translation", "dialogue"):
            return self._method(key) == "sample"  # one generator per call
        return False

    def can_stream(self) -> bool:
        """Whether the model can take inputs into a running search (translation and dialogue models)."""
        return self.task in ("translation", "dialogue") and hasattr(self.base, "stream")

    def streams(self, key: tuple[str, ...]) -> bool:
        """Whether requests of ``key`` join a running search instead of waiting for a batch (continuous batching,
        :mod:`seqnlp.serve.loop`): beam search of translation and dialogue models."""
        return self.can_stream() and self._method(key) == "beam"

    def _method(self, key: tuple[str, ...]) -> str:
        """The search method of a seq2seq parameter set."""
        method = next((o.split("=", 1)[1].strip('"') for o in key if o.startswith("search.method=")), None)
        return method or self.base.config.search.method

    # ------------------------------------------------------------------------------------------ predictors
    def get(self, key: tuple[str, ...]) -> Any:
        """The predictor of ``key`` (model thread only: loading one reads the checkpoint)."""
        if not key:
            return self.base
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        assert self.load is not None
        pred = self.load(list(key))
        with self._lock:
            self._cache[key] = pred
            while len(self._cache) > self.max_sets:
                self._cache.popitem(last=False)
        return pred

    def predict(self, key: tuple[str, ...], inputs: list) -> list[dict]:
        try:
            return self.get(key).predict(inputs, progress=False)
        finally:
            if self.trim_memory:  # the heap's free pages back to the system: RSS follows the live memory
                from ..train.device import release_freed_memory

                release_freed_memory()

    def cached(self) -> int:
        return len(self._cache)


# ---------------------------------------------------------------------------------------------------- /info
def card_metadata(ckpt: Path, model: str = "") -> dict:
    """The YAML front matter of the model card: the ``README.md`` next to the checkpoint (a Hub download), in
    its ``checkpoints/`` folder or its run folder; else the card ``seqnlp push`` would write for it
    (:func:`seqnlp.card.model_card`); ``{}`` when neither can be read."""
    for folder in (ckpt, ckpt.parent, ckpt.parent.parent):
        card = folder / "README.md"
        if card.is_file():
            return _front_matter(card.read_text(encoding="utf-8", errors="replace"))
    try:
        from ..card import model_card

        repo_id = model if model.count("/") == 1 and not Path(model).exists() else f"local/{Path(model).name}"
        return _front_matter(model_card(ckpt, repo_id=repo_id))
    except Exception:  # noqa: BLE001  (a card is a nicety: /info answers without one)
        return {}


def _front_matter(text: str) -> dict:
    import yaml

    if not text.startswith("---"):
        return {}
    end = text.find("\n---", 3)
    try:
        meta = yaml.safe_load(text[3:end]) if end > 0 else None
    except yaml.YAMLError:
        return {}
    return _plain(meta) if isinstance(meta, dict) else {}


def _plain(x: Any) -> Any:
    """JSON-safe data (YAML dates and the like as strings, non-finite floats as None)."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if x is None or isinstance(x, (str, int, bool)):
        return x
    return str(x)


def _metrics(ckpt: Path) -> dict:
    """The scalar test metrics of the run (``metrics.json`` of the run directory), or ``{}``."""
    for folder in (ckpt.parent.parent, ckpt.parent, ckpt):
        f = folder / "metrics.json"
        if f.is_file():
            try:
                m = json.loads(f.read_text())
            except (OSError, json.JSONDecodeError):
                return {}
            return {k: v for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
                    and math.isfinite(v)} if isinstance(m, dict) else {}
    return {}


def describe(pool: PredictorPool, model: str, batching: dict) -> dict:
    """What ``GET /info`` returns: the task, what the model knows (labels, tags, languages, conditions), the
    parameters with their defaults, the limits, the batching settings and the model card's metadata."""
    from ..tasks import get_task
    from ..train import checkpoint as ck

    p = pool.base
    cfg = p.config
    task = get_task(pool.task)
    ckpt = Path(p.checkpoint)
    try:
        stored = ck.read_stored(ckpt)
        data = stored.data
    except ck.CheckpointError:
        data = {}
    info: dict[str, Any] = {
        "task": task.name, "pipeline_tag": task.pipeline_tag, "shape": task.shape, "description": task.description,
        "example": task.example, "model": model, "checkpoint": str(ckpt),
    }
    if task.name == "sentiment":
        info["labels"] = list(getattr(p, "labels", None) or data.get("labels", []))
    elif task.name == "pos_tagging":
        info["tags"] = list(data.get("tags", []))
        info["tag_field"] = data.get("tag_field")
    elif task.name == "translation":
        info["languages"] = {"source": cfg.data.src_lang, "target": cfg.data.tgt_lang}
    elif task.name == "dialogue":
        info["context_turns"] = cfg.data.context_turns
        info["turn_separator"] = "__eou__"
    elif task.name == "char_generator":
        info["conditions"] = list(getattr(p, "conditions", []))
    params = PARAMS[task.name].model_json_schema().get("properties", {})
    defaults = pool.defaults()
    info["parameters"] = {k: {"default": _plain(defaults.get(k)), **_schema(v)} for k, v in params.items()}
    lim = pool.limits
    info["limits"] = {"max_input_chars": lim.max_input_chars, "max_inputs": lim.max_inputs,
                      "max_body_bytes": lim.max_body_bytes, "max_param_sets": pool.max_sets,
                      **({"max_chars": lim.max_chars} if task.name == "char_generator" else {})}
    info["batching"] = batching
    info["infer_precision"] = cfg.infer_precision
    info["device"] = str(getattr(p, "device", "cpu"))
    info["metrics"] = _metrics(ckpt)
    info["card"] = card_metadata(ckpt, model)
    return info


def _schema(prop: dict) -> dict:
    """A parameter's JSON schema in short: its type, allowed values and bounds."""
    alts = prop.get("anyOf", [prop])
    out: dict[str, Any] = {}
    for a in alts:
        if a.get("type") == "null":
            continue
        out["type"] = a.get("type", "string")
        for k in ("enum", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "maxLength"):
            if k in a:
                out[k] = a[k]
    if "description" in prop:
        out["description"] = prop["description"]
    return out
