"""``seqkit serve``: one real server subprocess over tiny trained runs (a char LM, a translator, a
tagger, a diverged copy of the char LM, an exported file), with a token, talked to over HTTP."""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import socket
import threading
import time

import pytest
import torch
from _serve_client import Server, read_events
from _served_runs import train_served_runs
from _tiny_runs import ONE_THREAD_ENV
from conftest import make_plugin_dist, needs_extra, run_cli

import seqkit
from seqkit.cli import export

# end to end: a server subprocess over runs trained here, shared by the module's tests on one worker
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("serve")]

TOKEN = "tiny-secret"
CAPS = {"max_inputs": 8, "max_chars": 100, "max_length": 60000, "max_beam_size": 8, "max_n_best": 4,
        "max_num_samples": 4, "max_prefixes": 100000, "max_body_bytes": 1 << 20}
# Third-party decoders: one that always raises, one that refuses batches, one that is slow.
PLUGIN = '''
import time

import torch

import seqkit
from seqkit import Option
from seqkit.decoding import DecodeResult, Hypothesis


def greedy(model, state, tokens, length, before_step=lambda: None):
    rows, chosen, total = torch.arange(tokens.shape[0]), [], torch.zeros(tokens.shape[0])
    for _ in range(length):
        before_step()
        log_probs, state = model.step(tokens, state)
        tokens = log_probs.argmax(1)
        total += log_probs[rows, tokens]
        chosen.append(tokens)
    return [DecodeResult([Hypothesis(t, lp)]) for t, lp in zip(torch.stack(chosen, 1).tolist(), total.tolist())]


class Boom(seqkit.Decoder):
    def search(self, model, state, tokens, length):
        raise RuntimeError("boom")


class Solo(seqkit.Decoder):
    def search(self, model, state, tokens, length):
        if tokens.shape[0] > 1:
            raise RuntimeError("one input at a time")
        return greedy(model, state, tokens, length)


class Slow(seqkit.Decoder):
    options = {"delay": Option(0.05, min=0.0, help="seconds slept before each step")}

    def search(self, model, state, tokens, length):
        return greedy(model, state, tokens, length, lambda: time.sleep(self.config["delay"]))


@seqkit.hookimpl
def register_decoders(register):
    register("boom", Boom)
    register("solo", Solo)
    register("slow", Slow)
'''


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """name -> path of each run served, trained here in-process (a few seconds in all)."""
    needs_extra("starlette", "serve")
    needs_extra("uvicorn", "serve")
    root = tmp_path_factory.mktemp("serve")
    served = train_served_runs(root)
    shutil.copytree(root / "char_lm", root / "diverged")
    best = root / "diverged" / "checkpoints" / "best.pt"
    state = torch.load(best, weights_only=True)
    state["model"] = {k: torch.full_like(v, math.nan) if v.is_floating_point() else v
                      for k, v in state["model"].items()}
    torch.save(state, best)
    (root / "exported").mkdir()
    export.command(argparse.Namespace(run=root / "char_lm", checkpoint="best", output=root / "exported" / "model.pt",
                                      json=True))
    return {**served, "diverged": root / "diverged", "model": root / "exported" / "model.pt"}


@pytest.fixture(scope="module")
def server(runs, tmp_path_factory):
    folder = tmp_path_factory.mktemp("server")
    site = make_plugin_dist(folder / "site", "seqkit-serve-test", "seqkit_serve_test", PLUGIN)
    caps = [arg for name, value in CAPS.items() if name != "max_body_bytes"
            for arg in ("--" + name.replace("_", "-"), str(value))]
    python_path = os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])])
    started = Server([*runs.values(), "--device", "cpu", "--token", TOKEN, "--max-wait-ms", "1000", *caps],
                     folder / "server.log", token=TOKEN, env={"PYTHONPATH": python_path})
    yield started
    started.stop()


def same(a, b, path="") -> None:
    """``a`` equals ``b``: numbers to float tolerance, everything else exactly."""
    if isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-6), path
    elif isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            same(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{path}[{i}]")
    else:
        assert a == b, path


def assert_one_line_error(status: int, data: dict, expected_status: int, message: str) -> None:
    assert status == expected_status, (status, data)
    assert list(data) == ["error"] and "\n" not in data["error"] and "Traceback" not in data["error"], data
    assert message in data["error"], data


# -- what the server says of its runs ------------------------------------------------------------

def test_healthz_on_localhost(server):
    assert server.host == "127.0.0.1"
    health = server.ok("GET", "/healthz")
    assert health["status"] == "ok" and {"busy", "queued", "batches", "requests", "cancelled"} <= set(health)


def test_runs_lists_each_run_with_its_strategies_limits_and_recipe(server, runs):
    listed = {run["name"]: run for run in server.ok("GET", "/v1/runs")["runs"]}
    assert list(listed) == ["char_lm", "translation", "tagger", "diverged", "model"]
    char_lm = listed["char_lm"]
    assert set(char_lm) == {"name", "task", "cell", "vocab_size", "path", "checkpoint", "strategies",
                            "limits", "recipe"}
    run = seqkit.load_run(runs["char_lm"], device="cpu")
    assert (char_lm["task"], char_lm["cell"]) == ("char_lm", "lstm")
    assert char_lm["vocab_size"] == run.task.tokenizer.vocab_size
    assert char_lm["path"] == str(runs["char_lm"]) and char_lm["checkpoint"] == str(run.checkpoint)
    assert char_lm["recipe"] == json.loads(json.dumps(run.recipe)) and char_lm["limits"] == CAPS
    strategies = char_lm["strategies"]
    assert set(strategies) == {"greedy", "sample", "beam", "exact", "boom", "solo", "slow"}
    beam = strategies["beam"]["options"]
    assert beam["beam_size"] == {"type": "integer", "default": 3, "cap": 8, "min": 1, "max": None, "choices": None,
                                 "help": "prefixes kept per step (clipped to the sequences that exist)"}
    assert beam["n_best"]["default"] == 1 and beam["n_best"]["cap"] == 4
    sample = strategies["sample"]["options"]
    assert sample["temperature"]["default"] == 1.0 and sample["temperature"]["type"] == "number"
    assert sample["temperature"]["cap"] is None and sample["top_p"]["max"] == 1.0
    assert sample["seed"]["default"] is None and sample["seed"]["type"] == "integer"
    exact = strategies["exact"]["options"]
    assert exact["max_prefixes"]["default"] == 100000 and exact["max_prefixes"]["cap"] == 100000
    assert exact["search"]["choices"] == ["auto", "enumeration", "branch_and_bound"]
    assert strategies["greedy"]["options"] == {} and strategies["greedy"]["help"]
    # a softmax tagger: only the strategies that give its exact answer
    assert set(listed["tagger"]["strategies"]) == {"greedy", "exact"}
    translator = seqkit.load_run(runs["translation"], device="cpu")
    assert listed["translation"]["vocab_size"] == translator.task.target_tokenizer.vocab_size
    assert listed["model"]["path"] == str(runs["model"]) and listed["model"]["task"] == "char_lm"


def test_metrics_are_the_lines_of_metrics_jsonl(server, runs):
    lines = (runs["char_lm"] / "metrics.jsonl").read_text().splitlines()
    assert server.ok("GET", "/v1/runs/char_lm/metrics") == {"metrics": [json.loads(line) for line in lines]}
    assert len(lines) > 2
    assert server.ok("GET", "/v1/runs/model/metrics") == {"metrics": []}  # an exported file has none


def test_openapi_and_the_page(server):
    schema = server.ok("GET", "/openapi.json")
    assert schema["openapi"].startswith("3.") and "/v1/runs/{name}/decode" in schema["paths"]
    status, headers, page = server.request("GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html") and b"seqkit serve" in page
    status, _, same_page = server.request("GET", "/static/index.html")
    assert status == 200 and same_page == page


# -- decoding ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,body,flags", [
    ("char_lm", {"inputs": ["the q", "a st"], "strategy": "beam", "beam_size": 3, "n_best": 2, "length": 6},
     ["--strategy", "beam", "--beam-size", "3", "--n-best", "2", "--input", "the q", "--input", "a st",
      "--length", "6"]),
    ("translation", {"inputs": ["cab", "dots"], "strategy": "exact", "n_best": 2, "max_prefixes": 5000,
                     "length": 3},
     ["--strategy", "exact", "--n-best", "2", "--max-prefixes", "5000", "--input", "cab", "--input", "dots",
      "--length", "3"]),
    ("char_lm", {}, []),  # the recipe's strategy, options, length and prompt
    ("translation", {"inputs": ["cab", "toast"], "strategy": "beam", "beam_size": 3, "length": 5, "details": True},
     ["--strategy", "beam", "--beam-size", "3", "--input", "cab", "--input", "toast", "--length", "5", "--details"]),
])
def test_decode_answers_what_seqkit_decode_json_prints(server, runs, name, body, flags):
    answer = server.ok("POST", f"/v1/runs/{name}/decode", body)
    result = run_cli("decode", runs[name], *flags, "--device", "cpu", "--json", env=ONE_THREAD_ENV)
    assert result.returncode == 0, result.stderr
    same(answer, json.loads(result.stdout))


def while_busy(server, requests: list[tuple[str, str, dict]]) -> tuple[dict, list, dict]:
    """``requests`` sent at once while the worker decodes a slow request, so that they all arrive
    at a busy worker (an idle one starts on the first at once): /healthz before, the answers, and
    /healthz after."""
    slow = threading.Thread(target=server.ok, args=(
        "POST", "/v1/runs/char_lm/decode", {"strategy": "slow", "delay": 0.05, "inputs": "the ", "length": 20}))
    slow.start()
    while not (before := server.ok("GET", "/healthz"))["busy"]:
        time.sleep(0.005)
    answers = server.concurrently(requests)
    slow.join(timeout=300)
    return before, answers, server.ok("GET", "/healthz")


CHAR_INPUTS = [["the "], ["a st", "fox"], ["qu"], [""]]
WORD_INPUTS = [["cab"], ["dots", "toast"], ["sea"], ["a"]]


@pytest.mark.parametrize("name,inputs", [("char_lm", CHAR_INPUTS), ("translation", WORD_INPUTS)])
@pytest.mark.parametrize("options", [{"strategy": "greedy", "length": 6},
                                     {"strategy": "greedy", "length": 6, "details": True},
                                     {"strategy": "beam", "beam_size": 3, "n_best": 2, "length": 6},
                                     {"strategy": "exact", "n_best": 2, "length": 2}])
def test_requests_that_arrive_together_are_one_batch_with_the_answers_of_each_alone(server, name, inputs, options):
    path = f"/v1/runs/{name}/decode"
    before, batched, after = while_busy(server, [("POST", path, {**options, "inputs": texts}) for texts in inputs])
    assert after["requests"] - before["requests"] == len(inputs)
    assert after["batches"] - before["batches"] == 1, "the requests were not decoded together"
    for (status, answer), texts in zip(batched, inputs):
        assert status == 200, answer
        alone = server.ok("POST", path, {**options, "inputs": texts})
        assert [entry["input"] for entry in answer["results"]] == texts
        same(answer, alone)


def test_a_lone_request_to_an_idle_server_waits_for_no_company(server):
    # the server waits up to 1 s (--max-wait-ms) only for requests still being read
    server.ok("POST", "/v1/runs/char_lm/decode", {"strategy": "greedy", "inputs": "the ", "length": 6})
    start = time.perf_counter()
    server.ok("POST", "/v1/runs/char_lm/decode", {"strategy": "greedy", "inputs": "a st", "length": 6})
    assert time.perf_counter() - start < 0.5


def test_a_batch_that_fails_is_decoded_one_request_at_a_time(server):
    path = "/v1/runs/char_lm/decode"
    before, answers, after = while_busy(server, [("POST", path, {"strategy": "solo", "inputs": text, "length": 5})
                                                 for text in ("the ", "a st")])
    assert (after["requests"] - before["requests"], after["batches"] - before["batches"]) == (2, 1)
    for (status, answer), text in zip(answers, ("the ", "a st")):
        assert status == 200, answer
        greedy = server.ok("POST", path, {"strategy": "greedy", "inputs": text, "length": 5})
        same(answer["results"], greedy["results"])  # the same tokens; log-probabilities summed apart
    status, data = server.json("POST", path, {"strategy": "solo", "inputs": ["the ", "a st"], "length": 5})
    assert_one_line_error(status, data, 500, "decoding failed: decoder 'solo' (plugin seqkit-serve-test) "
                                             "raised RuntimeError: one input at a time in search()")


def test_warnings_are_logged_and_the_answer_is_the_same_json(server):
    body = {"inputs": "Th\u00e9 ", "strategy": "beam", "length_penalty": 1.0, "length": 4}
    answer = server.ok("POST", "/v1/runs/char_lm/decode", body)
    assert answer["results"][0]["normalized_input"] == "\ufffdh\ufffd " and answer["options"]["length_penalty"] == 1.0
    log = server.log.read_text()
    assert "seqkit serve: warning: inputs: characters not in the vocabulary replaced by '\ufffd': 'T', '\u00e9'" in log
    assert "seqkit serve: warning: length_penalty: has no effect: this task's outputs have no end symbol" in log


def test_a_plugin_that_raises_and_a_diverged_model_are_500s_and_the_server_goes_on(server, runs):
    status, data = server.json("POST", "/v1/runs/char_lm/decode", {"strategy": "boom", "inputs": "the "})
    assert_one_line_error(status, data, 500,
                          "decoding failed: decoder 'boom' (plugin seqkit-serve-test) raised RuntimeError: boom")
    status, data = server.json("POST", "/v1/runs/diverged/decode", {"strategy": "greedy", "inputs": "the "})
    checkpoint = runs["diverged"] / "checkpoints" / "best.pt"
    assert_one_line_error(status, data, 500, f"{checkpoint}: the model's log-probabilities are not finite (nan)")
    assert server.ok("GET", "/healthz")["failed"] >= 2
    assert server.ok("POST", "/v1/runs/char_lm/decode", {"strategy": "greedy", "inputs": "the "})["results"]


def test_healthz_answers_while_a_long_decode_runs(server):
    answer = {}
    decoding = threading.Thread(target=lambda: answer.update(result=server.json(
        "POST", "/v1/runs/char_lm/decode", {"strategy": "slow", "delay": 0.05, "inputs": "the ", "length": 60})))
    decoding.start()
    seen_busy, deadline = False, time.monotonic() + 120
    while not seen_busy and decoding.is_alive() and time.monotonic() < deadline:
        seen_busy = server.ok("GET", "/healthz")["busy"]
        time.sleep(0.02)
    decoding.join(timeout=300)
    assert seen_busy, "/healthz never answered while the decode ran"
    status, report = answer["result"]
    assert status == 200 and len(report["results"][0]["outputs"][0]["tokens"]) == 60


# -- errors ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("method,path,body,status,message", [
    ("POST", "/v1/runs/char_lm/decode", b"{not json", 400, "request body: not valid JSON: "),
    ("POST", "/v1/runs/char_lm/decode", b"[1, 2]", 400, "request body: expected a JSON object, got an array"),
    ("POST", "/v1/runs/char_lm/decode", {"inputs": "a", "beam_sise": 2}, 400,
     "beam_sise: unknown field (did you mean 'beam_size'?); allowed: inputs, strategy, length, details and a "
     "strategy's "
     "options (beam_size, chunk_size, delay, length_penalty, max_prefixes"),
    ("POST", "/v1/runs/nothing/decode", {"inputs": "a"}, 404,
     "unknown run 'nothing'; serving: char_lm, translation, tagger, diverged, model"),
    ("POST", "/v1/runs/char_lm/decode", {"strategy": "beam", "beam_size": 0}, 400, "beam_size: must be >= 1; got 0"),
    ("POST", "/v1/runs/char_lm/decode", {"strategy": "greedy", "top_p": 0.9}, 400,
     "top_p: does not apply to strategy 'greedy' (it is an option of sample); 'greedy' accepts: no options"),
    ("POST", "/v1/runs/char_lm/decode", {"strategy": "gredy"}, 400,
     "strategy: unknown strategy 'gredy' (did you mean 'greedy'?); registered: beam, boom, exact, greedy, "),
    ("POST", "/v1/runs/char_lm/decode", {"strategy": "sample", "temperature": -1}, 400,
     "temperature: must be >= 0.0; got -1"),
    ("POST", "/v1/runs/char_lm/decode", {"length": 0}, 400, "length: must be >= 1; got 0"),
    ("POST", "/v1/runs/char_lm/decode", {"details": "yes"}, 400, "details: must be true or false; got 'yes'"),
    ("POST", "/v1/runs/tagger/decode", {"inputs": "the dog", "details": True}, 400,
     "details: a tagging run cannot report per-token details (its task has no decode_details method)"),
    ("POST", "/v1/runs/char_lm/decode", {"length": "5"}, 400, "length: must be an integer; got '5'"),
    ("POST", "/v1/runs/char_lm/decode", {"inputs": []}, 400,
     "inputs: expected a text or a non-empty list of texts; got []"),
    ("POST", "/v1/runs/char_lm/decode", {"inputs": ["a"] * 9}, 400,
     "inputs: 9 is over this server's cap of 8 (--max-inputs)"),
    ("POST", "/v1/runs/char_lm/decode", {"inputs": ["a", "x" * 101]}, 400,
     "inputs[1]: 101 characters is over this server's cap of 100 (--max-chars)"),
    ("POST", "/v1/runs/char_lm/decode", {"length": 60001}, 400,
     "length: 60,001 is over this server's cap of 60,000 (--max-length)"),
    ("POST", "/v1/runs/char_lm/decode", {"strategy": "beam", "beam_size": 9}, 400,
     "beam_size: 9 is over this server's cap of 8 (--max-beam-size)"),
    ("POST", "/v1/runs/char_lm/decode", {"strategy": "exact", "n_best": 5}, 400,
     "n_best: 5 is over this server's cap of 4 (--max-n-best)"),
    ("POST", "/v1/runs/char_lm/decode", {"strategy": "sample", "num_samples": 5}, 400,
     "num_samples: 5 is over this server's cap of 4 (--max-num-samples)"),
    ("POST", "/v1/runs/char_lm/decode", {"strategy": "exact", "max_prefixes": 100001}, 400,
     "max_prefixes: 100,001 is over this server's cap of 100,000 (--max-prefixes)"),
    ("POST", "/v1/runs/char_lm/decode", {"strategy": "exact", "search": "enumeration", "length": 9}, 400,
     "max_prefixes: enumerating every sequence of 9 tokens over "),
    ("POST", "/v1/runs/tagger/decode", {"inputs": "the dog", "strategy": "beam"}, 400,
     "strategy: 'beam' does not apply to this tagging run: a softmax tagger is decoded exactly by its "
     "per-position argmax"),
    ("POST", "/v1/runs/char_lm/stream", {"strategy": "beam"}, 400,
     "strategy: a stream writes the tokens of greedy search or of one sample, not of 'beam'"),
    ("POST", "/v1/runs/char_lm/stream", {"inputs": ["a", "b"], "strategy": "greedy"}, 400,
     "inputs: a stream decodes one input; got 2"),
    ("GET", "/v1/runs/char_lm/decode", None, 405, "method not allowed: GET /v1/runs/char_lm/decode; use POST"),
    ("GET", "/nowhere", None, 404, "not found: GET /nowhere"),
    ("GET", "/v1/runs/../metrics", None, 404, "unknown run '..'"),
    ("GET", "/v1/runs/..%2F..%2Fetc/metrics", None, 404, "not found: GET /v1/runs/../../etc/metrics"),
    ("GET", "/v1/runs/char_lm%2Fcheckpoints/metrics", None, 404, "not found: "),
    ("GET", "/v1/runs/%2E%2E/metrics", None, 404, "unknown run '..'"),
    ("GET", "/static/..%2F..%2Fapi.py", None, 404, "not found: "),
])
def test_every_problem_is_a_4xx_with_a_one_line_json_error(server, method, path, body, status, message):
    raw = body if isinstance(body, bytes) else None
    got, data = server.json(method, path, None if raw else body, raw=raw)
    assert_one_line_error(got, data, status, message)


def test_the_messages_are_the_python_apis(server, runs):
    """The API's messages are the CLI's with keyword arguments for flags: here, JSON fields."""
    tagger = seqkit.load_run(runs["tagger"], device="cpu")
    with pytest.raises(seqkit.SeqkitError) as raised:
        tagger.decode(["the dog"], "beam")
    _, data = server.json("POST", "/v1/runs/tagger/decode", {"inputs": ["the dog"], "strategy": "beam"})
    assert data["error"] == str(raised.value)


def test_a_body_over_the_cap_is_413(server):
    with socket.create_connection((server.host, server.port), timeout=120) as conn:
        conn.sendall(b"POST /v1/runs/char_lm/decode HTTP/1.1\r\nHost: localhost\r\n"
                     b"Authorization: Bearer " + TOKEN.encode() + b"\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 5000000\r\nConnection: close\r\n\r\n{\"inputs\": ")
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert json.loads(body) == {"error": "request body: over this server's cap of 1,048,576 bytes (--max-body-bytes)"}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                                     {"Authorization": f"Bearer {TOKEN}x"}])
def test_every_request_without_the_token_is_401(server, headers):
    for method, path in (("GET", "/healthz"), ("GET", "/v1/runs"), ("POST", "/v1/runs/char_lm/decode")):
        status, answer_headers, body = server.request(method, path, {} if method == "POST" else None,
                                                      token=None, headers=headers)
        assert status == 401 and answer_headers["www-authenticate"] == "Bearer"
        assert json.loads(body) == {"error": "unauthorized: send the server's token as 'Authorization: Bearer TOKEN'"}


def test_the_page_itself_opens_without_the_token_and_holds_no_data(server):
    # a browser opens the page before it can send a header; the page then asks for the token
    status, headers, body = server.request("GET", "/", token=None)
    assert status == 200 and headers["content-type"].startswith("text/html") and b"<html" in body.lower()
    for method, path in (("POST", "/"), ("GET", "/v1/runs"), ("GET", "/openapi.json")):
        status, _, _ = server.request(method, path, {} if method == "POST" else None, token=None)
        assert status == 401, (method, path)
    status, _, body = server.request("GET", "/static/../v1/runs", token=None)  # no way out of the folder
    assert status == 404 and json.loads(body) == {"error": "not found: GET /static/../v1/runs"}


# -- streaming ------------------------------------------------------------------------------------

def stream(server, name: str, body: dict) -> list[tuple[str, dict]]:
    conn = server.connection()
    try:
        conn.request("POST", f"/v1/runs/{name}/stream", json.dumps(body), server.headers())
        response = conn.getresponse()
        assert response.status == 200 and response.getheader("content-type").startswith("text/event-stream")
        return read_events(response)
    finally:
        conn.close()


@pytest.mark.parametrize("body", [{"inputs": "the ", "strategy": "greedy", "length": 20},
                                  {"inputs": "a st", "strategy": "sample", "temperature": 0.8, "seed": 4,
                                   "length": 15}])
def test_a_char_lm_streams_each_token_then_the_result_of_decode(server, body):
    events = stream(server, "char_lm", body)
    names = [name for name, _ in events]
    assert names == ["token"] * body["length"] + ["result"]
    result = events[-1][1]
    output = result["results"][0]["outputs"][0]
    tokens = [data for _, data in events[:-1]]
    assert [t["index"] for t in tokens] == list(range(body["length"]))
    assert [t["token"] for t in tokens] == output["tokens"]
    assert "".join(t["text"] for t in tokens) == output["text"]
    assert result == server.ok("POST", "/v1/runs/char_lm/decode", body)


def test_a_translator_streams_greedy_tokens_then_the_result(server):
    body = {"inputs": "cab", "strategy": "greedy", "length": 10}
    events = stream(server, "translation", body)
    assert [name for name, _ in events[:-1]] == ["token"] * (len(events) - 1) and events[-1][0] == "result"
    output = events[-1][1]["results"][0]["outputs"][0]
    tokens = [data for _, data in events[:-1]]
    assert len(tokens) == len(output["tokens"]) + output["finished"]  # the end symbol too, where written
    assert [t["index"] for t in tokens] == list(range(len(tokens)))
    assert [t["text"] for t in tokens[:len(output["tokens"])]] == output["tokens"]  # words, here
    assert [t["text"] for t in tokens[len(output["tokens"]):]] == [""] * output["finished"]  # the end symbol
    assert events[-1][1] == server.ok("POST", "/v1/runs/translation/decode", body)


def test_a_stream_that_fails_ends_with_an_error_event(server, runs):
    events = stream(server, "diverged", {"inputs": "the ", "strategy": "greedy", "length": 5})
    assert [name for name, _ in events] == ["error"]
    assert "the model's log-probabilities are not finite (nan)" in events[0][1]["error"]


def test_a_client_that_disconnects_stops_the_decode(server):
    before = server.ok("GET", "/healthz")
    conn = server.connection()
    conn.request("POST", "/v1/runs/char_lm/stream",
                 json.dumps({"inputs": "the ", "strategy": "greedy", "length": 50000}), server.headers())
    response = conn.getresponse()
    assert [name for name, _ in read_events(response, limit=3)] == ["token"] * 3
    conn.sock.shutdown(socket.SHUT_RDWR)
    response.close()
    conn.close()
    deadline, health = time.monotonic() + 120, before
    while time.monotonic() < deadline:
        health = server.ok("GET", "/healthz")
        if health["cancelled"] > before["cancelled"] and not health["busy"]:
            break
        time.sleep(0.05)
    assert health["cancelled"] == before["cancelled"] + 1 and not health["busy"], health
    assert "seqkit serve: a stream of run char_lm stopped: the client left after" in server.log.read_text()
