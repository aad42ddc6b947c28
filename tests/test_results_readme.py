"""results/README.md and results/headline.json: generated from the run records, every number read from them.

Regenerates both into a temporary folder with ``benchmarks/results_readme.py`` and checks them against the
records (independently of the generator's formatting code) and against the committed copies.
"""

import importlib.util
import json
import shutil
import statistics
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
TASKS = ("sentiment", "pos_tagging", "translation", "dialogue", "char_generator")


def load_generator():
    spec = importlib.util.spec_from_file_location("results_readme", ROOT / "benchmarks" / "results_readme.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


gen = load_generator()


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("results_readme")
    assert gen.main(["--results", str(RESULTS), "--out", str(out)]) == 0
    return out


def rows(readme: str) -> dict[str, list[str]]:
    """The headline table: name -> its cells."""
    out = {}
    for line in readme.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            out[cells[0].strip("`")] = cells
    return out


def value(rec: dict, key: str):
    node = rec["metrics"] if key.split(".")[0] in rec.get("metrics", {}) else rec
    for part in key.split("."):
        node = node[part]
    return node


def shown(kind: str, v: float) -> str:
    return {"percent": f"{v * 100:.2f}", "ratio": f"{v:.2f}×", "loss": f"{v:.4f}"}.get(kind, f"{v:.2f}")


def test_headline_json_points_at_existing_headline_records(generated):
    mapping = json.loads((generated / "headline.json").read_text())
    assert mapping, "no headlines"
    assert set(mapping) == {h.name for h in gen.HEADLINES}
    for name, records in mapping.items():
        assert name.split("/")[0] in TASKS and records, name
        for r in records:
            assert (RESULTS / r).is_file(), f"{name}: {r} missing"
            assert "/experiments/" not in r, f"{name}: a headline record belongs in results/<task>/, not {r}"
            rec = json.loads((RESULTS / r).read_text())
            assert "metrics" in rec or "train_speedup" in rec, r
    for h in gen.HEADLINES:
        assert (ROOT / h.config).is_file(), f"{h.name}: config {h.config} missing"
        assert all((RESULTS / i).is_file() for i in h.inputs), h.name


def test_every_top_level_record_is_a_headline_or_an_input(generated):
    """results/<task>/*.json are the records behind headlines; everything else is in results/<task>/experiments/."""
    mapping = json.loads((generated / "headline.json").read_text())
    used = {r for records in mapping.values() for r in records} | {i for h in gen.HEADLINES for i in h.inputs}
    for task in TASKS:
        for f in sorted((RESULTS / task).glob("*.json")):
            rel = f.relative_to(RESULTS).as_posix()
            assert rel in used, f"{rel} backs no headline: move it to results/{task}/experiments/"


def test_readme_rows_equal_the_records(generated):
    table = rows((generated / "README.md").read_text())
    assert set(table) == {h.name for h in gen.HEADLINES}
    for h in gen.HEADLINES:
        cells = table[h.name]
        result, records_cell = cells[2], cells[-1]
        recs = [json.loads((RESULTS / r).read_text()) for r in h.records]
        for i, m in enumerate(h.metrics):
            values = [value(r, m.key) for r in recs]
            if len(values) > 1:
                mean, std = statistics.fmean(values), statistics.stdev(values)
                expected = f"{shown(m.kind, mean)} ± {shown(m.kind, std)} ({len(values)} seeds)"
            else:
                expected = shown(m.kind, values[0])
                if h.std_key and i == 0:
                    expected += f" ± {shown(m.kind, recs[0]['metrics'][h.std_key])}"
            assert expected in result, f"{h.name}: {m.key} should read {expected!r}, row says {result!r}"
        machines = {r["machine"] for r in recs if r.get("machine")}
        assert all(mach in cells[4] for mach in machines), h.name
        walls = [r["wall_seconds"] for r in recs if "wall_seconds" in r]
        if walls:
            assert f"{min(walls):.0f}" in cells[5] and f"{max(walls):.0f}" in cells[5], h.name
        finished = [r["finished"] for r in recs if r.get("finished")]
        if finished:
            assert cells[7] == max(finished), h.name
        for r in h.records:
            assert f"]({r})" in records_cell, f"{h.name}: no link to {r}"


def test_committed_files_are_the_generated_ones(generated):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("dates of records without a finish time come from git")
    for name in ("README.md", "headline.json"):
        assert (RESULTS / name).read_text() == (generated / name).read_text(), (
            f"results/{name} is stale: run python benchmarks/results_readme.py")
