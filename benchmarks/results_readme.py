"""Write results/README.md (the headline results, one row each) and results/headline.json (each headline's
records) from the run records under results/.

    python benchmarks/results_readme.py [--results results] [--out results]

The one hand-written part is :data:`HEADLINES`: which record files stand behind each headline (chosen from the
summary table of docs/results.md: the result each target is judged by, and the measurement of each preset config
in recipes/configs/<task>/), what the number means and which preset reproduces it. Every number in the README is
read from those records: a metric, its mean ± sample standard deviation over seed records, the machine, the
wall and training times, when it finished and at which commit. Records of one-off experiments live in
results/<task>/experiments/ and are not headlines (docs/results.md tells their story).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Metric:
    key: str  # in the record's "metrics" (or at its top level, for the benchmark records); dotted if nested
    label: str
    kind: str = "percent"  # percent (a fraction shown x100) | plain | ratio (x) | loss (nats/char)

    def show(self, v: float) -> str:
        if self.kind == "percent":
            return f"{100 * v:.2f}"
        if self.kind == "ratio":
            return f"{v:.2f}×"
        if self.kind == "loss":
            return f"{v:.4f}"
        return f"{v:.2f}"


@dataclass(frozen=True)
class Headline:
    name: str  # task/what
    what: str
    config: str  # the preset that reproduces it (relative to the project root)
    records: tuple[str, ...]  # relative to results/; several = seeds, shown as mean ± std
    metrics: tuple[Metric, ...]
    std_key: str = ""  # a record that holds its own spread (cross-validation folds): metrics[std_key]
    note: str = ""  # how it was run beyond the config's values (from its record's command), shown after the records
    inputs: tuple[str, ...] = field(default=())  # records of what the run needs first (word vectors)


ACC = Metric("accuracy", "accuracy")
SST2_ACC = Metric("accuracy", "dev accuracy")
BLEU = Metric("bleu", "test2016 BLEU", "plain")
CHAR = Metric("val_loss", "validation loss, nats/char", "loss")
CHRF = Metric("chrf", "chrF", "plain")
H200 = "run with train.max_minutes=4.5 cpu_minutes=0, the GPU shared by 11 runs"


def seeds(pattern: str, n: range) -> tuple[str, ...]:
    return tuple(pattern.format(i) for i in n)


HEADLINES: tuple[Headline, ...] = (
    Headline("sentiment/sst2", "SST-2, one BiLSTM distilled from five with an IMDB transfer set, seeds 1-5 "
             "(target ≥ 87.5)", "recipes/configs/sentiment/sst2_vectors_lm_distill_imdb.yaml",
             seeds("sentiment/sst2_vectors_lm_distill_imdb_seed{}.json", range(1, 6)), (SST2_ACC,),
             note="run with train.seed=1..5", inputs=("sentiment/vectors_ppmi100_nomr.json",)),
    Headline("sentiment/sst2_7_seeds", "the same, seeds 1-7 (seeds 6-7 declared as a robustness check)",
             "recipes/configs/sentiment/sst2_vectors_lm_distill_imdb.yaml",
             seeds("sentiment/sst2_vectors_lm_distill_imdb_seed{}.json", range(1, 8)), (SST2_ACC,),
             note="run with train.seed=1..7", inputs=("sentiment/vectors_ppmi100_nomr.json",)),
    Headline("sentiment/sst2_adversarial", "SST-2, PPMI vectors + 60-minute LM + adversarial training: the five "
             "teachers of sentiment/sst2", "recipes/configs/sentiment/sst2_vectors_lm_adv.yaml",
             seeds("sentiment/sst2_vectors_lm_adv0.03_seed{}.json", range(1, 6)), (SST2_ACC,),
             note="run with train.seed=1..5", inputs=("sentiment/vectors_ppmi100_nomr.json",)),
    Headline("sentiment/sst2_lm", "SST-2, PPMI vectors + 60-minute LM pretraining (five classifier seeds of one "
             "LM)", "recipes/configs/sentiment/sst2_vectors_lm.yaml",
             ("sentiment/sst2_vectors_lm.json", *seeds("sentiment/sst2_vectors_lm_seed{}.json", range(2, 6))),
             (SST2_ACC,), note="seeds 2-5 run with init_from=runs/sst2_vectors_lm/pretrain pretrain.enabled=false "
             "train.seed=N", inputs=("sentiment/vectors_ppmi100_nomr.json",)),
    Headline("sentiment/sst2_random_init", "SST-2, BiLSTM from random embeddings",
             "recipes/configs/sentiment/sst2.yaml", ("sentiment/sst2.json",), (SST2_ACC,)),
    Headline("sentiment/imdb", "IMDB held-out 10%, BiLSTM with 80 minutes of LM pretraining (target ≥ 90.0)",
             "recipes/configs/sentiment/imdb_lm_80min.yaml", ("sentiment/imdb_lm_80min.json",), (ACC,)),
    Headline("sentiment/imdb_no_lm", "IMDB held-out 10%, BiLSTM without LM pretraining",
             "recipes/configs/sentiment/imdb.yaml", ("sentiment/imdb.json",), (ACC,),
             note="run with train.threads=2 train.max_minutes=20 train.decay_over=time"),
    Headline("sentiment/rotten_tomatoes", "Rotten Tomatoes 10-fold mean, embeddings from PPMI vectors "
             "(target ≥ 77.0)", "recipes/configs/sentiment/rotten_tomatoes_vectors.yaml",
             ("sentiment/rotten_tomatoes_vectors.json",), (ACC,), std_key="accuracy_std",
             inputs=("sentiment/vectors_ppmi100_nomr.json",)),
    Headline("sentiment/rotten_tomatoes_random_init", "Rotten Tomatoes 10-fold mean, random embeddings",
             "recipes/configs/sentiment/rotten_tomatoes.yaml", ("sentiment/rotten_tomatoes_h200.json",), (ACC,),
             std_key="accuracy_std", note="run with train.max_minutes=0.35 a fold"),
    Headline("pos_tagging/ud_ewt", "UD English-EWT UPOS test, BiLSTM-CRF, 40 minutes of training (target ≥ 95.5)",
             "recipes/configs/pos_tagging/ud_ewt_40min.yaml", ("pos_tagging/ud_ewt_40min.json",),
             (ACC, Metric("oov_accuracy", "OOV accuracy")), inputs=("pos_tagging/vectors_ppmi100.json",)),
    Headline("pos_tagging/conll2000", "CoNLL-2000 test, BiLSTM-CRF (target ≥ 97.0)",
             "recipes/configs/pos_tagging/conll2000.yaml", ("pos_tagging/conll2000.json",),
             (ACC, Metric("oov_accuracy", "OOV accuracy")), note="run with train.max_minutes=22",
             inputs=("pos_tagging/vectors_ppmi100.json",)),
    Headline("pos_tagging/ud_ewt_window", "UD English-EWT UPOS test, the one-to-one window baseline",
             "recipes/configs/pos_tagging/ud_ewt_window.yaml", ("pos_tagging/ud_ewt_window.json",),
             (ACC, Metric("oov_accuracy", "OOV accuracy")), note="run with train.threads=1",
             inputs=("pos_tagging/vectors_ppmi100.json",)),
    Headline("pos_tagging/conll2000_window", "CoNLL-2000 test, the one-to-one window baseline",
             "recipes/configs/pos_tagging/conll2000_window.yaml", ("pos_tagging/conll2000_window.json",),
             (ACC, Metric("oov_accuracy", "OOV accuracy")), note="run with train.threads=1",
             inputs=("pos_tagging/vectors_ppmi100.json",)),
    Headline("pos_tagging/speed_vs_flair", "BiLSTM-CRF against Flair 0.15.1 side by side, same cores "
             "(target ≥ 3× each)", "recipes/configs/pos_tagging/ud_ewt_40min.yaml",
             ("benchmarks/tagger_vs_flair.json",),
             (Metric("train_speedup", "training speed-up", "ratio"),
              Metric("predict_speedup", "prediction speed-up", "ratio")), note="by benchmarks/tagger_vs_flair.py"),
    Headline("translation/multi30k_de_en_45min", "Multi30k de→en test2016, 45 minutes of training on 2 CPU cores "
             "(target ≥ 40)", "recipes/configs/translation/multi30k_de_en_45min.yaml",
             ("translation/multi30k_de_en_45min_d20.json",), (BLEU, CHRF)),
    Headline("translation/multi30k_de_en", "Multi30k de→en test2016, any budget (target ≥ 41)",
             "recipes/configs/translation/multi30k_de_en.yaml", ("translation/multi30k_de_en_h200.json",),
             (BLEU, CHRF), note=H200),
    Headline("translation/multi30k_en_de", "Multi30k en→de test2016, any budget (target ≥ 37)",
             "recipes/configs/translation/multi30k_en_de.yaml", ("translation/multi30k_en_de_h200.json",),
             (BLEU, CHRF), note=H200),
    Headline("translation/multi30k_en_fr", "Multi30k en→fr test2016, any budget",
             "recipes/configs/translation/multi30k_en_fr.yaml", ("translation/multi30k_en_fr_h200.json",),
             (BLEU, CHRF), note=H200),
    Headline("translation/speed_vs_joeynmt", "seq2seq against Joey NMT 2.3.0 side by side, same cores "
             "(target ≥ 3× each)", "recipes/configs/translation/experiments/multi30k_de_en_45min_1thread.yaml",
             ("benchmarks/seq2seq_vs_joeynmt.json",),
             (Metric("train_speedup", "training speed-up", "ratio"),
              Metric("decode_speedup", "beam-5 decoding speed-up", "ratio")),
             note="by benchmarks/seq2seq_vs_joeynmt.py"),
    Headline("dialogue/dailydialog", "DailyDialog test: distinct-2 of the default decoding (sampling) over "
             "greedy's (target ≥ 3×)", "recipes/configs/dialogue/dailydialog.yaml", ("dialogue/dailydialog.json",),
             (Metric("distinct_2_vs_greedy", "distinct-2, sampling ÷ greedy", "ratio"),
              Metric("perplexity.word", "word perplexity", "plain")), note="run with train.threads=1"),
    Headline("char_generator/tinyshakespeare", "Tiny Shakespeare, 2×512 LSTM, 60 minutes (target ≤ 1.40)",
             "recipes/configs/char_generator/tinyshakespeare_ema_wd.yaml",
             ("char_generator/tinyshakespeare_ema_wd.json",), (CHAR,)),
    Headline("char_generator/tinyshakespeare_lstm", "Tiny Shakespeare, the 2×512 LSTM without DropConnect, "
             "averaging or weight decay", "recipes/configs/char_generator/tinyshakespeare.yaml",
             ("char_generator/tinyshakespeare.json",), (CHAR,)),
    Headline("char_generator/tinyshakespeare_rnn", "Tiny Shakespeare, Elman RNN at the LSTM's 3.32M parameters, "
             "20 minutes", "recipes/configs/char_generator/tinyshakespeare_rnn.yaml",
             ("char_generator/tinyshakespeare_rnn.json",), (CHAR,)),
    Headline("char_generator/tinyshakespeare_window", "Tiny Shakespeare, window MLP (one-to-one) at 3.32M "
             "parameters, 20 minutes", "recipes/configs/char_generator/tinyshakespeare_window.yaml",
             ("char_generator/tinyshakespeare_window.json",), (CHAR,)),
)  # fmt: skip


def metric_value(rec: dict, key: str) -> float:
    """``key`` (dotted for nested values: ``perplexity.word``) from the record's metrics, or from the record
    itself (the benchmark records keep them there)."""
    first = key.split(".")[0]
    node = rec["metrics"] if first in rec.get("metrics", {}) else rec
    for part in key.split("."):
        node = node[part]
    return node


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1), as docs/results.md reports seed spreads."""
    return statistics.mean(values), statistics.stdev(values)


def git_date(path: Path) -> str:
    """The date of the commit that added ``path`` (for records without a "finished" time): when it was measured;
    later commits may only have tidied it (paths made relative, figures filled in from other records)."""
    try:
        out = subprocess.run(["git", "log", "--diff-filter=A", "--follow", "--format=%cs", "--", str(path)],
                             cwd=ROOT, capture_output=True, text=True, check=False).stdout.split()
    except OSError:
        out = []
    return f"{out[-1]} (first committed)" if out else "—"


def span(values: list[float], unit: str, each: bool) -> str:
    lo, hi = min(values), max(values)
    if round(lo) == round(hi):
        return f"{lo:.0f} {unit}"
    return f"{lo:.0f}–{hi:.0f} {unit}" + (" each" if each else "")


def training_time(recs: list[dict]) -> str:
    """Minutes of training steps as the records report them (metrics train_minutes or train_seconds)."""
    mins = []
    for r in recs:
        m = r.get("metrics", {})
        if "train_minutes" in m:
            mins.append(m["train_minutes"])
        elif "train_seconds" in m:
            mins.append(m["train_seconds"] / 60)
    if len(mins) != len(recs):
        return "—"
    lo, hi = min(mins), max(mins)
    each = " each" if len(recs) > 1 and f"{lo:.1f}" != f"{hi:.1f}" else ""
    return (f"{lo:.1f} min" if f"{lo:.1f}" == f"{hi:.1f}" else f"{lo:.1f}–{hi:.1f} min") + each


def unique(values: list[str]) -> str:
    return "; ".join(dict.fromkeys(v for v in values if v)) or "—"


def link(rel: str, text: str | None = None) -> str:
    return f"[{text or rel}]({rel})"


def value_cell(h: Headline, recs: list[dict], metric: Metric) -> str:
    values = [metric_value(r, metric.key) for r in recs]
    if len(values) > 1:
        mean, std = mean_std(values)
        return f"{metric.show(mean)} ± {metric.show(std)} ({len(values)} seeds)"
    text = metric.show(values[0])
    if h.std_key and metric is h.metrics[0]:
        text += f" ± {metric.show(recs[0]['metrics'][h.std_key])} ({recs[0]['metrics'].get('cv_folds', '?')} folds)"
    return text


def row(h: Headline, results: Path) -> list[str]:
    recs = [json.loads((results / r).read_text()) for r in h.records]
    values = "; ".join(f"{m.label} **{value_cell(h, recs, m)}**" if i == 0 else f"{m.label} {value_cell(h, recs, m)}"
                       for i, m in enumerate(h.metrics))
    walls = [r["wall_seconds"] for r in recs if "wall_seconds" in r]
    finished = [r.get("finished") or git_date(results / p) for r, p in zip(recs, h.records)]
    commits = unique([str(r.get("commit", ""))[:7] for r in recs])
    names = [Path(p).stem for p in h.records]
    links = ", ".join(link(p, n) for p, n in zip(h.records, names))
    if h.note:
        links += f" ({h.note})"
    config = f"[{Path(h.config).name}](../{h.config})" + (" (experiment)" if "/experiments/" in h.config else "")
    return [f"`{h.name}`", h.what, values, config, unique([r.get("machine", "") for r in recs]),
            span(walls, "s", len(recs) > 1) if walls else "—", training_time(recs), max(finished),
            f"`{commits}`" if commits != "—" else commits, links]


def readme(results: Path) -> str:
    head = ["headline", "what", "result", "config", "machine", "wall time", "training", "finished", "commit",
            "records"]
    lines = [
        "# Results",
        "",
        "The headline numbers of seqnlp, one row each, read from the run records in this folder. Generated by",
        "`python benchmarks/results_readme.py` (do not edit by hand); `headline.json` maps each headline to its",
        "record files. Each record holds the run's metrics, exact command, commit, wall time and machine. The",
        "whole log, with every experiment, the commands and what was learnt, is [docs/results.md](../docs/results.md);",
        "the records of one-off experiments are in `<task>/experiments/`.",
        "",
        "`config` is the preset that reproduces the number",
        "(`seqnlp train --config recipes/configs/<task>/<name>.yaml`, plus the overrides after the records);",
        "`wall time` is the record's `wall_seconds` (data loading, training, evaluation); `training` is the time in",
        "training steps the record reports (`metrics.train_minutes` or `metrics.train_seconds`; for the LM-pretrained",
        "sentiment configs, the classifier stage only). Several records in one row are seeds of one config: the",
        "result is their mean ± sample standard deviation.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    lines += ["| " + " | ".join(row(h, results)) + " |" for h in HEADLINES]
    inputs = sorted({i for h in HEADLINES for i in h.inputs})
    lines += ["", "Inputs the rows above need first (word vectors counted on local unlabelled text):", "",
              "| record | command | wall time | machine |", "|---|---|---|---|"]
    for i in inputs:
        rec = json.loads((results / i).read_text())
        command = rec["command"]
        lines.append(f"| {link(i, Path(i).stem)} | `{command}` | {rec['wall_seconds']:.0f} s | {rec['machine']} |")
    lines += ["", "Other records:", ""]
    for d in sorted(p for p in results.iterdir() if p.is_dir()):
        exp = d / "experiments"
        if exp.is_dir():
            n = len(list(exp.glob("*.json")))
            lines.append(f"- [{d.name}/experiments/]({d.name}/experiments/): {n} record{'s' * (n != 1)} of one-off "
                         f"{d.name} experiments")
        elif d.name == "benchmarks":
            lines.append(f"- [benchmarks/](benchmarks/): {len(list(d.iterdir()))} speed measurements "
                         "(`benchmarks/*.py`, `benchmarks/*.sh`)")
    return "\n".join(lines) + "\n"


def headline_json() -> str:
    return json.dumps({h.name: list(h.records) for h in HEADLINES}, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", type=Path, default=ROOT / "results", help="where the records are")
    p.add_argument("--out", type=Path, default=None, help="where README.md and headline.json go (default: --results)")
    args = p.parse_args(argv)
    out = args.out or args.results
    missing = [f"{h.name}: {r}" for h in HEADLINES for r in (*h.records, *h.inputs)
               if not (args.results / r).is_file()]
    if missing:
        print("missing records:\n  " + "\n  ".join(missing), file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    (out / "README.md").write_text(readme(args.results))
    (out / "headline.json").write_text(headline_json())
    print(f"wrote {out / 'README.md'} ({len(HEADLINES)} headlines) and {out / 'headline.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
