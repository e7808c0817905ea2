"""A loopback server that speaks the three Batch APIs in their documented wire formats.

OpenAI (`/v1/files` multipart upload, `/v1/batches`, `/v1/files/{id}/content`), Anthropic
(`/v1/messages/batches`, `…/{id}/results`) and Gemini (`/v1beta/models/{m}:batchGenerateContent`,
`/v1beta/batches/{id}`, `/v1beta/batches`). Each request of a batch is answered by `FakeLLM`
as the live API would answer it. A batch stays in progress while `hold` is set (a real batch
takes minutes to hours) and ends at the first look after it is cleared. Every creation is
counted, every submitted request id too: what the kill -9 test checks.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import Counter
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from teacher_fakes import FakeLLM, _schema

PREFIX = {"openai": "/v1", "anthropic": "", "gemini": "/v1beta"}


class _Teacher(FakeLLM):
    """FakeLLM, and for a classification label request (`{"label": enum}`) the first label."""

    def examples(self, body: dict) -> dict:
        label = _schema(self.provider, body).get("properties", {}).get("label")
        return {"label": label["enum"][0]} if label else super().examples(body)


class FakeBatchAPI:
    def __init__(self, provider: str, hold: bool = False, key: str | None = None):
        self.provider, self.hold, self.key = provider, hold, key
        self.llm = _Teacher(provider)
        self.lock = threading.Lock()
        self.ids = itertools.count(1)
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self.created = 0  # batch creations
        self.submitted: Counter = Counter()  # request ids, over every batch
        self.hits: list[tuple[str, str]] = []  # (method, path)
        self.item_errors: dict[str, dict] = {}  # request id -> what to answer instead (once)
        self.fail_batch: str = ""  # the next batch fails whole with this reason
        self.headers: list[dict] = []
        self.no_batch_api = False  # answer 404 on every batch route, as a plain chat server does
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                outer._serve(self, "GET", b"")

            def do_POST(self):  # noqa: N802
                outer._serve(self, "POST", self.rfile.read(int(self.headers.get("Content-Length", 0))))

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{PREFIX[provider]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> FakeBatchAPI:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- HTTP --------------------------------------------------------------------------------
    def _serve(self, handler, method: str, body: bytes) -> None:
        url = urlparse(handler.path)
        path, query = url.path[len(PREFIX[self.provider]):], parse_qs(url.query)
        with self.lock:
            self.hits.append((method, url.path))
            self.headers.append(dict(handler.headers))
            if self.key and not self._authorized(handler.headers):
                return _send(handler, 401, {"error": {"message": "bad key"}})
            if self.no_batch_api:
                return _send(handler, 404, {"error": {"message": f"no route {url.path}"}})
            route = getattr(self, f"_{self.provider}")
            status, answer = route(method, path, query, body, handler.headers)
        _send(handler, status, answer)

    def _authorized(self, headers) -> bool:
        if self.provider == "openai":
            return headers.get("Authorization") == f"Bearer {self.key}"
        if self.provider == "anthropic":
            return headers.get("x-api-key") == self.key and headers.get("anthropic-version") == "2023-06-01"
        return headers.get("x-goog-api-key") == self.key

    def _new_batch(self, rids: list[str], answers: dict[str, object], label: str, model: str) -> dict:
        self.created += 1
        self.submitted.update(rids)
        batch = {"n": next(self.ids), "rids": rids, "answers": answers, "label": label, "model": model,
                 "done": False, "failed": self.fail_batch, "created_at": int(time.time())}
        self.fail_batch = ""
        return batch

    def _finish(self, batch: dict) -> bool:
        if not batch["done"] and not self.hold:
            batch["done"] = True
        return batch["done"]

    def _answer(self, rid: str, body: dict):
        """The live answer for `body`, or the item error scripted for `rid` (used once)."""
        if rid in self.item_errors:
            return self.item_errors.pop(rid)
        try:
            return self.llm.answer(body)
        except KeyError:  # a request without the Mash's answer schema: a plain text answer
            return self.llm.answer(_PLAIN[self.provider])

    # -- OpenAI ------------------------------------------------------------------------------
    def _openai(self, method, path, query, body, headers):
        if method == "POST" and path == "/files":
            form = _multipart(headers["Content-Type"], body)
            assert form["purpose"] == b"batch", form
            file_id = f"file-{next(self.ids)}"
            self.files[file_id] = form["file"]
            return 200, {"id": file_id, "object": "file", "bytes": len(form["file"]), "purpose": "batch",
                         "filename": form["file_name"], "created_at": int(time.time())}
        if method == "POST" and path == "/batches":
            request = json.loads(body)
            assert request["endpoint"] == "/v1/chat/completions" and request["completion_window"] == "24h"
            lines = [json.loads(line) for line in self.files[request["input_file_id"]].decode().splitlines()]
            assert all(line["method"] == "POST" and line["url"] == "/v1/chat/completions" for line in lines)
            batch = self._new_batch([line["custom_id"] for line in lines],
                                    {line["custom_id"]: self._answer(line["custom_id"], line["body"])
                                     for line in lines}, request.get("metadata", {}).get("distillery_batch"),
                                    lines[0]["body"]["model"])
            batch["id"], batch["metadata"] = f"batch_{batch['n']}", request.get("metadata") or {}
            batch["input_file_id"] = request["input_file_id"]
            self.batches[batch["id"]] = batch
            return 200, self._openai_batch(batch)
        if method == "GET" and path == "/batches":
            newest = sorted(self.batches.values(), key=lambda b: -b["n"])
            return 200, {"object": "list", "data": [self._openai_batch(b) for b in newest], "has_more": False}
        if method == "GET" and path.startswith("/batches/"):
            batch = self.batches[path.split("/")[2]]
            self._finish(batch)
            return 200, self._openai_batch(batch)
        if method == "GET" and path.startswith("/files/") and path.endswith("/content"):
            return 200, self.files[path.split("/")[2]]
        return 404, {"error": {"message": f"no route {method} {path}"}}

    def _openai_batch(self, batch: dict) -> dict:
        data = {"id": batch["id"], "object": "batch", "endpoint": "/v1/chat/completions", "errors": None,
                "input_file_id": batch["input_file_id"], "completion_window": "24h", "status": "in_progress",
                "output_file_id": None, "error_file_id": None, "created_at": batch["created_at"],
                "metadata": batch["metadata"], "model": batch["model"],
                "request_counts": {"total": len(batch["rids"]), "completed": 0, "failed": 0}}
        if not batch["done"]:
            return data
        if batch["failed"]:
            return {**data, "status": "failed", "errors": {"object": "list", "data": [
                {"code": "invalid_request", "message": batch["failed"], "param": None, "line": 1}]}}
        if "output_file_id" not in batch:
            out, errors = [], []
            for k, rid in enumerate(batch["rids"]):
                answer = batch["answers"][rid]
                if "expired" in answer:
                    errors.append({"id": f"batch_req_{k}", "custom_id": rid, "response": None,
                                   "error": {"code": "batch_expired", "message": "This request could not be "
                                                                                 "executed before the completion "
                                                                                 "window expired."}})
                elif "error" in answer:
                    errors.append({"id": f"batch_req_{k}", "custom_id": rid, "error": None, "response": {
                        "status_code": answer["status"], "request_id": f"req_{k}", "body": {"error": {
                            "message": answer["error"], "type": "invalid_request_error", "code": None}}}})
                else:
                    out.append({"id": f"batch_req_{k}", "custom_id": rid, "error": None,
                                "response": {"status_code": 200, "request_id": f"req_{k}", "body": answer}})
            for name, lines in (("output_file_id", out), ("error_file_id", errors)):
                file_id = f"file-{next(self.ids)}" if lines else None
                if file_id:
                    self.files[file_id] = "".join(json.dumps(line) + "\n" for line in lines).encode()
                batch[name] = file_id
        return {**data, "status": "completed", "output_file_id": batch["output_file_id"],
                "error_file_id": batch["error_file_id"],
                "request_counts": {"total": len(batch["rids"]), "completed": len(batch["rids"]), "failed": 0}}

    # -- Anthropic ---------------------------------------------------------------------------
    def _anthropic(self, method, path, query, body, headers):
        if method == "POST" and path == "/v1/messages/batches":
            requests = json.loads(body)["requests"]
            batch = self._new_batch([r["custom_id"] for r in requests],
                                    {r["custom_id"]: self._answer(r["custom_id"], r["params"]) for r in requests},
                                    None, requests[0]["params"]["model"])
            batch["id"] = f"msgbatch_{batch['n']:024d}"
            self.batches[batch["id"]] = batch
            return 200, self._anthropic_batch(batch)
        parts = path.split("/")  # ['', 'v1', 'messages', 'batches', id, ('results')]
        if method == "GET" and len(parts) == 5 and path.startswith("/v1/messages/batches/"):
            batch = self.batches[parts[4]]
            self._finish(batch)
            return 200, self._anthropic_batch(batch)
        if method == "GET" and len(parts) == 6 and parts[5] == "results":
            batch = self.batches[parts[4]]
            lines = []
            for rid in reversed(batch["rids"]):  # "not guaranteed to be in the same order as requests"
                answer = batch["answers"][rid]
                if "expired" in answer:
                    result = {"type": "expired"}
                elif "error" in answer:
                    result = {"type": "errored", "error": {"type": "error", "error": {
                        "type": answer.get("type", "invalid_request_error"), "message": answer["error"]}}}
                else:
                    result = {"type": "succeeded", "message": answer}
                lines.append({"custom_id": rid, "result": result})
            return 200, "".join(json.dumps(line) + "\n" for line in lines).encode()
        return 404, {"type": "error", "error": {"type": "not_found_error", "message": f"no route {path}"}}

    def _anthropic_batch(self, batch: dict) -> dict:
        n = len(batch["rids"])
        data = {"id": batch["id"], "type": "message_batch", "processing_status": "in_progress",
                "request_counts": {"processing": n, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0},
                "ended_at": None, "created_at": "2025-01-01T00:00:00Z", "expires_at": "2025-01-02T00:00:00Z",
                "archived_at": None, "cancel_initiated_at": None, "results_url": None}
        if batch["done"]:
            data.update(processing_status="ended", ended_at="2025-01-01T00:10:00Z",
                        request_counts={"processing": 0, "succeeded": n, "errored": 0, "canceled": 0, "expired": 0},
                        results_url=f"https://api.anthropic.com/v1/messages/batches/{batch['id']}/results")
        return data

    # -- Gemini ------------------------------------------------------------------------------
    def _gemini(self, method, path, query, body, headers):
        if method == "POST" and path.endswith(":batchGenerateContent"):
            model = path[len("/models/"):-len(":batchGenerateContent")]
            batch_body = json.loads(body)["batch"]
            requests = batch_body["inputConfig"]["requests"]["requests"]
            batch = self._new_batch([r["metadata"]["key"] for r in requests],
                                    {r["metadata"]["key"]: self._answer(r["metadata"]["key"], r["request"])
                                     for r in requests}, batch_body["displayName"], f"models/{model}")
            batch["id"] = f"batches/{batch['n']}"
            self.batches[batch["id"]] = batch
            return 200, self._gemini_operation(batch)
        if method == "GET" and path == "/batches":
            newest = sorted(self.batches.values(), key=lambda b: -b["n"])
            return 200, {"operations": [self._gemini_operation(b) for b in newest]}
        if method == "GET" and path.startswith("/batches/"):
            batch = self.batches[path[1:]]
            self._finish(batch)
            return 200, self._gemini_operation(batch)
        return 404, {"error": {"code": 404, "message": f"no route {path}", "status": "NOT_FOUND"}}

    def _gemini_operation(self, batch: dict) -> dict:
        meta = {"@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
                "model": batch["model"], "displayName": batch["label"], "createTime": "2025-01-01T00:00:00Z",
                "state": "BATCH_STATE_RUNNING", "name": batch["id"]}
        if not batch["done"]:
            return {"name": batch["id"], "metadata": meta}
        if batch["failed"]:
            return {"name": batch["id"], "metadata": {**meta, "state": "BATCH_STATE_FAILED"}, "done": True,
                    "error": {"code": 3, "message": batch["failed"]}}
        items = []
        for rid in batch["rids"]:
            answer = batch["answers"][rid]
            if "expired" in answer or "error" in answer:
                code = 4 if "expired" in answer else 3
                items.append({"error": {"code": code, "message": answer.get("error", "deadline exceeded")},
                              "metadata": {"key": rid}})
            else:
                items.append({"response": answer, "metadata": {"key": rid}})
        output = {"@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput",
                  "inlinedResponses": {"inlinedResponses": items}}
        return {"name": batch["id"], "metadata": {**meta, "state": "BATCH_STATE_SUCCEEDED", "output": output},
                "done": True, "response": output}


# A request body FakeLLM can answer: a schema for one example with one one-argument tool.
_EXAMPLES = {"type": "object", "properties": {"examples": {"type": "array", "maxItems": 1, "items": {
    "type": "object", "properties": {"calls": {"type": "array", "items": {"type": "object", "properties": {
        "name": {"enum": ["greet"]}, "arguments": {"type": "object", "properties": {"name": {"type": "string"}},
                                                   "required": ["name"]}}}}}}}}}
_PLAIN = {"openai": {"model": "m", "response_format": {"json_schema": {"schema": _EXAMPLES}}},
          "anthropic": {"model": "m", "tools": [{"name": "record_answer", "input_schema": _EXAMPLES}]},
          "gemini": {"generationConfig": {"responseJsonSchema": _EXAMPLES}}}


def _multipart(content_type: str, body: bytes) -> dict:
    """The fields of a multipart/form-data body (the file's bytes under `file`, its name under `file_name`)."""
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    form = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        form[name] = part.get_payload(decode=True)
        if part.get_filename():
            form["file_name"] = part.get_filename()
    return form


def _send(handler: BaseHTTPRequestHandler, status: int, data) -> None:
    payload = data if isinstance(data, bytes) else json.dumps(data).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/octet-stream" if isinstance(data, bytes) else "application/json")
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload)
