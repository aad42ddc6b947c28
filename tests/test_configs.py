"""Every YAML under recipes/configs/: its task, its schema, its header.

``recipes/configs/<task>/*.yaml`` are the presets a user picks (one per dataset or purpose, plus ``smoke.yaml``):
each starts with a comment block holding its own launch command, what it reaches and on what hardware in how long.
``recipes/configs/<task>/experiments/*.yaml`` are one-off variants (ablations, seeds, regularisers, stages): each
is ``base: ../<preset>.yaml`` plus the keys it changes, under a comment saying what it changes and why.
"""

import re
from itertools import takewhile
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from seqnlp.config import load_config, read_yaml_layers
from seqnlp.tasks import TASKS, get_task

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "recipes" / "configs"
ALL = sorted(CONFIGS.rglob("*.yaml"))
PRESETS = [p for p in ALL if p.parent.name != "experiments"]
EXPERIMENTS = [p for p in ALL if p.parent.name == "experiments"]


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def task_dir(path: Path) -> str:
    return path.relative_to(CONFIGS).parts[0]


def ids(path: Path) -> str:
    return path.relative_to(CONFIGS).with_suffix("").as_posix()


def test_layout():
    assert {task_dir(p) for p in ALL} == set(TASKS)
    for task in TASKS:
        assert (CONFIGS / task / "smoke.yaml").is_file()
    for p in ALL:  # presets and experiments only: <task>/NAME.yaml or <task>/experiments/NAME.yaml
        assert len(p.relative_to(CONFIGS).parts) in (2, 3), rel(p)
    # a run's record is named after its config's file name: a preset and an experiment must not share one
    names = [(task_dir(p), p.stem) for p in ALL]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("path", ALL, ids=ids)
def test_config_loads_against_its_tasks_schema(path):
    task = read_yaml_layers(path).get("task")  # an experiment inherits `task:` from its base
    assert task == task_dir(path), f"{rel(path)}: task {task!r} in the folder of {task_dir(path)!r}"
    cfg = load_config(get_task(task).api.Config, path)
    assert cfg.task == task


@pytest.mark.parametrize("path", ALL, ids=ids)
def test_no_recording_keys(path):
    raw = OmegaConf.load(path)  # this file's own keys: recording is the command line's --record PATH
    assert "record" not in raw and "record_name" not in raw, rel(path)


@pytest.mark.parametrize("path", PRESETS, ids=ids)
def test_preset_starts_with_its_launch_command(path):
    block = list(takewhile(lambda line: line.startswith("#"), path.read_text().splitlines()))
    assert block, f"{rel(path)} must start with a comment block"
    command = re.compile(rf"#\s+seqnlp train --config {re.escape(rel(path))}(\s|$)")
    assert command.match(block[0]), f"{rel(path)}: the first line must be `# seqnlp train --config {rel(path)} ...`"
    text = "\n".join(block)
    assert "Reaches:" in text and "Hardware and time:" in text, rel(path)  # what it reaches, where, how long


@pytest.mark.parametrize("path", EXPERIMENTS, ids=ids)
def test_experiment_is_a_preset_plus_changes(path):
    first = path.read_text().splitlines()[0]
    assert first.startswith("# ") and len(first) > 20, f"{rel(path)}: start with a line saying what it changes and why"
    raw = OmegaConf.load(path)
    assert "base" in raw, f"{rel(path)} needs `base: ../<preset>.yaml`"
    seen, here = [path], path
    while "base" in (node := OmegaConf.load(here)):  # the chain of bases ends at a preset of the same task
        here = (here.parent / node["base"]).resolve()
        assert here.is_file() and here not in seen, rel(path)
        seen.append(here)
    assert here.parent == (CONFIGS / task_dir(path)).resolve(), f"{rel(path)}: its base chain must end at a preset"
