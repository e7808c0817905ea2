"""Anthropic's Messages API (`POST /v1/messages`), in its documented wire format.

Structured output is a forced tool: the answer's JSON schema becomes the `input_schema` of
one tool the model must call, and the tool call's `input` is the answer.
"""

from __future__ import annotations

import json

from distillery.teachers.base import (
    CONTENT_FILTER,
    LENGTH,
    STOP,
    HTTPTeacher,
    Request,
    Response,
    post_json,
)

DEFAULT_URL = "https://api.anthropic.com"
DEFAULT_MODEL = "claude-3-5-haiku-latest"
VERSION = "2023-06-01"
TOOL = "record_answer"
_FINISH = {"end_turn": STOP, "tool_use": STOP, "stop_sequence": STOP, "max_tokens": LENGTH,
           "refusal": CONTENT_FILTER}


def build_body(model: str, request: Request) -> dict:
    system = "\n\n".join(m["content"] for m in request.messages if m["role"] == "system")
    # Anthropic's temperature stops at 1; ours goes to 2 for the OpenAI-style range.
    body: dict = {"model": model, "max_tokens": request.max_tokens,
                  "temperature": min(request.temperature, 1.0),
                  "messages": [{"role": m["role"], "content": m["content"]}
                               for m in request.messages if m["role"] != "system"]}
    if system:
        body["system"] = system
    if request.json_schema is not None:
        body["tools"] = [{"name": TOOL, "description": "Record the answer.", "input_schema": request.json_schema}]
        body["tool_choice"] = {"type": "tool", "name": TOOL}
    return body


def parse_body(data: dict) -> Response:
    blocks = data.get("content") or []
    tool = next((b for b in blocks if b.get("type") == "tool_use"), None)
    text = json.dumps(tool.get("input"), ensure_ascii=False) if tool else \
        "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
    raw = data.get("stop_reason") or ""
    usage = data.get("usage") or {}
    # Cached prompt tokens are billed as input too (at other rates we do not model).
    inputs = sum(int(usage.get(k) or 0) for k in
                 ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"))
    return Response(text=text, input_tokens=inputs, output_tokens=int(usage.get("output_tokens") or 0),
                    finish=_FINISH.get(raw, raw or STOP), raw_finish=raw)


class AnthropicTeacher(HTTPTeacher):
    name = "anthropic"
    default_model = DEFAULT_MODEL
    default_url = DEFAULT_URL
    key_variables = ("ANTHROPIC_API_KEY",)

    async def complete(self, request: Request) -> Response:
        headers = {"x-api-key": self._key, "anthropic-version": VERSION}
        data = await post_json(self._client, f"{self.base_url}/v1/messages", headers,
                               build_body(self.model, request))
        return parse_body(data)
