"""Run records: ``result.json`` names the commit the run started from."""

import json

from seqnlp.tasks import get_task
from seqnlp.train import rundir


def test_the_record_names_the_commit_at_the_start_of_the_run(tmp_path, monkeypatch):
    commits = iter(["aaaa", "bbbb+dirty"])  # the tree changes while the run trains
    monkeypatch.setattr(rundir, "git_commit", lambda: next(commits))
    cfg = get_task("sentiment").api.Config()
    cfg.output_dir = str(tmp_path / "run")
    out = rundir.prepare_run(cfg)
    rec = rundir.record_result("sentiment", None, out, {"accuracy": 0.5}, 1.0)
    assert rec["commit"] == "aaaa"
    assert json.loads((out / "result.json").read_text())["commit"] == "aaaa"


def test_records_name_paths_inside_the_repository_relative_to_it(tmp_path):
    rec = {"command": f"python b.py --out {tmp_path}/results/x.json --data /data/set", "n": 3,
           "runs": [f"{tmp_path}/runs/a", "runs/b"]}
    assert rundir.portable(rec, tmp_path) == {"command": "python b.py --out results/x.json --data /data/set", "n": 3,
                                              "runs": ["runs/a", "runs/b"]}


def test_no_committed_record_names_this_checkout(request):
    """Every file under results/ is free of the absolute path of the checkout it lives in."""
    from pathlib import Path

    root = Path(request.config.rootpath)
    prefix = str(root) + "/"
    found = [str(p.relative_to(root)) for p in (root / "results").rglob("*")
             if p.is_file() and prefix in p.read_text(errors="replace")]
    assert not found, found
