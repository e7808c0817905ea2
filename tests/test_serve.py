"""The OpenAI-compatible server: the official client, the prefix cache, auth, limits, bad input, re-pointing."""

import json
import threading
import time

import httpx
import openai
import pytest
import uvicorn
from starlette.testclient import TestClient
from typer.testing import CliRunner

from distillery.batching import EngineRunner, TorchEngine
from distillery.cellar import Cellar
from distillery.cli import app
from distillery.decoding import TorchRunner
from distillery.errors import DistilleryError
from distillery.jsonl import read_jsonl
from distillery.tasks.tool_calling.predictor import ToolCaller
from distillery.serve import create_app, is_loopback, run
from distillery.spirit import load_spirit, write_spirit
from distillery.tasks.tool_calling.prompt import USER, render_prompt
from distillery.tokenizer import encode_prompt

pytestmark = pytest.mark.slow  # trains the small_run student


class Server:
    """uvicorn on a free loopback port, in a thread."""

    def __init__(self, app):
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        self.url = "http://127.0.0.1:%d" % self.server.servers[0].sockets[0].getsockname()[1]

    def stop(self):
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def served(small_run, tmp_path_factory):
    """A Cellar with the small student as `small-v2` and, re-saved as another file, `small-b`; prod -> small-v2."""
    root = tmp_path_factory.mktemp("served")
    cellar = Cellar(root / "cellar")
    first = cellar.add(small_run.spirit_path())
    spirit = load_spirit(small_run.spirit_path())
    meta = spirit.metadata
    write_spirit(root / "b.spirit", spirit.model, model_config=meta["model_config"], tokenizer_json=meta["tokenizer"],
                 recipe_yaml=meta["recipe"], task=meta["task"], tools=spirit.tools,
                 tasting={**meta["tasting"], "proof": meta["tasting"]["proof"] + 0.01},
                 lineage={**meta["lineage"], "parent": first["sha256"]}, decoding=meta["decoding"])
    cellar.add(root / "b.spirit", "small-b")
    cellar.set_alias("prod", first["name"])
    server = Server(create_app(cellar))
    yield server, cellar, spirit, first["name"]
    server.stop()


def _caller(spirit, model):
    return ToolCaller.from_decoding(model, spirit.tokenizer, spirit.format, spirit.decoding, grammar=True)


@pytest.fixture(scope="module")
def request_with_a_call(small_run, served):
    """A request, its offered tools, and the calls the library's own decoding makes for it (the
    small student is weak: a trained-on request where no held-out one gets a call)."""
    _, _, spirit, _ = served
    by_name = {t.name: t for t in spirit.tools}
    caller = _caller(spirit, spirit.model)
    for head in read_jsonl(small_run.dir / "cuts" / "heads.jsonl") + read_jsonl(small_run.dir / "cuts" / "hearts.jsonl"):
        tools = [by_name[n] for n in head["tools"]]
        calls = caller.predict(head["utterance"], tools).calls
        if head["calls"] and calls:
            return head["utterance"], tools, calls
    pytest.fail("the small student made no call on any head")


@pytest.mark.integration  # a real server on loopback
def test_the_openai_clients_stream_assembles_the_same_calls(served, request_with_a_call):
    server, _, _, name = served
    utterance, tools, expected = request_with_a_call
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    ask = {"model": "prod", "messages": [{"role": "user", "content": utterance}], "tools": [t.to_openai() for t in tools]}
    chunks = list(client.chat.completions.create(**ask, stream=True, stream_options={"include_usage": True}))
    calls, finish = {}, None
    for chunk in chunks:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or []:
                call = calls.setdefault(delta.index, {"name": "", "arguments": ""})
                call["name"] += delta.function.name or ""
                call["arguments"] += delta.function.arguments or ""
    assert [{"name": c["name"], "arguments": json.loads(c["arguments"])} for _, c in sorted(calls.items())] == expected
    assert finish == "tool_calls" and all(c.model == name for c in chunks)
    assert chunks[-1].usage.prompt_tokens > 0 and not chunks[-1].choices  # include_usage: a last chunk
    # The helper that assembles a stream gives the same message as not streaming.
    with client.chat.completions.stream(**ask) as stream:
        final = stream.get_final_completion()
    assert [{"name": c.function.name, "arguments": json.loads(c.function.arguments)}
            for c in final.choices[0].message.tool_calls] == expected


@pytest.mark.integration  # a real server on loopback
def test_the_openai_client_gets_the_same_tool_call_as_predict(served, request_with_a_call):
    server, _, spirit, name = served
    utterance, tools, expected = request_with_a_call
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    reply = client.chat.completions.create(model="prod", messages=[{"role": "user", "content": utterance}],
                                           tools=[t.to_openai() for t in tools])
    choice = reply.choices[0]
    assert reply.model == name and choice.finish_reason == "tool_calls"
    got = [{"name": c.function.name, "arguments": json.loads(c.function.arguments)}
           for c in choice.message.tool_calls]
    assert got == expected
    assert all(c.id.startswith("call_") and c.type == "function" for c in choice.message.tool_calls)
    prompt_ids = encode_prompt(spirit.tokenizer, render_prompt(utterance, tools))
    assert reply.usage.prompt_tokens == len(prompt_ids) and reply.usage.completion_tokens > 0

    silent = client.chat.completions.create(model="prod", messages=[{"role": "user", "content": utterance}],
                                            tools=[t.to_openai() for t in tools], tool_choice="none")
    assert silent.choices[0].finish_reason == "stop" and not silent.choices[0].message.tool_calls
    short = client.chat.completions.create(model="prod", messages=[{"role": "user", "content": utterance}],
                                           tools=[t.to_openai() for t in tools], max_tokens=2)
    assert short.choices[0].finish_reason == "length" and short.usage.completion_tokens == 2
    assert {m.id for m in client.models.list().data} == {name, "small-b", "prod"}
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="../" + name, messages=[{"role": "user", "content": utterance}])
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="prod", messages=[{"role": "user", "content": utterance}], n=2)
    assert refused.value.body["param"] == "n"


def test_the_prefix_cache_changes_no_output(small_run, served):
    _, _, spirit, _ = served
    by_name = {t.name: t for t in spirit.tools}
    engine = TorchEngine(spirit.model, spirit.format.context, boundary_id=spirit.tokenizer.token_to_id(USER))
    runner = EngineRunner(engine)
    plain, cached = _caller(spirit, spirit.model), _caller(spirit, runner)
    heads = read_jsonl(small_run.dir / "cuts" / "heads.jsonl")[:10]
    fixed = [by_name[n] for n in heads[0]["tools"]]
    for head in heads:
        for tools in (fixed, [by_name[n] for n in head["tools"]]):
            assert cached.predict(head["utterance"], tools).text == plain.predict(head["utterance"], tools).text
    assert engine.prefixes.hits >= len(heads) - 1  # the fixed catalog was read once
    ids = encode_prompt(spirit.tokenizer, render_prompt(heads[1]["utterance"], fixed))
    torch_logits = TorchRunner(spirit.model).start(ids)
    assert (runner.start(ids) - torch_logits).abs().max() < 1e-4


@pytest.mark.integration  # a real server on loopback
def test_concurrent_requests_decode_together_and_each_gets_what_predict_answers(small_run, served):
    server, _, spirit, name = served
    by_name = {t.name: t for t in spirit.tools}
    heads = read_jsonl(small_run.dir / "cuts" / "heads.jsonl") + read_jsonl(small_run.dir / "cuts" / "hearts.jsonl")[:28]
    caller = _caller(spirit, spirit.model)
    expected = [caller.predict(h["utterance"], [by_name[n] for n in h["tools"]]).calls for h in heads]
    answers = [None] * len(heads)

    def client(share):
        with httpx.Client(base_url=server.url, timeout=120) as http:
            for i in share:
                reply = http.post("/v1/chat/completions", json={
                    "model": name, "messages": [{"role": "user", "content": heads[i]["utterance"]}],
                    "tools": [by_name[n].to_openai() for n in heads[i]["tools"]]}).json()
                answers[i] = [{"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])}
                              for c in reply["choices"][0]["message"].get("tool_calls") or []]

    clients = [threading.Thread(target=client, args=(range(k, len(heads), 8),)) for k in range(8)]
    for c in clients:
        c.start()
    for c in clients:
        c.join(timeout=300)
    assert answers == expected and any(expected)
    scheduler = server.server.config.app.state.pool.loaded[spirit_sha(small_run)].scheduler
    assert scheduler.fed > 1.5 * scheduler.passes  # the requests in flight shared forward passes


def spirit_sha(run):
    from distillery.spirit import file_sha256

    return file_sha256(run.spirit_path())


@pytest.mark.integration  # a real server on loopback
def test_600_requests_from_8_clients_with_the_alias_repointed_midway(served, request_with_a_call):
    server, cellar, _, name = served
    utterance, tools, _ = request_with_a_call
    body = {"model": "prod", "messages": [{"role": "user", "content": utterance}],
            "tools": [t.to_openai() for t in tools], "max_tokens": 1}
    results, lock, counter = [], threading.Lock(), iter(range(600))
    repointed = {}

    def client():
        with httpx.Client(base_url=server.url, timeout=60) as http:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                if i == 300:
                    cellar.set_alias("prod", "small-b")
                    repointed["at"] = time.monotonic()
                sent = time.monotonic()
                try:
                    reply = http.post("/v1/chat/completions", json=body)
                    results.append((sent, reply.status_code, reply.json().get("model")))
                except httpx.HTTPError as exc:
                    results.append((sent, type(exc).__name__, None))

    threads = [threading.Thread(target=client) for _ in range(8)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        cellar.rollback("prod")
    failed = [r for r in results if r[1] != 200]
    assert len(results) == 600 and failed == []
    assert {m for _, _, m in results} == {name, "small-b"}
    assert all(m == "small-b" for sent, _, m in results if sent > repointed["at"])


@pytest.fixture(scope="module")
def guarded(served):
    _, cellar, _, _ = served
    return TestClient(create_app(cellar, api_key="s3cret", max_body=4096), raise_server_exceptions=False)


def _error(reply, status: int) -> dict:
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    return error


def test_with_a_key_every_route_but_health_needs_it(guarded):
    key = {"Authorization": "Bearer s3cret"}
    assert guarded.get("/health").status_code == 200
    for method, path in (("get", "/v1/models"), ("post", "/v1/chat/completions"), ("get", "/nowhere")):
        assert _error(getattr(guarded, method)(path), 401)["code"] == "invalid_api_key"
        assert getattr(guarded, method)(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert guarded.get("/v1/models", headers=key).status_code == 200
    assert guarded.get("/nowhere", headers=key).status_code == 404


def test_oversized_bodies_are_refused_before_parsing(guarded):
    key = {"Authorization": "Bearer s3cret"}
    big = b'{"model": "prod", "messages": [' + b" " * 5000 + b"]}"
    assert _error(guarded.post("/v1/chat/completions", content=big, headers=key), 413)["code"] == "request_too_large"

    def chunks():  # no content-length: counted as it arrives
        for _ in range(10):
            yield b" " * 1000

    assert guarded.post("/v1/chat/completions", content=chunks(), headers=key).status_code == 413


BAD = {
    "not json": (b"{model: prod", None),
    "not an object": (b"[1, 2]", None),
    "messages not a list": ({"model": "prod", "messages": "hi"}, "messages"),
    "no user message": ({"model": "prod", "messages": [{"role": "system", "content": "x"}]}, "messages"),
    "negative max_tokens": ({"model": "prod", "messages": [{"role": "user", "content": "hi"}], "max_tokens": -1},
                            "max_tokens"),
    "n=3": ({"model": "prod", "messages": [{"role": "user", "content": "hi"}], "n": 3}, "n"),
    "tools not functions": ({"model": "prod", "messages": [{"role": "user", "content": "hi"}], "tools": [7]},
                            "tools"),
    "unknown tool_choice": ({"model": "prod", "messages": [{"role": "user", "content": "hi"}],
                             "tools": [{"type": "function", "function": {"name": "set_timer"}}],
                             "tool_choice": {"type": "function", "function": {"name": "x"}}}, "tool_choice"),
    "catalog over the context": ({"model": "prod", "messages": [{"role": "user", "content": "hi"}]}, "messages"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_a_400_with_an_openai_error(guarded, case):
    body, param = BAD[case]
    key = {"Authorization": "Bearer s3cret"}
    reply = guarded.post("/v1/chat/completions", headers=key,
                         **({"content": body} if isinstance(body, bytes) else {"json": body}))
    assert _error(reply, 400)["param"] == param


def test_unknown_model_is_404_and_a_deadline_is_504(served, request_with_a_call):
    _, cellar, _, _ = served
    utterance, tools, _ = request_with_a_call
    client = TestClient(create_app(cellar, timeout_s=1e-6), raise_server_exceptions=False)
    body = {"messages": [{"role": "user", "content": utterance}], "tools": [t.to_openai() for t in tools]}
    assert _error(client.post("/v1/chat/completions", json={**body, "model": "/etc/passwd"}), 404)["code"] == \
        "model_not_found"
    assert _error(client.post("/v1/chat/completions", json={**body, "model": "prod"}), 504)["code"] == "timeout"


def test_only_loopback_is_served_without_a_key_and_an_empty_cellar_is_refused(monkeypatch, tmp_path):
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.10")
    monkeypatch.delenv("DISTILLERY_API_KEY", raising=False)
    with pytest.raises(DistilleryError, match="--api-key"):
        run(host="0.0.0.0", port=0)
    refused = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0"])
    assert refused.exit_code == 2 and "--api-key" in refused.output
    monkeypatch.setenv("DISTILLERY_CELLAR", str(tmp_path / "empty"))
    empty = CliRunner().invoke(app, ["serve", "--port", "0"])
    assert empty.exit_code == 2 and "no Spirits to serve" in " ".join(empty.output.split())


def test_a_spirit_changed_on_disk_is_not_served(small_run, tmp_path):
    cellar = Cellar(tmp_path / "cellar")
    entry = cellar.add(small_run.spirit_path())
    stored = cellar.spirit_path(entry)
    data = bytearray(stored.read_bytes())
    data[-1] ^= 0xFF
    stored.write_bytes(bytes(data))
    client = TestClient(create_app(cellar), raise_server_exceptions=False)
    reply = client.post("/v1/chat/completions", json={"model": entry["name"],
                                                      "messages": [{"role": "user", "content": "hi"}]})
    assert _error(reply, 500)["code"] == "spirit_unavailable"
    assert str(tmp_path) not in reply.text  # the server's paths stay in its log
