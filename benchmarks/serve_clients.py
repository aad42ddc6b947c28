"""Sentences/s of ``seqnlp serve`` against the number of concurrent clients: where the server saturates.

    python benchmarks/serve_clients.py [--clients 8,16,32,64,128] [--plot docs/serve_clients.png]
                                       [--out results/benchmarks/serve_clients.json] [serve_load.py options]
    python benchmarks/serve_clients.py --plot-only results/benchmarks/serve_clients.json --plot docs/serve_clients.png

``benchmarks/serve_load.py`` measures one load (e.g. 32 clients); with one sentence a request the server can
batch at most as many sentences as there are clients waiting, so its throughput depends on that count. This runs
serve_load's measurement once per client count (a fresh ``seqnlp serve`` each time; every other option --
``--tasks``, models, ``--requests`` per client, ``--sentences-per-request`` (the first one), ``--batching`` (the
first one), ``--workers``, threads -- as serve_load.py takes it) and records, per task and client count,
sentences/s served, the offline one-call figure measured beside it, their ratio, the latencies, errors and RSS
growth. ``--plot`` draws sentences/s against the client count with the offline figure.

This does not replace serve_load.py's record: the issue's load test is its fixed set-up (32 clients); the sweep
shows how far from it the server saturates.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import serve_load  # noqa: E402  (benchmarks/serve_load.py: the measurement itself)

KEEP = ("clients", "requests_done", "sentences_per_s", "offline_sentences_per_s", "throughput_ratio", "p50_ms",
        "p99_ms", "errors", "rss_growth", "wall_seconds", "cpu_cores_used", "server_process_cpu_ms_per_request")


def plot(record: dict, path: Path) -> Path:
    """Sentences/s served against concurrent clients, one panel per task; the offline one-call figure dashed."""
    from small_batches import log2_axis, panels, save

    tasks = list(record["tasks"])
    fig, axes = panels(len(tasks))
    for ax, task in zip(axes, tasks):
        rows = record["tasks"][task]["points"]
        xs = [r["clients"] for r in rows]
        ax.plot(xs, [r["sentences_per_s"] for r in rows], marker="o", label="served (sentences/s)")
        ax.plot(xs, [r["offline_sentences_per_s"] for r in rows], linestyle="--", color="grey",
                label="offline, one call (measured beside each)")
        ax.plot(xs, [0.7 * r["offline_sentences_per_s"] for r in rows], linestyle=":", color="grey",
                label="0.7 x offline")
        for r in rows:
            ax.annotate(f"{r['throughput_ratio']:.2f}", (r["clients"], r["sentences_per_s"]), fontsize=7,
                        textcoords="offset points", xytext=(0, 6), ha="center")
        ax.set_ylim(bottom=0)
        log2_axis(ax, xs, "concurrent clients", "sentences / s", f"{task.replace('_', ' ')}: "
                  f"{record['sentences_per_request']} sentence(s) a request, {record['batching']}", legend_size=7)
    return save(fig, path, record.get("machine", ""))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="other options: serve_load.py's "
                                "(python benchmarks/serve_load.py --help)",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", default="8,16,32,64,128", help="client counts, comma-separated")
    p.add_argument("--out", default=str(ROOT / "results/benchmarks/serve_clients.json"))
    p.add_argument("--plot", default="", help="also draw the record as a PNG here")
    p.add_argument("--plot-only", default="", metavar="RECORD", help="only draw --plot from an existing record")
    own, rest = p.parse_known_args(argv)
    if own.plot_only:
        print(f"wrote {plot(json.loads(Path(own.plot_only).read_text()), Path(own.plot or 'serve_clients.png'))}")
        return 0
    counts = [int(x) for x in own.clients.split(",") if x]
    if not counts or min(counts) < 1:
        p.error(f"--clients: positive counts, got {own.clients!r}")
    args = serve_load.parser().parse_args(rest)
    args.sentences_per_request = int(str(args.sentences_per_request).split(",")[0])
    args.batching = str(args.batching).split(",")[0]
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("TQDM_DISABLE", "1")
    given = {"translation": args.translation_model, "pos_tagging": args.tagger_model}
    tasks: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for task in [t for t in args.tasks.split(",") if t]:
            model, source = serve_load.pick_model(task, given.get(task, ""), Path(tmp))
            points = []
            for n in counts:
                args.clients = n
                r = serve_load.bench(task, model, source, args, args.sentences_per_request)
                points.append({key: r[key] for key in KEEP if key in r})
                print(f"{task} {n:>4} clients: {r['sentences_per_s']:7.1f} sentences/s, offline "
                      f"{r['offline_sentences_per_s']:7.1f}, ratio {r['throughput_ratio']:.2f}, p50 "
                      f"{r['p50_ms']:.0f} ms, errors {r['errors']}", file=sys.stderr)
            tasks[task] = {"model": str(model), "model_source": source, "points": points}
    record = {"benchmark": __doc__.split("\n\n")[0],
              "command": "python benchmarks/serve_clients.py " + " ".join(argv),
              "machine": serve_load.machine(args.threads), "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
              "requests_per_client": args.requests, "sentences_per_request": args.sentences_per_request,
              "batching": args.batching, "workers": args.workers,
              "server_threads": args.server_threads or args.threads or "the run's", "tasks": tasks}
    from small_batches import write

    write(record, Path(own.out), plot, own.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
