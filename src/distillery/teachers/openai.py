"""Any OpenAI-compatible chat completions server: OpenAI, vLLM, Ollama, llama.cpp, Together...

The endpoint is data (`teacher.base_url`), not a class. The key comes from OPENAI_API_KEY
(or `teacher.api_key_env`); a server on loopback may run without one.
"""

from __future__ import annotations

import logging

from distillery.teachers.base import (
    CONTENT_FILTER,
    LENGTH,
    STOP,
    HTTPStatusFailure,
    HTTPTeacher,
    Request,
    Response,
    is_loopback,
    post_json,
)

log = logging.getLogger("distillery.teachers")
DEFAULT_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"
_FINISH = {"stop": STOP, "length": LENGTH, "content_filter": CONTENT_FILTER, "tool_calls": STOP}


# Structured output, best first: OpenAI, vLLM, llama-server and Ollama take `json_schema`;
# llama-cpp-python's server only `json_object` with a schema; some servers neither.
FORMATS = ("json_schema", "json_object", "none")


def build_body(model: str, request: Request, schema_format: str = "json_schema") -> dict:
    """The chat completions body; a JSON schema becomes `response_format` (structured output)."""
    body = {"model": model, "messages": list(request.messages), "temperature": request.temperature,
            "max_tokens": request.max_tokens}
    if request.seed is not None:
        body["seed"] = request.seed
    if request.json_schema is not None and schema_format == "json_schema":
        body["response_format"] = {"type": "json_schema", "json_schema": {
            "name": "answer", "schema": request.json_schema, "strict": False}}
    elif request.json_schema is not None and schema_format == "json_object":
        body["response_format"] = {"type": "json_object", "schema": request.json_schema}
    return body


def _refused_format(error: HTTPStatusFailure) -> bool:
    # llama-cpp-python answers an unknown response_format with a 500, others with 400/422.
    return error.status in (400, 422, 500) and ("response_format" in error.body or "json_schema" in error.body)


def parse_body(data: dict) -> Response:
    choice = (data.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    raw = choice.get("finish_reason") or ""
    usage = data.get("usage") or {}
    return Response(text=message.get("content") or "", input_tokens=int(usage.get("prompt_tokens") or 0),
                    output_tokens=int(usage.get("completion_tokens") or 0),
                    finish=_FINISH.get(raw, raw or STOP), raw_finish=raw)


class OpenAITeacher(HTTPTeacher):
    name = "openai"
    default_model = DEFAULT_MODEL
    default_url = DEFAULT_URL
    key_variables = ("OPENAI_API_KEY",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.schema_format = FORMATS[0]

    def key_is_optional(self) -> bool:
        return is_loopback(self.base_url)  # llama.cpp, vLLM, Ollama on this machine need none

    async def complete(self, request: Request) -> Response:
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        while True:
            used = self.schema_format
            body = build_body(self.model, request, used)
            try:
                data = await post_json(self._client, f"{self.base_url}/chat/completions", headers, body)
            except HTTPStatusFailure as error:
                if "response_format" not in body or not _refused_format(error):
                    raise
                if self.schema_format == used:  # requests in parallel learn this together, step once
                    self.schema_format = FORMATS[FORMATS.index(used) + 1]
                    log.info("%s refused response_format %s; using %s", self.base_url, used, self.schema_format)
                continue
            return parse_body(data)
