"""Sharing on the Hugging Face Hub: ``seqnlp push`` lays out a repo folder with a generated model card, and
``seqnlp.load("user/name")`` / ``--model user/name`` load it back through ``huggingface_hub.snapshot_download``
-- the one network boundary, stubbed here to serve the pushed folder (and ``HfApi``'s upload calls, recorded).

For every task of the registry: push --local-dir of its smoke run -> no training state, a card whose front
matter parses as YAML and carries the metric values of metrics.json -> load by hub id (and @revision) predicts
exactly what the run directory predicts, in Python, with ``seqnlp predict`` and with the card's own snippets.
"""

from __future__ import annotations

import io
import json
import re
import shlex
import shutil
import sys
from pathlib import Path

import huggingface_hub
import pytest
import yaml
from huggingface_hub import errors

import seqnlp
from seqnlp.cli import main
from seqnlp.hub import cache_dir, parse_hub_id
from seqnlp.tasks import TASKS
from seqnlp.train.checkpoint import CheckpointError

FAST = {"char_generator": ["sample.chars=20"]}  # keep sampling short
PRIMARY = {  # a metric of each task's metrics.json that the card's model-index must carry, with its type
    "sentiment": ("accuracy", "accuracy"),
    "pos_tagging": ("accuracy", "accuracy"),
    "translation": ("bleu", "bleu"),
    "dialogue": ("perplexity.subword", "perplexity"),
    "char_generator": ("bits_per_char", "bits-per-character"),
}


def test_every_task_is_covered():
    assert set(PRIMARY) == set(TASKS)


class FakeHub:
    """``huggingface_hub.snapshot_download`` serving local folders: ``serve(repo_id, folder)``; records calls."""

    def __init__(self):
        self.repos: dict[str, Path] = {}
        self.calls: list[dict] = []
        self.error: Exception | None = None

    def serve(self, repo_id: str, folder: Path) -> None:
        self.repos[repo_id] = Path(folder)

    def __call__(self, repo_id, *, revision=None, allow_patterns=None, **kwargs):
        self.calls.append({"repo_id": repo_id, "revision": revision, "allow_patterns": allow_patterns, **kwargs})
        if self.error is not None:
            raise self.error
        if repo_id not in self.repos:
            raise AssertionError(f"the test serves no repo {repo_id!r}")
        return str(self.repos[repo_id])


@pytest.fixture
def hub(monkeypatch):
    fake = FakeHub()
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)  # where seqnlp.hub looks it up
    return fake


def _stdin(monkeypatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode()), encoding="utf-8"))


def _get(d, dotted):
    for k in dotted.split("."):
        d = d[k]
    return d


def front_matter(card: str) -> dict:
    m = re.match(r"---\n(.*?)\n---\n", card, re.S)
    assert m, card[:200]
    return yaml.safe_load(m.group(1))


def _hub_error(cls, message: str) -> Exception:
    """A huggingface_hub HTTP error without an HTTP response (their constructors want one)."""
    e = cls.__new__(cls)
    Exception.__init__(e, message)
    return e


def _push(run: Path, repo_id: str, folder: Path, *extra: str) -> int:
    return main(["push", "--model", str(run), "--repo-id", repo_id, "--local-dir", str(folder), *extra])


@pytest.mark.parametrize("task", list(TASKS))
def test_push_then_load_by_hub_id_predicts_like_the_run(task, smoke_runs, tmp_path, hub, monkeypatch, capsys):
    run, folder, repo = smoke_runs(task), tmp_path / "repo", f"user/{task}-smoke"
    assert _push(run, repo, folder) == 0
    names = {p.name for p in folder.iterdir()}
    stored = json.loads((folder / "config.json").read_text())
    assert names == {"README.md", "config.json", "model.safetensors", *stored["files"]}
    assert "train_state.pt" not in names and not any(n.endswith((".pt", ".pkl", ".bin")) for n in names)

    card = (folder / "README.md").read_text()
    meta = front_matter(card)
    assert meta["library_name"] == "seqnlp" and meta["pipeline_tag"] == TASKS[task].pipeline_tag
    assert meta["license"] == "mit" and "seqnlp" in meta["tags"] and meta["language"]
    metrics = json.loads((run / "metrics.json").read_text())
    key, kind = PRIMARY[task]
    result = meta["model-index"][0]["results"][0]
    assert result["task"]["type"] == TASKS[task].pipeline_tag
    assert any(m["type"] == kind and m["value"] == _get(metrics, key) for m in result["metrics"]), result
    if task == "translation":
        bleu = next(m for m in result["metrics"] if m["type"] == "bleu")
        assert bleu["args"]["signature"] == metrics["signature"] and meta["language"] == ["de", "en"]
    assert f'seqnlp.load("{repo}")' in card and f"seqnlp predict --model {repo}" in card

    hub.serve(repo, folder)
    inputs = [TASKS[task].example, TASKS[task].example.lower()]
    want = seqnlp.load(str(run), overrides=FAST.get(task, [])).predict(inputs)
    assert seqnlp.load(repo, overrides=FAST.get(task, [])).predict(inputs) == want
    assert hub.calls[0]["repo_id"] == repo and hub.calls[0]["revision"] is None
    assert hub.calls[0]["allow_patterns"] == ["config.json"]  # the config first: is it a seqnlp model?
    assert set(hub.calls[1]["allow_patterns"]) == {"config.json", "model.safetensors", "README.md", *stored["files"]}

    # the command line, by hub id at a revision, prints what it prints for the run directory
    outs = []
    for model in (str(run), f"{repo}@v1"):
        _stdin(monkeypatch, "\n".join(inputs) + "\n")
        capsys.readouterr()
        assert main(["predict", "--model", model, "--format", "jsonl", *FAST.get(task, [])]) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1] and len(outs[1].splitlines()) == len(inputs)
    assert hub.calls[-1]["repo_id"] == repo and hub.calls[-1]["revision"] == "v1"


@pytest.mark.parametrize("task", list(TASKS))
def test_the_cards_usage_snippets_work_as_written(task, smoke_runs, tmp_path, hub, monkeypatch, capsys):
    folder, repo = tmp_path / "repo", "someone/shared-model"
    assert _push(smoke_runs(task), repo, folder) == 0
    hub.serve(repo, folder)
    card = (folder / "README.md").read_text()
    python = re.search(r"```python\n(.*?)```", card, re.S).group(1)
    capsys.readouterr()
    exec(compile(python, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert printed.startswith("[{") and printed.count("\n") == 1

    shell = re.search(r"```bash\n(echo .*?)\n```", card, re.S).group(1)
    echo, said, pipe, *command = shlex.split(shell)
    assert (echo, said, pipe) == ("echo", TASKS[task].example, "|")
    assert command == ["seqnlp", "predict", "--model", repo]
    _stdin(monkeypatch, said + "\n")  # what echo writes
    assert main(command[1:] + FAST.get(task, [])) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1


def test_evaluate_of_a_hub_model_writes_here_not_into_the_snapshot(smoke_runs, tmp_path, hub, monkeypatch, capsys):
    """The Hub cache is not the user's folder (and its snapshot files are links into blobs that revisions share):
    evaluate and ensemble of a model loaded by hub id write into ./evaluations/<owner>__<name>[@revision]/."""
    run, snapshot, repo = smoke_runs("sentiment"), tmp_path / "snapshot", "user/sst2-smoke"
    assert _push(run, repo, snapshot) == 0
    hub.serve(repo, snapshot)  # what snapshot_download returns: the snapshot folder evaluate must leave alone
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    before = {p.name: p.stat().st_mtime_ns for p in snapshot.iterdir()}
    for model, folder in ((repo, "user__sst2-smoke"), (f"{repo}@refs/pr/1", "user__sst2-smoke@refs__pr__1")):
        capsys.readouterr()
        assert main(["evaluate", "--model", model, "--split", "test"]) == 0
        written = Path("evaluations") / folder / "metrics_test.json"
        metrics = json.loads((here / written).read_text())
        assert metrics["split"] in ("test", "validation") and 0.0 <= metrics["accuracy"] <= 1.0, metrics
        assert f"wrote {written}" in capsys.readouterr().err  # the user is told where
    assert main(["ensemble", "--model", repo, "--ensemble", str(run), "--split", "test"]) == 0
    assert (here / "evaluations" / "user__sst2-smoke" / "metrics_ensemble_test.json").is_file()
    assert {p.name: p.stat().st_mtime_ns for p in snapshot.iterdir()} == before  # nothing new, nothing rewritten
    assert {p.name for p in here.iterdir()} == {"evaluations"}


def test_hub_ids_and_revisions_are_parsed():
    assert parse_hub_id("user/name") == ("user/name", None)
    assert parse_hub_id("user/name@v1.0") == ("user/name", "v1.0")
    assert parse_hub_id("user/name@refs/pr/1") == ("user/name", "refs/pr/1")
    for not_an_id in ("runs/sst2/checkpoints/best", "./user/name", "/abs/name", "name", "user/", "a b/c"):
        assert parse_hub_id(not_an_id) is None, not_an_id


def test_an_existing_local_path_wins_over_a_hub_id(smoke_runs, tmp_path, hub, monkeypatch, capsys):
    run = smoke_runs("sentiment")
    assert _push(run, "user/name", tmp_path / "pushed") == 0
    monkeypatch.chdir(tmp_path)
    shutil.copytree(tmp_path / "pushed", tmp_path / "user" / "name")
    ex = [TASKS["sentiment"].example]
    assert seqnlp.load("user/name").predict(ex) == seqnlp.load(str(run)).predict(ex)
    _stdin(monkeypatch, ex[0] + "\n")
    assert main(["predict", "--model", "user/name"]) == 0
    assert hub.calls == []  # never asked the Hub


def test_offline_and_not_cached_is_one_clear_error(tmp_path, monkeypatch, capsys):
    cache = tmp_path / "hf" / "hub"
    cache.mkdir(parents=True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.chdir(tmp_path)
    assert cache_dir() == cache
    _stdin(monkeypatch, "a fine film\n")
    assert main(["predict", "--model", "nobody/no-such-model@v2"]) == 1  # the real snapshot_download
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "nobody/no-such-model@v2" in err and str(cache) in err and "offline" in err
    with pytest.raises(CheckpointError, match="nobody/no-such-model"):
        seqnlp.load("nobody/no-such-model")


def _cache_repo(cache: Path, repo_id: str, folder: Path, commit: str) -> None:
    """``folder`` as huggingface_hub caches a download: blobs, a snapshot of symlinks, refs/main."""
    import hashlib
    import os

    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snap = repo / "snapshots" / commit
    for d in (repo / "refs", repo / "blobs", snap):
        d.mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    for f in folder.iterdir():
        blob = hashlib.sha256(f.read_bytes()).hexdigest()
        shutil.copyfile(f, repo / "blobs" / blob)
        os.symlink(f"../../blobs/{blob}", snap / f.name)


def test_offline_and_cached_loads_from_the_cache(smoke_runs, tmp_path, monkeypatch, capsys):
    run, commit = smoke_runs("sentiment"), "0123456789abcdef" * 2 + "01234567"
    assert _push(run, "user/cached", tmp_path / "pushed") == 0
    cache = tmp_path / "hub-cache"
    _cache_repo(cache, "user/cached", tmp_path / "pushed", commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.chdir(tmp_path)
    ex = [TASKS["sentiment"].example]
    want = seqnlp.load(str(run)).predict(ex)
    for model in ("user/cached", f"user/cached@{commit}"):  # the real snapshot_download, from its cache
        predictor = seqnlp.load(model)
        assert predictor.predict(ex) == want
        assert Path(predictor.checkpoint).name == commit
    with pytest.raises(CheckpointError, match=f"user/cached@v2.*{re.escape(str(cache))}"):
        seqnlp.load("user/cached@v2")


@pytest.mark.parametrize("config, message", [
    (None, "not a seqnlp model"),  # no config.json at all
    ({"architectures": ["BertModel"], "model_type": "bert"}, "not a seqnlp model"),
    ({"format_version": 99, "task": "sentiment", "model": {}}, "format_version 99.*upgrade seqnlp"),
])  # fmt: skip
def test_a_repo_that_is_not_a_seqnlp_model_is_refused(config, message, tmp_path, hub, monkeypatch, capsys):
    folder = tmp_path / "repo"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"\0" * 16)
    if config is not None:
        (folder / "config.json").write_text(json.dumps(config))
    hub.serve("someone/bert", folder)
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "--model", "someone/bert"]) == 1
    err = capsys.readouterr().err
    assert re.search(message, err) and "someone/bert" in err, err
    assert len(hub.calls) == 1  # refused on its config.json: the weights were never asked for
    with pytest.raises(CheckpointError, match=message):
        seqnlp.load("someone/bert")


@pytest.mark.parametrize("error, message", [
    (errors.RepositoryNotFoundError, "no Hugging Face Hub model someone/gone"),
    (errors.RevisionNotFoundError, "has no revision 'v9'"),
    (errors.GatedRepoError, "is gated"),
    (errors.HfHubHTTPError, "cannot download someone/gone@v9"),
])  # fmt: skip
def test_hub_errors_are_one_clear_line(error, message, tmp_path, hub, monkeypatch, capsys):
    hub.error = _hub_error(error, "404 Client Error")
    monkeypatch.chdir(tmp_path)
    _stdin(monkeypatch, "x\n")
    assert main(["predict", "--model", "someone/gone@v9"]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_push_uploads_the_folder_with_hfapi(smoke_runs, monkeypatch, capsys):
    calls: list = []

    def create_repo(self, repo_id, **kw):
        calls.append(("create_repo", repo_id, kw))

    def create_branch(self, repo_id, **kw):
        calls.append(("create_branch", repo_id, kw))

    def upload_folder(self, *, repo_id, folder_path, **kw):
        files = {p.name: p.stat().st_size for p in Path(folder_path).iterdir()}
        card = (Path(folder_path) / "README.md").read_text()
        calls.append(("upload_folder", repo_id, {**kw, "files": files, "card": card}))
        return type("CommitInfo", (), {"commit_url": f"https://huggingface.co/{repo_id}/commit/abc"})()

    for name, fn in (("create_repo", create_repo), ("create_branch", create_branch), ("upload_folder", upload_folder)):
        monkeypatch.setattr(huggingface_hub.HfApi, name, fn)
    run = smoke_runs("translation")
    argv = ["push", "--model", str(run), "--repo-id", "user/mt", "--private", "--revision", "dev", "--license",
            "cc-by-nc-4.0", "--dataset", "bentrevett/multi30k"]
    assert main(argv) == 0
    assert [c[0] for c in calls] == ["create_repo", "create_branch", "upload_folder"]
    assert calls[0][1] == "user/mt" and calls[0][2]["private"] is True and calls[0][2]["exist_ok"] is True
    assert calls[1][2]["branch"] == "dev" and calls[2][2]["revision"] == "dev"
    files = calls[2][2]["files"]
    assert set(files) == {"README.md", "config.json", "model.safetensors", "src_tokenizer.json",
                          "tgt_tokenizer.json"}
    meta = front_matter(calls[2][2]["card"])
    assert meta["license"] == "cc-by-nc-4.0" and meta["datasets"] == ["bentrevett/multi30k"]
    assert "commit/abc" in capsys.readouterr().err

    def refused(self, *, repo_id, folder_path, **kw):
        raise _hub_error(errors.HfHubHTTPError, "403 Forbidden: you cannot write to user/mt")

    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", refused)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "cannot push" in err and "user/mt" in err and err.count("\n") == 1


def test_push_usage_errors_and_local_dir_rules(smoke_runs, tmp_path, capsys):
    run = smoke_runs("sentiment")
    assert main(["push", "--help"]) == 0
    assert "--local-dir" in capsys.readouterr().out
    assert main(["push", "--model", str(run)]) == 2  # no --repo-id
    assert _push(run, "not-a-repo-id", tmp_path / "a") == 2
    assert _push(run, "user/name@v1", tmp_path / "a") == 2
    assert _push(tmp_path / "no-such-run", "user/name", tmp_path / "a") == 1
    # a folder a previous push wrote is replaced; any other non-empty folder is refused
    assert _push(run, "user/name", tmp_path / "a") == 0
    assert _push(run, "user/other", tmp_path / "a") == 0
    assert front_matter((tmp_path / "a" / "README.md").read_text())["model-index"][0]["name"] == "other"
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert _push(run, "user/name", tmp_path / "b") == 2
    assert "not empty" in capsys.readouterr().err and (tmp_path / "b" / "notes.txt").read_text() == "mine"
