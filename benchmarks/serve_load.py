"""A bounded load test of ``seqnlp serve`` on 127.0.0.1: throughput under load against offline batch prediction.

    python benchmarks/serve_load.py [--clients 32] [--requests 50] [--sentences-per-request 1]
                                    [--translation-model RUN] [--tagger-model RUN]
                                    [--out results/benchmarks/serve_load.json]

For each model (a translation model on Multi30k test2016 German sources, a POS tagger on the English side) it
starts a real ``seqnlp serve`` process on a free loopback port, warms it up, then runs ``--clients`` concurrent
clients (asyncio, one keep-alive connection each), each sending ``--requests`` requests of
``--sentences-per-request`` sentences one after another, and stops by itself (a fixed count; ``--time-limit``
cuts it short). It prints requests/s, sentences/s, p50/p95/p99 latency, errors (non-200 answers, a wrong
number of results, results different from offline prediction), the server's RSS before and after, the
batching the server did (mean inputs per predict call, or with continuous batching the sentences per decoder
step; the fraction of the wall time the model was busy), and, in the same run, the same model's offline
``predict`` throughput on the same sentences in one call (same threads; the fastest of up to 3 calls). Targets:
sentences/s under load >= 0.7 x offline, 0 errors, RSS growth under 10%. ``--batching continuous,grouped`` runs
the translation server both ways, one after the other (the tagger has one way: measured once).

Models: ``--translation-model`` / ``--tagger-model``, else the first trained model of that task under
``runs/``, else the task's smoke config trained here (seconds; said in the output). The server and the
offline run use the same torch threads (``--threads``; 0: the run's ``train.threads``), unless ``--workers N
--server-threads T`` gives the server N model processes of T torch threads each (the offline run keeps
``--threads``: the same cores either way; RSS and CPU time are then summed over the server and its workers).
Writes the JSON record (top level: the worst over the models of ``throughput_ratio``, ``errors``, ``p99_ms``;
per model under ``models``).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from seqnlp.serve.compare import same  # noqa: E402  (results equal, floats to 1e-3)

DATA = Path(os.environ.get("SEQNLP_DATA", ROOT.parent / "shared" / "data"))
TASK_SIDE = {"translation": "de", "pos_tagging": "en"}  # which side of Multi30k test2016 each model reads
CONTINUOUS = {"translation"}  # tasks that --batching changes (beam search); the tagger is always grouped


# ---------------------------------------------------------------------------------------------- models
def find_model(task: str) -> Path | None:
    """The most recent trained model of ``task`` under runs/ (a run directory with a checkpoint of it)."""
    found = []
    for cfg in (ROOT / "runs").glob("*/checkpoints/best/config.json"):
        try:
            if json.loads(cfg.read_text()).get("task") == task:
                found.append((cfg.stat().st_mtime, cfg.parents[2]))
        except (OSError, json.JSONDecodeError):
            continue
    return max(found)[1] if found else None


def smoke_model(task: str, out: Path) -> Path:
    cmd = [sys.executable, "-m", "seqnlp.cli", "train", "--config", str(ROOT / f"recipes/configs/{task}/smoke.yaml"),
           f"output_dir={out}", "train.device=cpu", "train.progress=false"]
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    return out


def sentences(task: str, n: int) -> list[str]:
    path = DATA / "translation" / "multi30k" / f"test_2016_flickr.{TASK_SIDE[task]}.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = [x.strip() for x in f if x.strip()]
    return [lines[i % len(lines)] for i in range(n)]


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the server's model worker processes)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            try:
                todo += [int(c) for c in task.read_text().split()]
            except OSError:
                pass
    return out


def cpu_seconds(pid: int, descendants: bool = True) -> float:
    """User + system CPU time so far of process ``pid`` and (``descendants``) its descendants (all threads)."""
    total = 0.0
    for p in tree(pid) if descendants else [pid]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def rss_mb(pid: int) -> float:
    """Resident MB of process ``pid`` and its descendants (summed: pages they share count once per process)."""
    total = 0.0
    for p in tree(pid):
        try:
            lines = Path(f"/proc/{p}/status").read_text().splitlines()
        except OSError:
            continue
        total += next((int(x.split()[1]) / 1024 for x in lines if x.startswith("VmRSS:")), 0.0)
    return total


# ---------------------------------------------------------------------------------------------- server
class Server:
    def __init__(self, model: Path, args):
        cmd = [sys.executable, "-m", "seqnlp.cli", "serve", "--model", str(model), "--host", "127.0.0.1", "--port",
               "0", "--device", args.device, "--max-wait-ms", str(args.max_wait_ms), "--max-batch-tokens",
               str(args.max_batch_tokens), "--max-batch-size", str(args.max_batch_size), "--max-inputs", "100000"]
        threads = args.server_threads or args.threads
        if threads:
            cmd += ["--threads", str(threads)]
        cmd += ["--workers", str(args.workers)] + (["--keep-freed-memory"] if args.keep_freed_memory else [])
        cmd += ["--batching", args.batching, "--http", args.http, "--loop", args.loop]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.port = 0
        ready = threading.Event()

        def read():
            for line in self.proc.stdout:
                self.lines.append(line)
                if not self.port and " at http://" in line:
                    self.port = int(line.split(" at http://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        ready.wait(180)
        if not self.port:
            self.stop()
            raise RuntimeError("seqnlp serve did not start:\n" + "".join(self.lines))

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


async def http(reader, writer, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    """One HTTP/1.1 request on a keep-alive connection: (status, body)."""
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next((int(x.split(":", 1)[1]) for x in lines[1:] if x.lower().startswith("content-length:")), 0)
    return status, await reader.readexactly(length)


async def get_json(port: int, path: str) -> dict:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return json.loads((await http(reader, writer, "GET", path))[1])
    finally:
        writer.close()


async def load(port: int, batches: list[list[list[str]]], deadline: float) -> dict:
    """Client c sends batches[c] one request after another; latencies and errors of all."""
    lat: list[float] = []
    answers: dict[tuple[int, int], list] = {}
    errors: list[str] = []
    unsent = 0

    async def client(c: int) -> None:
        nonlocal unsent
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for r, inputs in enumerate(batches[c]):
                if time.monotonic() > deadline:
                    unsent += len(batches[c]) - r
                    return
                t0 = time.perf_counter()
                try:
                    status, body = await http(reader, writer, "POST", "/predict",
                                              json.dumps({"inputs": inputs}).encode())
                except (OSError, asyncio.IncompleteReadError, ValueError) as e:
                    errors.append(f"client {c} request {r}: {type(e).__name__}: {e}")
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    continue
                lat.append(time.perf_counter() - t0)
                if status != 200:
                    errors.append(f"client {c} request {r}: HTTP {status}: {body[:200]!r}")
                    continue
                results = json.loads(body)["results"]
                if len(results) != len(inputs):
                    errors.append(f"client {c} request {r}: {len(results)} results for {len(inputs)} inputs")
                    continue
                answers[(c, r)] = results
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(len(batches))))
    return {"wall": time.perf_counter() - t0, "latencies": lat, "answers": answers, "errors": errors,
            "unsent": unsent}


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, math.ceil(q / 100 * len(xs)) - 1))]


# ---------------------------------------------------------------------------------------------- one model
def bench(task: str, model: Path, source: str, args, k: int) -> dict:
    from seqnlp.runner import load as load_model

    n_req = args.clients * args.requests
    sents = sentences(task, n_req * k)
    batches = [[sents[(c * args.requests + r) * k:(c * args.requests + r + 1) * k] for r in range(args.requests)]
               for c in range(args.clients)]

    # offline: the same model, threads and sentences, one predict call (after a warm-up call), repeated until 3
    # calls or 10 s and the fastest taken (a 0.5 s tagger call varied by 20% between runs; the best is the
    # conservative side of the ratio)
    pred = load_model(model, args.device, threads=args.threads)
    pred.predict(sents[:64])
    times, start = [], time.perf_counter()
    while len(times) < 3 and (not times or time.perf_counter() - start < 10):
        t0 = time.perf_counter()
        offline = pred.predict(sents)
        times.append(time.perf_counter() - t0)
    offline_s = min(times)
    offline_sps = len(sents) / offline_s
    del pred

    server = Server(model, args)
    try:
        async def run() -> tuple[dict, dict, dict, float, float]:
            # warm-up: the load's shape (every client, 3 requests each), so that the RSS measured before the
            # load is the server's steady state and its growth during the load shows leaks, not first use
            await load(server.port, [b[:3] for b in batches], time.monotonic() + 60)
            before = await get_json(server.port, "/health")
            rss0 = rss_mb(server.proc.pid)
            cpu0 = (cpu_seconds(server.proc.pid), time.process_time(), cpu_seconds(server.proc.pid, descendants=False))
            res = await load(server.port, batches, time.monotonic() + args.time_limit)
            res["cpu"] = (cpu_seconds(server.proc.pid) - cpu0[0], time.process_time() - cpu0[1],
                          cpu_seconds(server.proc.pid, descendants=False) - cpu0[2])
            after = await get_json(server.port, "/health")
            return res, before, after, rss0, rss_mb(server.proc.pid)

        res, before, after, rss0, rss1 = asyncio.run(run())
    finally:
        code = server.stop()
    wrong = [f"request {c}/{r}: differs from offline predict" for (c, r), out in res["answers"].items()
             if not same(out, offline[(c * args.requests + r) * k:(c * args.requests + r + 1) * k])]
    b0, b1 = before["batching"], after["batching"]
    # the loops' counters: the worker processes', else the server's own model thread's (continuous batching)
    w0, w1 = (before.get("workers") or before.get("stream") or {}), (after.get("workers") or after.get("stream") or {})
    calls = max(1, b1["batches"] - b0["batches"])
    steps = w1.get("steps", 0) - w0.get("steps", 0)
    # with worker processes the model time is theirs (batches and continuous-search steps); else the batcher's
    # model thread's plus the continuous search's
    busy = (w1.get("model_seconds", 0) - w0.get("model_seconds", 0)) + (
        0 if "workers" in after else b1["model_seconds"] - b0["model_seconds"])
    done = len(res["latencies"])
    sps = done * k / res["wall"]
    out = {
        "task": task, "model": str(model), "model_source": source, "sentences": len(sents),
        "clients": args.clients, "requests_per_client": args.requests, "sentences_per_request": k,
        "requests_done": done, "requests_unsent": res["unsent"],
        "requests_per_s": done / res["wall"], "sentences_per_s": sps, "offline_sentences_per_s": offline_sps,
        "offline_seconds": offline_s, "offline_calls": len(times), "throughput_ratio": sps / offline_sps,
        "p50_ms": 1000 * pct(res["latencies"], 50), "p95_ms": 1000 * pct(res["latencies"], 95),
        "p99_ms": 1000 * pct(res["latencies"], 99), "wall_seconds": res["wall"],
        "errors": len(res["errors"]) + len(wrong) + res["unsent"], "http_errors": res["errors"][:10],
        "mismatches": len(wrong), "mismatch_examples": wrong[:5],
        "rss_mb_before": rss0, "rss_mb_after": rss1, "rss_growth": rss1 / rss0 - 1,
        "server_exit_status": code,
        # where the 2 cores went during the load: the server (its process and its model worker processes), its
        # process alone (event loop, and the model thread without workers), this process (the clients), in CPU
        # seconds per wall second; and the web process's CPU per request
        "cpu_cores_used": {"server": res["cpu"][0] / res["wall"], "clients": res["cpu"][1] / res["wall"],
                           "server_process": res["cpu"][2] / res["wall"]},
        "server_process_cpu_ms_per_request": 1000 * res["cpu"][2] / max(1, done),
        "batching": {"predict_calls": calls, "mean_requests_per_call": (b1["requests"] - b0["requests"]) / calls,
                     "mean_inputs_per_call": (b1["inputs"] - b0["inputs"]) / calls,
                     "largest_call_inputs": b1["largest_batch_inputs"],
                     "model_busy_fraction": busy / res["wall"],
                     # continuous batching (beam search): decoder steps, sentences per step
                     "stream_steps": steps,
                     "mean_live_inputs_per_step": (w1["live_input_steps"] - w0["live_input_steps"]) / steps
                     if steps else 0.0,
                     # from a worker (or the model thread's loop) receiving a request to its answer, on average
                     "ms_in_worker": 1000 * (w1["request_seconds"] - w0["request_seconds"]) /
                     max(1, w1["answered"] - w0["answered"]) if "answered" in w1 else None},
    }
    return out


def machine(threads: int) -> str:
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, python {platform.python_version()}, "
            f"{'torch threads ' + str(threads) if threads else 'torch threads of the run config'}")


def table(runs: list[dict]) -> str:
    rows = [("model", "batching", "sent/req", "req/s", "sent/s", "offline sent/s", "ratio", "p50 ms", "p95 ms",
             "p99 ms", "errors", "RSS MB before→after", "inputs/call or /step", "model busy", "CPU server/clients")]
    for r in runs:
        b = r["batching"]
        rows.append((f"{r['task']} ({r['model_source']})", r.get("batching_mode", ""), str(r["sentences_per_request"]),
                     f"{r['requests_per_s']:.0f}", f"{r['sentences_per_s']:.0f}",
                     f"{r['offline_sentences_per_s']:.0f}", f"{r['throughput_ratio']:.2f}", f"{r['p50_ms']:.1f}",
                     f"{r['p95_ms']:.1f}", f"{r['p99_ms']:.1f}", str(r["errors"]),
                     f"{r['rss_mb_before']:.0f}→{r['rss_mb_after']:.0f} ({100 * r['rss_growth']:+.1f}%)",
                     f"{b['mean_live_inputs_per_step'] if b.get('stream_steps') else b['mean_inputs_per_call']:.1f}",
                     f"{100 * b['model_busy_fraction']:.0f}%",
                     f"{r['cpu_cores_used']['server']:.2f}/{r['cpu_cores_used']['clients']:.2f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--requests", type=int, default=50, help="requests per client")
    p.add_argument("--sentences-per-request", default="1",
                   help="sentences in each request; a comma-separated list runs each (default 1; the first one "
                        "gives the record's top-level numbers)")
    p.add_argument("--tasks", default="translation,pos_tagging")
    p.add_argument("--translation-model", default="")
    p.add_argument("--tagger-model", default="")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch threads, server and offline (0: the run's)")
    p.add_argument("--workers", type=int, default=0,
                   help="the server's model processes (seqnlp serve --workers; 0: a model thread in the server)")
    p.add_argument("--keep-freed-memory", action="store_true", help="seqnlp serve --keep-freed-memory (no "
                   "malloc_trim after each batch)")
    p.add_argument("--server-threads", type=int, default=0,
                   help="torch threads of the server alone (0: --threads); e.g. --workers 2 --server-threads 1")
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--max-batch-tokens", type=int, default=4096)
    p.add_argument("--max-batch-size", type=int, default=256)
    p.add_argument("--batching", default="continuous",
                   help="seqnlp serve --batching: continuous, grouped, or both as a comma-separated "
                        "list, run one after the other (the first gives the record's top level)")
    p.add_argument("--http", default="auto", help="seqnlp serve --http (auto, h11, httptools)")
    p.add_argument("--loop", default="auto", help="seqnlp serve --loop (auto, asyncio, uvloop)")
    p.add_argument("--time-limit", type=float, default=120, help="seconds of load per model at most")
    p.add_argument("--out", default=str(ROOT / "results/benchmarks/serve_load.json"))
    return p


def pick_model(task: str, given: str, tmp: Path) -> tuple[Path, str]:
    """The model of ``task``: the given one, else the newest trained one under runs/, else a smoke model."""
    if given:
        return Path(given), "given"
    if (found := find_model(task)) is not None:
        return found, "runs/"
    print(f"{task}: no trained model under runs/: training recipes/configs/{task}/smoke.yaml", file=sys.stderr)
    return smoke_model(task, tmp / task), "smoke config"


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("TQDM_DISABLE", "1")
    given = {"translation": args.translation_model, "pos_tagging": args.tagger_model}
    sizes = [int(x) for x in str(args.sentences_per_request).split(",") if x]
    modes = [x for x in str(args.batching).split(",") if x]
    if any(m not in ("continuous", "grouped") for m in modes) or not modes:
        p.error(f"--batching: continuous, grouped or both, got {args.batching!r}")
    runs: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for task in [t for t in args.tasks.split(",") if t]:
            model, source = pick_model(task, given.get(task, ""), Path(tmp))
            print(f"{task}: {model} ({source})", file=sys.stderr)
            for k in sizes:
                for mode in modes:  # side by side: one batching after the other on the same model and sentences
                    label = mode if task in CONTINUOUS else "grouped (always)"
                    if task not in CONTINUOUS and mode != modes[0]:  # the same server: measured once, in both
                        runs.append({**runs[-1], "batching_mode": label, "scenario_batching": mode})
                        continue
                    args.batching = mode
                    runs.append({**bench(task, model, source, args, k), "batching_mode": label,
                                 "scenario_batching": mode})
                    print(table(runs[-1:]), file=sys.stderr)
    cmd = "python benchmarks/serve_load.py " + " ".join(argv if argv is not None else sys.argv[1:])
    scenarios = []
    for k, mode in [(k, mode) for k in sizes for mode in modes]:
        rs = [r for r in runs if r["sentences_per_request"] == k and r["scenario_batching"] == mode]
        scenarios.append({
            "sentences_per_request": k, "batching": mode,
            "throughput_ratio": min(r["throughput_ratio"] for r in rs), "errors": sum(r["errors"] for r in rs),
            "p99_ms": max(r["p99_ms"] for r in rs), "rss_growth": max(r["rss_growth"] for r in rs),
            "models": {r["task"]: r for r in rs}})
    first = scenarios[0]
    record = {
        "benchmark": f"seqnlp serve under load: {args.clients} clients x {args.requests} requests of "
                     f"{'/'.join(map(str, sizes))} Multi30k test2016 sentence(s) each, 127.0.0.1; top level: "
                     f"{sizes[0]} sentence(s) per request, {modes[0]} batching, the worst over the models",
        "command": cmd.strip(), "machine": machine(args.threads), "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "targets": {"throughput_ratio": ">= 0.7", "errors": "0", "rss_growth": "< 0.10"},
        **{key: first[key] for key in ("throughput_ratio", "errors", "p99_ms", "rss_growth")},
        "server": {"max_wait_ms": args.max_wait_ms, "max_batch_tokens": args.max_batch_tokens,
                   "max_batch_size": args.max_batch_size, "workers": args.workers, "batching": modes,
                   "keep_freed_memory": args.keep_freed_memory, "http": args.http, "loop": args.loop,
                   "threads": args.server_threads or args.threads or "the run's"},
        "scenarios": scenarios,
    }
    from seqnlp.train.rundir import portable

    record = portable(record, ROOT)  # paths inside the repository relative to it
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    print(f"\n{record['benchmark']}\n{record['machine']}\n\n{table(runs)}\n\nwrote {args.out}")
    for sc in scenarios:
        ok = sc["throughput_ratio"] >= 0.7 and sc["errors"] == 0 and sc["rss_growth"] < 0.10
        print(f"{sc['sentences_per_request']} sentence(s) per request, {sc['batching']} batching: targets "
              f"{'met' if ok else 'NOT met'} "
              f"(worst ratio {sc['throughput_ratio']:.2f}, errors {sc['errors']}, RSS growth "
              f"{100 * sc['rss_growth']:+.1f}%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
