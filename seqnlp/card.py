"""The model card (``README.md`` of a Hub repo) generated from a checkpoint and its run, never typed by hand.

:func:`model_card` reads the checkpoint's ``config.json`` (task, model config, data facts), the task's registry
entry (pipeline tag, shape, description, example input), the weights' safetensors header (parameter count,
without loading a model) and, when the run directory has them, ``metrics.json`` (the measured results),
``result.json`` (command, commit, wall time, machine) and ``config.yaml`` (the resolved run config). The card
starts with the Hub's YAML front matter: ``library_name: seqnlp``, ``pipeline_tag``, ``language``,
``datasets``, ``license``, ``tags`` and ``model-index`` with the metrics (BLEU and chrF with their sacreBLEU
signatures as ``args``).
"""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path
from typing import Any

import yaml

from .tasks import get_task
from .tasks.base import RESULT_SHAPES
from .train import checkpoint as ck

# metrics.json keys (dotted: nested) shown in the card and its model-index, in this order: (key, type, name,
# the key of the sacreBLEU signature or None). Any task whose metrics use these names gets them.
METRICS = (
    ("accuracy", "accuracy", "Accuracy", None),
    ("macro_f1", "f1", "Macro F1", None),
    ("oov_accuracy", "accuracy", "Accuracy on words unseen in training", None),
    ("bleu", "bleu", "BLEU", "signature"),
    ("chrf", "chrf", "chrF", "chrf_signature"),
    ("perplexity.subword", "perplexity", "Perplexity per subword", None),
    ("perplexity.word", "perplexity", "Perplexity per word", None),
    ("distinct_2", "distinct-2", "Distinct-2", None),
    ("bits_per_char", "bits-per-character", "Bits per character", None),
    ("val_loss", "loss", "Validation loss (nats per token)", None),
)
# metrics.json keys saying how long training took
_TIMES = ("steps", "stop_reason", "epochs", "train_seconds", "train_minutes", "train_cpu_minutes", "threads")


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _get(d: dict, dotted: str) -> Any:
    for k in dotted.split("."):
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def parameter_count(weights: Path) -> tuple[int, dict[str, int]]:
    """``(parameters, {dtype: parameters})`` of a safetensors file, read from its header (no tensors loaded).
    Tied weights are stored once, so they count once."""
    with open(weights, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    by_dtype: dict[str, int] = {}
    for name, t in header.items():
        if name != "__metadata__":
            by_dtype[t["dtype"]] = by_dtype.get(t["dtype"], 0) + math.prod(t["shape"])
    return sum(by_dtype.values()), by_dtype


def measured(metrics: dict) -> list[dict]:
    """The card's metrics: ``{"key", "type", "name", "value", "signature"?}`` for each known key present."""
    out = []
    default = metrics.get("default")  # dialogue: the decoder whose scores are the top-level ones
    for key, kind, name, sig_key in METRICS:
        value = _get(metrics, key)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        row = {"key": key, "type": kind, "name": name, "value": value}
        if sig_key:
            sig = metrics.get(sig_key) or _get(metrics, f"{default}.{sig_key}" if isinstance(default, str) else "")
            if sig:
                row["signature"] = sig
            if isinstance(default, str) and isinstance(metrics.get(default), dict):
                row["name"] = f"{name} ({default} decoding)"
        out.append(row)
    return out


def languages(stored: ck.Stored) -> list[str]:
    """Translation: the source and target languages of its data block; the other tasks: English."""
    data = stored.config.get("data") or {}
    langs = [data.get(k) for k in ("src_lang", "tgt_lang") if data.get(k)]
    return langs or ["en"]


def _slug(text: str) -> str:
    return "-".join(str(text).lower().split())


def front_matter(stored: ck.Stored, metrics: dict, repo_id: str, license: str, datasets: list[str]) -> dict:
    task = get_task(stored.task)
    arch = str(stored.model.get("cell") or stored.model.get("encoder") or "lstm")
    tags = list(dict.fromkeys(["seqnlp", "lstm" if "lstm" in arch else arch, "rnn", _slug(task.shape),
                               stored.task.replace("_", "-"), "pytorch", "safetensors"]))
    meta: dict[str, Any] = {"library_name": "seqnlp", "pipeline_tag": task.pipeline_tag,
                            "language": languages(stored), "license": license, "tags": tags}
    if datasets:
        meta["datasets"] = datasets
    rows = measured(metrics)
    if rows:
        split = metrics.get("split") or ("validation" if "val_loss" in metrics else "test")
        data_name = (stored.config.get("data") or {}).get("name") or (datasets[0] if datasets else "unknown")
        result = {
            "task": {"type": task.pipeline_tag, "name": task.pipeline_tag.replace("-", " ").title()},
            "dataset": {"name": str(data_name), "type": datasets[0] if datasets else str(data_name), "split": split},
            "metrics": [{"type": r["type"], "value": r["value"], "name": r["name"],
                         **({"args": {"signature": r["signature"]}} if "signature" in r else {})} for r in rows],
        }
        meta["model-index"] = [{"name": repo_id.split("/")[-1], "results": [result]}]
    return meta


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _cell(code: str | None) -> str:
    """``code`` as inline code in a Markdown table cell (a ``|`` escaped, as GitHub and the Hub read it)."""
    return f"`{code.replace('|', chr(92) + '|')}`" if code else ""


def _yaml_block(data: Any) -> str:
    return "```yaml\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100).rstrip() + "\n```"


def _count(stored: ck.Stored, metrics: dict) -> str:
    facts = {**stored.data, **{k: metrics[k] for k in ("train_examples", "train_pairs", "train_chars") if k in metrics}}
    for key, what in (("train_pairs", "sentence pairs"), ("train_examples", "examples"), ("train_chars", "characters")):
        if isinstance(facts.get(key), int):
            return f"{facts[key]:,} training {what}"
    return ""


def model_card(ckpt_dir: str | Path, run_dir: str | Path | None = None, *, repo_id: str = "user/model",
               license: str = "mit", datasets: list[str] | None = None) -> str:
    """The Markdown model card of the checkpoint ``ckpt_dir`` (its run directory ``run_dir`` gives the metrics,
    the command and the config; defaults to the checkpoint's run), to be loaded as ``repo_id``."""
    ckpt = ck.resolve(ckpt_dir)
    run = Path(run_dir) if run_dir is not None else (ckpt.parent.parent if ckpt.parent.name == "checkpoints"
                                                      else ckpt)
    stored = ck.read_stored(ckpt)
    task = get_task(stored.task)
    result = _read_json(run / "result.json")
    metrics = _read_json(run / "metrics.json") or result.get("metrics") or {}
    data_cfg = dict(stored.config.get("data") or {})
    datasets = list(datasets or ([str(data_cfg["name"])] if data_cfg.get("name") else []))
    meta = front_matter(stored, metrics, repo_id, license, datasets)
    params, by_dtype = parameter_count(ckpt / ck.WEIGHTS)
    name = repo_id.split("/")[-1]
    trained = _count(stored, metrics)
    lines = ["---", yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000).rstrip(), "---", "",
             f"# {name}", "",
             f"A {task.shape} recurrent model for **{task.pipeline_tag}** ({stored.task}: {task.description}), "
             f"trained with [seqnlp](#usage)'s `{stored.task}` recipe on `{data_cfg.get('name', 'its data')}`"
             f"{f' ({trained})' if trained else ''}. This card was generated from the checkpoint and its run by "
             "`seqnlp push`.", ""]
    lines += _architecture(stored, params, by_dtype)
    lines += _data(stored, data_cfg, datasets, metrics)
    lines += _training(stored, run, result, metrics)
    lines += _results(metrics, meta)
    lines += _use(stored, task, data_cfg, repo_id, trained)
    lines += _usage(stored, task, repo_id)
    return "\n".join(lines).rstrip() + "\n"


def _architecture(stored: ck.Stored, params: int, by_dtype: dict[str, int]) -> list[str]:
    dtypes = ", ".join(f"{d} {n:,}" for d, n in by_dtype.items())
    return ["## Architecture", "",
            f"{get_task(stored.task).description}. **{params:,} parameters** in `model.safetensors` ({dtypes}; "
            f"tied weights counted once). The model config (`model` in `config.json`, format "
            f"{stored.format_version}; the builder's input):", "", _yaml_block(stored.model), "",
            "Files: `model.safetensors` (weights), `config.json` (task, model, data facts, run config), "
            + ", ".join(f"`{f}` (sha256 `{v.get('sha256', '')[:12]}…`, checked on loading)" for f, v in
                        stored.files.items()) + ". No training state and no pickle.", ""]


def _where_data(name: str) -> str:
    """Where ``data.name`` is read from, as far as this machine tells."""
    from .data.loading import data_root

    path = Path(name).expanduser()
    if path.is_absolute():
        return "a local path"
    if (data_root() / path).exists():
        return f"the local dataset folder `$SEQNLP_DATA/{name}` (seqnlp's benchmark data, read by its own readers)"
    if _hub_like(name):
        return ("a Hugging Face Hub dataset id (or a folder under `$SEQNLP_DATA` on the machine that trained it; "
                "seqnlp prefers a local path)")
    return "a folder under `$SEQNLP_DATA` on the machine that trained it"


def _hub_like(name: str) -> bool:
    parts = name.split("/")
    return 1 <= len(parts) <= 2 and all(parts) and not any(c in name for c in "*?[ ")


def _data(stored: ck.Stored, data_cfg: dict, datasets: list[str], metrics: dict) -> list[str]:
    name = str(data_cfg.get("name", "?"))
    out = ["## Data", "", f"`data.name: {name}` — {_where_data(name)}"
           + (f" (the card's Hub metadata: {', '.join(f'`{d}`' for d in datasets)})" if datasets else "") + ". "
           "Its licence is the dataset's own: check it before using the model beyond research."]
    splits = data_cfg.get("splits") or {}
    if splits:
        out += ["", "Splits: " + ", ".join(f"{k} = `{v}`" for k, v in splits.items()) + "."]
    limits = {k: v for k, v in data_cfg.items() if k.endswith(("_limit", "_sentences", "_chars", "_len", "carve"))
              and v not in (0, None, {}, "")}
    if limits:
        out += ["", "Limits and carve-outs: " + ", ".join(f"`{k}: {json.dumps(v)}`" for k, v in limits.items()) + "."]
    facts = {k: v for k, v in stored.data.items() if v not in (None, [], {}, "")}
    if facts:
        out += ["", "Facts of the training data stored with the model:", "", _yaml_block(facts)]
    if isinstance(metrics.get("notes"), list) and metrics["notes"]:
        out += ["", "Notes from training: " + "; ".join(str(n) for n in metrics["notes"]) + "."]
    return out + [""]


def _training(stored: ck.Stored, run: Path, result: dict, metrics: dict) -> list[str]:
    out = ["## Training", ""]
    if result.get("command"):
        out += ["The command that trained it (from the run's `result.json`):", "", "```bash",
                str(result["command"]), "```", ""]
    out += ["With the resolved config below saved as `config.yaml`, `seqnlp train --config config.yaml` trains it "
            "again.", ""]
    facts = {"commit": result.get("commit"), "machine": result.get("machine"),
             "wall seconds": result.get("wall_seconds"), "finished": result.get("finished"),
             **{k.replace("_", " "): metrics.get(k) for k in _TIMES}}
    facts = {k: v for k, v in facts.items() if v not in (None, "")}
    if facts:
        out += ["| hardware and time | |", "|---|---|"] + [f"| {k} | {_fmt(v)} |" for k, v in facts.items()] + [""]
    config_yaml = run / "config.yaml"
    text = (config_yaml.read_text(encoding="utf-8").rstrip() if config_yaml.is_file()
            else yaml.safe_dump({**stored.config, "model": stored.model}, sort_keys=False).rstrip())
    out += ["<details><summary>The resolved run config</summary>", "", "```yaml", text, "```", "", "</details>",
            ""]
    return out


def _results(metrics: dict, meta: dict) -> list[str]:
    out = ["## Results", ""]
    if not metrics:
        return out + ["No metrics were recorded with this checkpoint (no `metrics.json` in its run).", ""]
    rows = measured(metrics)
    split = ((meta.get("model-index") or [{}])[0].get("results") or [{}])[0].get("dataset", {}).get("split", "test")
    if rows:
        out += [f"Measured on the `{split}` split after training (the run's `metrics.json`):", "",
                "| metric | value | sacreBLEU signature |", "|---|---|---|"]
        out += [f"| {r['name']} | {_fmt(r['value'])} | {_cell(r.get('signature'))} |" for r in rows]
    scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)
               and k not in ("checkpoint",)}
    out += ["", "<details><summary>Every scalar of metrics.json</summary>", "", _yaml_block(scalars), "",
            "</details>", ""]
    return out


def _use(stored: ck.Stored, task, data_cfg: dict, repo_id: str, trained: str) -> list[str]:
    langs = languages(stored)
    what = (f"translation from {langs[0]} to {langs[1]}" if len(langs) == 2 else
            f"{task.pipeline_tag.replace('-', ' ')} of {', '.join(langs)} text")
    out = ["## Intended use and limitations", "",
           f"- Intended for {what}, on text like that of "
           f"`{data_cfg.get('name', 'its training data')}`: teaching, baselines and experiments with recurrent "
           "networks; a small model, not a production system.",
           f"- Input: one text a line, tokenized like the training data, e.g. `{task.example}`. Words (or subwords, "
           "characters) missing from its vocabulary become unknown tokens.",
           f"- Trained on {trained or 'its training split'} only: expect worse results on other domains, periods "
           "and styles."]
    for key in ("max_len", "max_src_len", "max_tokens_per_text"):
        if data_cfg.get(key):
            out.append(f"- Texts were cut to {data_cfg[key]} tokens in training (`data.{key}`).")
            break
    labels = stored.data.get("labels") or stored.data.get("tags")
    if labels:
        out.append(f"- It only knows these outputs: {', '.join(f'`{x}`' for x in labels)}.")
    if task.pipeline_tag in ("text-generation", "translation"):
        out.append("- Generated text can be wrong, repetitive or offensive: it is not filtered.")
    out += ["- Not evaluated for bias or fairness; do not use it for decisions about people.", ""]
    return out


def _usage(stored: ck.Stored, task, repo_id: str) -> list[str]:
    example = task.example
    return ["## Usage", "",
            "With seqnlp installed (`pip install -e .` in its source tree), which downloads the model from the Hub on "
            "first use and then reads it from the Hugging Face cache:", "",
            "```python", "import seqnlp", "", f"model = seqnlp.load({json.dumps(repo_id)})",
            f"print(model.predict([{json.dumps(example, ensure_ascii=False)}]))", "```", "",
            f"Each result is `{RESULT_SHAPES.get(stored.task, 'a dict')}`. From the command line:", "",
            "```bash", f"echo {shlex.quote(example)} | seqnlp predict --model {repo_id}", "```", "",
            f"`--model {repo_id}@REVISION` loads a branch, tag or commit; `--format jsonl` writes one JSON object "
            "per input line.", ""]


__all__ = ["METRICS", "front_matter", "languages", "measured", "model_card", "parameter_count"]
