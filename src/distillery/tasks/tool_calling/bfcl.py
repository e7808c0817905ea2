"""BFCL-compatible scoring: would the Berkeley Function Calling Leaderboard accept these calls?

Written by us from BFCL's published AST-checker rules, so that a number measured here reads
like a leaderboard number:
- the function name must match exactly, and the number of calls must be the expected one;
- every required parameter is given; no parameter outside the schema or the possible answer;
- a value has the declared type (an int is accepted for a float, a tuple for a list), or the
  type of the possible answer (the answer then names a variable and is compared as written);
- strings are compared in BFCL's normal form (lowercase, without spaces and `,./-_*^`);
- a possible answer is a list of accepted values, `""` among them marking an optional
  parameter that may be left out; lists, dicts and lists of dicts are compared element-wise;
- parallel calls are matched without order (greedily, as BFCL does, so scores agree);
- irrelevance: right when no call is made (an output that is not calls counts as none).

Function docs are BFCL's (`"type": "dict"`, "float", "tuple"...) or JSON schema; calls are
distillery's `[{"name", "arguments"}]`; a possible answer is BFCL's `[{name: {param: [values]}}]`.
A reason starts with one of CODES (`wrong_value: unit: 'cm2' not in [...]`), so failures can
be counted by kind.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

# The Python type a declared type asks for. BFCL checks "any" as a string.
_TYPES: dict[str, type] = {
    "string": str, "str": str, "any": str,
    "integer": int, "int": int,
    "float": float, "number": float, "double": float,
    "boolean": bool, "bool": bool,
    "array": list, "list": list, "tuple": list,
    "dict": dict, "object": dict,
}
_STRIPPED = re.compile(r"[ ,./\-_*^]")
CODES = ("spurious_call", "not_calls", "wrong_count", "no_match", "wrong_function", "missing_required",
         "unexpected_parameter", "wrong_type", "wrong_value", "missing_parameter")


def standardize(text: str) -> str:
    """BFCL's normal form of a string: "April 1, 2024" and "april 1 2024" compare equal."""
    return _STRIPPED.sub("", text).lower().replace("'", '"')


def is_irrelevance(category: str) -> bool:
    return "irrelevance" in category


def check(category: str, functions: list[dict], calls: list[dict] | None,
          answers: list[dict]) -> str | None:
    """None when BFCL would score `calls` right for one question, else the reason.

    `category` is BFCL's (simple_python, multiple, parallel, parallel_multiple, irrelevance...);
    `calls` is None when the model's output was not a list of calls at all.
    """
    if is_irrelevance(category):
        return f"spurious_call: called {calls[0].get('name')!r} where no call was expected" if calls else None
    if calls is None:
        return "not_calls: the output is not a list of calls"
    if len(calls) != len(answers):
        return f"wrong_count: {len(calls)} calls, expected {len(answers)}"
    docs = {f.get("name"): f for f in functions}
    if "parallel" not in category:  # simple and multiple: the one call against the one answer
        return check_call(docs, calls[0], answers[0])
    matched: set[int] = set()
    for i, answer in enumerate(answers):
        # Each answer takes the first free call it accepts, in the model's order.
        free = [j for j in range(len(calls)) if j not in matched]
        hit = next((j for j in free if check_call(docs, calls[j], answer) is None), None)
        if hit is None:
            return f"no_match: no call matches expected call {i + 1} ({next(iter(answer))})"
        matched.add(hit)
    return None


def check_call(docs: dict[str, dict], call: dict, answer: dict) -> str | None:
    """None when `call` is accepted by one possible answer `{name: {param: [values]}}`."""
    name, expected = next(iter(answer.items()))
    if call.get("name") != name:
        return f"wrong_function: {call.get('name')!r}, expected {name!r}"
    doc = docs.get(name)
    if doc is None:
        return f"wrong_function: {name!r} is not among the offered functions"
    schema = doc.get("parameters") or {}
    declared = schema.get("properties") or {}
    arguments = call.get("arguments") or {}
    for param in schema.get("required") or []:
        if param not in arguments:
            return f"missing_required: {param!r}"
    for param, value in arguments.items():
        if param not in declared or param not in expected:
            return f"unexpected_parameter: {param!r}"
        problem = _check_value(value, declared[param], expected[param])
        if problem:
            code, _, why = problem.partition(": ")
            return f"{code}: {param}: {why}"
    for param, options in expected.items():
        if param not in arguments and "" not in options:
            return f"missing_parameter: {param!r} (the answer does not mark it optional)"
    return None


def _check_value(value: Any, schema: dict, options: list) -> str | None:
    kind = _TYPES.get(str(schema.get("type", "any")).lower())
    items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
    item_kind = _TYPES.get(str(items.get("type", "any")).lower()) if kind is list else None
    if isinstance(value, tuple):
        value = list(value)
    if kind is float and type(value) is int:
        value = float(value)  # Python promotes an int where a float is expected
    answer_kind = _answer_type(options)
    # An answer of another type than the declared one names a variable ("x" for an integer).
    variable = answer_kind is not None and answer_kind is not kind
    if kind is not None and type(value) is kind and not _items_fit(value, item_kind, options):
        return f"wrong_type: elements of {value!r} are not all {items.get('type')}"
    if kind is not None and type(value) is not kind:
        if type(value) is not answer_kind:
            return f"wrong_type: expected {schema.get('type')}, got {type(value).__name__} {value!r}"
        variable = True
    if not variable:
        if kind is dict:
            return None if _dict_fits(value, options) else f"wrong_value: {value!r} matches no possible answer"
        if kind is list and item_kind is dict:
            return None if _dict_list_fits(value, options) else f"wrong_value: {value!r} matches no possible answer"
        if kind is str:
            accepted = [standardize(o) for o in options if isinstance(o, str)]
            return None if standardize(value) in accepted else f"wrong_value: {value!r} not in {options}"
        if kind is list:
            accepted = [_standard_list(o) for o in options]
            return None if _standard_list(value) in accepted else f"wrong_value: {value!r} not in {options}"
    return None if value in options else f"wrong_value: {value!r} not in {options}"


def _answer_type(options: list) -> type | None:
    # The first value that is not the optional marker decides.
    return next((type(o) for o in options if o != ""), None)


def _items_fit(value: Any, item_kind: type | None, options: list) -> bool:
    """A list's elements have the item type (or that of the answer's elements), one level deep."""
    if item_kind is None:
        return True
    for option in options:
        if not isinstance(option, list):
            return True  # BFCL only checks elements against list-valued answers
        element_kind = _answer_type(option)
        if all(type(v) is item_kind or type(v) is element_kind for v in value):
            return True
    return False


def _standard_list(value: Any) -> Any:
    # BFCL walks a string answer character by character, so the optional marker "" reads as
    # an empty list; anything else that is not a list stays itself and matches no list.
    if isinstance(value, str):
        value = list(value)
    if not isinstance(value, list):
        return value
    return [standardize(v) if isinstance(v, str) else v for v in value]


def _dict_fits(value: dict, options: list) -> bool:
    return any(option != "" and _one_dict_fits(value, option) for option in options)


def _one_dict_fits(value: dict, option: dict) -> bool:
    for key, item in value.items():
        if key not in option:
            return False
        accepted = [standardize(o) if isinstance(o, str) else o for o in option[key]]
        if (standardize(item) if isinstance(item, str) else item) not in accepted:
            return False
    return all(key in value or "" in values for key, values in option.items())


def _dict_list_fits(value: list, options: list) -> bool:
    # The optional marker "" has length 0 in BFCL's check, so it accepts an empty list.
    return any(isinstance(option, (list, str)) and len(option) == len(value)
               and all(isinstance(o, dict) and isinstance(v, dict) and _one_dict_fits(v, o)
                       for v, o in zip(value, option))
               for option in options)


def names_right(calls: list[dict] | None, answers: list[dict]) -> bool:
    """Tool-name accuracy for one question: the same multiset of function names (none for none)."""
    if not answers:
        return not calls
    return calls is not None and Counter(c.get("name") for c in calls) == Counter(
        next(iter(a)) for a in answers)


def first_answer(answers: list[dict]) -> list[dict]:
    """One gold call list from the possible answers: each parameter's first accepted value,
    left out when that value is the optional marker `""`."""
    calls = []
    for answer in answers:
        name, params = next(iter(answer.items()))
        calls.append({"name": name, "arguments": {k: v[0] for k, v in params.items() if v and v[0] != ""}})
    return calls
