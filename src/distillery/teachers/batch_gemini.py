"""Gemini's batch mode: `models/{model}:batchGenerateContent` with inline requests, then poll.

The batch is `{"batch": {"displayName", "inputConfig": {"requests": {"requests": [{"request",
"metadata": {"key"}}]}}}}`, each `request` the body the live teacher sends
(`gemini.build_body`). The answer is a long-running operation named `batches/{id}`; `GET` it
until its `metadata.state` is final (`BATCH_STATE_SUCCEEDED`, `_FAILED`, `_CANCELLED`,
`_EXPIRED`). The answers are inline in the operation, `response.inlinedResponses.inlinedResponses`
(`metadata.output.…` in some versions), each with the `metadata.key` it was sent with, and a
`response` or an `error`. Inline requests are limited to 20 MB a batch, so a larger Mash goes out as several.
"""

from __future__ import annotations

from distillery.teachers.base import Request, Response, post_json
from distillery.teachers.batch_wire import BatchStatus, ItemError, get_json, item_error
from distillery.teachers.gemini import GeminiTeacher, build_body, parse_body

FINAL = {"BATCH_STATE_SUCCEEDED", "BATCH_STATE_FAILED", "BATCH_STATE_CANCELLED", "BATCH_STATE_EXPIRED"}
FIND_PAGES = 5


class GeminiBatch:
    max_requests = 50_000
    max_bytes = 18 * 2**20  # inline requests: 20 MB in all, with room for the envelope

    def __init__(self, teacher: GeminiTeacher):
        self.teacher = teacher

    def _headers(self) -> dict:
        return {"x-goog-api-key": self.teacher._key}

    def line(self, rid: str, request: Request) -> dict:
        return {"request": build_body(request), "metadata": {"key": rid}}

    async def create(self, label: str, lines: list[dict]) -> str:
        t = self.teacher
        body = {"batch": {"displayName": f"distillery-{label}", "inputConfig": {"requests": {"requests": lines}}}}
        operation = await post_json(t._client, f"{t.base_url}/models/{t.model}:batchGenerateContent",
                                    self._headers(), body)
        return operation["name"]

    async def find(self, label: str) -> str | None:
        t, params = self.teacher, {"pageSize": 100}
        for _ in range(FIND_PAGES):
            page = await get_json(t._client, f"{t.base_url}/batches", self._headers(), params)
            for operation in page.get("operations") or []:
                if (operation.get("metadata") or {}).get("displayName") == f"distillery-{label}":
                    return operation["name"]
            if not page.get("nextPageToken"):
                return None
            params = {"pageSize": 100, "pageToken": page["nextPageToken"]}
        return None

    async def status(self, batch_id: str) -> BatchStatus:
        t = self.teacher
        data = await get_json(t._client, f"{t.base_url}/{batch_id}", self._headers())
        state = (data.get("metadata") or {}).get("state", "")
        failed = ""
        if state == "BATCH_STATE_FAILED":
            failed = (data.get("error") or {}).get("message") or "the batch failed with no reason given"
        return BatchStatus(batch_id, state, state in FINAL or data.get("done") is True, failed, data)

    async def results(self, status: BatchStatus) -> dict[str, Response | ItemError]:
        return parse_operation(status.data)


def parse_operation(data: dict) -> dict[str, Response | ItemError]:
    """The answers of a finished batch operation, by request key."""
    output = data.get("response") or (data.get("metadata") or {}).get("output") or {}
    items = (output.get("inlinedResponses") or {}).get("inlinedResponses") or []
    out: dict[str, Response | ItemError] = {}
    for item in items:
        rid = (item.get("metadata") or {}).get("key")
        if not rid:
            continue  # an answer we cannot place is not guessed at
        if isinstance(item.get("response"), dict):
            out[rid] = parse_body(item["response"])
        else:
            error = item.get("error") or {}
            code = error.get("code")
            # google.rpc codes that pass: UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, INTERNAL, ABORTED.
            out[rid] = item_error(None, f"{code or 'error'}: {error.get('message', 'no message')}",
                                  retriable=code in (14, 8, 4, 13, 10) or code is None)
    return out
