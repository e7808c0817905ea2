"""A hypothesis fuzz of the API: no request, however malformed, is answered with a 5xx."""

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from distillery.cellar import Cellar
from distillery.serve import create_app

pytestmark = pytest.mark.slow  # trains the small_run student

FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def client(small_run, tmp_path_factory):
    cellar = Cellar(tmp_path_factory.mktemp("fuzz") / "cellar")
    cellar.set_alias("prod", cellar.add(small_run.spirit_path())["name"])
    return TestClient(create_app(cellar, max_body=64 * 1024), raise_server_exceptions=False)


json_values = st.recursive(  # finite floats: JSON has no inf, and the client would refuse to send one
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
names = st.from_regex(r"[a-z_]{1,10}", fullmatch=True) | st.sampled_from(["set_timer", "send_message", "get_weather"])
param = st.fixed_dictionaries(
    {"type": st.sampled_from(["string", "integer", "number", "boolean", "array", "object", "any", "float", "nope"])},
    optional={"enum": st.lists(st.text(max_size=6) | st.integers(), max_size=3), "description": st.text(max_size=30)})
tool = st.fixed_dictionaries({"type": st.just("function"), "function": st.fixed_dictionaries(
    {"name": names},
    optional={"description": st.text(max_size=30), "parameters": st.fixed_dictionaries(
        {"type": st.just("object"), "properties": st.dictionaries(names, param | json_values, max_size=3)},
        optional={"required": st.lists(names, max_size=2)})})}) | json_values
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "system", "assistant", "tool", "other"]),
     "content": st.text(max_size=60) | st.lists(st.fixed_dictionaries(
         {"type": st.sampled_from(["text", "image_url"]), "text": st.text(max_size=40)}), max_size=2) | json_values},
) | json_values
NEEDLE = json.loads((Path(__file__).resolve().parents[1] / "examples" / "needle_tools.json").read_text())
request_text = st.sampled_from(["set a timer for 5 minutes", "text Sam that I am late", "what's the weather in Oslo"]) \
    | st.text(min_size=1, max_size=60)
# A well-formed request (the student's own tools, or made-up ones) ...
valid = st.fixed_dictionaries(
    {"model": st.sampled_from(["prod", "small-v2"]),
     "messages": st.tuples(st.lists(message, max_size=2), request_text).map(
         lambda parts: [*parts[0], {"role": "user", "content": parts[1]}]),
     "tools": st.lists(st.sampled_from(NEEDLE), min_size=1, max_size=4, unique_by=lambda t: t["function"]["name"])
     | st.lists(tool, min_size=1, max_size=3),
     "max_tokens": st.integers(1, 6)},  # small: an answer costs a few decoding steps
    optional={"tool_choice": st.sampled_from(["none", "auto", "required"]) | st.fixed_dictionaries(
        {"type": st.just("function"), "function": st.fixed_dictionaries({"name": names})}),
        "parallel_tool_calls": st.booleans(), "temperature": st.floats(0, 2), "n": st.just(1),
        "stream": st.booleans()})
FIELDS = ["model", "messages", "tools", "max_tokens", "tool_choice", "n", "stream", "parallel_tool_calls",
          "max_completion_tokens"]
# ... as it is, or with one field replaced by anything at all.
body = st.tuples(valid, st.none() | st.tuples(st.sampled_from(FIELDS), json_values)).map(
    lambda pair: pair[0] if pair[1] is None else {**pair[0], pair[1][0]: pair[1][1]})


def check(reply) -> None:
    assert reply.status_code < 500, reply.text
    if reply.headers.get("content-type", "").startswith("text/event-stream"):
        events = [line.removeprefix("data: ") for line in reply.text.split("\n\n") if line]
        assert events[-1] == "[DONE]" and all(json.loads(e)["object"] == "chat.completion.chunk" for e in events[:-1])
        return
    data = reply.json()
    if reply.status_code >= 400:
        assert isinstance(data["error"]["message"], str) and data["error"]["message"]
        return
    if "choices" in data:
        choice = data["choices"][0]
        assert choice["finish_reason"] in ("tool_calls", "stop", "length")
        for call in choice["message"].get("tool_calls") or []:
            assert isinstance(json.loads(call["function"]["arguments"]), dict)


@FUZZ
@given(payload=body)
def test_no_json_body_gets_a_5xx(client, payload):
    check(client.post("/v1/chat/completions", json=payload))


@FUZZ
@given(raw=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()),
       content_type=st.sampled_from(["application/json", "text/plain", "", "application/x-www-form-urlencoded"]))
def test_no_raw_body_gets_a_5xx(client, raw, content_type):
    check(client.post("/v1/chat/completions", content=raw, headers={"content-type": content_type}))


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
       path=st.sampled_from(["/health", "/v1/models", "/v1/models/prod", "/v1/models/../../etc",
                             "/v1/chat/completions", "/v1", "/"]) | st.from_regex(r"/[a-z0-9/._%-]{0,30}", fullmatch=True))
def test_no_route_gets_a_5xx(client, method, path):
    check(client.request(method, path))
