"""Anthropic's Message Batches API: `POST /v1/messages/batches`, poll, read the results JSONL.

The batch is `{"requests": [{"custom_id", "params"}]}`, `params` being the Messages API body
the live teacher sends (`anthropic.build_body`). Poll `GET /v1/messages/batches/{id}` until
`processing_status` is `ended`, then read `GET /v1/messages/batches/{id}/results`: one
`{custom_id, result: {type: succeeded | errored | canceled | expired, ...}}` a line, in any order.

A Message Batch has no field for a label of ours, so `find` cannot recognise a batch made by a
request whose answer was lost; see `batch.py` for what that means.
"""

from __future__ import annotations

from distillery.teachers.anthropic import VERSION, AnthropicTeacher, build_body, parse_body
from distillery.teachers.base import Request, Response, post_json
from distillery.teachers.batch_wire import BatchStatus, ItemError, get, get_json, item_error, jsonl_objects

# Error types of the Messages API that asking again can cure (the others are the request's fault).
_PASSING = {"api_error", "overloaded_error", "rate_limit_error", "timeout_error"}


class AnthropicBatch:
    max_requests = 100_000  # the documented limits of one Message Batch
    max_bytes = 250 * 2**20  # of 256 MB

    def __init__(self, teacher: AnthropicTeacher):
        self.teacher = teacher

    def _headers(self) -> dict:
        return {"x-api-key": self.teacher._key, "anthropic-version": VERSION}

    def line(self, rid: str, request: Request) -> dict:
        return {"custom_id": rid, "params": build_body(self.teacher.model, request)}

    async def create(self, label: str, lines: list[dict]) -> str:
        t = self.teacher
        batch = await post_json(t._client, f"{t.base_url}/v1/messages/batches", self._headers(), {"requests": lines})
        return batch["id"]

    async def find(self, label: str) -> str | None:
        return None

    async def status(self, batch_id: str) -> BatchStatus:
        t = self.teacher
        data = await get_json(t._client, f"{t.base_url}/v1/messages/batches/{batch_id}", self._headers())
        state = data.get("processing_status", "")
        return BatchStatus(batch_id, state, state == "ended", "", data)

    async def results(self, status: BatchStatus) -> dict[str, Response | ItemError]:
        # The documented results path, not the answer's `results_url`: the key goes to base_url only.
        t = self.teacher
        answer = await get(t._client, f"{t.base_url}/v1/messages/batches/{status.batch_id}/results", self._headers())
        return dict(parse_line(line) for line in jsonl_objects(answer.text))


def parse_line(line: dict) -> tuple[str, Response | ItemError]:
    rid, result = line.get("custom_id", ""), line.get("result") or {}
    kind = result.get("type")
    if kind == "succeeded":
        return rid, parse_body(result.get("message") or {})
    if kind == "errored":
        error = (result.get("error") or {}).get("error") or result.get("error") or {}
        message = f"{error.get('type', 'error')}: {error.get('message', 'no message')}"
        return rid, item_error(None, message, retriable=error.get("type") in _PASSING)
    return rid, item_error(None, f"{kind or 'no result'}: the request was not run", retriable=True)
