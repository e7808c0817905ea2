"""An LLM teacher labels your inputs (`mash.inputs`): the "collect teacher outputs" step.

Each input becomes one request: a system message with the labels and what they mean, the
input as the user message, and a JSON schema that allows only `{"label": <a label>}` (a
server that ignores the schema may still answer a bare label, which is read too). Requests
go through the teacher session (journal, retries, budget), so a resumed run re-asks nothing
it has. Labelling is greedy (temperature 0): the same input gets the same label.

The answers then enter the Mash like a labelled file's: `label` is what the teacher said,
`expected` the truth where the input line carried one.
"""

from __future__ import annotations

import asyncio
import json
import re

from distillery.tasks.classification.data import request_text
from distillery.teachers.base import Request
from distillery.teachers.retry import RetryPolicy
from distillery.teachers.session import open_session


def label_request(example: dict, labels: dict[str, str], multi_label: bool, max_tokens: int) -> Request:
    listed = "\n".join(f"- {name}: {meaning}" for name, meaning in labels.items())
    ask = "every label that applies" if multi_label else "the one label that fits best"
    system = (f"Classify the user's message. Answer with {ask}, as JSON "
              f"{{\"label\": {'[...]' if multi_label else '...'}}}, from these labels:\n{listed}")
    value = {"type": "array", "items": {"enum": list(labels)}} if multi_label else {"enum": list(labels)}
    schema = {"type": "object", "properties": {"label": value}, "required": ["label"], "additionalProperties": False}
    return Request(messages=({"role": "system", "content": system}, {"role": "user", "content": request_text(example)}),
                   temperature=0.0, max_tokens=max_tokens, json_schema=schema)


def read_label(text: str, labels: list[str], multi_label: bool) -> str | list[str] | None:
    """The teacher's label from its answer: `{"label": ...}`, or a bare label; None when neither."""
    try:
        answer = json.loads(text)
        answer = answer.get("label") if isinstance(answer, dict) else answer
    except ValueError:
        answer = text.strip().strip('"').strip()
    by_case = {label.casefold(): label for label in labels}
    if multi_label:
        items = answer if isinstance(answer, list) else re.split(r"\s*,\s*", answer) if isinstance(answer, str) else None
        found = [by_case.get(str(item).strip().casefold()) for item in items or []]
        return None if items is None or None in found else found
    return by_case.get(answer.strip().casefold()) if isinstance(answer, str) else None


def label_inputs(provider, inputs: list[dict], labels: dict[str, str], multi_label: bool, teacher_cfg, journal,
                 *, price=None, policy=None) -> list[dict]:
    """Candidates for the Mash: each input with the teacher's `label` (None when unreadable)."""
    return asyncio.run(_label(provider, inputs, labels, multi_label, teacher_cfg, journal, price, policy))


async def _label(provider, inputs, labels, multi_label, teacher_cfg, journal, price, policy) -> list[dict]:
    session = open_session(provider, journal, teacher_cfg, price=price, policy=policy or RetryPolicy())
    try:
        requests = [label_request(ex, labels, multi_label, teacher_cfg.max_tokens) for ex in inputs]
        records = await asyncio.gather(*(session.ask(i, r) for i, r in enumerate(requests)))
    finally:
        await session.aclose()
    out = []
    for ex, record in zip(inputs, records):
        said = read_label(record["text"], list(labels), multi_label) if record["finish"] == "stop" else None
        teacher = {"provider": record["provider"], "model": record["model"], "journal_id": record["id"]}
        out.append({**ex, "label": said, "teacher": teacher, "said": record["text"][:200]})
    return out
