"""Google's Gemini API, native `models/{model}:generateContent`, in its documented wire format.

The key travels in the `x-goog-api-key` header, never in the URL (URLs end up in logs).
Structured output: `responseMimeType: application/json` with `responseJsonSchema`.
"""

from __future__ import annotations

from distillery.teachers.base import (
    CONTENT_FILTER,
    LENGTH,
    STOP,
    HTTPTeacher,
    Request,
    Response,
    post_json,
)

DEFAULT_URL = "https://generativelanguage.googleapis.com/v1beta"
DEFAULT_MODEL = "gemini-2.0-flash"
_BLOCKED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}


def build_body(request: Request) -> dict:
    system = "\n\n".join(m["content"] for m in request.messages if m["role"] == "system")
    config: dict = {"temperature": request.temperature, "maxOutputTokens": request.max_tokens}
    if request.seed is not None:
        config["seed"] = request.seed
    if request.json_schema is not None:
        config["responseMimeType"] = "application/json"
        config["responseJsonSchema"] = request.json_schema
    body: dict = {"contents": [{"role": "model" if m["role"] == "assistant" else "user",
                                "parts": [{"text": m["content"]}]}
                               for m in request.messages if m["role"] != "system"],
                  "generationConfig": config}
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    return body


def parse_body(data: dict) -> Response:
    usage = data.get("usageMetadata") or {}
    inputs = int(usage.get("promptTokenCount") or 0)
    # Thinking tokens are billed as output.
    outputs = int(usage.get("candidatesTokenCount") or 0) + int(usage.get("thoughtsTokenCount") or 0)
    candidates = data.get("candidates") or []
    if not candidates:  # the prompt itself was blocked
        raw = (data.get("promptFeedback") or {}).get("blockReason") or "NO_CANDIDATE"
        return Response(text="", input_tokens=inputs, output_tokens=outputs, finish=CONTENT_FILTER, raw_finish=raw)
    first = candidates[0]
    parts = (first.get("content") or {}).get("parts") or []
    text = "".join(p.get("text", "") for p in parts if not p.get("thought"))
    raw = first.get("finishReason") or ""
    finish = LENGTH if raw == "MAX_TOKENS" else CONTENT_FILTER if raw in _BLOCKED else \
        STOP if raw in ("STOP", "") else raw.lower()
    return Response(text=text, input_tokens=inputs, output_tokens=outputs, finish=finish, raw_finish=raw)


class GeminiTeacher(HTTPTeacher):
    name = "gemini"
    default_model = DEFAULT_MODEL
    default_url = DEFAULT_URL
    key_variables = ("GEMINI_API_KEY", "GOOGLE_API_KEY")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.model = self.model.removeprefix("models/")

    async def complete(self, request: Request) -> Response:
        url = f"{self.base_url}/models/{self.model}:generateContent"
        data = await post_json(self._client, url, {"x-goog-api-key": self._key}, build_body(request))
        return parse_body(data)
