"""Inference on 2 CPU cores: eager torch against onnxruntime (fp32 and int8) -- and Flair's and Joey NMT's.

    python benchmarks/inference.py --tagger runs/pos_ud_ewt_40min --translator runs/multi30k_de_en_45min \\
        [--flair-python ../flair-venv/bin/python] [--joey-python ../joey-venv/bin/python]
    python benchmarks/inference.py --smoke          # our side only, smoke models, a few hundred sentences

For the tagger (UD English-EWT test, 2,077 sentences, gold tokens) and translation (Multi30k test2016, 1,000
sentences, beam 5, length penalty 1.0), each variant of our model predicts the whole test set in a process of its
own (so peak RSS is that variant's alone; ``resource.getrusage`` in the child), after a warm-up on 32 sentences:

* ``eager_fp32`` -- the run directory on torch (the default for a training checkpoint);
* ``eager_bf16`` -- the same under bf16 autocast, where :func:`seqnlp.train.device.cpu_supports_bf16` (AMX /
  AVX512-BF16; the one precision policy);
* ``ort_fp32`` / ``ort_int8`` -- ``seqnlp export --format onnx [--quantize int8]`` of it, on onnxruntime.

Measured: sentences/s (from input strings or token lists to results: tokenisation and featurisation included),
token accuracy or sacreBLEU, peak RSS, and the model's size on disk (weights or graphs; and the whole directory).
The peers run in their own virtual environments (the set-ups of ``benchmarks/tagger_vs_flair.py`` and
``benchmarks/seq2seq_vs_joeynmt.py``, whose docstrings give the install commands): Flair's SequenceTagger is
trained for ``--peer-minutes`` and saved, then a prediction-only process reloads it and tags the same test
sentences (batches of 64); Joey NMT's RNN is trained for ``--joey-epochs`` (default 1), then ``joeynmt test``
decodes test2016 with beam 5 (batches of 64) under ``/usr/bin/time`` (its own "Generation took" timing; peak RSS
of that process). A barely trained model writes longer outputs than a trained one (more decoding steps), so
besides sentences/s the record gives each side's output words per sentence and the speed-up per output word.
Peer models are reused from ``--work`` when there (``--retrain-peers`` trains them again; Joey NMT's is retrained
when ``--joey-epochs`` differs from what it was trained for).

Targets (the issue): tagger prediction >= 8x Flair's sentences/s, beam-5 decoding >= 6x Joey NMT's, accuracy within
0.1 point and BLEU within 0.3 of eager fp32, and prediction peak RSS no higher than the peer's. ``--profile DIR``
writes a cProfile of each of our variants' timed prediction (profile before optimising). Writes
``results/benchmarks/inference.json`` (``--smoke``: under ``--work`` unless ``--output`` is given). Run it with the
2 cores otherwise idle: the load averages before and after are recorded.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
TASKS = ("pos_tagging", "translation")
VARIANTS = ("eager_fp32", "eager_bf16", "ort_fp32", "ort_int8")
TARGETS = {"pos_tagging": {"speedup": 8.0, "quality_delta": 0.1}, "translation": {"speedup": 6.0, "quality_delta": 0.3}}
DEFAULT_RUNS = {"pos_tagging": ROOT / "runs" / "pos_ud_ewt_40min",
                "translation": ROOT / "runs" / "multi30k_de_en_45min"}


def data_root() -> Path:
    return Path(os.environ.get("SEQNLP_DATA", ROOT.parent / "shared" / "data"))


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def _peer_module(name: str):
    sys.path.insert(0, str(BENCH))
    return __import__(name)


def test_set(task: str, limit: int = 0) -> tuple[list, list]:
    """(inputs, references): EWT test token lists and UPOS tags, or test2016 German sources and English targets."""
    if task == "pos_tagging":
        tvf = _peer_module("tagger_vs_flair")
        pairs = tvf.read_conllu(tvf.data_dir() / "en_ewt-ud-test.conllu.gz")
        inputs, refs = [w for w, _ in pairs], [t for _, t in pairs]
    else:
        d = data_root() / "translation" / "multi30k"
        read = lambda lang: gzip.open(d / f"test_2016_flickr.{lang}.gz", "rt", encoding="utf-8").read()  # noqa: E731
        inputs, refs = read("de").rstrip("\n").split("\n"), read("en").rstrip("\n").split("\n")
    return (inputs[:limit], refs[:limit]) if limit else (inputs, refs)


def sizes(model_dir: Path, variant: str) -> dict:
    """Bytes of the weights (eager: model.safetensors) or graphs (ort: *.onnx), and of the whole directory."""
    from seqnlp.train import checkpoint as ck

    d = ck.resolve(model_dir)
    files = [p for p in d.iterdir() if p.is_file() and p.name != ck.TRAIN_STATE]
    model = [p for p in files if (p.suffix == ".onnx" if variant.startswith("ort") else p.name == ck.WEIGHTS)]
    return {"model_bytes": sum(p.stat().st_size for p in model), "dir_bytes": sum(p.stat().st_size for p in files)}


# ------------------------------------------------------------------------------------------------ our side
def side_ours(args) -> dict:
    """One variant in this process: load, warm up, predict the test set once, score it."""
    import torch

    import seqnlp
    from seqnlp.metrics import bleu_chrf

    torch.set_num_threads(args.threads)
    inputs, refs = test_set(args.task, args.limit)
    overrides = ["search.method=beam", f"search.beam_size={args.beam}", "search.length_penalty=1.0",
                 "search.n_best=1"] if args.task == "translation" else []
    precision = "bf16" if args.variant == "eager_bf16" else "fp32"
    t0 = time.perf_counter()
    pred = seqnlp.load(args.model, "cpu", overrides, precision=precision if args.variant.startswith("eager") else None)
    load_seconds = time.perf_counter() - t0
    pred.predict(inputs[:32])  # warm-up: first-call allocations, oneDNN / onnxruntime kernel selection
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    t0 = time.perf_counter()
    results = pred.predict(inputs)
    seconds = time.perf_counter() - t0
    if profiler is not None:
        import pstats

        profiler.disable()
        profiler.dump_stats(args.profile)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
    out = {"variant": args.variant, "model": str(args.model), "sentences": len(inputs), "seconds": seconds,
           "sentences_per_s": len(inputs) / seconds, "load_seconds": load_seconds, "threads": args.threads}
    if args.task == "pos_tagging":
        pairs = [(p, g) for r, gold in zip(results, refs) for p, g in zip(r["tags"], gold)]
        out.update(tokens=len(pairs), tokens_per_s=len(pairs) / seconds,
                   accuracy=100 * sum(p == g for p, g in pairs) / len(pairs))
    else:
        sc = bleu_chrf([r["translation"] for r in results], refs)
        out.update(bleu=sc["bleu"], chrf=sc["chrf"], beam_size=args.beam,
                   output_words_per_sentence=sum(len(r["translation"].split()) for r in results) / len(results))
    out["peak_rss_gib"] = peak_rss_gib()
    return out


# ------------------------------------------------------------------------------------------------ peers
def side_flair_train(args) -> dict:
    """(In Flair's venv.) tagger_vs_flair's Flair set-up, trained for --peer-minutes and saved."""
    result = _peer_module("tagger_vs_flair").side_flair(args.peer_minutes, save=args.flair_model)
    return {"train": result["train"], "model": result["model"]}


def side_flair_predict(args) -> dict:
    """(In Flair's venv, a fresh process.) Reload the saved tagger and tag the test sentences, 64 a batch."""
    import torch
    from flair.data import Sentence
    from flair.models import SequenceTagger

    torch.set_num_threads(args.threads)
    inputs, refs = test_set("pos_tagging", args.limit)
    tagger = SequenceTagger.load(args.flair_model)
    tagger.eval()
    tagger.predict([Sentence(w) for w in inputs[:32]], mini_batch_size=64, label_name="predicted")  # warm-up
    sentences = [Sentence(w) for w in inputs]
    t0 = time.perf_counter()
    tagger.predict(sentences, mini_batch_size=64, label_name="predicted")
    seconds = time.perf_counter() - t0
    pairs = [(t.get_label("predicted").value, g) for s, gold in zip(sentences, refs) for t, g in zip(s, gold)]
    return {"sentences": len(inputs), "seconds": seconds, "sentences_per_s": len(inputs) / seconds,
            "accuracy": 100 * sum(p == g for p, g in pairs) / len(pairs), "batch": "64 sentences",
            "peak_rss_gib": peak_rss_gib(), "note": f"trained for {args.peer_minutes} minutes (speed, not quality)"}


def run_flair(args, work: Path) -> dict:
    model = work / "flair" / "final-model.pt"
    train = None
    if args.retrain_peers or not model.is_file():
        model.parent.mkdir(parents=True, exist_ok=True)
        train = child(args.flair_python, ["--side", "flair-train", "--flair-model", str(model)], args)
    pred = child(args.flair_python, ["--side", "flair-predict", "--flair-model", str(model)], args)
    return {**pred, "train": train, "model_bytes": model.stat().st_size}


def run_joey(args, work: Path) -> dict:
    """seq2seq_vs_joeynmt's Joey NMT set-up (one epoch), then a prediction-only ``joeynmt test`` (beam 5)."""
    import re

    s2j = _peer_module("seq2seq_vs_joeynmt")
    jwork = work / "joey"
    cfg = jwork / "joey.yaml"
    train = None
    marker = jwork / "joey_model" / "seqnlp_bench_epochs"  # what the saved model was trained for
    trained = marker.read_text().strip() if marker.is_file() else "1"
    if args.retrain_peers or not (jwork / "joey_model" / "best.ckpt").exists() or trained != str(args.joey_epochs):
        counts = s2j.prepare(data_root() / "translation" / "multi30k", jwork, args.joey_python)
        train = s2j.run_joey(argparse.Namespace(joey_python=args.joey_python, threads=args.threads,
                                                joey_epochs=args.joey_epochs), jwork,
                             counts["source_tokens"] / counts["target_tokens"])
        marker.write_text(str(args.joey_epochs))
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "OMP_WAIT_POLICY": "PASSIVE"}
    log = jwork / "joey_test.log"
    wall, rss = s2j.timed([args.joey_python, "-m", "joeynmt", "test", str(cfg), "--output-path",
                           str(jwork / "hyps")], log, env, timeout=3600)
    text = log.read_text()
    gens = [float(x) for x in re.findall(r"Generation took ([\d.]+)\[sec\]", text)]
    bleus = re.findall(r"beam search\).*?bleu:\s+([\d.]+)", text)
    seconds = gens[-1] if gens else wall  # the last generation is test2016 (after dev)
    hyps = [line.split() for line in (jwork / "hyps.test").read_text(encoding="utf-8").splitlines()]
    return {"sentences": 1000, "seconds": seconds, "sentences_per_s": 1000 / seconds,
            "output_words_per_sentence": sum(map(len, hyps)) / max(len(hyps), 1),
            "bleu": float(bleus[-1]) if bleus else None, "peak_rss_gib": rss, "beam_size": 5,  # timed(): KiB / 2**20
            "batch": "64 sentences", "timing": "its 'Generation took'" if gens else "process wall time (no line)",
            "train": train, "epochs": int(trained if train is None else args.joey_epochs),
            "note": "trained for speed, not quality: a model trained less writes longer outputs, which cost more "
                    "decoding steps (compare output_words_per_sentence)"}


# ------------------------------------------------------------------------------------------------ driver
def child(python: str, argv: list[str], args) -> dict:
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": str(args.threads),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "TQDM_DISABLE": "1"}
    cmd = [python, str(Path(__file__).resolve()), *argv, "--threads", str(args.threads), "--limit", str(args.limit),
           "--peer-minutes", str(args.peer_minutes), "--beam", str(args.beam)]
    print(f"running: {' '.join(cmd)}", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def smoke_models(work: Path) -> dict[str, Path]:
    """The smoke configs of both tasks trained into ``work`` (seconds; tests/golden/smoke.py)."""
    sys.path.insert(0, str(ROOT / "tests" / "golden"))
    import smoke

    out = {}
    for task in TASKS:
        run = work / "smoke" / task
        if not (run / "metrics.json").is_file():
            shutil.rmtree(run, ignore_errors=True)
            with contextlib.redirect_stdout(sys.stderr):  # the recipes' reports: stdout is this script's summary
                smoke.run(task, run)
        out[task] = run
    return out


def summarise(task: str, r: dict) -> dict:
    """Speed-ups over the peer, quality deltas against eager fp32, RSS against the peer, and the targets met."""
    key = "accuracy" if task == "pos_tagging" else "bleu"
    base, peer = r["variants"].get("eager_fp32"), r.get("peer")
    out = {}
    for name, v in r["variants"].items():
        s = {}
        if base:
            s[f"{key}_delta"] = round(v[key] - base[key], 3)
            s["speedup_vs_eager_fp32"] = round(v["sentences_per_s"] / base["sentences_per_s"], 2)
        if peer:
            s["speedup_vs_peer"] = round(v["sentences_per_s"] / peer["sentences_per_s"], 2)
            if v.get("output_words_per_sentence") and peer.get("output_words_per_sentence"):
                # per output word (whitespace words): the peer's outputs may be longer or shorter than ours
                s["speedup_vs_peer_per_output_word"] = round(
                    v["sentences_per_s"] * v["output_words_per_sentence"]
                    / (peer["sentences_per_s"] * peer["output_words_per_sentence"]), 2)
            s["rss_vs_peer"] = round(v["peak_rss_gib"] / peer["peak_rss_gib"], 2)
            t = TARGETS[task]
            s["meets_targets"] = bool(s["speedup_vs_peer"] >= t["speedup"] and v["peak_rss_gib"] <= peer["peak_rss_gib"]
                                      and (not base or abs(s[f"{key}_delta"]) <= t["quality_delta"]))
        out[name] = s
    return out


def headline(result: dict) -> dict:
    """The issue's keys: ``predict_speedup_vs_flair`` / ``decode_speedup_vs_joey`` -- the sentences/s of our fastest
    variant whose quality is within the target's window of eager fp32, over the peer's -- with that variant named,
    and (translation) the same per output word."""
    out = {}
    for task, key, name in (("pos_tagging", "predict_speedup_vs_flair", "accuracy"),
                            ("translation", "decode_speedup_vs_joey", "bleu")):
        r = result["tasks"].get(task)
        if not r or "peer" not in r:
            continue
        ok = {v: s for v, s in r["summary"].items()
              if abs(s.get(f"{name}_delta", 0.0)) <= TARGETS[task]["quality_delta"]}
        if not ok:
            continue
        best = max(ok, key=lambda v: ok[v]["speedup_vs_peer"])
        out[key] = ok[best]["speedup_vs_peer"]
        out[f"{key}_variant"] = best
        if "speedup_vs_peer_per_output_word" in ok[best]:
            out[f"{key}_per_output_word"] = ok[best]["speedup_vs_peer_per_output_word"]
        out[f"{task}_meets_targets"] = ok[best].get("meets_targets")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tagger", type=Path, default=DEFAULT_RUNS["pos_tagging"],
                   help="trained POS tagger run (recipes/configs/pos_tagging/ud_ewt_40min.yaml)")
    p.add_argument("--translator", type=Path, default=DEFAULT_RUNS["translation"],
                   help="trained translation run (recipes/configs/translation/multi30k_de_en_45min.yaml, the README's "
                        "main job)")
    p.add_argument("--tasks", default=",".join(TASKS), help="comma-separated: pos_tagging,translation")
    p.add_argument("--variants", default=",".join(VARIANTS),
                   help="comma-separated among " + ", ".join(VARIANTS) + " (eager_bf16 only where the CPU has it)")
    p.add_argument("--threads", type=int, default=2, help="threads of every side (torch, onnxruntime, the peers)")
    p.add_argument("--beam", type=int, default=5, help="translation beam size (Joey NMT's test uses 5)")
    p.add_argument("--limit", type=int, default=0, help="only the first N test sentences (0: all)")
    p.add_argument("--flair-python", default="../flair-venv/bin/python", help="python of Flair's venv")
    p.add_argument("--joey-python", default="../joey-venv/bin/python", help="python of Joey NMT's venv")
    p.add_argument("--peer-minutes", type=float, default=2.5, help="Flair's training window before it is saved")
    p.add_argument("--joey-epochs", type=int, default=1,
                   help="Joey NMT's training epochs before it decodes (1: seq2seq_vs_joeynmt's set-up; a model "
                        "trained longer writes outputs of realistic length, which decode faster)")
    p.add_argument("--no-peers", action="store_true", help="measure our variants only")
    p.add_argument("--retrain-peers", action="store_true", help="train the peer models again even if saved")
    p.add_argument("--work", type=Path, default=Path("/tmp/seqnlp_inference_bench"),
                   help="exports, peer models, smoke models and logs")
    p.add_argument("--output", type=Path, default=None,
                   help="result JSON (default results/benchmarks/inference.json; --smoke: WORK/inference_smoke.json)")
    p.add_argument("--profile", type=Path, default=None, help="write cProfile stats of each of our variants here")
    p.add_argument("--smoke", action="store_true", help="check the script end to end: smoke models trained "
                   "into --work, the first 200 sentences, no peers (seconds)")
    p.add_argument("--side", choices=["ours", "flair-train", "flair-predict"], help=argparse.SUPPRESS)
    p.add_argument("--task", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--variant", help=argparse.SUPPRESS)
    p.add_argument("--flair-model", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.side:
        side = {"ours": side_ours, "flair-train": side_flair_train, "flair-predict": side_flair_predict}[args.side]
        print(json.dumps(side(args)))
        return 0

    sys.path.insert(0, str(ROOT))
    from seqnlp.export import export
    from seqnlp.train.device import cpu_supports_bf16
    from seqnlp.train.rundir import git_commit, machine, write_record

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    if args.smoke:
        args.no_peers, args.limit = True, args.limit or 200
    runs = smoke_models(work) if args.smoke else {"pos_tagging": args.tagger, "translation": args.translator}
    tasks = [t for t in args.tasks.split(",") if t]
    variants = [v for v in args.variants.split(",") if v]
    if "eager_bf16" in variants and not cpu_supports_bf16():
        print("note: this CPU runs no bf16 LSTM (no AMX / AVX512-BF16): eager_bf16 left out", file=sys.stderr)
        variants.remove("eager_bf16")
    for t in tasks:
        if not Path(runs[t]).exists():
            raise SystemExit(f"no trained {t} model at {runs[t]}: train it (see --help) or pass --tagger/--translator")
    result = {"benchmark": "prediction on 2 CPU cores: eager torch, onnxruntime fp32 / int8, Flair, Joey NMT",
              "command": "python benchmarks/inference.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "commit": git_commit(), "machine": machine(), "threads": args.threads, "smoke": args.smoke,
              "load_avg_before": os.getloadavg(), "bf16_cpu": cpu_supports_bf16(), "targets": TARGETS, "tasks": {}}
    for task in tasks:
        dirs = {"eager_fp32": Path(runs[task]), "eager_bf16": Path(runs[task])}
        for q in ("fp32", "int8"):
            if f"ort_{q}" in variants:
                dirs[f"ort_{q}"] = export(runs[task], work / "exports" / f"{task}_{q}", None if q == "fp32" else q,
                                          log=lambda msg: print(msg, file=sys.stderr))
        r: dict = {"variants": {}}
        for v in variants:
            extra = ["--profile", str(args.profile / f"{task}_{v}.prof")] if args.profile else []
            if args.profile:
                args.profile.mkdir(parents=True, exist_ok=True)
            res = child(sys.executable, ["--side", "ours", "--task", task, "--model", str(dirs[v]), "--variant", v,
                                         *extra], args)
            r["variants"][v] = {**res, **sizes(dirs[v], v)}
        if not args.no_peers:
            r["peer"] = {"flair": run_flair, "joeynmt": run_joey}[{"pos_tagging": "flair",
                                                                  "translation": "joeynmt"}[task]](args, work)
            r["peer_name"] = "flair" if task == "pos_tagging" else "joeynmt"
        r["summary"] = summarise(task, r)
        result["tasks"][task] = r
    result.update(headline(result))
    result["load_avg_after"] = os.getloadavg()
    result["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    out = args.output or (work / "inference_smoke.json" if args.smoke else ROOT / "results" / "benchmarks" /
                          "inference.json")
    write_record(out, result)
    for task, r in result["tasks"].items():
        key = "accuracy" if task == "pos_tagging" else "bleu"
        for name, v in [*r["variants"].items(), *([("peer " + r["peer_name"], r["peer"])] if "peer" in r else [])]:
            quality = float("nan") if v.get(key) is None else v[key]
            print(f"{task:12s} {name:16s} {v['sentences_per_s']:8.1f} sent/s  {key} {quality:6.2f}  "
                  f"peak RSS {v['peak_rss_gib']:.2f} GiB  {r['summary'].get(name, {})}")
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
