"""``seqnlp serve``: one trained model of any task over HTTP (FastAPI + uvicorn: ``pip install -e '.[serve]'``).

    seqnlp serve --model runs/sst2 [--host 127.0.0.1] [--port 8080] [key.sub=value ...]
    curl -s localhost:8080/predict -d '{"inputs": ["a gorgeous , witty , seductive movie ."]}'

Routes: ``POST /predict`` (``{"inputs": [...], "parameters": {...}}`` -> ``{"results": [...], "truncated":
[...]}``), ``GET /health``, ``GET /info``, ``GET /metrics`` (Prometheus), ``GET /`` (a page to try the model)
and, for translation models, OpenNMT-py's ``POST /translator/translate`` (see :mod:`seqnlp.serve.app`).
Concurrent requests are grouped into one batched ``predict`` call (:mod:`seqnlp.serve.batcher`), beam search
requests join a running search (:mod:`seqnlp.serve.loop`); ``parameters`` map to the stored run config's
``search.*`` / ``sample.*`` keys (:mod:`seqnlp.serve.params`). SIGTERM or Ctrl-C stops the server after the
requests in flight have been answered (up to ``--graceful-timeout`` seconds); the exit status is then 0.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys

from ..exit_codes import EXIT_CODES, EXIT_DATA, EXIT_OK, EXIT_USAGE

__all__ = ["main", "parser"]

EPILOG = f"""examples:
  seqnlp serve --model runs/sst2                      # http://127.0.0.1:8080/ : a page to try the model
  seqnlp serve --model runs/multi30k search.beam_size=10 --port 5000
  curl -s 127.0.0.1:8080/predict -H 'content-type: application/json' \\
       -d '{{"inputs": ["Ein Hund rennt ."], "parameters": {{"beam_size": 5, "n_best": 3}}}}'
  curl -s 127.0.0.1:8080/translator/translate -d '[{{"src": "Ein Hund rennt .", "id": 100}}]'   # OpenNMT-py

parameters per task (POST /predict "parameters"; unknown ones are a 422 naming them):
  translation, dialogue  method, beam_size, n_best, length_penalty, max_output_len, no_repeat_ngram_size,
                         temperature, top_k, top_p, seed           (the run config's search.*)
  char_generator         chars, temperature, top_k, top_p, seed, condition   (sample.*)
  sentiment, pos_tagging none
Each distinct parameter set gets its own predictor (at most --max-param-sets kept); requests are batched only
with requests of equal parameters, and sampling requests not at all (their results would depend on the batch).

memory: oneDNN's primitive cache is capped at 64 entries (ONEDNN_PRIMITIVE_CACHE_CAPACITY; set it to change
that): batches of ever new shapes would otherwise grow the resident size under load.

limits: an input over --max-input-chars characters is truncated and its index listed in the answer's
"truncated"; a body over --max-body-bytes or more than --max-inputs inputs is a 413.

{EXIT_CODES}"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="seqnlp serve", description="Serve a trained model over HTTP: a JSON API "
                                "(POST /predict, GET /health, GET /info, GET /metrics for Prometheus), OpenNMT-py's "
                                "/translator/translate for "
                                "translation models, and a page to try the model at /.", epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a run directory, checkpoint directory or Hub id")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080; 0: a free one, printed at start)")
    p.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu; default) | cpu | cuda | cuda:1")
    p.add_argument("--precision", default=None, help="fp32 | bf16 | fp16 | auto (default: the model's "
                   "infer_precision)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: the run's train.threads)")
    b = p.add_argument_group("micro-batching")
    b.add_argument("--max-batch-tokens", type=int, default=4096,
                   help="whitespace tokens of the requests grouped into one predict call (default 4096)")
    b.add_argument("--max-batch-size", type=int, default=256, help="inputs grouped into one call (default 256)")
    b.add_argument("--max-wait-ms", type=float, default=5.0,
                   help="how long the oldest waiting request waits for others to join it (default 5)")
    b.add_argument("--workers", type=int, default=0,
                   help="model worker processes, each with the model loaded, one batch at a time each (default 0: "
                        "the model runs in a thread of the server process). On a small CPU, --workers 2 --threads 1 "
                        "decodes two batches at once, one core each, without the web server and the model "
                        "sharing one interpreter lock; every worker holds its own copy of the model")
    b.add_argument("--batching", choices=["auto", "continuous", "grouped"], default="auto",
                   help="how beam search (translation, dialogue) batches requests: continuous (a request joins "
                        "the running search -- a worker's, or without --workers one in a model thread of the "
                        "server -- at its next decoder step and is answered as soon as its sentences are done), "
                        "grouped (requests wait up to --max-wait-ms to be grouped into one search, which ends when "
                        "its longest sentence does) or auto (default): continuous with --workers, grouped without "
                        "(in one process the search's per-step Python shares the interpreter lock with the web "
                        "server, and continuous batching served fewer sentences/s there: docs/results.md). Other "
                        "tasks and search methods are always grouped")
    b.add_argument("--keep-freed-memory", action="store_true",
                   help="keep the heap's freed pages after each batch (default: glibc's malloc_trim hands them back, "
                        "so that the resident size follows the live memory instead of the largest batches)")
    b.add_argument("--max-param-sets", type=int, default=4,
                   help="predictors kept for distinct request parameters (default 4; 0: refuse parameters)")
    lim = p.add_argument_group("limits")
    lim.add_argument("--max-input-chars", type=int, default=10_000,
                     help="longer inputs are truncated to this many characters, said in the answer (default 10000)")
    lim.add_argument("--max-inputs", type=int, default=1024, help="inputs per request; more: 413 (default 1024)")
    lim.add_argument("--max-body-bytes", type=int, default=8 * 2**20, help="request body size; more: 413 "
                     "(default 8 MiB)")
    lim.add_argument("--max-chars", type=int, default=10_000,
                     help="char generator: the largest \"chars\" parameter (default 10000)")
    s = p.add_argument_group("server")
    s.add_argument("--graceful-timeout", type=float, default=60.0, help="on SIGTERM / Ctrl-C, wait this many "
                   "seconds for requests in flight (default 60)")
    s.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"],
                   help="uvicorn's log level (default warning)")
    s.add_argument("--access-log", action="store_true", help="log every request (uvicorn's access log)")
    s.add_argument("--cors-allow-origin", action="append", default=[], metavar="ORIGIN",
                   help="a web page of this origin (e.g. https://app.example.org; * for any) may call the API from a "
                        "browser; repeat for more (default: none, only the page this server serves)")
    s.add_argument("--http", choices=["auto", "h11", "httptools"], default="auto",
                   help="uvicorn's HTTP parser (default auto: httptools, written in C, where installed -- "
                        "pip install -e '.[serve]' installs it --, else h11, pure Python)")
    s.add_argument("--loop", choices=["auto", "asyncio", "uvloop"], default="auto",
                   help="uvicorn's event loop (default auto: uvloop where installed, else asyncio's)")
    p.add_argument("overrides", nargs="*", help="dotted overrides of the stored config, e.g. search.beam_size=10")
    return p


def _check(args) -> None:
    from ..config import ConfigError

    for name in ("max_batch_tokens", "max_batch_size", "max_input_chars", "max_inputs", "max_body_bytes",
                 "max_chars"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.max_wait_ms < 0 or args.max_param_sets < 0 or args.graceful_timeout < 0 or args.workers < 0:
        raise ConfigError("--max-wait-ms, --max-param-sets, --graceful-timeout and --workers must not be negative")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be in 0..65535, got {args.port}")
    import importlib.util

    for option, package in (("http", "httptools"), ("loop", "uvloop")):
        if getattr(args, option) == package and importlib.util.find_spec(package) is None:
            raise ConfigError(f"--{option} {package}: {package} is not installed (pip install {package}, or "
                              f"--{option} auto)")


def bind(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one); an OSError says why not. It listens at
    once, so that connections made before the server loop runs wait in the backlog instead of being refused."""
    family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


ONEDNN_CACHE = "64"


def cap_onednn_cache() -> None:
    """Cap oneDNN's primitive cache at 64 entries (``ONEDNN_PRIMITIVE_CACHE_CAPACITY``; one set wins).

    oneDNN (torch's CPU kernels) keeps a primitive per input shape, 1024 by default; a server's batches have
    ever new shapes (sizes and lengths depend on who asked at the same time), so the resident size crept up
    under load: +7 MB per 1,600 tagger requests, linearly, where offline prediction over repeating batches
    stayed flat. With 64 entries it stays flat. Read by oneDNN when it first builds a primitive."""
    import os

    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", ONEDNN_CACHE)


def main(argv: list[str] | None = None) -> int:
    """Run the server until SIGTERM / Ctrl-C; returns the exit status (see ``EXIT_CODES``)."""
    try:
        args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as e:  # --help (0) or a usage error (2)
        return int(e.code or 0)
    cap_onednn_cache()  # before torch is imported
    try:
        import uvicorn

        from .app import create_app
    except ImportError as e:
        print(f"error: seqnlp serve needs FastAPI and uvicorn ({e.name} is missing): pip install -e '.[serve]'",
              file=sys.stderr)
        return EXIT_USAGE
    from ..config import ConfigError
    from ..exit_codes import guarded
    from ..runner import load
    from .models import Limits

    def start():  # errors before serving: one line and the usual exit status (exit_codes.guarded)
        _check(args)
        try:
            sock = bind(args.host, args.port)
        except OSError as e:
            raise ConfigError(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}") from None
        started.append((sock, load(args.model, args.device, args.overrides, precision=args.precision,
                                   threads=args.threads)))

    started: list = []
    status = guarded(start)
    if status:
        return status
    sock, pred = started[0]

    def load_set(extra: list[str]):  # the predictor of a parameter set: the same checkpoint, more overrides
        return load(pred.checkpoint, args.device, [*args.overrides, *extra], precision=args.precision,
                    threads=args.threads)

    host, port = sock.getsockname()[:2]
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"

    def ready() -> None:
        print(f"seqnlp serve: {pred.config.task} model {args.model} at {url} (POST /predict, GET /info, GET "
              f"/health; SIGTERM or Ctrl-C stops)", file=sys.stderr, flush=True)

    limits = Limits(args.max_input_chars, args.max_inputs, args.max_body_bytes, args.max_chars)
    workers = None
    if args.workers:
        from .workers import ProcessWorkers, WorkerSpec

        workers = ProcessWorkers(WorkerSpec(str(pred.checkpoint), args.device, tuple(args.overrides), args.precision,
                                            args.threads, args.max_param_sets, limits, not args.keep_freed_memory,
                                            args.max_batch_size),
                                 args.workers)
    app = create_app(pred, model=args.model, load=load_set, limits=limits, max_batch_tokens=args.max_batch_tokens,
                     max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms,
                     max_param_sets=args.max_param_sets, workers=workers, trim_memory=not args.keep_freed_memory,
                     continuous=None if args.batching == "auto" else args.batching == "continuous",
                     cors_origins=tuple(args.cors_allow_origin),
                     on_ready=ready)
    config = uvicorn.Config(app, log_level=args.log_level, access_log=args.access_log, lifespan="on",
                            timeout_graceful_shutdown=args.graceful_timeout or None, http=args.http, loop=args.loop)
    server = uvicorn.Server(config)
    # uvicorn answers SIGTERM / SIGINT by finishing the requests in flight, then raises the signal again for the
    # handlers that were there before it: these make that a clean exit (status 0) instead of death by signal
    stopped: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda s, frame: stopped.append(s))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    if not server.started:
        print("error: the server did not start (see the messages above)", file=sys.stderr)
        return EXIT_DATA
    print(f"seqnlp serve: stopped ({server.server_state.total_requests} requests served)", file=sys.stderr)
    return EXIT_OK
