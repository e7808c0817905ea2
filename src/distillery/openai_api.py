"""The OpenAI chat-completions wire format, as far as a tool-calling student speaks it.

Requests are validated with pydantic (unknown OpenAI fields are accepted and ignored, as
sampling options are: decoding is greedy); answers and errors are built as the OpenAI API
writes them, so the official clients read them unchanged.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

from distillery.errors import DistilleryError


class ApiError(Exception):
    """An answer with an OpenAI-style error object: {"error": {"message", "type", "param", "code"}}."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code

    def body(self) -> dict:
        return error_body(self.message, self.type, self.param, self.code)


def error_body(message: str, type: str, param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


class FunctionName(BaseModel):
    name: str


class NamedToolChoice(BaseModel):
    type: Literal["function"]
    function: FunctionName


class ChatRequest(BaseModel):
    """The fields of POST /v1/chat/completions that change what is answered."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=256)
    # Checked further by last_user_message (below): the answer is to the last user message.
    messages: list[dict[str, Any]] = Field(min_length=1)
    tools: list[Any] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: StrictBool | None = None
    max_tokens: StrictInt | None = Field(default=None, ge=1)
    max_completion_tokens: StrictInt | None = Field(default=None, ge=1)
    n: StrictInt | None = None
    stream: StrictBool | None = None

    @field_validator("n")
    @classmethod
    def _one_choice(cls, n: int | None) -> int | None:
        # Greedy decoding has one answer; n copies of it would only cost compute.
        if n is not None and n != 1:
            raise ValueError("only n=1 is supported: decoding is greedy, so every choice would be the same")
        return n

    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def usage_in_stream(self) -> bool:
        """`stream_options: {"include_usage": true}`: a last chunk carries the usage."""
        options = (self.model_extra or {}).get("stream_options")
        return isinstance(options, dict) and options.get("include_usage") is True


def validation_error(errors: list[dict]) -> ApiError:
    """The first pydantic error as an OpenAI 400: the field path as `param`."""
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    # Field names and list indexes; pydantic's union-branch tags ("literal['none',...]") say nothing to a client.
    loc = [str(part) for part in first.get("loc", ()) if part != "body" and re.fullmatch(r"\w+", str(part))]
    param = ".".join(loc) or None
    message = first.get("msg", "invalid request").removeprefix("Value error, ")
    if first.get("type") == "json_invalid":
        message = "the body is not valid JSON. Fix: send a JSON object with model and messages"
    elif first.get("type") == "model_attributes_type":
        message = "the body must be a JSON object with model and messages"
    return ApiError(400, f"{param}: {message}" if param else message, param=param, code=first.get("type"))


def _call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


def chat_completion(*, model: str, calls: list[dict], finish_reason: str, prompt_tokens: int,
                    completion_tokens: int, fingerprint: str, content: str = "") -> dict:
    """The answer: tool calls (`finish_reason: "tool_calls"`), or an assistant message with
    `content` (empty for "no call"; another task's JSON answer)."""
    message: dict[str, Any] = {"role": "assistant", "content": None if calls else content, "refusal": None}
    if calls:
        message["tool_calls"] = [
            {"id": _call_id(), "type": "function",
             "function": {"name": c["name"], "arguments": json.dumps(c["arguments"], ensure_ascii=False)}}
            for c in calls]
    return {
        "id": "chatcmpl-" + uuid.uuid4().hex,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": fingerprint,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


STREAM_PIECE = 24  # characters of arguments or content a chunk: clients must assemble pieces


def completion_chunks(completion: dict, *, usage: bool = False) -> list[dict]:
    """A chat.completion as the `chat.completion.chunk` objects of `stream: true`, in order: the
    role, the content or each tool call (id and name first, then its arguments in pieces), the
    finish reason, and with `usage` a last chunk with no choices and the token counts. The
    official clients assemble them into the same message."""
    head = {k: completion[k] for k in ("id", "created", "model", "system_fingerprint")}
    choice, message = completion["choices"][0], completion["choices"][0]["message"]

    def chunk(delta: dict, finish: str | None = None) -> dict:
        return {**head, "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}

    def pieces(text: str) -> list[str]:
        return [text[i:i + STREAM_PIECE] for i in range(0, len(text), STREAM_PIECE)] or [""]

    chunks = [chunk({"role": "assistant", "content": "" if message.get("content") is not None else None})]
    if message.get("content"):
        chunks += [chunk({"content": piece}) for piece in pieces(message["content"])]
    for i, call in enumerate(message.get("tool_calls") or []):
        chunks.append(chunk({"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                             "function": {"name": call["function"]["name"], "arguments": ""}}]}))
        chunks += [chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
                   for piece in pieces(call["function"]["arguments"])]
    chunks.append(chunk({}, choice["finish_reason"]))
    if usage:
        chunks.append({**head, "object": "chat.completion.chunk", "choices": [], "usage": completion["usage"]})
    return chunks


def model_card(name: str, created: int, **extra: Any) -> dict:
    return {"id": name, "object": "model", "created": created, "owned_by": "distillery", **extra}


def last_user_message(messages: object, where: str) -> str:
    """The text of the last user message in OpenAI chat `messages` (string or text parts)."""
    if not isinstance(messages, list):
        raise DistilleryError(f'{where}: "messages" must be a list of chat messages. '
                              'Fix: e.g. "messages": [{"role": "user", "content": "..."}].')
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):  # content parts: keep the text ones
                content = " ".join(p.get("text", "") for p in content
                                   if isinstance(p, dict) and p.get("type") == "text")
            if isinstance(content, str) and content.strip():
                return content
            break
    raise DistilleryError(f'{where}: "messages" has no user message with text. '
                          'Fix: end with e.g. {"role": "user", "content": "set a timer for 5 minutes"}.')
