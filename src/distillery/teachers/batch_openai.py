"""The OpenAI Batch API: a JSONL file of chat completions requests, one batch, its output files.

Upload the requests (`POST /files`, `purpose=batch`, one `{custom_id, method, url, body}` a
line), create the batch (`POST /batches`, `endpoint=/v1/chat/completions`, 24h window,
`metadata.distillery_batch` = our label), poll `GET /batches/{id}`, then read
`output_file_id` and `error_file_id` (`GET /files/{id}/content`). Any server that speaks this
API works (`teacher.base_url`); one that does not answers 404, and the message says so.
"""

from __future__ import annotations

import json

from distillery.errors import TeacherError
from distillery.teachers.base import Request, Response, post_json
from distillery.teachers.batch_wire import (
    BatchStatus,
    ItemError,
    failure,
    get,
    get_json,
    item_error,
    jsonl_objects,
)
from distillery.teachers.openai import OpenAITeacher, build_body, parse_body

ENDPOINT = "/v1/chat/completions"
LABEL = "distillery_batch"
DONE = {"completed", "failed", "expired", "cancelled"}
FIND_PAGES = 5  # a label is looked for among the newest 500 batches


class OpenAIBatch:
    max_requests = 50_000  # the documented limits of one batch's input file
    max_bytes = 190 * 2**20  # of 200 MB, with room for the multipart frame

    def __init__(self, teacher: OpenAITeacher):
        self.teacher = teacher

    def _headers(self) -> dict:
        key = self.teacher._key
        return {"Authorization": f"Bearer {key}"} if key else {}

    def line(self, rid: str, request: Request) -> dict:
        return {"custom_id": rid, "method": "POST", "url": ENDPOINT,
                "body": build_body(self.teacher.model, request, "json_schema")}

    async def create(self, label: str, lines: list[dict]) -> str:
        t = self.teacher
        payload = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode()
        answer = await t._client.post(f"{t.base_url}/files", headers=self._headers(), data={"purpose": "batch"},
                                      files={"file": (f"distillery-{label}.jsonl", payload, "application/jsonl")})
        if answer.status_code == 404:
            raise TeacherError(f"the openai teacher at {t.base_url} has no Batch API (404 on POST /files). Fix: "
                               "remove `teacher.batch`, or point `teacher.base_url` at a server that speaks "
                               "OpenAI's Batch API (api.openai.com does).")
        if answer.status_code >= 300:
            raise failure(answer)
        file_id = answer.json()["id"]
        batch = await post_json(t._client, f"{t.base_url}/batches", self._headers(), {
            "input_file_id": file_id, "endpoint": ENDPOINT, "completion_window": "24h", "metadata": {LABEL: label}})
        return batch["id"]

    async def find(self, label: str) -> str | None:
        t, params = self.teacher, {"limit": 100}
        for _ in range(FIND_PAGES):
            page = await get_json(t._client, f"{t.base_url}/batches", self._headers(), params)
            for batch in page.get("data") or []:
                if (batch.get("metadata") or {}).get(LABEL) == label:
                    return batch["id"]
            if not page.get("has_more") or not page.get("data"):
                return None
            params = {"limit": 100, "after": page["data"][-1]["id"]}
        return None

    async def status(self, batch_id: str) -> BatchStatus:
        t = self.teacher
        data = await get_json(t._client, f"{t.base_url}/batches/{batch_id}", self._headers())
        state = data.get("status", "")
        failed = ""
        if state == "failed":
            errors = ((data.get("errors") or {}).get("data") or [])[:3]
            failed = "; ".join(f"{e.get('code', '')}: {e.get('message', '')}" + (f" (line {e['line']})" if
                                                                              e.get("line") else "") for e in errors)
            failed = failed or "the batch failed with no reason given"
        return BatchStatus(batch_id, state, state in DONE, failed, data)

    async def results(self, status: BatchStatus) -> dict[str, Response | ItemError]:
        t, out = self.teacher, {}
        for name in ("error_file_id", "output_file_id"):  # an answer wins over an error for one id
            file_id = status.data.get(name)
            if file_id:
                answer = await get(t._client, f"{t.base_url}/files/{file_id}/content", self._headers())
                out.update(parse_line(line) for line in jsonl_objects(answer.text))
        return out


def parse_line(line: dict) -> tuple[str, Response | ItemError]:
    """One line of an output or error file: `{custom_id, response: {status_code, body}, error}`."""
    rid = line.get("custom_id", "")
    response = line.get("response") or {}
    code = response.get("status_code")
    if code == 200 and isinstance(response.get("body"), dict):
        return rid, parse_body(response["body"])
    error = line.get("error") or (response.get("body") or {}).get("error") or {}
    message = f"{error.get('code') or code or 'error'}: {error.get('message') or 'no message'}"
    if code is None:  # batch_expired, batch_cancelled...: never run, never charged
        return rid, item_error(None, message, retriable=True)
    return rid, item_error(int(code), message)
