"""``seqnlp serve``: a real server process on a free loopback port (translation: every route, concurrent
requests equal to offline predictions, every class of bad request; char generator: a graceful SIGTERM), and
the app in-process for all five tasks (results equal ``predict``; a model error is a 500 without traceback)."""

from __future__ import annotations

import math
import os
import time

import pytest

if os.environ.get("CI"):  # CI installs the dev extra: a missing server package is a failure there, not a skip
    import fastapi  # noqa: F401
    import uvicorn  # noqa: F401
else:
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")

from serve_util import InProcessServer, ServeProcess, concurrently  # noqa: E402

from seqnlp.runner import load  # noqa: E402
from seqnlp.serve import main as serve_main  # noqa: E402
from seqnlp.serve.app import create_app  # noqa: E402
from seqnlp.serve.compare import same as results_equal  # noqa: E402
from seqnlp.serve.models import truncate  # noqa: E402
from seqnlp.serve.params import PARAMS as TASK_PARAMS  # noqa: E402
from seqnlp.tasks import TASKS  # noqa: E402

SENTS = ["Ein Hund rennt über die Wiese .", "Zwei Männer stehen vor einem Haus .", "Eine Frau liest ein Buch .",
         "Kinder spielen im Park .", "Ein Mann fährt Fahrrad auf der Straße .", "Eine Katze schläft .",
         "Drei Personen gehen am Strand entlang .", "Ein kleines Mädchen lacht ."]
INPUTS = {
    "sentiment": ["a gorgeous , witty , seductive movie .", "a dull , tedious mess .", ""],
    "pos_tagging": ["I saw her duck .", ["They", "run", "fast"]],
    "translation": SENTS[:3] + [""],
    "dialogue": [["Hi , how are you ?", "Fine , thanks . And you ?"], "Hello ! __eou__ Hi there ."],
    "char_generator": ["ROMEO:", ""],
}
PARAMS = {"translation": {"beam_size": 2, "n_best": 2}, "dialogue": {"method": "greedy"},
          "char_generator": {"chars": 30, "seed": 7, "temperature": 0.5}}
OVERRIDES = {"translation": ["search.beam_size=2", "search.n_best=2"], "dialogue": ["search.method=greedy"],
             "char_generator": ["sample.chars=30", "sample.seed=7", "sample.temperature=0.5"]}


def same(got: list[dict], want: list[dict]) -> bool:
    """Equal results; floats (probabilities, scores) to 1e-4 (the server batches them with other inputs)."""
    return results_equal(got, want, tol=1e-4)


def offline(run, inputs, overrides=()):
    return load(run, "cpu", list(overrides), threads=1).predict(inputs)


# ---------------------------------------------------------------------------------------------- in process
@pytest.fixture(scope="module")
def app_server(smoke_runs):
    """``app_server(task)``: an in-process server of ``task``'s smoke model (one per task, module-scoped)."""
    servers: dict[str, InProcessServer] = {}

    def get(task: str) -> InProcessServer:
        if task not in servers:
            run = smoke_runs(task)
            pred = load(run, "cpu", threads=1)
            app = create_app(pred, model=str(run), load=lambda ov: load(run, "cpu", ov, threads=1), max_wait_ms=20)
            servers[task] = InProcessServer(app)
            servers[task].run = run
            servers[task].app = app
        return servers[task]

    yield get
    for s in servers.values():
        s.close()


@pytest.mark.parametrize("task", list(TASKS))
def test_every_task_predicts_like_offline(app_server, task):
    s = app_server(task)
    status, body = s.post("/predict", {"inputs": INPUTS[task]})
    assert status == 200, body
    assert same(body["results"], offline(s.run, INPUTS[task])), body
    assert body["truncated"] == []
    if task in PARAMS:  # parameters: the stored config's search.* / sample.* keys
        status, body = s.post("/predict", {"inputs": INPUTS[task], "parameters": PARAMS[task]})
        assert status == 200, body
        assert same(body["results"], offline(s.run, INPUTS[task], OVERRIDES[task])), body
    status, info = s.get("/info")
    assert status == 200 and info["task"] == task and info["pipeline_tag"] == TASKS[task].pipeline_tag
    key = {"sentiment": "labels", "pos_tagging": "tags", "translation": "languages", "dialogue": "context_turns",
           "char_generator": "conditions"}[task]
    assert key in info and isinstance(info["card"], dict) and "limits" in info
    assert info["card"] == {} or info["card"]["pipeline_tag"] == TASKS[task].pipeline_tag  # the model card's
    assert set(info["parameters"]) == set(TASK_PARAMS[task].model_fields)
    status, page = s.get("/")
    assert status == 200 and "<textarea" in page


def test_a_parameter_the_task_does_not_take_is_named(app_server):
    status, body = app_server("sentiment").post("/predict", {"inputs": ["fine"], "parameters": {"beam_size": 3}})
    assert status == 422 and body["fields"] == ["parameters.beam_size"], body
    assert "takes: none" in body["error"]


def test_what_a_char_model_cannot_take_is_a_422(app_server):
    s = app_server("char_generator")
    status, body = s.post("/predict", {"inputs": ["ROMEO:", "h\u00e9llo \u2603"]})
    assert status == 422 and body["fields"] == ["inputs"] and "vocabulary" in body["error"], body
    status, body = s.post("/predict", {"inputs": ["ROMEO:"], "parameters": {"condition": "sonnet"}})
    assert status == 422 and body["fields"] == ["parameters.condition"], body
    status, body = s.post("/predict", {"inputs": ["ROMEO:"], "parameters": {"chars": 10**6}})
    assert status == 422 and body["fields"] == ["parameters.chars"], body


def test_a_model_error_is_a_500_without_traceback_and_only_fails_its_request(app_server, monkeypatch):
    s = app_server("sentiment")
    pred = s.app.state.pool.base
    real = pred.predict

    def flaky(inputs, progress=False):
        if any("explode" in x for x in inputs):
            raise RuntimeError("secret internals at /home/model.py line 12")
        return real(inputs, progress=progress)

    monkeypatch.setattr(pred, "predict", flaky)
    status, body = s.post("/predict", {"inputs": ["explode please"]})
    assert status == 500, body
    assert "model error" in body["error"] and "Traceback" not in str(body) and "secret" not in str(body)
    # batched with good requests: the bad one fails alone, the others are answered
    good = ["a fine film .", "bad .", "ok ."]
    outs = concurrently([lambda: s.post("/predict", {"inputs": ["explode"]})] +
                        [lambda x=x: s.post("/predict", {"inputs": [x]}) for x in good])
    assert outs[0][0] == 500
    assert [o[0] for o in outs[1:]] == [200, 200, 200]
    assert same([o[1]["results"][0] for o in outs[1:]], real(good))
    status, body = s.post("/predict", {"inputs": ["a fine film ."]})  # and the next request is served
    assert status == 200 and body["results"][0]["label"]


def test_truncation_keeps_what_the_model_reads_first():
    assert truncate("translation", ["abcdef", "ab"], 4) == (["abcd", "ab"], [0])
    # a dialogue keeps its last turns (the ones answered), the oldest kept one cut from its start
    assert truncate("dialogue", [["aaaa", "bbbb", "cccc"]], 6) == ([["bb", "cccc"]], [0])
    assert truncate("pos_tagging", [["aaaa", "bbbb", "cccc"]], 6) == ([["aaaa", "bb"]], [0])
    assert truncate("pos_tagging", [["aa", "bb"]], 6) == ([["aa", "bb"]], [])


def test_help_and_bad_options_exit_with_the_usage_status(capsys, tmp_path, monkeypatch):
    # main() caps oneDNN's cache in the environment for the server's process: keep this process's as it was
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", os.environ.get("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "1024"))
    assert serve_main(["--help"]) == 0
    assert "/translator/translate" in capsys.readouterr().out
    assert serve_main(["--model", str(tmp_path), "--port", "99999"]) == 2
    assert serve_main(["--model", str(tmp_path / "missing"), "--port", "0"]) == 1
    assert "no checkpoint" in capsys.readouterr().err
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvloop" else real(name, *a))
    assert serve_main(["--model", str(tmp_path), "--port", "0", "--loop", "uvloop"]) == 2
    assert "--loop uvloop: uvloop is not installed" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- a real process
@pytest.fixture(scope="module")
def translation_server(smoke_runs):
    run = smoke_runs("translation")
    with ServeProcess(run, "--max-wait-ms", "50", "--max-input-chars", "300", "--max-inputs", "50",
                      "--max-body-bytes", "200000", "--batching", "continuous", "--cors-allow-origin",
                      "http://app.example.org", "search.n_best=2") as s:
        s.run = run
        yield s
        assert s.proc.poll() is None, f"the server died:\n{s.output}"


def test_health_and_info(translation_server):
    status, body = translation_server.get("/health")
    assert status == 200 and body["status"] == "ok" and body["task"] == "translation"
    status, info = translation_server.get("/info")
    assert status == 200 and info["languages"] == {"source": "de", "target": "en"}
    assert info["parameters"]["n_best"]["default"] == 2 and info["limits"]["max_input_chars"] == 300


def test_predict_and_truncation(translation_server):
    s = translation_server
    long = "Ein Hund rennt über die Wiese und " * 20  # 680 characters: cut to 300
    status, body = s.post("/predict", {"inputs": [SENTS[0], long]})
    assert status == 200, body
    assert body["truncated"] == [1] and "300" in body["note"]
    assert same(body["results"], offline(s.run, [SENTS[0], long[:300]], ["search.n_best=2"]))
    assert len(body["results"][0]["nbest"]) == 2


def test_opennmt_route(translation_server):
    s = translation_server
    status, out = s.post("/translator/translate", [{"src": SENTS[0], "id": 100}, {"src": SENTS[1], "id": 100}])
    assert status == 200, out
    want = offline(s.run, SENTS[:2], ["search.n_best=2"])
    # OpenNMT-py: one list per n-best rank, each with an entry per source, in order
    assert isinstance(out, list) and len(out) == 2 and all(len(rank) == 2 for rank in out)
    for k in range(2):
        for i in range(2):
            e = out[k][i]
            assert set(e) == {"src", "tgt", "n_best", "pred_score"}
            assert e["src"] == SENTS[i] and e["n_best"] == 2 and e["tgt"] == want[i]["nbest"][k]["text"]
            assert math.isclose(e["pred_score"], want[i]["nbest"][k]["score"], rel_tol=1e-4, abs_tol=1e-4)
    assert s.get("/translator/health") == (200, {"status": "ok"})


CONCURRENT = ([{"inputs": [SENTS[i % 8]]} for i in range(10)] +
              [{"inputs": [SENTS[i % 8], SENTS[(i + 3) % 8]]} for i in range(4)] +
              [{"inputs": [SENTS[i]], "parameters": {"beam_size": 2, "n_best": 1}} for i in range(2)] +
              [{"inputs": [SENTS[i]], "parameters": {"method": "greedy"}} for i in range(3)])


def _concurrent_equal_offline(s, run, base: list[str]) -> None:
    outs = concurrently([lambda r=r: s.post("/predict", r) for r in CONCURRENT])
    assert all(o[0] == 200 for o in outs), outs
    for r, (_, body) in zip(CONCURRENT, outs):
        ov = {"beam_size": ["search.beam_size=2", "search.n_best=1"], "method": ["search.method=greedy"]}
        extra = [o for k in r.get("parameters", {}) if k in ov for o in ov[k]]
        assert same(body["results"], offline(run, r["inputs"], [*base, *extra])), (r, body)


def test_concurrent_requests_join_a_running_search_and_equal_offline(translation_server):
    """``--batching continuous`` without worker processes: beam search requests join a search running in a model
    thread of the server; greedy requests are grouped by the micro-batcher; every answer equals offline."""
    s = translation_server
    before = s.get("/health")[1]
    _concurrent_equal_offline(s, s.run, ["search.n_best=2"])
    after = s.get("/health")[1]
    beam = sum(len(r["inputs"]) for r in CONCURRENT if r.get("parameters", {}).get("method") != "greedy")
    assert after["stream"]["answered"] - before["stream"]["answered"] == 16  # the beam search requests
    steps = after["stream"]["steps"] - before["stream"]["steps"]
    live = after["stream"]["live_input_steps"] - before["stream"]["live_input_steps"]
    assert steps > 0 and live / steps > 1 and live > beam  # more than one sentence per decoder step
    assert after["batching"]["requests"] - before["batching"]["requests"] == 3  # the greedy ones
    assert s.get("/info")[1]["batching"]["continuous"] is True


def test_without_workers_beam_search_is_grouped_by_default(smoke_runs):
    """``--batching auto`` (the default) without workers: beam search requests are grouped into fewer predict
    calls (continuous batching only with ``--batching continuous``)."""
    run = smoke_runs("translation")
    with ServeProcess(run, "--max-wait-ms", "50") as s:
        _concurrent_equal_offline(s, run, [])
        status, health = s.get("/health")
        assert "stream" not in health and health["batching"]["requests"] == len(CONCURRENT)
        assert health["batching"]["batches"] < len(CONCURRENT) and health["batching"]["largest_batch"] > 1
        assert s.get("/info")[1]["batching"]["continuous"] is False


@pytest.mark.parametrize("workers", [1, 2])
def test_workers_bound_the_batches_that_run_at_once(workers):
    """``--workers N``: up to N predict calls at once, each request still answered with its own results."""
    import asyncio
    import threading

    from seqnlp.serve.batcher import MicroBatcher

    now, most, lock = [0], [0], threading.Lock()

    def run(key, inputs):
        with lock:
            now[0] += 1
            most[0] = max(most[0], now[0])
        time.sleep(0.15)  # a slow model: later requests arrive while it runs
        with lock:
            now[0] -= 1
        return [x.upper() for x in inputs]

    async def main():
        b = MicroBatcher(run, max_wait_ms=1, max_batch_size=2, workers=workers)
        await b.start()
        try:
            outs = await asyncio.wait_for(asyncio.gather(*(b.submit((), [f"w{i}"]) for i in range(8))), timeout=20)
        finally:
            await b.stop()
        return outs, b.stats

    outs, stats = asyncio.run(main())
    assert outs == [[f"W{i}"] for i in range(8)]
    assert most[0] == workers and stats.batches == 4 and stats.running == 0


def test_idle_workers_share_the_waiting_requests():
    """Two idle workers and 8 waiting requests: the first batch takes its half, the second worker the rest
    (not one batch of 8 while the other worker idles)."""
    import asyncio

    from seqnlp.serve.batcher import MicroBatcher

    sizes = []

    def run(key, inputs):
        sizes.append(len(inputs))
        time.sleep(0.1)
        return list(inputs)

    async def main():
        b = MicroBatcher(run, max_wait_ms=50, workers=2)
        await b.start()
        try:
            return await asyncio.wait_for(asyncio.gather(*(b.submit((), [f"w{i}"]) for i in range(8))), timeout=20)
        finally:
            await b.stop()

    outs = asyncio.run(main())
    assert outs == [[f"w{i}"] for i in range(8)]
    assert sorted(sizes) == [4, 4], sizes


BIG = b'{"inputs": ["' + b"x" * 250_000 + b'"]}'
BAD = [  # (what, route, JSON body or raw bytes, status, the field named)
    ("malformed JSON", "/predict", b'{"inputs": ["Ein Hund"', 400, "body"),
    ("empty body", "/predict", b"", 400, "body"),
    ("not an object", "/predict", [1, 2], 422, "body"),
    ("inputs not a list", "/predict", {"inputs": "Ein Hund ."}, 422, "inputs"),
    ("an input of the wrong type", "/predict", {"inputs": ["gut", 3]}, 422, "inputs[1]"),
    ("an empty list", "/predict", {"inputs": []}, 422, "inputs"),
    ("missing inputs", "/predict", {"parameters": {}}, 422, "inputs"),
    ("an unknown field", "/predict", {"inputs": ["a"], "input": ["b"]}, 422, "input"),
    ("an unknown parameter", "/predict", {"inputs": ["a"], "parameters": {"beam": 3}}, 422, "parameters.beam"),
    ("a parameter of the wrong type", "/predict", {"inputs": ["a"], "parameters": {"beam_size": "5"}}, 422,
     "parameters.beam_size"),
    ("a parameter out of range", "/predict", {"inputs": ["a"], "parameters": {"beam_size": 0}}, 422,
     "parameters.beam_size"),
    ("parameters that do not go together", "/predict", {"inputs": ["a"], "parameters": {"n_best": 4}}, 422,
     "parameters.n_best"),
    ("parameters not an object", "/predict", {"inputs": ["a"], "parameters": [1]}, 422, "parameters"),
    ("too many inputs", "/predict", {"inputs": ["a"] * 51}, 413, "inputs"),
    ("a body too large", "/predict", BIG, 413, "body"),
    ("OpenNMT: no src", "/translator/translate", [{"source": "x"}], 422, "[0].src"),
    ("OpenNMT: src of the wrong type", "/translator/translate", [{"src": 5}], 422, "[0].src"),
    ("OpenNMT: not a list", "/translator/translate", {"src": "x"}, 422, "body"),
    ("OpenNMT: an empty list", "/translator/translate", [], 422, "body"),
    ("OpenNMT: an unknown field", "/translator/translate", [{"src": "x", "tgt": "y"}], 422, "[0].tgt"),
    ("OpenNMT: malformed JSON", "/translator/translate", b"[{", 400, "body"),
]


@pytest.mark.parametrize("what,route,body,status,field", BAD, ids=[b[0] for b in BAD])
def test_bad_requests_are_4xx_naming_the_field(translation_server, what, route, body, status, field):
    s = translation_server
    got, answer = s.post(route, raw=body) if isinstance(body, bytes) else s.post(route, body)
    assert got == status, answer
    assert isinstance(answer, dict) and answer["status"] == "error", answer
    assert field in answer["fields"] and field in answer["error"], answer
    assert "Traceback" not in answer["error"]
    status, ok = s.post("/predict", {"inputs": [SENTS[0]]})  # the next request is served normally
    assert status == 200 and ok["results"][0]["translation"] is not None


def _scrape(s) -> dict[str, float]:
    """``GET /metrics`` parsed: ``{"name{labels}": value}`` for every sample line; its comment lines checked."""
    status, text = s.get("/metrics")
    assert status == 200 and isinstance(text, str), text
    out = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert line.split()[1] in ("HELP", "TYPE"), line
            continue
        name, value = line.rsplit(" ", 1)
        out[name] = float(value)
    return out


def test_metrics_count_requests_by_route_and_status(translation_server):
    """``GET /metrics``: Prometheus text with requests by route and status, a latency histogram whose count is the
    requests of its route, unknown paths as "other", and the batching counters."""
    s = translation_server
    before = _scrape(s)
    ok = 'seqnlp_http_requests_total{method="POST",route="/predict",status="200"}'
    bad = 'seqnlp_http_requests_total{method="POST",route="/predict",status="422"}'
    other = 'seqnlp_http_requests_total{method="GET",route="other",status="404"}'
    for _ in range(3):
        assert s.post("/predict", {"inputs": [SENTS[0]]})[0] == 200
    assert s.post("/predict", {"inputs": []})[0] == 422
    assert s.get("/no/such/path/42")[0] == 404
    after = _scrape(s)
    assert after[ok] - before.get(ok, 0) == 3 and after[bad] - before.get(bad, 0) == 1
    assert after[other] - before.get(other, 0) == 1
    assert not any("/no/such" in k for k in after)  # unknown paths do not make labels
    n = 'seqnlp_http_request_duration_seconds_count{route="/predict"}'
    assert after[n] == sum(v for k, v in after.items() if k.startswith("seqnlp_http_requests_total") and
                           'route="/predict"' in k)
    buckets = [v for k, v in after.items() if k.startswith('seqnlp_http_request_duration_seconds_bucket{route="/pre')]
    assert buckets == sorted(buckets) and buckets[-1] == after[n]  # cumulative, +Inf = the count
    assert after['seqnlp_info{task="translation"}'] == 1
    assert after["seqnlp_loop_answered_total"] - before["seqnlp_loop_answered_total"] == 3  # continuous batching
    assert after["seqnlp_loop_steps_total"] > before["seqnlp_loop_steps_total"]


def test_cors_lets_the_allowed_origin_call_from_a_browser(translation_server):
    """``--cors-allow-origin``: a browser's preflight and request from that origin are allowed (the answer names
    it); another origin's preflight is refused and its answers carry no allow-origin header."""
    import json
    import urllib.error
    import urllib.request

    def call(method: str, origin: str, body: bytes | None = None) -> tuple[int, dict]:
        headers = {"Origin": origin, "content-type": "application/json"}
        if method == "OPTIONS":
            headers.update({"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
        req = urllib.request.Request(translation_server.url + "/predict", data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}

    status, headers = call("OPTIONS", "http://app.example.org")
    assert status == 200 and headers["access-control-allow-origin"] == "http://app.example.org", headers
    assert "POST" in headers["access-control-allow-methods"]
    status, headers = call("POST", "http://app.example.org", json.dumps({"inputs": [SENTS[0]]}).encode())
    assert status == 200 and headers["access-control-allow-origin"] == "http://app.example.org"
    status, headers = call("OPTIONS", "http://evil.example.com")
    assert status == 400 and "access-control-allow-origin" not in headers
    status, headers = call("POST", "http://evil.example.com", json.dumps({"inputs": [SENTS[0]]}).encode())
    assert status == 200 and "access-control-allow-origin" not in headers  # the browser withholds the answer


def test_unknown_routes_and_methods(translation_server):
    status, body = translation_server.get("/predictions")
    assert status == 404 and "/predict" in body["error"]
    status, body = translation_server.get("/predict")
    assert status == 405


def test_sigterm_finishes_the_request_in_flight_and_exits_0(smoke_runs):
    with ServeProcess(smoke_runs("char_generator"), "--max-chars", "20000") as s:
        slow = concurrently([lambda: s.post("/predict", {"inputs": ["ROMEO:"], "parameters": {"chars": 12000}},
                                            timeout=120),
                             lambda: _terminate_when_busy(s)], timeout=150)
        status, body = slow[0]
        assert slow[1] is True, f"the request never reached the model:\n{s.output}"
        assert status == 200, body
        assert len(body["results"][0]["text"]) == 12000
        assert s.proc.wait(60) == 0, s.output
        assert "stopped" in s.output


@pytest.mark.parametrize("where", [["--batching", "continuous"], ["--workers", "1"]],
                         ids=["model thread", "worker process"])
def test_sigterm_finishes_a_continuously_batched_request_in_flight(smoke_runs, where):
    """SIGTERM while a beam search request runs in a continuous search (in the server's model thread, or in a
    worker process): it is answered in full, then the server (and its worker) exit."""
    run = smoke_runs("translation")
    with ServeProcess(run, *where) as s:
        req = {"inputs": [" ".join(SENTS)] * 120, "parameters": {"beam_size": 32}}
        slow = concurrently([lambda: s.post("/predict", req, timeout=240), lambda: _terminate_when_busy(s)],
                            timeout=300)
        status, body = slow[0]
        assert slow[1] is True, f"the request never reached the worker:\n{s.output}"
        assert status == 200 and len(body["results"]) == 120, body
        assert s.proc.wait(60) == 0, s.output


def _terminate_when_busy(s: ServeProcess) -> bool:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status, body = s.get("/health", timeout=10)
        if status == 200 and (body["batching"]["running"] or body.get("workers", {}).get("requests_open") or
                              body.get("stream", {}).get("requests_open")):
            s.terminate()
            return True
        time.sleep(0.05)
    return False


def test_worker_processes_serve_like_offline_survive_a_killed_worker_and_stop(smoke_runs):
    """``--workers 2``: the batches run in two model processes; results equal offline predictions; a worker
    killed mid-service is replaced and the requests of its batch are answered; SIGTERM stops the workers too."""
    import signal as sig

    run = smoke_runs("translation")
    with ServeProcess(run, "--workers", "2", "--max-wait-ms", "20") as s:
        status, health = s.get("/health")
        assert status == 200 and health["workers"]["processes"] == 2, health
        pids = health["workers"]["pids"]
        assert len(pids) == 2 and s.proc.pid not in pids
        reqs = [{"inputs": [SENTS[i % 8], SENTS[(i + 5) % 8]]} for i in range(12)]
        outs = concurrently([lambda r=r: s.post("/predict", r) for r in reqs])
        for r, (status, body) in zip(reqs, outs):
            assert status == 200 and same(body["results"], offline(run, r["inputs"])), body
        status, health = s.get("/health")
        assert health["workers"]["steps"] > 0 and health["workers"]["answered"] >= len(reqs)  # continuous batching
        assert health["batching"]["batches"] == 0  # beam search requests bypass the micro-batcher
        os.kill(pids[0], sig.SIGKILL)
        outs = concurrently([lambda r=r: s.post("/predict", r) for r in reqs[:4]])
        assert all(status == 200 for status, _ in outs), outs  # the dead worker's batch was retried
        assert all(same(body["results"], offline(run, r["inputs"])) for r, (_, body) in zip(reqs[:4], outs))
        status, health = s.get("/health")
        assert health["workers"]["restarts"] >= 1 and len(health["workers"]["pids"]) >= 1
        new_pids = health["workers"]["pids"]
        assert s.stop() == 0, s.output
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{p}") for p in new_pids):
        time.sleep(0.1)
    assert not any(os.path.exists(f"/proc/{p}") for p in new_pids), "a worker process outlived the server"


def test_grouped_batching_with_workers_serves_like_offline(smoke_runs):
    """``--workers 1 --batching grouped``: beam search requests are grouped by the micro-batcher again."""
    run = smoke_runs("translation")
    with ServeProcess(run, "--workers", "1", "--batching", "grouped", "--max-wait-ms", "20") as s:
        reqs = [{"inputs": [SENTS[i % 8]]} for i in range(6)]
        outs = concurrently([lambda r=r: s.post("/predict", r) for r in reqs])
        for r, (status, body) in zip(reqs, outs):
            assert status == 200 and same(body["results"], offline(run, r["inputs"])), body
        status, health = s.get("/health")
        assert health["batching"]["requests"] == len(reqs) and health["workers"]["steps"] == 0
        status, info = s.get("/info")
        assert info["batching"]["continuous"] is False
        assert s.stop() == 0, s.output


def test_a_failed_model_loop_fails_its_requests_once_and_starts_again(smoke_runs, monkeypatch):
    """The in-process continuous batching loop failing itself (not a request): its open requests fail with
    WorkerDied (the app retries those once), a new loop starts, and the next request is answered as offline."""
    from seqnlp.serve.loop import ThreadWorker, WorkerDied, WorkerLoop
    from seqnlp.serve.models import PredictorPool

    run = smoke_runs("translation")
    real, calls = WorkerLoop.step, []

    def flaky(self):
        if not calls and len(self.streams):
            calls.append(1)
            raise RuntimeError("a bug in the loop")
        return real(self)

    monkeypatch.setattr(WorkerLoop, "step", flaky)
    worker = ThreadWorker(PredictorPool(load(run, "cpu", threads=1)))
    worker.start()
    try:
        with pytest.raises(WorkerDied):
            worker.submit((), [SENTS[0]], stream=True).result(60)
        assert worker.restarts == 1 and calls == [1]
        got = worker.submit((), [SENTS[0], SENTS[1]], stream=True).result(60)
        assert same(got, offline(run, SENTS[:2]))
        assert worker.counters()["requests_open"] == 0 and worker.counters()["answered"] == 1
    finally:
        worker.stop()
