"""Batch prediction: a JSON Lines file of requests in, one line of calls out per request.

A request line is `{"id", "utterance" or "messages", "tools"}`: `messages` are OpenAI chat
messages, of which the last user message is the request (a Spirit distilled from conversations
answers the next turn of messages that hold calls and their tool results, and a final answer in
text comes as the line's `content`); `tools` are in any catalog format
(OpenAI or BFCL) and, when left out, default to the catalog given on the command line or
the Spirit's own. An answer line is `{"id", "calls": [{"name", "arguments"}], "latency_ms"}`.
Every line is read and checked before the model runs, so a bad line costs no compute.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from distillery.errors import DistilleryError
from distillery.openai_api import last_user_message
from distillery.tasks.tool_calling.predictor import ToolCaller
from distillery.tasks.tool_calling.catalog import parse_tools
from distillery.tasks.tool_calling.conversation import ConversationError, read_messages
from distillery.tasks.tool_calling.schema import Tool

_EXAMPLE = '{"id": "q1", "utterance": "set a timer for 5 minutes", "tools": [...]}'


@dataclass
class Request:
    id: str | int  # as written in the input, echoed in the answer
    utterance: str
    tools: list[Tool] | None  # None: the default catalog
    history: list[dict] | None = None  # a conversation with calls and results before this turn (conversation.py)
    where: str = ""  # file:line, for an error found once the Spirit is known


def read_requests(path: Path) -> list[Request]:
    """Every request in `path`; the first bad line raises a DistilleryError naming file:line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DistilleryError(f"{path}: no such input file. Fix: give a JSON Lines file, one request a line, "
                              f"e.g. {_EXAMPLE}.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DistilleryError(f"{path}: cannot be read ({exc}). Fix: give a readable UTF-8 JSON Lines file.") from None
    requests, seen = [], set()
    for number, line in enumerate(lines, start=1):
        if line.strip():
            request = _parse_line(line, f"{path}:{number}")
            if request.id in seen:
                raise DistilleryError(f"{path}:{number}: id {request.id!r} is used twice. Fix: give every "
                                      "request its own id, so answers can be matched to requests.")
            seen.add(request.id)
            requests.append(request)
    if not requests:
        raise DistilleryError(f"{path}: no requests in the file. Fix: one request a line, e.g. {_EXAMPLE}.")
    return requests


def _parse_line(line: str, where: str) -> Request:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DistilleryError(f"{where}: invalid JSON ({exc.msg} at column {exc.colno}). Fix: one complete "
                              f"JSON object a line, e.g. {_EXAMPLE}.") from None
    if not isinstance(row, dict):
        raise DistilleryError(f"{where}: expected a JSON object, got {type(row).__name__}. Fix: e.g. {_EXAMPLE}.")
    if not isinstance(row.get("id"), (str, int)) or isinstance(row.get("id"), bool):
        raise DistilleryError(f'{where}: "id" is missing or not a string or number. Fix: add e.g. "id": "q1".')
    history = None
    if "utterance" in row:
        utterance = row["utterance"]
        if not isinstance(utterance, str) or not utterance.strip():
            raise DistilleryError(f'{where}: "utterance" must be a non-empty string. Fix: the user\'s request, '
                                  'e.g. "utterance": "set a timer for 5 minutes".')
    elif "messages" in row:
        utterance = last_user_message(row["messages"], where)
        history = _history(row["messages"], where)
    else:
        raise DistilleryError(f'{where}: no "utterance" or "messages". Fix: add the request as "utterance": '
                              '"..." or as OpenAI chat "messages": [{"role": "user", "content": "..."}].')
    tools = None
    if row.get("tools") is not None:
        tools = parse_tools(row["tools"], where=f'{where}, "tools"')
    return Request(id=row["id"], utterance=utterance.strip(), tools=tools, history=history, where=where)


def _history(messages: list, where: str) -> list[dict] | None:
    """The conversation before the turn to answer, when the messages hold calls and results; None
    for a plain request. Messages that end with a result must be a conversation."""
    try:
        history = read_messages(messages, final=False)
    except ConversationError as why:
        last = messages[-1] if messages else None
        if isinstance(last, dict) and last.get("role") in ("tool", "function"):
            raise DistilleryError(f"{where}: messages: {why}. Fix: OpenAI chat messages whose tool results "
                                  "answer the assistant's tool_calls.") from None
        return None
    return history if any(m["role"] == "tool" or m.get("calls") for m in history) else None


CHUNK = 256  # requests prepared (grammars compiled) at once; within a chunk `batch_size` decode together


def predict_all(caller: ToolCaller, requests: list[Request], default_tools: list[Tool],
                on_progress=None, batch_size: int = 16) -> list[dict]:
    """One answer row per request, in the input's order, `batch_size` decoding together
    (ToolCaller.predict_many: the same answers as one by one)."""
    rows = []
    reads_history = getattr(caller, "conversation", False)
    for r in requests:  # checked before any decoding
        if r.history is not None and r.history[-1]["role"] == "tool" and not reads_history:
            raise DistilleryError(f"{r.where}: this Spirit was distilled on single requests and cannot read tool "
                                  "results. Fix: send the request alone, or distill a Spirit from conversations "
                                  "(an `agent:` recipe, docs/agents.md).")
    for first in range(0, len(requests), CHUNK):
        chunk = requests[first:first + CHUNK]
        plain = [r for r in chunk if r.history is None or not reads_history]
        found = dict(zip(map(id, plain), caller.predict_many([(r.utterance, r.tools or default_tools) for r in plain],
                                                             batch_size=batch_size)))
        # A conversation's next turn, one at a time: its history decides its prompt.
        found.update({id(r): caller.predict_turn(r.history, r.tools or default_tools)
                      for r in chunk if id(r) not in found})
        predictions = [found[id(r)] for r in chunk]
        for request, prediction in zip(chunk, predictions):
            row = {"id": request.id, "calls": prediction.calls, "latency_ms": round(prediction.latency_ms, 2)}
            if getattr(prediction, "content", None) is not None:  # a conversation's final answer
                row["content"] = prediction.content
            if prediction.calls is None:  # only without the grammar: say what came out instead
                row["raw_output"] = prediction.text
            rows.append(row)
        if on_progress:
            on_progress(len(rows), len(requests))
    return rows
