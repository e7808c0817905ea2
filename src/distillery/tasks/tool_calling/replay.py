"""The replay teacher: your own traces become the Mash, with no call to anyone.

`teacher.traces` is a JSONL file of OpenAI-style chat logs, one conversation a line:
`{"messages": [...], "tools": [...]}`. The first user message is the utterance and the
assistant message right after it gives the calls (`tool_calls`, or the older
`function_call`; none means "no tool applies"). Later turns lean on earlier context, which
a single-turn student never sees, so they are not used. Distractors come from the tools the
trace itself offered, so a "no call" label stays true.

A line may also say what the right answer was, `"expected"`: a list of calls
`[{"name", "arguments"}]` or an assistant message with `tool_calls` (`[]`: no call). Then the
logged assistant is the teacher being judged: the Still learns only from its right answers,
and the notes set its accuracy against the student's (inherited and compression errors).
"""

from __future__ import annotations

import json
from pathlib import Path

from distillery.errors import TeacherError


def _text(content: object) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}]
        texts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        return "\n".join(texts) if texts else None
    return None


def _calls(message: dict) -> list[dict]:
    raw = message.get("tool_calls") or ([{"function": message["function_call"]}]
                                        if message.get("function_call") else [])
    calls = []
    for i, item in enumerate(raw):
        function = item.get("function") if isinstance(item, dict) else None
        if not isinstance(function, dict):
            raise ValueError(f"bad_structure: tool call {i} has no function")
        arguments = function.get("arguments", {})
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except ValueError:
                raise ValueError(f"bad_structure: the arguments of tool call {i} are not JSON") from None
        calls.append({"name": function.get("name"), "arguments": arguments})
    return calls


def trace_candidate(line: str, number: int, catalog_names: set[str]) -> dict:
    """One trace line as a Mash candidate; ValueError (with a reject reason) when it has none."""
    try:
        trace = json.loads(line)
    except ValueError:
        raise ValueError("bad_trace: the line is not JSON") from None
    messages = trace.get("messages") if isinstance(trace, dict) else None
    if not isinstance(messages, list):
        raise ValueError("bad_trace: no `messages` list")
    turn = next((i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "user"), None)
    if turn is None or turn + 1 >= len(messages) or not isinstance(messages[turn + 1], dict) \
            or messages[turn + 1].get("role") != "assistant":
        raise ValueError("bad_trace: no user message answered by the assistant")
    utterance = _text(messages[turn].get("content"))
    if utterance is None:
        raise ValueError("bad_trace: the user message has no text")
    offered = [t.get("function", t).get("name") for t in trace.get("tools") or [] if isinstance(t, dict)]
    calls = _calls(messages[turn + 1])
    pool = [name for name in offered if name in catalog_names]
    found = {}
    if "expected" in trace:
        found["expected"] = _expected(trace["expected"])
    if calls and not set(pool) - {c["name"] for c in calls}:
        pool = []  # the trace offered nothing else: distractors from the catalog, as the offline teacher does
    return {"utterance": utterance, "calls": calls, "pool": pool, **found,
            "teacher": {"provider": "replay", "line": number}}


def _expected(value: object) -> list[dict]:
    """The right calls of a trace: a list of {"name", "arguments"}, or an assistant message."""
    if isinstance(value, dict):
        return _calls(value)
    if isinstance(value, list) and all(isinstance(c, dict) and isinstance(c.get("name"), str)
                                       and isinstance(c.get("arguments", {}), dict) for c in value):
        return [{"name": c["name"], "arguments": c.get("arguments", {})} for c in value]
    raise ValueError('bad_expected: "expected" is neither a list of {"name", "arguments"} nor an assistant message')


class ReplayTeacher:
    """Candidates from a traces file, in file order; `candidate` returns None past the end."""

    name = "replay"

    def __init__(self, path: Path, catalog_names: set[str]):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise TeacherError(f"{path}: cannot read the traces ({err}). Fix: point `teacher.traces` at a "
                               "readable UTF-8 JSONL file.") from None
        self.path = path
        self.lines = [(number, line) for number, line in enumerate(lines, 1) if line.strip()]
        self.catalog_names = catalog_names

    def candidate(self, index: int) -> dict | None:
        if index >= len(self.lines):
            return None
        number, line = self.lines[index]
        try:
            return trace_candidate(line, number, self.catalog_names)
        except ValueError as why:
            return {"reject": str(why), "teacher": {"provider": "replay", "line": number}}
