"""What the three Batch APIs share: a batch's state, a request that failed inside one, HTTP reads.

Each provider's Batch API lives in its own module (`batch_openai.py`, `batch_anthropic.py`,
`batch_gemini.py`) as a small class over the live teacher it extends (same model, endpoint,
key and HTTP client), with the same five members:

- `line(rid, request) -> dict`: one request in the batch's input format (no network);
- `create(label, lines) -> batch id`: submits them as one batch labelled `label` where the API
  has room for a label (OpenAI `metadata`, Gemini `displayName`);
- `find(label) -> batch id | None`: the batch labelled `label`, if the provider made it;
- `status(batch_id) -> BatchStatus`;
- `results(status) -> {rid: Response | ItemError}`: every result of an ended batch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import httpx

from distillery.teachers.base import HTTPStatusFailure, _retry_after
from distillery.teachers.retry import RETRY_STATUS


@dataclass(frozen=True)
class BatchStatus:
    batch_id: str
    state: str  # the provider's own word: in_progress, completed, ended, BATCH_STATE_SUCCEEDED...
    done: bool  # no result will change any more
    failed: str = ""  # why the whole batch was refused (bad input), empty otherwise
    data: dict = field(default_factory=dict, compare=False)  # the provider's batch object, for `results`


@dataclass(frozen=True)
class ItemError:
    """One request of a batch that got no answer: `retriable` ones go into the next batch."""

    message: str
    retriable: bool
    status: int | None = None


def item_error(status: int | None, message: str, retriable: bool | None = None) -> ItemError:
    """An item's failure; by default retriable when its HTTP status would be retried live."""
    if retriable is None:
        retriable = status is None or status in RETRY_STATUS
    return ItemError(message=message[:500], retriable=retriable, status=status)


async def get(client: httpx.AsyncClient, url: str, headers: dict, params: dict | None = None) -> httpx.Response:
    """GET `url`; a non-2xx answer raises HTTPStatusFailure (retry.py sorts it)."""
    answer = await client.get(url, headers=headers, params=params)
    if answer.status_code >= 300:
        raise failure(answer)
    return answer


def failure(answer: httpx.Response) -> HTTPStatusFailure:
    """A non-2xx answer as the exception retry.py sorts (with the server's Retry-After)."""
    return HTTPStatusFailure(answer.status_code, answer.text[:500], _retry_after(answer.headers))


async def get_json(client: httpx.AsyncClient, url: str, headers: dict, params: dict | None = None) -> dict:
    answer = await get(client, url, headers, params)
    try:
        return answer.json()
    except ValueError:
        raise HTTPStatusFailure(502, "the answer is not JSON: " + answer.text[:200], None) from None


def jsonl_objects(text: str) -> list[dict]:
    """The JSON objects of a JSON Lines download; a line that is not one is a server fault."""
    out = []
    for line in text.splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except ValueError:
                raise HTTPStatusFailure(502, "a results line is not JSON: " + line[:200], None) from None
    return out
