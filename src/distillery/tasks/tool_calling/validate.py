"""Check tool calls against the catalog, compare them, and nudge generated ones toward it.

Calls here are plain JSON: `[{"name": str, "arguments": {...}}, ...]`; an empty list means
"no tool applies". `check_calls` is what the Mash uses to reject a teacher's answer, so its
reasons start with a stable code (`unknown_tool: ...`) that reject counts are grouped by.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from typing import Any

from distillery.tasks.tool_calling.schema import Param, Tool

REJECT_CODES = (
    "bad_structure",
    "unknown_tool",
    "unknown_argument",
    "missing_required",
    "wrong_type",
    "not_in_enum",
)


def check_calls(calls: object, tools: list[Tool]) -> str | None:
    """None when `calls` is a valid list of calls to the available `tools`, else a short
    reason that starts with one of REJECT_CODES, e.g. "unknown_tool: get_wether"."""
    if not isinstance(calls, list):
        return f"bad_structure: calls must be a list, got {type(calls).__name__}"
    by_name = {tool.name: tool for tool in tools}
    for i, call in enumerate(calls):
        problem = _check_call(i, call, by_name)
        if problem:
            return problem
    return None


def _check_call(i: int, call: object, by_name: dict[str, Tool]) -> str | None:
    if not isinstance(call, dict):
        return f"bad_structure: call {i} is not an object, got {type(call).__name__}"
    name = call.get("name")
    if not isinstance(name, str) or not name:
        return f"bad_structure: call {i} has no name"
    arguments = call.get("arguments", {})
    if not isinstance(arguments, dict):
        return f"bad_structure: call {i} ({name}) arguments is not an object, got {type(arguments).__name__}"
    tool = by_name.get(name)
    if tool is None:
        return f"unknown_tool: {name}"
    for key in arguments:
        if tool.param(key) is None:
            return f"unknown_argument: {name}.{key}"
    for key in tool.required:
        if key not in arguments:
            return f"missing_required: {name}.{key}"
    for key, value in arguments.items():
        problem = _check_value(f"{name}.{key}", value, tool.param(key))
        if problem:
            return problem
    return None


def _check_value(where: str, value: Any, param: Param) -> str | None:
    if not is_type(value, param.type):
        return f"wrong_type: {where} expected {param.type} got {_short(value)}"
    if param.type == "array" and param.items:
        for j, element in enumerate(value):
            if not is_type(element, param.items):
                return f"wrong_type: {where}[{j}] expected {param.items} got {_short(element)}"
    if param.enum is not None and not _in_enum(value, param.enum):
        return f"not_in_enum: {where} {_short(value)} not in {list(param.enum)}"
    return None


def is_type(value: Any, type_: str) -> bool:
    """Whether a JSON value has a parameter type (one of PARAM_TYPES). bool is never a
    number here, though Python says it is an int."""
    if type_ == "any":
        return True
    if type_ == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_ == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if type_ == "boolean":
        return isinstance(value, bool)
    if type_ == "string":
        return isinstance(value, str)
    if type_ == "array":
        return isinstance(value, list)
    if type_ == "object":
        return isinstance(value, dict)
    return False


def _in_enum(value: Any, enum: tuple) -> bool:
    # `True in (1, 2)` is True in Python; the type must match as well as the value.
    return any(value == e and isinstance(value, bool) == isinstance(e, bool) for e in enum)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def normalize_value(value: Any, type_: str | None = None) -> Any:
    """The canonical form of an argument value, for comparing gold and predicted calls:
    strings stripped, case-folded, whitespace collapsed; numbers as floats (3 == 3.0), or
    ints for an integer parameter; bools stay bools; lists element-wise (order kept);
    dicts key-wise. `type_` is the parameter's declared type, None when unknown."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        if type_ == "integer" and float(value).is_integer():
            return int(value)
        return float(value)
    if isinstance(value, str):
        return " ".join(value.split()).casefold()
    if isinstance(value, (list, tuple)):
        return [normalize_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): normalize_value(v) for k, v in value.items()}
    return value


def calls_equal(gold: list[dict], pred: list[dict], tools_by_name: dict[str, Tool]) -> bool:
    """Whether two call lists are the same multiset of calls once values are normalized:
    call order is ignored (parallel calls), argument values compared with normalize_value."""
    return Counter(_call_key(c, tools_by_name) for c in gold) == Counter(
        _call_key(c, tools_by_name) for c in pred
    )


def _call_key(call: dict, tools_by_name: dict[str, Tool]) -> str:
    name = call.get("name")
    arguments = call.get("arguments") or {}
    tool = tools_by_name.get(name) if isinstance(name, str) else None
    normalized = {}
    if isinstance(arguments, dict):
        for key, value in arguments.items():
            param = tool.param(key) if tool else None
            normalized[key] = normalize_value(value, param.type if param else None)
    else:
        normalized = normalize_value(arguments)
    # A canonical JSON string makes the call hashable, so a Counter compares multisets.
    return json.dumps([name, normalized], sort_keys=True, default=repr)


_INT = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def coerce_arguments(arguments: dict, tool: Tool) -> dict:
    """A copy of a generated call's arguments, nudged toward the tool's schema where that
    is unambiguous: "3" -> 3 for an integer, "2.5" -> 2.5 and 3 -> 3.0 for a number,
    "true" -> True for a boolean, 42 -> "42" for a string, an enum value in the wrong case
    -> the enum's spelling, null for an optional parameter -> dropped. Anything else
    (unknown keys included) is left for check_calls to judge."""
    result = {}
    for key, value in arguments.items():
        param = tool.param(key)
        if param is None:
            result[key] = value
            continue
        if value is None and not param.required:
            continue  # JSON null for an optional argument means "not given"
        if param.type == "array" and isinstance(value, list) and param.items:
            value = [_coerce_scalar(v, param.items) for v in value]
        else:
            value = _coerce_scalar(value, param.type)
        if param.enum is not None and isinstance(value, str):
            value = _match_enum(value, param.enum)
        result[key] = value
    return result


def _coerce_scalar(value: Any, type_: str) -> Any:
    if isinstance(value, bool):
        return value  # never turn a bool into 1/0 or "True"
    if type_ == "integer":
        if isinstance(value, str) and _INT.fullmatch(value.strip()):
            return int(value.strip())
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif type_ == "number":
        if isinstance(value, int):
            return float(value)
        if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
            number = float(value.strip())
            return number if math.isfinite(number) else value
    elif type_ == "boolean":
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
    elif type_ == "string":
        if isinstance(value, (int, float)):
            return str(value)
    return value


def _match_enum(value: str, enum: tuple) -> str:
    if value in enum:
        return value
    folded = value.strip().casefold()
    matches = [e for e in enum if isinstance(e, str) and e.casefold() == folded]
    return matches[0] if len(matches) == 1 else value
