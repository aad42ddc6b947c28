"""How fast a model predicts in the small batches a server sees, against one offline call (the serving ceiling).

    python benchmarks/small_batches.py [--translator RUN] [--tagger RUN] [--sentences 320] [--threads 1]
                                       [--out results/benchmarks/small_batches.json] [--plot docs/small_batches.png]
    python benchmarks/small_batches.py --plot-only results/benchmarks/small_batches.json --plot docs/small_batches.png

A server under load from C clients of one sentence each has at most C sentences to batch; with two worker
processes of one thread each, each has about C/2. This measures, in one process and run (Multi30k test2016
sentences, ``--threads`` torch threads), sentences/s of

* translation (beam search): ``predict`` on consecutive chunks of n sentences (what grouped micro-batches do),
  against keeping n sentences in one running search, a new one joining as soon as one is done
  (:class:`~seqnlp.tasks.seq2seq.DecodeStream`, the server's continuous batching), the time of one decoder
  step for n sentences (beam rows 5n) and of one sentence joining a running search of n (its encoder run and
  the merge: what continuous batching pays per request);
* tagging: ``predict`` on chunks of n sentences with the inference rule that runs mostly-padded batches packed,
  and with the padded run forced (``RNNEncoder.PACK_BELOW = 0``); with every word's character features cached
  (the predictor's word-feature cache, warm), without the cache, and once with the cache emptied before a pass
  over each distinct sentence once (cold); outputs are checked equal.

Each size runs twice, alternating, so that drift on a shared machine shows. Writes a JSON record.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = Path(os.environ.get("SEQNLP_DATA", ROOT.parent / "shared" / "data"))


def sentences(side: str, n: int) -> list[str]:
    with gzip.open(DATA / "translation" / "multi30k" / f"test_2016_flickr.{side}.gz", "rt", encoding="utf-8") as f:
        lines = [x.strip() for x in f if x.strip()]
    return [lines[i % len(lines)] for i in range(n)]


def chunks(pred, sents: list[str], n: int) -> tuple[float, list]:
    t0, out = time.perf_counter(), []
    for i in range(0, len(sents), n):
        out += pred.predict(sents[i : i + n])
    return len(sents) / (time.perf_counter() - t0), out


def stream(pred, sents: list[str], n: int) -> tuple[float, float, list]:
    """n sentences in one running search at all times; (sentences/s, mean live sentences per step, results)."""
    st, out, nxt, steps, live = pred.stream(), {}, 0, 0, 0
    t0 = time.perf_counter()
    while len(out) < len(sents):
        new = []
        while nxt < len(sents) and len(st) + len(new) < n:
            new.append((nxt, [sents[nxt]]))
            nxt += 1
        if new:
            out.update(dict(st.add(new)[0]))
        live += len(st)
        steps += 1
        out.update(dict(st.step()))
    return len(sents) / (time.perf_counter() - t0), live / max(steps, 1), [out[i][0] for i in range(len(sents))]


def step_ms(pred, n: int, reps: int = 30) -> float:
    """One decoder step (model only, no search bookkeeping) for n sentences x beam 5 rows."""
    import torch

    from seqnlp.data.seq2seq import source_batch

    m, k = pred.model, pred.search.beam_size
    srcs, _ = pred.encode(sentences("de", n))
    with torch.inference_mode():
        state = m.start(source_batch(srcs, pred.tgt_tok.pad_id))
        state = m.reorder(state, torch.arange(n).repeat_interleave(k))
        tokens = torch.full((n * k,), pred.tgt_tok.bos_id)
        for _ in range(3):
            m.step(tokens, state)
        t0 = time.perf_counter()
        for _ in range(reps):
            m.step(tokens, state)
    return 1000 * (time.perf_counter() - t0) / reps


def panels(n: int):
    """A figure of ``n`` panels side by side and its axes (matplotlib without a display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, n, figsize=(5.5 * n, 3.8), squeeze=False)
    return fig, axes[0]


def log2_axis(ax, xs: list[int], xlabel: str, ylabel: str, title: str, legend_size: int = 8) -> None:
    """A panel with ``xs`` on a log-2 axis (labels not crowded), its labels, a grid and the legend."""
    ax.set_xscale("log", base=2)
    ticks = [n for i, n in enumerate(xs) if i == 0 or n >= 1.3 * xs[i - 1]]  # 14 and 16: one label
    ax.set_xticks(ticks, [str(n) for n in ticks])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=legend_size, loc="best")


def save(fig, path: Path, machine: str) -> Path:
    import matplotlib.pyplot as plt

    fig.suptitle(machine, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def join_ms(pred, n: int, reps: int = 40) -> float:
    """Median ms of one sentence joining a running search of n sentences (DecodeStream.add: its encoder run,
    the decoder's start and the merge into the search's state), what continuous batching pays per request."""
    import statistics

    sents = sentences("de", n + reps + 8)
    st = pred.stream()
    st.add([(i, [sents[i]]) for i in range(n)])
    times, nxt = [], n
    while len(times) < reps:
        while len(st) < n:  # keep n live: refill what finished, not timed
            st.add([(nxt, [sents[nxt % len(sents)]])])
            nxt += 1
        t0 = time.perf_counter()
        st.add([(nxt, [sents[nxt % len(sents)]])])
        times.append(time.perf_counter() - t0)
        nxt += 1
        st.step()
        st.step()
    return 1000 * statistics.median(times)


def plot(record: dict, path: Path) -> Path:
    """Sentences/s against the batch size n (mean of the repeats), one panel per model, one offline call dashed."""
    series = {"translation": [("grouped_sentences_per_s", "chunks of n (grouped)"),
                              ("continuous_sentences_per_s", "n in one running search (continuous)")],
              "pos_tagging": [("sentences_per_s", "chunks of n (words cached)"),
                              ("no_cache_sentences_per_s", "chunks of n, no word cache"),
                              ("padded_run_sentences_per_s", "chunks of n, padded run forced")]}
    tasks = [t for t in series if t in record]
    fig, axes = panels(len(tasks))
    for ax, task in zip(axes, tasks):
        rows = record[task]["sizes"]
        ns = sorted({r["n"] for r in rows})
        for key, label in series[task]:
            if not all(key in r for r in rows):  # a record from before this measurement
                continue
            ys = [sum(r[key] for r in rows if r["n"] == n) / sum(1 for r in rows if r["n"] == n) for n in ns]
            ax.plot(ns, ys, marker="o", label=label)
        ax.axhline(record[task]["one_call_sentences_per_s"], linestyle="--", color="grey",
                   label=f"one call of {record[task]['sentences']} sentences")
        log2_axis(ax, ns, "sentences at once (n)", "sentences / s (1 thread)", task.replace("_", " "))
    return save(fig, path, record.get("machine", ""))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--translator", default="runs/multi30k_de_en_45min")
    p.add_argument("--tagger", default="runs/pos_ud_ewt_40min")
    p.add_argument("--sentences", type=int, default=320, help="sentences per measurement (translation; x10 tagging)")
    p.add_argument("--sizes", default="1,4,8,14,16,32,64", help="batch sizes n")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--profile", type=int, default=0, help="print torch.profiler's table for a running search of this "
                   "many translation sentences, then the measurements")
    p.add_argument("--out", default=str(ROOT / "results/benchmarks/small_batches.json"))
    p.add_argument("--plot", default="", help="also draw the record as a PNG here (sentences/s against n)")
    p.add_argument("--plot-only", default="", metavar="RECORD", help="only draw --plot from an existing record")
    args = p.parse_args(argv)
    if args.plot_only:
        print(f"wrote {plot(json.loads(Path(args.plot_only).read_text()), Path(args.plot or 'small_batches.png'))}")
        return 0
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    from seqnlp.nn.encoders import RNNEncoder
    from seqnlp.runner import load
    from seqnlp.serve.compare import same

    sizes = [int(x) for x in args.sizes.split(",") if x]
    cpu = next((x.split(":", 1)[1].strip() for x in Path("/proc/cpuinfo").read_text().splitlines()
                if x.startswith("model name")), platform.machine())
    record: dict = {"benchmark": __doc__.split("\n\n")[0], "command": "python benchmarks/small_batches.py " +
                    " ".join(argv if argv is not None else sys.argv[1:]),
                    "machine": f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, python "
                               f"{platform.python_version()}, torch threads {args.threads}"}
    if args.translator:
        pred = load(args.translator, "cpu", threads=args.threads)
        sents = sentences("de", args.sentences)
        pred.predict(sents[:16])
        if args.profile:
            from torch.profiler import ProfilerActivity, profile

            stream(pred, sents[:64], args.profile)
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                stream(pred, sents, args.profile)
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15), file=sys.stderr)
        full, ref = chunks(pred, sents, len(sents))
        rows = []
        for n in sizes:
            for rep in range(2):
                grouped, out_g = chunks(pred, sents, n)
                cont, live, out_c = stream(pred, sents, n)
                assert same(out_g, ref) and same(out_c, ref), f"results at n={n} differ from one predict call"
                rows.append({"n": n, "rep": rep, "grouped_sentences_per_s": round(grouped, 1),
                             "continuous_sentences_per_s": round(cont, 1), "continuous_mean_live": round(live, 1)})
                print(f"translation n={n:>3} grouped {grouped:6.1f}  continuous {cont:6.1f} (live {live:.1f})",
                      file=sys.stderr)
        steps = {n: round(step_ms(pred, n), 2) for n in sizes}
        joins = {n: round(join_ms(pred, n), 2) for n in sizes}
        print(f"translation: one predict call {full:.1f} sentences/s; decoder step ms {steps}; one sentence joining "
              f"a running search of n, ms {joins}", file=sys.stderr)
        record["translation"] = {"model": args.translator, "sentences": len(sents), "one_call_sentences_per_s":
                                 round(full, 1), "sizes": rows, "decoder_step_ms": steps, "join_one_ms": joins}
        del pred
    if args.tagger:
        pred = load(args.tagger, "cpu", threads=args.threads)
        sents = sentences("en", 10 * args.sentences)
        unique = list(dict.fromkeys(sents))  # for the cold-cache pass: each sentence once
        pred.predict(sents[:64])
        cache = pred.char_cache  # the predictor's word-feature cache (seqnlp.nn.char_encoder.WordFeatureCache)
        capacity = cache.capacity
        cache.capacity = 0
        full_nocache, ref = chunks(pred, sents, len(sents))
        cache.capacity = capacity
        full, out_full = chunks(pred, sents, len(sents))  # (a call this big is not cached: max_call_words)
        assert out_full == ref, "tags with the word cache differ"
        chunks(pred, sents, 64)  # fills the cache: every word of the input
        rows = []
        for n in sizes:
            for rep in range(2):
                rule, out_r = chunks(pred, sents, n)  # every word cached (warm)
                saved, RNNEncoder.PACK_BELOW = RNNEncoder.PACK_BELOW, 0.0
                try:
                    padded, out_p = chunks(pred, sents, n)
                finally:
                    RNNEncoder.PACK_BELOW = saved
                cache.capacity = 0
                try:
                    nocache, out_n = chunks(pred, sents, n)
                finally:
                    cache.capacity = capacity
                row = {"n": n, "rep": rep, "sentences_per_s": round(rule, 1),
                       "padded_run_sentences_per_s": round(padded, 1), "no_cache_sentences_per_s": round(nocache, 1)}
                if rep == 0:  # the cache emptied, then each sentence once: words new to it are encoded
                    cache.clear()
                    cold, out_c = chunks(pred, unique, n)
                    assert out_c == [dict(zip(sents, ref))[s] for s in unique], f"tags at n={n} (cold cache) differ"
                    chunks(pred, sents, 64)  # warm again for the next measurements
                    row["cold_cache_sentences_per_s"] = round(cold, 1)
                assert out_r == ref and out_p == ref and out_n == ref, f"tags at n={n} differ"
                rows.append(row)
                print(f"tagging n={n:>3} {rule:7.1f} (padded run forced {padded:7.1f}, no word cache {nocache:7.1f}"
                      + (f", cold cache {row['cold_cache_sentences_per_s']:7.1f})" if rep == 0 else ")"),
                      file=sys.stderr)
        print(f"tagging: one predict call {full:.1f} sentences/s ({full_nocache:.1f} without the word cache)",
              file=sys.stderr)
        record["pos_tagging"] = {"model": args.tagger, "sentences": len(sents), "one_call_sentences_per_s":
                                 round(full, 1), "one_call_no_cache_sentences_per_s": round(full_nocache, 1),
                                 "sizes": rows}
    record["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    write(record, Path(args.out), plot, args.plot)
    return 0


def write(record: dict, out: Path, draw, picture: str = "") -> None:
    """Write the JSON record (paths inside the repository relative to it) and, with ``picture``, its plot."""
    from seqnlp.train.rundir import portable

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(portable(record, ROOT), indent=1) + "\n")
    print(f"wrote {out}", file=sys.stderr)
    if picture:
        print(f"wrote {draw(record, Path(picture))}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
