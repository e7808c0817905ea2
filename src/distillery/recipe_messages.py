"""Recipe problems in words: pydantic's errors turned into one line each, with the fix."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel

_TYPE_WORDS = {
    "int_type": "a whole number", "int_parsing": "a whole number", "int_from_float": "a whole number",
    "float_type": "a number", "float_parsing": "a number", "bool_number": "a number", "bool_type": "true or false",
    "bool_parsing": "true or false", "string_type": "text", "list_type": "a list",
    "dict_type": "a mapping of `key: value` lines",
}
# Fix examples for fields whose default is missing or null.
_EXAMPLES = {
    "name": "needle", "tools": "tools.json", "teacher.model": "gpt-4o-mini", "teacher.base_url":
    "http://localhost:8000/v1", "teacher.budget_usd": "5.0", "teacher.traces": "traces.jsonl",
    "teacher.price": "{input: 0.15, output: 0.60}", "teacher.price.input": "0.15", "teacher.price.output": "0.60",
    "teacher.api_key_env": "TOGETHER_API_KEY",
    "student.base": "./SmolLM2-135M-Instruct", "still.threads": "4", "still.micro_batch": "4",
    "tasting.held_out": "100",
    "bottling.quantize": "int8", "bottling.formats": "[onnx, gguf]", "judge.kind": "exact",
}


def explain(error: dict) -> list[tuple[str, str]]:
    """One pydantic error as (dotted path, message) problems."""
    loc, kind, value, ctx = error["loc"], error["type"], error.get("input"), error.get("ctx") or {}
    path = _path(loc)
    if kind == "recipe_checks":
        return [(_path((*loc, field)) if field else path, message) for field, message in ctx["problems"]]
    if kind == "extra_forbidden":
        allowed = list(_model_at(loc[:-1]).model_fields)
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
        hint = f"Did you mean `{close[0]}`?" if close else f"Allowed keys here: {', '.join(allowed)}."
        return [(path, f"unknown key. {hint}")]
    if kind == "missing":
        return [(path, f"missing. Fix: add e.g. `{loc[-1]}: {_example(loc)}`.")]
    if kind == "literal_error":
        options = _literal_options(_field_at(loc).annotation)
        close = difflib.get_close_matches(str(value), options, n=1, cutoff=0.6)
        hint = f" Did you mean `{close[0]}`?" if close else ""
        return [(path, f"{show(value)} is not one of: {', '.join(options)}.{hint}")]
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return [(path, f"{show(value)} is not allowed; it must be {_range(_field_at(loc))}. "
                       f"Fix: set e.g. `{_key(loc)}: {_example(loc)}`.")]
    if kind in ("model_type", "model_attributes_type"):
        return [(path, f"{show(value)} is not a mapping. Fix: write `key: value` lines indented under "
                       f"`{_key(loc)}:`, or remove it to use the defaults.")]
    if kind in _TYPE_WORDS:
        fix = f"Fix: set e.g. `{_key(loc)}: {_example(loc)}`."
        return [(path, f"{show(value)} is not {_TYPE_WORDS[kind]}. {fix}")]
    return [(path, f"{show(value)}: {error['msg']}.")]


def _path(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(recipe)"


def _key(loc: tuple) -> str:
    return next((str(part) for part in reversed(loc) if isinstance(part, str)), "")


def _section(annotation: Any) -> type[BaseModel] | None:
    """The section model a field holds, also through `Section | None`."""
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _model_at(loc: tuple) -> type[BaseModel]:
    """The model class that holds the keys found at `loc`."""
    from distillery.recipe import (
        Recipe,  # the root of the tree; imported late, it imports this module
    )

    model: type[BaseModel] = Recipe
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        model = (_section(field.annotation) if field is not None else None) or model
    return model


def _field_at(loc: tuple):
    """The FieldInfo of the key at `loc` (list indexes skipped), or None."""
    keys = [part for part in loc if isinstance(part, str)]
    return _model_at(tuple(keys[:-1])).model_fields.get(keys[-1]) if keys else None


def _literal_options(annotation: Any) -> list[str]:
    if get_origin(annotation) is Literal:
        return [str(option) for option in get_args(annotation)]
    return [option for arg in get_args(annotation) for option in _literal_options(arg)]


def _range(field) -> str:
    """The allowed range of a numeric field in words: "at least 1", "between 0 and 2"."""
    rules = {type(rule).__name__: getattr(rule, type(rule).__name__.lower(), None) for rule in field.metadata}
    if "Ge" in rules and "Le" in rules:
        return f"between {rules['Ge']} and {rules['Le']}"
    words = {"Ge": "at least", "Gt": "greater than", "Le": "at most", "Lt": "less than"}
    return " and ".join(f"{words[name]} {rules[name]}" for name in words if name in rules) or "in range"


def _example(loc: tuple) -> str:
    keys = tuple(part for part in loc if isinstance(part, str))
    dotted = ".".join(keys)
    if dotted in _EXAMPLES:
        return _EXAMPLES[dotted]
    field = _field_at(keys)
    default = field.get_default(call_default_factory=True) if field is not None else None
    return show(default) if default is not None else "..."


def show(value: Any) -> str:
    """A value as the user would have written it in YAML."""
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def report(source: Path | None, problems: list[tuple[str, str]]) -> str:
    lines = sorted(dict.fromkeys(f"{path}: {message}" for path, message in problems))
    noun = "problem" if len(lines) == 1 else "problems"
    return f"{source or 'recipe'} has {len(lines)} {noun}:\n" + "\n".join(f"  {line}" for line in lines)


