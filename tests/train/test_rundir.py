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
