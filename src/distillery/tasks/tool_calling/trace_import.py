"""Your own chat logs as conversations: `teacher: {provider: replay, traces: ...}` with `agent:`.

`teacher.traces` is JSON Lines of OpenAI chat logs, `{"messages": [...], "tools": [...]}` a
line, and every turn is kept: user requests, the assistant's `tool_calls`, the `tool`
results and the final answers (conversation.py reads them). The whole file is checked
before anything is written: a line that is not JSON, or whose messages are not a
conversation (a tool result that answers no call, arguments that are not JSON...) stops
the import with `file:line` and the reason, so a Mash is never made from half a log.

Calls to tools outside the Recipe's catalog, or with arguments it does not accept, are
rejects with their reason, as for every teacher: the log is fine, it is just not this
distillation's. Distractors come from the tools the line offered, where it lists them.
"""

from __future__ import annotations

import json
from pathlib import Path

from distillery.errors import TeacherError
from distillery.tasks.tool_calling.conversation import ConversationError, read_messages

MAX_REPORTED = 10  # bad lines named in one error


def _conversation(line: str) -> tuple[dict, list[str]]:
    """(normalized messages' candidate, offered tool names) of one log line; ConversationError if broken."""
    try:
        trace = json.loads(line)
    except ValueError as exc:
        raise ConversationError(f"not JSON ({exc})") from None
    if not isinstance(trace, dict):
        raise ConversationError("not a JSON object with `messages`")
    if "expected" in trace:
        raise ConversationError("`expected` grades single requests, not conversations; remove it (or remove "
                                "`agent:` to import single requests)")
    messages = read_messages(trace.get("messages"))
    tools = trace.get("tools") or []
    if not isinstance(tools, list):
        raise ConversationError("`tools` is not a list")
    offered = [t.get("function", t).get("name") for t in tools if isinstance(t, dict)]
    return {"utterance": messages[0]["content"], "messages": messages}, [n for n in offered if isinstance(n, str)]


class TraceImport:
    """Conversations from a chat-log file, in file order; `candidate` returns None past the end."""

    name = "replay"

    def __init__(self, path: Path):
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise TeacherError(f"{path}: cannot read the traces ({err}). Fix: point `teacher.traces` at a "
                               "readable UTF-8 JSON Lines file.") from None
        self.found, problems = [], []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                candidate, offered = _conversation(line)
            except ConversationError as why:
                problems.append(f"{path}:{number}: {why}")
                continue
            self.found.append({**candidate, "pool": offered, "teacher": {"provider": "replay", "line": number}})
        if problems:
            more = f"\n  ... and {len(problems) - MAX_REPORTED} more" if len(problems) > MAX_REPORTED else ""
            raise TeacherError(f"{len(problems)} line(s) of the traces are not chat logs; nothing was imported:\n  "
                               + "\n  ".join(problems[:MAX_REPORTED]) + more
                               + '\nFix: one {"messages": [...], "tools": [...]} a line, OpenAI chat format.')
        if not self.found:
            raise TeacherError(f"{path}: no conversations in the file. Fix: one chat log a line.")

    def candidate(self, index: int) -> dict | None:
        return self.found[index] if index < len(self.found) else None
