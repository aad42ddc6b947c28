"""The HTTP app: ``create_app(predictor, ...)`` -> a FastAPI app serving one trained model of any task.

Routes (every error is JSON ``{"error": "<field>: <what is wrong>", "status": "error", "fields": [...]}``):

``POST /predict``
    ``{"inputs": [...], "parameters": {...}}`` -> ``{"results": [one result per input], "truncated": [i, ...]}``
    (result shapes: :data:`seqnlp.tasks.base.RESULT_SHAPES`; parameters: :mod:`seqnlp.serve.params`).
``GET /health``  ``{"status": "ok", "task", "batching": {...counters}}``
``GET /info``    the task, its labels / tags / languages / conditions, parameters and defaults, limits, card
``GET /metrics`` requests by route and status, latency histograms, batching counters (Prometheus' text format)
``GET /``        a page to try the model (``static/index.html``)
``POST /translator/translate``  (translation models) OpenNMT-py's route: ``[{"src": "...", "id": 100}]`` ->
    ``[[{"src", "tgt", "n_best", "pred_score"}, ...]]``: one list per n-best rank, each with one entry per
    source, as OpenNMT-py's server answers (``pred_score`` is null where the search gives no score: greedy).

Status codes: 400 a body that is not JSON; 413 a body over ``--max-body-bytes`` or more than ``--max-inputs``
inputs; 422 a well-formed body with a missing field, a wrong type, an empty input list, an unknown field or
parameter, or a value the model cannot take (characters outside a char model's vocabulary); 500 the model
failed (a short message; the traceback goes to the server log only). An input longer than
``--max-input-chars`` characters is cut to that length and its index listed in ``truncated``.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from importlib import resources
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import Field, TypeAdapter, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..config import ConfigError
from ..data.errors import DataError
from .batcher import MicroBatcher
from .loop import ThreadWorker, WorkerDied
from .metrics import CONTENT_TYPE, HttpStats, RequestMetrics, render
from .models import Limits, ParameterError, PredictorPool, describe, truncate
from .params import PARAMS, OpenNMTItem, request_model

__all__ = ["ApiError", "create_app"]

log = logging.getLogger("seqnlp.serve")


class ApiError(Exception):
    """An HTTP error answered as ``{"error": message, "status": "error", "fields": fields}``."""

    def __init__(self, status: int, message: str, fields: list[str] | None = None):
        super().__init__(message)
        self.status, self.message, self.fields = status, message, fields or []


def _error(status: int, message: str, fields: list[str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "status": "error", "fields": fields or []}, status_code=status)


# ---------------------------------------------------------------------------------------------- validation
def _field(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "body"


def _messages(task: str, err: ValidationError, what: str) -> ApiError:
    """A pydantic error as one ApiError naming every field (400 for JSON that does not parse)."""
    msgs, fields = [], []
    for e in err.errors(include_url=False):
        kind, loc = e["type"], tuple(e["loc"])
        field = _field(loc)
        if kind == "json_invalid":
            detail = (e.get("ctx") or {}).get("error", e["msg"])
            return ApiError(400, f"body: not valid JSON ({detail}); expected {what}", ["body"])
        if kind in ("model_type", "model_attributes_type", "list_type") and len(loc) <= 1:
            field = field if loc else "body"
            msg = f"{field}: expected {what}, got {type(e.get('input')).__name__}"
        elif kind == "extra_forbidden" and loc[:1] == ("parameters",):
            known = ", ".join(PARAMS[task].model_fields) or "none"
            msg = f"{field}: unknown parameter (the {task} task takes: {known})"
        elif kind == "extra_forbidden":
            msg = f"{field}: unknown field (expected {what})"
        elif kind == "missing":
            msg = f"{field}: missing (expected {what})"
        elif kind == "too_short" and loc == ("inputs",):
            msg = "inputs: empty list; give at least one input"
        elif kind == "too_short":
            msg = f"{field}: empty list; give at least one item"
        elif kind == "value_error":
            msg = e["msg"].removeprefix("Value error, ")
            field = msg.split(":", 1)[0] if msg.startswith(field) else field
            msg = msg if msg.startswith(field) else f"{field}: {msg}"
        else:
            got = e.get("input")
            msg = f"{field}: {e['msg']}" + (f" (got {got!r:.60})" if not isinstance(got, (dict, list)) else "")
        msgs.append(msg)
        fields.append(field)
    return ApiError(422, "; ".join(msgs[:4]) + (f"; and {len(msgs) - 4} more" if len(msgs) > 4 else ""), fields)


async def _read(request: Request, limits: Limits) -> bytes:
    """The request body, refused with 413 once it passes ``max_body_bytes`` (it is not read to its end)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise ApiError(413, f"body: {int(declared)} bytes; at most {limits.max_body_bytes} (--max-body-bytes)",
                       ["body"])
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.max_body_bytes:
            raise ApiError(413, f"body: over {limits.max_body_bytes} bytes (--max-body-bytes)", ["body"])
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise ApiError(400, "body: empty; expected a JSON body", ["body"])
    return raw


# ---------------------------------------------------------------------------------------------- the app
def create_app(predictor: Any, *, model: str = "", load=None, limits: Limits | None = None,
               max_batch_tokens: int = 4096, max_batch_size: int = 256, max_wait_ms: float = 5.0,
               max_param_sets: int = 4, workers=None, trim_memory: bool = True, continuous: bool | None = None,
               cors_origins: tuple[str, ...] = (), on_ready=None) -> FastAPI:
    """A FastAPI app serving ``predictor`` (any task's, from :func:`seqnlp.runner.load`).

    ``load(overrides) -> predictor`` makes the predictor of a parameter set (none: requests with
    ``parameters`` are refused); ``model``: what ``/info`` calls the model (its path or Hub id);
    ``on_ready()`` is called once the app has started (the command line prints the address); ``workers``: a
    :class:`~seqnlp.serve.workers.ProcessWorkers` that runs the batches in model processes (started with the
    app, stopped after it), else the model runs in threads of this process; ``continuous``: beam search requests
    join a running search (:meth:`PredictorPool.streams <seqnlp.serve.models.PredictorPool.streams>`) instead of
    being grouped by the micro-batcher: a worker process's, or without workers one in a thread of this process
    (:class:`~seqnlp.serve.loop.ThreadWorker`); None (``--batching auto``): continuous with workers only;
    ``cors_origins``: web pages of these origins (``*``: any) may call the API from a browser (CORS)."""
    limits = limits or Limits()
    pool = PredictorPool(predictor, load, max_param_sets, limits, trim_memory)
    task = pool.task
    batcher = MicroBatcher(workers.predict if workers else pool.predict, max_batch_tokens=max_batch_tokens,
                           max_batch_size=max_batch_size, max_wait_ms=max_wait_ms, solo=pool.solo,
                           workers=workers.n if workers else 1)
    # where beam search requests join a running search (continuous batching): the workers, else a model thread
    streamer = None
    if (workers is not None if continuous is None else continuous) and pool.can_stream():
        streamer = workers or ThreadWorker(pool, max_batch_size, trim_memory)
    batching = {"max_batch_tokens": max_batch_tokens, "max_batch_size": max_batch_size, "max_wait_ms": max_wait_ms,
                "worker_processes": workers.n if workers else 0,
                "continuous": streamer is not None and pool.streams(())}
    Req = request_model(task)
    what = '{"inputs": [...], "parameters": {...}}'
    Onmt = TypeAdapter(Annotated[list[OpenNMTItem], Field(min_length=1)])
    onmt_what = '[{"src": "...", "id": 100}, ...]'

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if workers:
            await asyncio.get_running_loop().run_in_executor(None, workers.start)  # each has loaded the model
        elif streamer is not None:
            streamer.start()
        await batcher.start()
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            await batcher.stop()  # in-flight requests have finished: uvicorn waits for them before this
            if workers or streamer is not None:
                (workers or streamer).stop()

    app = FastAPI(title=f"seqnlp {task}", description=__doc__, lifespan=lifespan, docs_url="/docs",
                  redoc_url=None)
    app.state.pool, app.state.batcher = pool, batcher
    routes = ["/predict", "/health", "/info", "/", "/metrics", "/docs", "/openapi.json"]
    if task == "translation":
        routes += ["/translator/translate", "/translator/health"]
    http_stats = HttpStats(routes)
    app.add_middleware(RequestMetrics, stats=http_stats)
    if cors_origins:  # browsers on other origins may call the API (answers carry Access-Control-Allow-Origin)
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["content-type"])

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, e: ApiError):
        return _error(e.status, e.message, e.fields)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, e: StarletteHTTPException):
        routes = "POST /predict, GET /health, GET /info, GET /metrics, GET /" + (
            ", POST /translator/translate" if task == "translation" else "")
        msg = f"{request.method} {request.url.path}: {e.detail}" + (f" (routes: {routes})" if e.status_code in
                                                                   (404, 405) else "")
        return _error(e.status_code, msg)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, e: RequestValidationError):
        fields = [_field(tuple(x["loc"])) for x in e.errors()]
        return _error(422, "; ".join(f"{f}: {x['msg']}" for f, x in zip(fields, e.errors())), fields)

    @app.exception_handler(Exception)
    async def _crash(request: Request, e: Exception):  # anything not caught below: short, no traceback
        log.error("error serving %s %s", request.method, request.url.path, exc_info=e)
        return _error(500, f"internal error ({type(e).__name__}); the server log has the details")

    async def submit(key: tuple[str, ...], inputs: list) -> list[dict]:
        if streamer is None or not pool.streams(key):
            return await batcher.submit(key, inputs)
        try:  # continuous batching: joined to a running search at its next step
            return await asyncio.wrap_future(streamer.submit(key, inputs, stream=True))
        except WorkerDied:  # its worker was killed: once more, in another one
            return await asyncio.wrap_future(streamer.submit(key, inputs, stream=True))

    async def run(key: tuple[str, ...], inputs: list) -> list[dict]:
        try:
            return await submit(key, inputs)
        except ParameterError as e:
            raise ApiError(422, str(e), [e.field]) from None
        except ConfigError as e:
            raise ApiError(422, f"parameters: {e}", ["parameters"]) from None
        except DataError as e:
            field = "parameters.condition" if e.field == "condition" else "inputs"
            raise ApiError(422, f"{field}: {e}", [field]) from None
        except Exception as e:
            log.error("the %s model failed on a request of %d inputs", task, len(inputs), exc_info=e)
            raise ApiError(500, f"model error ({type(e).__name__}): the model failed on this request; the server "
                                "log has the details") from None

    async def parse(request: Request, validate, expected: str, count):
        """The request's body read within ``--max-body-bytes`` and validated (``validate(raw)``; its errors name
        the fields, ``expected`` says what was expected), with at most ``--max-inputs`` inputs (``count(body)``)."""
        raw = await _read(request, limits)
        try:
            body = validate(raw)
        except ValidationError as e:
            raise _messages(task, e, expected) from None
        n = count(body)
        if n > limits.max_inputs:
            raise ApiError(413, f"inputs: {n} inputs; at most {limits.max_inputs} per request (--max-inputs)",
                           ["inputs"])
        return body

    @app.post("/predict", summary="one result per input")
    async def predict(request: Request):
        req = await parse(request, Req.model_validate_json, what, lambda r: len(r.inputs))
        try:
            key = pool.key(req.parameters)
        except ParameterError as e:
            raise ApiError(422, str(e), [e.field]) from None
        inputs, cut = truncate(task, req.inputs, limits.max_input_chars)
        results = await run(key, inputs)
        body: dict[str, Any] = {"results": results, "truncated": cut}
        if cut:
            body["note"] = (f"{len(cut)} input(s) longer than {limits.max_input_chars} characters were truncated "
                            f"(--max-input-chars)")
        return JSONResponse(body)

    @app.get("/health", summary="the server is up; batching counters")
    async def health():
        body: dict[str, Any] = {"status": "ok", "task": task, "batching": batcher.stats.as_dict()}
        if workers:  # each worker process keeps its own parameter-set predictors
            body["workers"] = {"processes": workers.n, "pids": workers.pids(), "restarts": workers.restarts,
                               **workers.counters()}
        else:
            body["param_sets_loaded"] = pool.cached()
            if streamer is not None:  # continuous batching in a thread of this process
                body["stream"] = streamer.counters()
        return JSONResponse(body)

    @app.get("/metrics", summary="the counters in Prometheus' text format")
    async def metrics():
        loops = streamer or workers
        text = render(http_stats, task, batcher.stats.as_dict(), loops.counters() if loops is not None else None,
                      loops.restarts if loops is not None else 0)
        return Response(text, media_type=CONTENT_TYPE)

    info_cache: dict = {}

    @app.get("/info", summary="the task, labels or languages, parameters, limits, model card metadata")
    async def info():
        if not info_cache:
            info_cache.update(describe(pool, model, batching))
        return JSONResponse(info_cache)

    @app.get("/", response_class=HTMLResponse, summary="a page to try the model")
    async def page():
        return HTMLResponse(resources.files(__package__).joinpath("static/index.html").read_text(encoding="utf-8"))

    if task == "translation":

        @app.post("/translator/translate", summary="OpenNMT-py's translate route")
        async def opennmt(request: Request):
            items = await parse(request, Onmt.validate_json, onmt_what, len)
            srcs, _ = truncate(task, [it.src for it in items], limits.max_input_chars)
            results = await run((), srcs)
            n_best = max(1, max(len(r["nbest"]) for r in results))
            out: list[list[dict]] = [[] for _ in range(n_best)]
            for it, r in zip(items, results):
                hyps = r["nbest"] or [{"text": r["translation"], "score": None}]
                for k in range(n_best):
                    h = hyps[k] if k < len(hyps) else {"text": "", "score": None}
                    out[k].append({"src": it.src, "tgt": h["text"], "n_best": n_best, "pred_score": h["score"]})
            return JSONResponse(out)

        @app.get("/translator/health", summary="OpenNMT-py's health route")
        async def opennmt_health():
            return JSONResponse({"status": "ok"})

    return app
