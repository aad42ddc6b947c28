"""Typed configs: YAML loaded into dataclasses, unknown keys rejected, dotted overrides.

Each recipe declares its config as nested dataclasses; :func:`load_config` merges the YAML
file and ``key.sub=value`` overrides onto them with OmegaConf's structured configs, which
reject unknown keys and wrong types with a message naming the key.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or override that does not fit the recipe's config schema."""


def load_config(schema: type[T], path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """Build a ``schema`` instance from a YAML file and dotted overrides (``train.lr=1e-3``)."""
    try:
        base = OmegaConf.structured(schema)
        layers = [base]
        if path is not None:
            path = Path(path)
            if not path.is_file():
                raise ConfigError(f"config file not found: {path}")
            layers.append(OmegaConf.load(path))
        if overrides:
            bad = [o for o in overrides if "=" not in o]
            if bad:
                raise ConfigError(f"overrides must look like key.sub=value, got: {bad}")
            layers.append(OmegaConf.from_dotlist(list(overrides)))
        merged = OmegaConf.merge(*layers)
        return OmegaConf.to_object(merged)  # type: ignore[return-value]
    except OmegaConfBaseException as e:
        where = f" in {path}" if path is not None else ""
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
