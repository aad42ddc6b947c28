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
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, TypeVar

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or override that does not fit the recipe's config schema."""


BASE_KEY = "base"  # a YAML file's `base: PATH`: the file it starts from (not a config key)


def _read_layers(path: Path, chain: tuple[Path, ...] = ()) -> list[tuple[Path, DictConfig]]:
    """``path``'s YAML and those of its bases, the deepest base first, each without its ``base`` key."""
    if path.resolve() in [p.resolve() for p in chain]:
        raise ConfigError("config files form a cycle of `base:` keys: " + " -> ".join(map(str, (*chain, path))))
    if not path.is_file():
        named = f" (the base of {chain[-1]})" if chain else ""
        raise ConfigError(f"config file not found: {path}{named}")
    try:
        node = OmegaConf.load(path)
    except (OmegaConfBaseException, yaml.YAMLError) as e:
        raise ConfigError(f"bad config in {path}: {e}") from None
    if not isinstance(node, DictConfig):
        raise ConfigError(f"bad config in {path}: the file must hold a mapping of keys, not {type(node).__name__}")
    layers: list[tuple[Path, DictConfig]] = []
    if BASE_KEY in node:
        base = node.pop(BASE_KEY)
        if not isinstance(base, str) or not base:
            raise ConfigError(f"bad config in {path}: `{BASE_KEY}:` must be the path of a YAML file, got {base!r}")
        layers = _read_layers(path.parent / base, (*chain, path))
    layers.append((path, node))
    return layers


def _named(path: Path, top: Path) -> str:
    return str(path) if path == top else f"{path} (a base of {top})"


def read_yaml_layers(path: str | Path) -> DictConfig:
    """The YAML of ``path`` merged over its ``base:`` chain, without a schema (no defaults, no checks)."""
    path = Path(path)
    layers = _read_layers(path)
    try:
        return OmegaConf.merge(*(node for _, node in layers))  # type: ignore[return-value]
    except OmegaConfBaseException as e:
        raise ConfigError(f"bad config in {path}: {e}") from None


def load_config(schema: type[T], path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """Build a ``schema`` instance from a YAML file (over its ``base:`` chain) and dotted overrides
    (``train.lr=1e-3``), merged in that order onto the schema's defaults."""
    where = ""
    try:
        merged = OmegaConf.structured(schema)
        if path is not None:
            path = Path(path)
            for layer, node in _read_layers(path):
                where = f" in {_named(layer, path)}"
                merged = OmegaConf.merge(merged, node)
        if overrides:
            bad = [o for o in overrides if "=" not in o]
            if bad:
                raise ConfigError(f"overrides must look like key.sub=value, got: {bad}")
            where = " in the command-line overrides" if path is None else f" in the overrides of {path}"
            merged = OmegaConf.merge(merged, OmegaConf.from_dotlist(list(overrides)))
        where = f" in {path}" if path is not None else ""
        return OmegaConf.to_object(merged)  # type: ignore[return-value]
    except OmegaConfBaseException as e:
        raise ConfigError(f"bad config{where}: {e}") from None


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
