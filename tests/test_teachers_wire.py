"""Each provider speaks its documented wire format: request body, headers, URL, and the
recorded responses (tests/fixtures) parsed into text, usage and a normalized finish reason."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from distillery.errors import TeacherError
from distillery.teachers.anthropic import AnthropicTeacher
from distillery.teachers.base import Request
from distillery.teachers.gemini import GeminiTeacher
from distillery.teachers.openai import OpenAITeacher

FIXTURES = Path(__file__).parent / "fixtures"
SCHEMA = {"type": "object", "properties": {"examples": {"type": "array"}}, "required": ["examples"]}
REQUEST = Request(messages=({"role": "system", "content": "be brief"}, {"role": "user", "content": "write 2"}),
                  temperature=1.4, max_tokens=256, json_schema=SCHEMA, seed=7)
EXPECTED_TEXT = {"examples": [
    {"utterance": "Set a timer for 12 minutes for the eggs",
     "calls": [{"name": "set_timer", "arguments": {"duration_minutes": 12, "label": "eggs"}}]},
    {"utterance": "thanks, that's all for now", "calls": []}]}


def recorded(name: str):
    """A transport that answers with a recorded fixture and keeps the request it got."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=json.loads((FIXTURES / name).read_text()))

    return httpx.MockTransport(handle), seen


def complete(teacher, request=REQUEST):
    async def go():
        try:
            return await teacher.complete(request)
        finally:
            await teacher.aclose()

    return asyncio.run(go())


def test_openai_sends_chat_completions_with_json_schema_and_bearer_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai")
    transport, seen = recorded("openai_chat_completion.json")
    response = complete(OpenAITeacher(model="gpt-4o-mini", transport=transport))
    request = seen[0]
    assert str(request.url) == "https://api.openai.com/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test-openai"
    body = json.loads(request.content)
    assert body["messages"] == list(REQUEST.messages) and body["max_tokens"] == 256
    assert body["temperature"] == 1.4 and body["seed"] == 7
    assert body["response_format"] == {"type": "json_schema",
                                       "json_schema": {"name": "answer", "schema": SCHEMA, "strict": False}}
    assert json.loads(response.text) == EXPECTED_TEXT
    assert (response.input_tokens, response.output_tokens, response.finish) == (805, 91, "stop")


def test_anthropic_sends_messages_api_with_forced_tool_and_version_header(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    transport, seen = recorded("anthropic_messages_tool_use.json")
    response = complete(AnthropicTeacher(model="claude-3-5-haiku-latest", transport=transport))
    request = seen[0]
    assert str(request.url) == "https://api.anthropic.com/v1/messages"
    assert request.headers["x-api-key"] == "sk-ant-test"
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in request.headers
    body = json.loads(request.content)
    assert body["system"] == "be brief"
    assert body["messages"] == [{"role": "user", "content": "write 2"}]  # system is not a message here
    assert body["temperature"] == 1.0  # Anthropic's range ends at 1
    assert body["tools"] == [{"name": "record_answer", "description": "Record the answer.", "input_schema": SCHEMA}]
    assert body["tool_choice"] == {"type": "tool", "name": "record_answer"}
    assert json.loads(response.text) == EXPECTED_TEXT
    assert (response.input_tokens, response.output_tokens, response.finish) == (812, 96, "stop")


def test_anthropic_max_tokens_is_a_length_finish(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    transport, _ = recorded("anthropic_messages_max_tokens.json")
    response = complete(AnthropicTeacher(transport=transport))
    assert (response.finish, response.raw_finish) == ("length", "max_tokens")


def test_gemini_key_goes_in_a_header_never_in_the_url(monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.setenv("GOOGLE_API_KEY", "AIza-test-gemini-key")
    transport, seen = recorded("gemini_generate_content.json")
    response = complete(GeminiTeacher(model="gemini-2.0-flash", transport=transport))
    request = seen[0]
    url = str(request.url)
    assert url == "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent"
    assert "AIza" not in url and "key=" not in url
    assert request.headers["x-goog-api-key"] == "AIza-test-gemini-key"
    body = json.loads(request.content)
    assert body["systemInstruction"] == {"parts": [{"text": "be brief"}]}
    assert body["contents"] == [{"role": "user", "parts": [{"text": "write 2"}]}]
    assert body["generationConfig"] == {"temperature": 1.4, "maxOutputTokens": 256, "seed": 7,
                                        "responseMimeType": "application/json", "responseJsonSchema": SCHEMA}
    assert json.loads(response.text) == EXPECTED_TEXT
    assert (response.input_tokens, response.output_tokens, response.finish) == (790, 100, "stop")  # 88 + 12 thoughts


@pytest.mark.parametrize("fixture, raw", [("gemini_safety_blocked.json", "SAFETY"),
                                          ("gemini_prompt_blocked.json", "SAFETY")])
def test_gemini_blocked_answers_are_content_filter(monkeypatch, fixture, raw):
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-test")
    transport, _ = recorded(fixture)
    response = complete(GeminiTeacher(transport=transport))
    assert (response.finish, response.raw_finish, response.text) == ("content_filter", raw, "")


@pytest.mark.parametrize("cls, variable", [(OpenAITeacher, "OPENAI_API_KEY"),
                                           (AnthropicTeacher, "ANTHROPIC_API_KEY"),
                                           (GeminiTeacher, "GEMINI_API_KEY or GOOGLE_API_KEY")])
def test_a_missing_key_names_the_variable(monkeypatch, cls, variable):
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(TeacherError, match=variable):
        cls()


def test_a_loopback_openai_server_needs_no_key_but_a_remote_one_does(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    transport, seen = recorded("openai_chat_completion.json")
    complete(OpenAITeacher(model="local", base_url="http://127.0.0.1:8080/v1/", transport=transport))
    assert str(seen[0].url) == "http://127.0.0.1:8080/v1/chat/completions"
    assert "authorization" not in seen[0].headers
    with pytest.raises(TeacherError, match="OPENAI_API_KEY"):
        OpenAITeacher(base_url="https://api.together.xyz/v1")
    monkeypatch.setenv("TOGETHER_API_KEY", "tg-key")
    assert OpenAITeacher(base_url="https://api.together.xyz/v1", key_env="TOGETHER_API_KEY").secrets == ("tg-key",)


def test_openai_falls_back_to_json_object_once_when_a_server_refuses_json_schema(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    formats: list[str | None] = []

    async def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        kind = (body.get("response_format") or {}).get("type")
        formats.append(kind)
        await asyncio.sleep(0.01)  # both requests are in flight before either is answered
        if kind == "json_schema":  # what llama-cpp-python's server answers
            return httpx.Response(500, json={"error": {"message": "response_format.type: Input should be "
                                                                  "'text' or 'json_object'"}})
        assert body["response_format"]["schema"] == SCHEMA
        return httpx.Response(200, json=json.loads((FIXTURES / "openai_chat_completion.json").read_text()))

    teacher = OpenAITeacher(model="local", base_url="http://localhost:8080/v1", transport=httpx.MockTransport(handle))

    async def two_at_once():
        try:
            return await asyncio.gather(teacher.complete(REQUEST), teacher.complete(REQUEST))
        finally:
            await teacher.aclose()

    answers = asyncio.run(two_at_once())
    assert [a.finish for a in answers] == ["stop", "stop"]
    # Both refused together, yet the format stepped down once (not past json_object to none).
    assert teacher.schema_format == "json_object"
    assert formats == ["json_schema", "json_schema", "json_object", "json_object"]
