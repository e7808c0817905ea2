"""How a tool-calling example is written as text for the student, and read back.

prompt     = <|tools|> one compact signature per offered tool <|user|> utterance <|call|>
             e.g. `send_message(recipient,body,urgent?:bool)`
completion = the calls as compact JSON, arguments in schema order, then <|end|>

Signatures are compact on purpose: every prompt token costs training and decoding time, and
the tool and argument names carry most of the meaning. The offered tools are written in the
example's order (the Mash shuffles them, so position never gives the answer away).
"""

from __future__ import annotations

import json
from typing import Any

from distillery.tasks.tool_calling.schema import Param, Tool
from distillery.tokenizer import CALL, END, PAD, SPECIAL_TOKENS, TOOLS, USER  # noqa: F401 - used by importers

_SHORT_TYPES = {"string": "str", "integer": "int", "number": "num", "boolean": "bool",
                "array": "list", "object": "obj", "any": "any"}


def render_param(param: Param) -> str:
    """`name:type`, `name?:type` when optional; plain strings, the most common type, are just `name`."""
    optional = "" if param.required else "?"
    if param.type == "string" and param.enum is None:
        return f"{param.name}{optional}"
    if param.enum is not None:
        kind = "enum[" + "|".join(str(v) for v in param.enum) + "]"
    elif param.type == "array" and param.items and param.items != "any":
        kind = f"list[{_SHORT_TYPES.get(param.items, param.items)}]"
    else:
        kind = _SHORT_TYPES.get(param.type, param.type)
    return f"{param.name}{optional}:{kind}"


def render_tool(tool: Tool) -> str:
    return f"{tool.name}(" + ",".join(render_param(p) for p in tool.params) + ")"


def render_prompt(utterance: str, tools: list[Tool]) -> str:
    signatures = "\n".join(render_tool(t) for t in tools)
    return f"{TOOLS}{signatures}{USER}{utterance.strip()}{CALL}"


def tools_text(fmt, tools: list[Tool]) -> str:
    """The offered tools as a student's prompt format writes them (PromptFormat.tools)."""
    if fmt.tools == "json":
        return "\n".join(json.dumps(t.to_openai()["function"], ensure_ascii=False) for t in tools)
    return "\n".join(render_tool(t) for t in tools)


def prompt_text(fmt, utterance: str, tools: list[Tool]) -> str:
    """The whole prompt of `utterance` with `tools` on offer, in the student's format."""
    return fmt.framed(utterance, tools_text(fmt, tools))


def prompt_ids(fmt, tokenizer, utterance: str, tools: list[Tool]) -> list[int]:
    return fmt.text_ids(tokenizer, prompt_text(fmt, utterance, tools))


def call_prefix(fmt) -> str:
    """How every answer that makes a call begins: `[{"name":"` (compact) or `[{"name": "`."""
    return fmt.dumps([{"name": ""}])[:-3]


def _ordered_arguments(arguments: dict[str, Any], tool: Tool | None) -> dict[str, Any]:
    # Schema order makes the target deterministic (the student never has to guess an order),
    # and it is the order the tool grammar enforces.
    if tool is None:
        return dict(arguments)
    order = {p.name: i for i, p in enumerate(tool.params)}
    return dict(sorted(arguments.items(), key=lambda kv: order.get(kv[0], len(order))))


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def render_completion(calls: list[dict], tools_by_name: dict[str, Tool], dumps=_compact, end: str = END) -> str:
    """The calls as the student writes them (`dumps` sets the JSON spacing), then the end token."""
    body = [
        {"name": c["name"], "arguments": _ordered_arguments(c.get("arguments", {}), tools_by_name.get(c["name"]))}
        for c in calls
    ]
    return dumps(body) + end


def parse_completion(text: str) -> list[dict] | None:
    """The calls in a generated completion, or None when it is not a list of calls."""
    text = text.split(END, 1)[0].strip()
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return None
    if not isinstance(value, list):
        return None
    calls = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            return None
        arguments = item.get("arguments", {})
        if not isinstance(arguments, dict):
            return None
        calls.append({"name": item["name"], "arguments": arguments})
    return calls
