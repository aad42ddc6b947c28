"""Typed configs: YAML loaded into dataclasses, unknown keys rejected, dotted overrides.

Each recipe declares its config as nested dataclasses; :func:`load_config` merges the YAML
file and ``key.sub=value`` overrides onto them with OmegaConf's structured configs, which
reject unknown keys and wrong types with a message naming the key and the file.

A YAML file may start from another one: a top-level ``base: PATH`` (relative to the file's own
directory) is read first, recursively (a base may have a base), and the file's own keys are merged
on top of it, so an experiment says only what it changes::

    # recipes/configs/translation/experiments/multi30k_de_en_45min_d30.yaml
    base: ../multi30k_de_en_45min.yaml
    model: {dropout: 0.3, emb_dropout: 0.3}

``base`` itself is not a config key. :func:`read_yaml_layers` gives the merged YAML without a schema
(e.g. to read the ``task:`` a file inherits from its base).

Every problem is a :class:`ConfigError` naming the file, and the line where the file says where: a file that
is not text, not YAML, empty, or not a mapping of keys; a directory; an unknown key or a value of the wrong
type; a config of another task (``load_config(..., task=...)``). :func:`check_choice` and
:func:`check_choices` check the enumerated values of a loaded config (``model.cell``, ``train.optimizer``, ...)
with one message shape: ``model.cell must be one of lstm | gru | rnn, got 'lstn'``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or override that does not fit the recipe's config schema."""


BASE_KEY = "base"  # a YAML file's `base: PATH`: the file it starts from (not a config key)


def _read_layers(path: Path, chain: tuple[Path, ...] = ()) -> list[tuple[Path, DictConfig, yaml.Node]]:
    """``path``'s YAML and those of its bases, the deepest base first, each without its ``base`` key (and with
    its YAML node tree, which knows the line of every key)."""
    if path.resolve() in [p.resolve() for p in chain]:
        raise ConfigError("config files form a cycle of `base:` keys: " + " -> ".join(map(str, (*chain, path))))
    named = f" (the base of {chain[-1]})" if chain else ""
    node, tree = _read_yaml(path, named)
    layers: list[tuple[Path, DictConfig, yaml.Node]] = []
    if BASE_KEY in node:
        base = node.pop(BASE_KEY)
        if not isinstance(base, str) or not base:
            line = _key_line(tree, BASE_KEY)
            raise ConfigError(f"bad config in {_at(path, line)}: `{BASE_KEY}:` must be the path of a YAML file, "
                              f"got {base!r}")
        layers = _read_layers(path.parent / base, (*chain, path))
    layers.append((path, node, tree))
    return layers


def _read_yaml(path: Path, named: str = "") -> tuple[DictConfig, yaml.Node]:
    """The mapping of keys that the YAML file ``path`` holds, and its node tree; anything else (no such file, a
    directory, bytes that are not text, malformed YAML, an empty file, a list or a sentence) is a ConfigError
    naming the file and, where it can, the line."""
    if path.is_dir():
        raise ConfigError(f"{path}{named} is a directory, not a config file (give a YAML file: --config FILE.yaml)")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}{named}") from None
    except OSError as e:
        raise ConfigError(f"cannot read the config file {path}{named}: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}{named}: not a YAML config file: byte 0x{raw[e.start]:02x} is not UTF-8 "
                          f"text ({e.reason})") from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise ConfigError(f"{path}:{line}{named}: not a YAML config file: it holds NUL bytes (a binary file?)")
    try:
        tree = yaml.compose(text, Loader=yaml.SafeLoader)
        if tree is None:
            raise ConfigError(f"{path}{named} is empty: a config file holds `key: value` lines (task: ..., "
                              f"output_dir: ..., model: {{...}})")
        if not isinstance(tree, yaml.MappingNode):
            kind = "a list" if isinstance(tree, yaml.SequenceNode) else "a single value"
            value = f" ({tree.value!r:.60})" if isinstance(tree, yaml.ScalarNode) else ""
            raise ConfigError(f"{_at(path, tree.start_mark.line + 1)}{named}: not a config: a config file holds "
                              f"`key: value` lines, this one holds {kind}{value}")
        node = OmegaConf.create(text)  # OmegaConf's own YAML reading (its float syntax, duplicate keys refused)
    except yaml.YAMLError as e:
        raise ConfigError(f"{_yaml_message(path, e)}{named}") from None
    except OmegaConfBaseException as e:
        raise ConfigError(f"bad config in {path}{named}: {e}") from None
    if not isinstance(node, DictConfig):  # pragma: no cover (a mapping node always gives a DictConfig)
        raise ConfigError(f"{path}{named}: not a config: a config file holds `key: value` lines")
    return node, tree


def _yaml_message(path: Path, e: yaml.YAMLError) -> str:
    """``PATH:LINE:COLUMN: malformed YAML: what (context at line N)`` from a YAML error's marks."""
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    if mark is None:
        return f"{path}: malformed YAML: {e}"
    problem = getattr(e, "problem", None) or str(e)
    context, cmark = getattr(e, "context", None), getattr(e, "context_mark", None)
    where = f" ({context}, line {cmark.line + 1})" if context and cmark is not None and cmark is not mark else (
        f" ({context})" if context else "")
    return f"{path}:{mark.line + 1}:{mark.column + 1}: malformed YAML: {problem}{where}"


def _at(path: Path, line: int | None) -> str:
    return f"{path}:{line}" if line else str(path)


def _key_line(tree: yaml.Node | None, dotted: str | None) -> int | None:
    """The 1-based line of the dotted key ``dotted`` (its deepest part the file has) in a YAML node tree."""
    if tree is None or not dotted:
        return None
    line, node = None, tree
    for part in str(dotted).replace("[", ".").replace("]", "").split("."):
        if isinstance(node, yaml.MappingNode):
            hit = next(((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == part), None)
            if hit is None:
                break
            line, node = hit[0].start_mark.line + 1, hit[1]
        elif isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
            node = node.value[int(part)]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _named(path: Path, top: Path, line: int | None = None) -> str:
    return _at(path, line) if path == top else f"{_at(path, line)} (a base of {top})"


def read_yaml_layers(path: str | Path) -> DictConfig:
    """The YAML of ``path`` merged over its ``base:`` chain, without a schema (no defaults, no checks)."""
    path = Path(path)
    layers = _read_layers(path)
    try:
        return OmegaConf.merge(*(node for _, node, _ in layers))  # type: ignore[return-value]
    except OmegaConfBaseException as e:
        raise ConfigError(f"bad config in {path}: {e}") from None


def load_config(schema: type[T], path: str | Path | None = None, overrides: list[str] | None = None, *,
                task: str | None = None) -> T:
    """Build a ``schema`` instance from a YAML file (over its ``base:`` chain) and dotted overrides
    (``train.lr=1e-3``), merged in that order onto the schema's defaults.

    ``task``: the task the config must be for; a file (or base, or override) that sets another ``task:`` is a
    ConfigError: ``PATH is a config for task 'sentiment', not 'pos_tagging'``."""
    where, at = "", None  # at: the file being merged and its YAML nodes (for the line of a bad key)
    try:
        merged = OmegaConf.structured(schema)
        if path is not None:
            path = Path(path)
            layers = _read_layers(path)
            said = [(layer, node.get("task")) for layer, node, _ in layers if "task" in node]  # the last one counts
            if task is not None and said and said[-1][1] != task:
                layer, theirs = said[-1]
                base = f" (`task: {theirs}` in its base {layer})" if layer != path else ""
                raise ConfigError(f"{path} is a config for task {theirs!r}, not {task!r}{base}: train it with "
                                  f"`seqnlp train --config {path}` (or recipes/{theirs}.py)")
            for layer, node, tree in layers:
                where, at = f" in {_named(layer, path)}", (layer, tree)
                merged = OmegaConf.merge(merged, node)
            at = None
        if overrides:
            bad = [o for o in overrides if "=" not in o]
            if bad:
                raise ConfigError(f"overrides must look like key.sub=value, got: {bad}")
            where = " in the command-line overrides" if path is None else f" in the overrides of {path}"
            dotlist = OmegaConf.from_dotlist(list(overrides))
            if task is not None and "task" in dotlist and dotlist.task != task:
                raise ConfigError(f"the override task={dotlist.task} names another task than this config's, "
                                  f"{task!r}")
            merged = OmegaConf.merge(merged, dotlist)
        where = "" if path is None else f" in {path}" + (" and its overrides" if overrides else "")
        return OmegaConf.to_object(merged)  # type: ignore[return-value]
    except OmegaConfBaseException as e:
        if at is not None:  # the error is in a file: say the line of the key it names
            layer, tree = at
            where = f" in {_named(layer, path, _key_line(tree, getattr(e, 'full_key', None)))}"
        raise ConfigError(f"bad config{where}: {e}") from None
    except ConfigError:
        raise
    except ValueError as e:  # a dataclass's own check (__post_init__), e.g. search.method
        raise ConfigError(f"bad config{where}: {e}") from None


def check_choice(value: Any, allowed: Collection, key: str, also: Collection = ()) -> None:
    """A ConfigError ``KEY must be one of a | b | c, got 'x'`` unless ``value`` is one of ``allowed`` (or of
    ``also``: old spellings still taken, not advertised)."""
    if value not in allowed and value not in also:
        raise ConfigError(f"{key} must be one of {' | '.join(map(str, allowed))}, got {value!r}")


def check_choices(cfg: Any, choices: Mapping[str, Collection], prefix: str = "") -> None:
    """:func:`check_choice` for every dotted key of ``choices`` (relative to ``cfg``; ``prefix`` names ``cfg``
    in the messages, e.g. ``train``): ``check_choices(cfg, {"model.cell": CELLS, "data.format": FORMATS})``."""
    for key, allowed in choices.items():
        value = cfg
        for part in key.split("."):
            value = getattr(value, part)
        check_choice(value, allowed, f"{prefix}.{key}" if prefix else key)


def check_fraction(value: Any, key: str, *, whole: bool = False) -> None:
    """A ConfigError unless ``value`` is a fraction in (0, 1) -- or, with ``whole``, also a whole number >= 1
    (a count of examples)."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    ok = number and (0 < value < 1 or (whole and value >= 1 and float(value).is_integer()))
    if not ok:
        allowed = "a fraction in (0, 1) or a whole number of examples (>= 1)" if whole else "a fraction in (0, 1)"
        raise ConfigError(f"{key} must be {allowed}, got {value!r}")


# The enumerated options of the training loop (``train.*`` of every task; seqnlp.train.optim, .loop, .device).
TRAIN_CHOICES: dict[str, tuple[str, ...]] = {
    "optimizer": ("adamw", "adam", "sgd"),
    "scheduler": ("constant", "linear", "cosine", "plateau", "inverse_sqrt"),
    "decay_over": ("steps", "time"),
    "eval_mode": ("min", "max"),
    "nan_policy": ("stop", "skip"),
    "precision": ("auto", "fp32", "bf16", "fp16"),
}
INFER_PRECISIONS = ("fp32", "bf16", "fp16", "auto")  # a task config's infer_precision
_OLD_PRECISIONS = ("none",)  # fp32, as older run configs say (seqnlp.train.device.pick_dtype takes it)


def check_parsed(parse: Any, value: Any, key: str) -> None:
    """``parse(value)``, its ValueError a ConfigError ``KEY: why`` (for values with a syntax, e.g. ``max+final``)."""
    try:
        parse(value)
    except ValueError as e:
        raise ConfigError(f"{key}: {e}") from None


def check_run(cfg: Any) -> None:
    """The blocks every task's config has (:mod:`seqnlp.tasks.base`): ``infer_precision`` and ``train``."""
    check_choice(cfg.infer_precision, INFER_PRECISIONS, "infer_precision", also=_OLD_PRECISIONS)
    check_train_config(cfg.train)


def check_train_config(t: Any, key: str = "train") -> None:
    """The enumerated options of a training-loop block (:data:`TRAIN_CHOICES`) and its ``device`` (auto | cpu |
    cuda | cuda:N | mps)."""
    for name, allowed in TRAIN_CHOICES.items():
        check_choice(getattr(t, name), allowed, f"{key}.{name}", also=_OLD_PRECISIONS if name == "precision" else ())
    device = str(t.device)
    head, _, index = device.partition(":")
    if head not in ("auto", "cpu", "cuda", "mps") or (index and not (head == "cuda" and index.isdigit())):
        raise ConfigError(f"{key}.device must be one of auto | cpu | cuda | cuda:N | mps, got {device!r}")


def to_dict(cfg: Any) -> dict:
    """A plain, JSON-serialisable dict of a dataclass config."""
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=str))


def from_dict(schema: type[T], data: dict) -> T:
    """Rebuild a dataclass config from :func:`to_dict` output (ignores nothing; validates types)."""
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), data))  # type: ignore
    except OmegaConfBaseException as e:
        raise ConfigError(f"bad stored config: {e}") from None


def save_config(cfg: Any, path: str | Path) -> None:
    """Write the resolved config as YAML (``config.yaml`` in a run directory)."""
    Path(path).write_text(OmegaConf.to_yaml(OmegaConf.structured(cfg)))
