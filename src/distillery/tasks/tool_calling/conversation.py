"""A conversation as the student reads and writes it: history in the prompt, one answer a turn.

A tool-calling example is one request (`utterance`, `tools`, `calls`) or a conversation: the
same keys plus `messages`, OpenAI chat messages (user, assistant with `tool_calls` or with
text, `tool` results). `utterance` is then the first user message (the cuts group by it) and
`calls` the first answer's calls. The student learns every assistant turn with the history
before it as context:

    prompt     = the one-turn prompt, with the history where the request was:
                 request <|call|> answer <|end|><|user|> tool results <|call|>   (tiny)
                 the chat template's own turns                                  (pretrained)
    completion = the calls as JSON, or a final answer as a JSON string ("It is 18°C in Oslo."),
                 then the end token

A single request is the one-turn case and renders byte for byte as it always did. Tool
results are written one a line, `name: content`. System messages are left out: the student's
prompt has its own fixed instruction and the offered tools.

Context policy: when a turn's history does not fit the student's context, the oldest
exchanges (an answer and the results after it) are left out, but never the first request,
which says what the task is; the most recent turns are kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from distillery.tasks.tool_calling.prompt import render_completion, tools_text
from distillery.tasks.tool_calling.schema import Tool


class ConversationError(ValueError):
    """OpenAI chat messages that are not a conversation a student can learn or answer."""


@dataclass(frozen=True)
class Turn:
    """One assistant turn of a conversation: what came before it, and what it answered."""

    history: list[dict]  # normalized messages (user, assistant, tool), ending with a user or tool message
    answer: dict  # a normalized assistant message: {"role", "calls"} or {"role", "content"}


# -- reading OpenAI messages ----------------------------------------------------------------------

def _text(content: object, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: the text ones
        texts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if texts:
            return "\n".join(t for t in texts if isinstance(t, str))
    raise ConversationError(f"{where}: the content is not text (a string or text parts)")


def _result(content: object) -> str:
    """A tool result as text: a string as it is, anything else as JSON."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        return "\n".join(str(p.get("text", "")) for p in content)
    return json.dumps(content, ensure_ascii=False)


def _calls(message: dict, where: str) -> tuple[list[dict], list[str]]:
    """The calls of an assistant message and their ids (`tool_calls`, or the older `function_call`)."""
    raw = message.get("tool_calls")
    if raw is None and message.get("function_call") is not None:
        raw = [{"id": None, "function": message["function_call"]}]
    if raw is None:
        return [], []
    if not isinstance(raw, list):
        raise ConversationError(f"{where}: `tool_calls` is not a list")
    calls, ids = [], []
    for i, item in enumerate(raw):
        function = item.get("function") if isinstance(item, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            raise ConversationError(f"{where}: tool call {i} has no function name")
        arguments = function.get("arguments", {})
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except ValueError:
                raise ConversationError(f"{where}: the arguments of tool call {i} are not JSON") from None
        if not isinstance(arguments, dict):
            raise ConversationError(f"{where}: the arguments of tool call {i} are not a JSON object")
        calls.append({"name": function["name"], "arguments": arguments})
        ids.append(item.get("id"))
    return calls, ids


def read_messages(raw: object, *, final: bool = True) -> list[dict]:
    """OpenAI chat messages as normalized messages: {"role": "user", "content"}, {"role":
    "assistant", "calls"} or {"role": "assistant", "content"}, {"role": "tool", "name", "content"}.

    System messages are left out. A tool result names its tool through `tool_call_id` (or the
    older `name`). `final=False` reads a request to answer: it ends with a user or tool message.
    ConversationError says which message is wrong and why.
    """
    if not isinstance(raw, list) or not raw:
        raise ConversationError("`messages` is not a non-empty list")
    found: list[dict] = []
    pending: dict[str, str] = {}  # tool_call_id -> tool name, for the results of the last calls
    last_calls: list[str] = []
    for i, message in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise ConversationError(f"{where} is not a JSON object")
        role = message.get("role")
        if role in ("system", "developer"):
            continue
        if role == "user":
            found.append({"role": "user", "content": _text(message.get("content"), where)})
        elif role == "assistant":
            calls, ids = _calls(message, where)
            if not found:
                raise ConversationError(f"{where}: the conversation starts with the assistant, not a user message")
            if found[-1]["role"] == "assistant":
                raise ConversationError(f"{where}: two assistant messages in a row")
            content = message.get("content")
            text = "" if calls or content is None else _text(content, where)
            if calls or not text.strip():  # calls, or "no call": an empty answer
                found.append({"role": "assistant", "calls": calls})
                pending = {cid: c["name"] for cid, c in zip(ids, calls) if isinstance(cid, str)}
                last_calls = [c["name"] for c in calls]
            else:
                found.append({"role": "assistant", "content": text})
        elif role in ("tool", "function"):
            if not found or found[-1]["role"] == "user" or (found[-1]["role"] == "assistant"
                                                           and not found[-1].get("calls")):
                raise ConversationError(f"{where}: a tool result that answers no tool call")
            cid, name = message.get("tool_call_id"), message.get("name")
            if isinstance(cid, str) and cid in pending:
                name = pending[cid]
            elif cid is not None and pending:
                raise ConversationError(f"{where}: the tool result's `tool_call_id` {cid!r} matches no call")
            elif not isinstance(name, str) or not name:
                if len(set(last_calls)) != 1:
                    raise ConversationError(f"{where}: the tool result names no tool and its call is not clear")
                name = last_calls[0]  # no ids at all: the one tool just called
            found.append({"role": "tool", "name": name, "content": _result(message.get("content"))})
        else:
            raise ConversationError(f"{where}: role {role!r} is not user, assistant, tool or system")
    if not found or found[0]["role"] != "user":
        raise ConversationError("no user message starts the conversation")
    if final and not any(m["role"] == "assistant" for m in found):
        raise ConversationError("no assistant message answers the user")
    if not final and found[-1]["role"] == "assistant":
        raise ConversationError("the conversation ends with the assistant: there is nothing to answer")
    return found


def to_openai(messages: list[dict]) -> list[dict]:
    """Normalized messages back as OpenAI chat messages; the calls of turn t get the ids
    `call_<t>_<n>`, and their results (in the calls' order) answer them."""
    out: list[dict] = []
    ids: list[str] = []
    answered = 0
    for t, m in enumerate(messages):
        if m["role"] == "assistant" and "calls" in m and not m["calls"]:
            out.append({"role": "assistant", "content": ""})  # no call
        elif m["role"] == "assistant" and "calls" in m:
            ids, answered = [f"call_{t}_{n}" for n in range(len(m["calls"]))], 0
            out.append({"role": "assistant", "content": None, "tool_calls": [
                {"id": cid, "type": "function",
                 "function": {"name": c["name"], "arguments": json.dumps(c["arguments"], ensure_ascii=False)}}
                for cid, c in zip(ids, m["calls"])]})
        elif m["role"] == "tool":
            cid = ids[answered] if answered < len(ids) else f"call_{t}"
            answered += 1
            out.append({"role": "tool", "tool_call_id": cid, "name": m["name"], "content": m["content"]})
        else:
            out.append({"role": m["role"], "content": m["content"]})
    return out


def turns(example: dict) -> list[Turn]:
    """Every assistant turn of an example, with its history; a single request is one turn."""
    if "messages" not in example:
        return [Turn([{"role": "user", "content": example["utterance"]}],
                     {"role": "assistant", "calls": example["calls"]})]
    messages = read_messages(example["messages"])
    return [Turn(messages[:i], m) for i, m in enumerate(messages) if m["role"] == "assistant"]


def called_tools(example: dict) -> list[str]:
    """The tools an example calls in any turn, in order of first call."""
    names = [c["name"] for turn in turns(example) for c in turn.answer.get("calls") or ()]
    return list(dict.fromkeys(names))


# -- writing it for the student ---------------------------------------------------------------

def side_text(messages: list[dict]) -> str:
    """What the user side said between two answers: requests as written, tool results one a line."""
    return "\n".join(m["content"].strip() if m["role"] == "user" else f"{m['name']}: {m['content'].strip()}"
                     for m in messages)


def answer_text(fmt, answer: dict, tools_by_name: dict[str, Tool]) -> str:
    """An assistant turn as the student writes it, without the end token: calls as JSON, or the
    final answer as a JSON string."""
    if "calls" in answer:
        return render_completion(answer["calls"], tools_by_name, dumps=fmt.dumps, end="")
    return fmt.dumps(answer["content"])


def segments(fmt, history: list[dict], tools_by_name: dict[str, Tool]) -> list[str]:
    """The history as alternating user-side and assistant texts (PromptFormat.conversation)."""
    parts: list[str] = []
    side: list[dict] = []
    for m in history:
        if m["role"] == "assistant":
            parts += [side_text(side), answer_text(fmt, m, tools_by_name)]
            side = []
        else:
            side.append(m)
    return parts + [side_text(side)]


def source_text(history: list[dict]) -> str:
    """The text a turn's argument values may be copied from: every request and tool result so far."""
    return side_text([m for m in history if m["role"] != "assistant"])


def trimmed(history: list[dict], dropped: int) -> list[dict]:
    """The history without its `dropped` oldest exchanges (an earlier answer and what followed
    it). The first request and the last exchange, the one being answered, always stay."""
    answers = [i for i, m in enumerate(history) if m["role"] == "assistant"]
    dropped = min(dropped, len(answers) - 1)
    if dropped <= 0:
        return history
    return history[:answers[0]] + history[answers[dropped]:]


def droppable(history: list[dict]) -> int:
    """How many old exchanges `trimmed` can leave out of this history."""
    return max(sum(m["role"] == "assistant" for m in history) - 1, 0)


def prompt_text(fmt, history: list[dict], tools: list[Tool], tools_by_name: dict[str, Tool]) -> str:
    """The whole prompt of a turn: the offered tools, then the history."""
    return fmt.conversation(segments(fmt, history, tools_by_name), tools_text(fmt, tools))


def fitted_prompt_ids(fmt, tokenizer, history: list[dict], tools: list[Tool], tools_by_name: dict[str, Tool],
                      room: int) -> tuple[list[int], int]:
    """The turn's prompt ids within `room` tokens, and how many old exchanges were left out for it
    (the context policy); the shortest prompt when even that does not fit."""
    dropped = 0
    while True:
        ids = fmt.text_ids(tokenizer, prompt_text(fmt, trimmed(history, dropped), tools, tools_by_name))
        if len(ids) <= room or dropped >= droppable(history):
            return ids, dropped
        dropped += 1


def parse_answer(text: str) -> tuple[str, list[dict] | str] | None:
    """A generated turn: ("calls", calls), ("text", final answer) or None when it is neither."""
    from distillery.tasks.tool_calling.prompt import END, parse_completion

    calls = parse_completion(text)
    if calls is not None:
        return "calls", calls
    try:
        value = json.loads(text.split(END, 1)[0].strip())
    except ValueError:
        return None
    return ("text", value) if isinstance(value, str) else None
