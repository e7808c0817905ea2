"""A fake LLM teacher for tests: answers in each provider's documented wire format.

It reads the answer schema out of the request (OpenAI `response_format`, Anthropic's forced
tool, Gemini's `responseJsonSchema`) and writes valid, distinct examples for the shown tools,
so a whole Mash can be made in-process through any provider. Also a tiny loopback HTTP
server for tests that need a real socket (retries, subprocesses).
"""

from __future__ import annotations

import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


def _schema(provider: str, body: dict) -> dict:
    if provider == "openai":
        return body["response_format"]["json_schema"]["schema"]
    if provider == "anthropic":
        return body["tools"][0]["input_schema"]
    return body["generationConfig"]["responseJsonSchema"]


def _value(schema: dict, k: int):
    if "enum" in schema:
        return schema["enum"][k % len(schema["enum"])]
    kind = schema.get("type", "string")
    return {"string": f"value {k}", "integer": k, "number": k + 0.5, "boolean": k % 2 == 0,
            "array": [], "object": {}}[kind]


class FakeLLM:
    """Makes `n` examples per request (the schema's maxItems), numbered so none repeats."""

    def __init__(self, provider: str, finish: str = "stop"):
        self.provider, self.finish = provider, finish
        self.counter = itertools.count()
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.urls: list[str] = []

    def examples(self, body: dict) -> dict:
        schema = _schema(self.provider, body)["properties"]["examples"]
        calls = schema["items"]["properties"]["calls"]["items"]
        tools = calls.get("anyOf", [calls])
        out = []
        for _ in range(schema["maxItems"]):
            k = next(self.counter)
            tool = tools[k % len(tools)]
            name = tool["properties"]["name"]["enum"][0]
            params = tool["properties"]["arguments"]
            arguments = {p: _value(params["properties"][p], k) for p in params.get("required", [])}
            if k % 7 == 3:
                out.append({"utterance": f"just saying hello, number {k}", "calls": []})
            else:
                out.append({"utterance": f"please do {name.replace('_', ' ')} number {k}",
                            "calls": [{"name": name, "arguments": arguments}]})
        return {"examples": out}

    def answer(self, body: dict) -> dict:
        """The provider's response body for one request body."""
        answer = self.examples(body)
        text = json.dumps(answer)
        if self.provider == "openai":
            reason = {"stop": "stop", "length": "length", "filter": "content_filter"}[self.finish]
            return {"id": "chatcmpl-x", "object": "chat.completion", "model": body["model"],
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                 "finish_reason": reason}],
                    "usage": {"prompt_tokens": 500, "completion_tokens": 100, "total_tokens": 600}}
        if self.provider == "anthropic":
            reason = {"stop": "tool_use", "length": "max_tokens", "filter": "refusal"}[self.finish]
            return {"id": "msg_x", "type": "message", "role": "assistant", "model": body["model"],
                    "content": [{"type": "tool_use", "id": "toolu_x", "name": body["tools"][0]["name"],
                                 "input": answer}],
                    "stop_reason": reason, "stop_sequence": None,
                    "usage": {"input_tokens": 500, "output_tokens": 100}}
        reason = {"stop": "STOP", "length": "MAX_TOKENS", "filter": "SAFETY"}[self.finish]
        return {"candidates": [{"content": {"parts": [{"text": text}], "role": "model"},
                                "finishReason": reason, "index": 0}],
                "usageMetadata": {"promptTokenCount": 500, "candidatesTokenCount": 100, "totalTokenCount": 600}}

    def handler(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        self.headers.append(dict(request.headers))
        self.urls.append(str(request.url))
        return httpx.Response(200, json=self.answer(body))

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1; `respond(handler, body)` writes each answer."""

    def __init__(self, respond):
        outer = self
        self.hits: list[dict] = []
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with outer.lock:
                    outer.hits.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    count = len(outer.hits)
                respond(self, body, count)

            def log_message(self, *args):  # keep test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> LoopbackServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def send_json(handler: BaseHTTPRequestHandler, status: int, data: dict, headers: dict | None = None) -> None:
    payload = json.dumps(data).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(payload)))
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.end_headers()
    handler.wfile.write(payload)
