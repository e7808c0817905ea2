"""Read a tool catalog, in whatever format it was written, into the internal `Tool` form.

Accepted, auto-detected per item:
- OpenAI `tools`: {"type": "function", "function": {"name", "description", "parameters"}}
- a bare function object {"name", "description", "parameters"}; Anthropic's `input_schema`
  is read as `parameters`
- BFCL/Gorilla function docs: "parameters": {"type": "dict", ...}, types such as "float",
  "tuple", "any" (sometimes capitalized), "optional": true, enums written in the description
- a BFCL question line {"id", "question", "function": [...]}: only its functions are read
  (the question and answers are benchmark data and must never leak into a Mash)
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from distillery.errors import CatalogError
from distillery.tasks.tool_calling.schema import PARAM_TYPES, Param, Tool
from distillery.tasks.tool_calling.validate import is_type

# Other spellings seen in real catalogs (JSON schema, Python, BFCL, BFCL's Java/JavaScript sets).
TYPE_ALIASES = {
    "dict": "object",
    "map": "object",
    "hashmap": "object",
    "float": "number",
    "double": "number",
    "int": "integer",
    "long": "integer",
    "bool": "boolean",
    "str": "string",
    "char": "string",
    "list": "array",
    "tuple": "array",
    "arraylist": "array",
}

_QUOTED = r"""(?:'[^'\n]{1,60}'|"[^"\n]{1,60}")"""
_SEP = r"\s*(?:,\s*(?:or\s+|and\s+)?|\s+or\s+|\s*/\s*|\s*\|\s*)"
# A run of two or more quoted values, optionally in [brackets], that ends the phrase: a
# trailing "etc." or "for ..." means the list is not the whole domain, so no match.
_RUN = (
    rf"\[?\s*(?P<run>{_QUOTED}(?:{_SEP}{_QUOTED})+)\s*\]?"
    r"""(?=\s*(?:[.;)]|$|,\s+(?!etc\b|and so on|or other|among others|['"])))"""
)
_ENUM_PATTERNS = [
    re.compile(rf"\bone of\s*:?\s*{_RUN}", re.IGNORECASE),
    re.compile(
        rf"\b(?:allowed|possible|valid|accepted|supported)\s+values\s*(?::|are|is)\s*{_RUN}",
        re.IGNORECASE,
    ),
    re.compile(rf"\b(?:options|choices)\s*(?::|are)\s*{_RUN}", re.IGNORECASE),
    re.compile(rf"\beither\s+(?P<run>{_QUOTED}\s+or\s+{_QUOTED})(?=\s*(?:[.;,)]|$))", re.IGNORECASE),
]


def load_catalog(spec: list | str | Path, base_dir: Path) -> list[Tool]:
    """Read the Recipe's `tools`: an inline list of definitions, or a path (relative to
    `base_dir`) to a .json file (an array or one object) or a .jsonl file."""
    if isinstance(spec, list):
        return parse_tools(spec, where="the inline tool list")
    if not isinstance(spec, (str, Path)):
        raise CatalogError(
            f"tools must be a list of tool definitions or a path to a .json/.jsonl file, "
            f"not {type(spec).__name__}."
        )
    path = Path(spec).expanduser()
    if not path.is_absolute():
        path = Path(base_dir) / path
    if not path.is_file():
        raise CatalogError(
            f"tool catalog {path} does not exist. Fix the path in `tools` "
            f"(a relative path is read from {base_dir})."
        )
    suffix = path.suffix.lower()
    if suffix not in (".json", ".jsonl"):
        raise CatalogError(
            f"tool catalog {path}: expected a .json or .jsonl file, got '{suffix or 'no extension'}'."
        )
    text = path.read_text(encoding="utf-8")
    if suffix == ".jsonl":
        return _parse_labelled(_read_jsonl(text, path), where=str(path))
    return _parse_labelled(_read_json(text, path), where=str(path))


def parse_tools(items: list, where: str) -> list[Tool]:
    """Convert in-memory tool definitions (any accepted format, mixed freely) into `Tool`s.
    `where` names the source in error messages, e.g. "tools.json" or "--tools"."""
    if not isinstance(items, list):
        raise CatalogError(f"{where}: expected a list of tool definitions, got {type(items).__name__}.")
    return _parse_labelled([(f"item {i + 1}", item) for i, item in enumerate(items)], where)


def _read_jsonl(text: str, path: Path) -> list[tuple[str, Any]]:
    items = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append((f"line {lineno}", json.loads(line)))
        except json.JSONDecodeError as e:
            raise CatalogError(
                f"tool catalog {path}, line {lineno}: invalid JSON ({e.msg} at column {e.colno}). "
                f"Each line of a .jsonl catalog must be one complete JSON object."
            ) from None
    return items


def _read_json(text: str, path: Path) -> list[tuple[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        # BFCL ships JSON Lines under a .json name: read it as such when its first line parses.
        first = next((line for line in text.splitlines() if line.strip()), "")
        if _parses(first):
            return _read_jsonl(text, path)
        raise CatalogError(
            f"tool catalog {path}: invalid JSON ({e.msg} at line {e.lineno}, column {e.colno}). "
            f"A .json catalog is one array of tool definitions or one tool object."
        ) from None
    # An OpenAI request body ({"model": ..., "tools": [...]}) is a common thing to point at.
    if isinstance(data, dict) and "name" not in data and isinstance(data.get("tools"), list):
        data = data["tools"]
    if isinstance(data, list):
        return [(f"item {i + 1}", item) for i, item in enumerate(data)]
    return [("item 1", data)]


def _parses(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False


def _parse_labelled(items: list[tuple[str, Any]], where: str) -> list[Tool]:
    """Convert (label, item) pairs; labels ("item 3", "line 7") point at the bad item."""
    tools: dict[str, Tool] = {}
    from_question: set[str] = set()  # names first seen in a BFCL question line
    for label, item in items:
        if isinstance(item, dict) and isinstance(item.get("function"), list):
            # A BFCL question line: many lines share functions, so repeats are expected.
            for j, fn in enumerate(item["function"]):
                tool = _parse_tool(fn, f"{where}, {label}, function {j + 1}")
                if tool.name in tools:
                    if tool.name in from_question:
                        continue
                    raise _duplicate(where, label, tool.name)
                tools[tool.name] = tool
                from_question.add(tool.name)
            continue
        tool = _parse_tool(item, f"{where}, {label}")
        if tool.name in tools:
            raise _duplicate(where, label, tool.name)
        tools[tool.name] = tool
    if not tools:
        raise CatalogError(
            f"{where}: the tool catalog is empty. Add at least one tool definition "
            f'(e.g. {{"name": "get_weather", "description": "...", "parameters": {{...}}}}).'
        )
    return list(tools.values())


def _duplicate(where: str, label: str, name: str) -> CatalogError:
    return CatalogError(
        f"{where}, {label}: tool '{name}' is defined twice. Tool names must be unique; "
        f"rename or remove one of them."
    )


def _parse_tool(item: Any, at: str) -> Tool:
    if not isinstance(item, dict):
        raise CatalogError(
            f"{at}: expected a tool definition (a JSON object), got {type(item).__name__}."
        )
    fn = item
    if isinstance(item.get("function"), dict):  # OpenAI `tools` wrapper
        fn = item["function"]
    name = fn.get("name")
    if "question" in item and "name" not in item:
        raise CatalogError(
            f'{at}: a BFCL question line with no "function" list. Point `tools` at the '
            f"function docs instead (for multi-turn sets: multi_turn_func_doc/*.json)."
        )
    if not isinstance(name, str) or not name.strip():
        raise CatalogError(
            f'{at}: the tool has no "name". Give every tool a non-empty string name '
            f'(OpenAI format: {{"type": "function", "function": {{"name": ...}}}}).'
        )
    at = f"{at} ('{name}')"
    params_schema = fn.get("parameters", fn.get("input_schema"))
    return Tool(
        name=name,
        description=_text(fn.get("description")),
        params=_parse_params(params_schema, at),
    )


def _parse_params(schema: Any, at: str) -> tuple[Param, ...]:
    if schema is None:
        return ()  # a tool that takes no arguments
    if not isinstance(schema, dict):
        raise CatalogError(f'{at}: "parameters" must be a JSON schema object, got {type(schema).__name__}.')
    if schema.get("type") is not None and _normalize_type(schema["type"]) != "object":
        raise CatalogError(
            f'{at}: "parameters" must describe an object (type "object" or "dict"), '
            f"got type {schema['type']!r}."
        )
    properties = schema.get("properties") or {}
    if not isinstance(properties, dict):
        raise CatalogError(f'{at}: "parameters.properties" must be an object mapping names to schemas.')
    required = schema.get("required") or []
    if not isinstance(required, list):
        raise CatalogError(f'{at}: "parameters.required" must be a list of parameter names.')
    params = []
    for pname, prop in properties.items():
        if not isinstance(prop, dict):
            raise CatalogError(f"{at}, parameter '{pname}': expected a JSON schema object.")
        params.append(_parse_param(pname, prop, pname in required, at))
    return tuple(params)


def _parse_param(name: str, prop: dict, listed_required: bool, at: str) -> Param:
    where = f"{at}, parameter '{name}'"
    type_ = _param_type(prop.get("type"), prop.get("enum"), where)
    items = None
    if type_ == "array":
        items_schema = prop.get("items")
        if isinstance(items_schema, dict) and items_schema.get("type") is not None:
            items = _param_type(items_schema["type"], None, f"{where} (items)")
    description = _text(prop.get("description"))
    enum = _enum(prop.get("enum"), type_)
    if enum is None and "enum" not in prop and type_ == "string":
        enum = enum_from_description(description)
        if enum is not None and isinstance(prop.get("default"), str) and prop["default"] not in enum:
            enum = None  # a default outside the list means the list is not the whole domain
    # An old-style `"required": true` on the property also counts; BFCL's `"optional": true` wins.
    required = listed_required or prop.get("required") is True
    if _truthy(prop.get("optional")):
        required = False
    return Param(
        name=name,
        type=type_,
        description=description,
        required=required,
        enum=enum,
        items=items,
        default=prop.get("default"),
    )


def _param_type(raw: Any, enum: Any, where: str) -> str:
    if raw is None:
        return _enum_type(enum) if isinstance(enum, list) and enum else "any"
    if isinstance(raw, list):
        # JSON schema unions: ["string", "null"] is an optional string; wider unions are "any".
        kinds = {_normalize_type(t) for t in raw if t != "null"}
        if None in kinds:
            raise _unknown_type(raw, where)
        return kinds.pop() if len(kinds) == 1 else "any"
    type_ = _normalize_type(raw)
    if type_ is None:
        raise _unknown_type(raw, where)
    if isinstance(enum, list) and enum and not all(_fits(v, type_) for v in enum):
        # BFCL's live sets write {"type": "boolean", "enum": ["True", "False", "dontcare"]};
        # the enum is what the answers use, so it decides the type.
        return _enum_type(enum)
    return type_


def _normalize_type(raw: Any) -> str | None:
    if not isinstance(raw, str):
        return None
    t = raw.strip().lower()
    t = TYPE_ALIASES.get(t, t)
    return t if t in PARAM_TYPES else None


def _unknown_type(raw: Any, where: str) -> CatalogError:
    valid = ", ".join(PARAM_TYPES)
    aliases = ", ".join(sorted(TYPE_ALIASES))
    return CatalogError(
        f"{where}: unknown type {raw!r}. Use one of {valid} (also accepted: {aliases})."
    )


def _fits(value: Any, type_: str) -> bool:
    # Arrays and objects carry no enum we keep.
    return type_ not in ("array", "object") and is_type(value, type_)


def _enum_type(enum: list) -> str:
    for type_ in ("string", "integer", "number", "boolean"):
        if all(_fits(v, type_) for v in enum):
            return type_
    return "any"


def _enum(raw: Any, type_: str) -> tuple | None:
    # Array enums are per-element in practice, which `Param` cannot express; they are dropped.
    if not isinstance(raw, list) or not raw or type_ in ("array", "object"):
        return None
    return tuple(raw)


def enum_from_description(description: str) -> tuple[str, ...] | None:
    """The allowed values of a string parameter when only its description lists them
    ("One of ['celsius', 'fahrenheit']", "Allowed values: 'asc', 'desc'", "either 'metric'
    or 'imperial'"). Conservative: only quoted values after a clear phrase, and nothing
    when the list is open-ended ("etc.") or each value is explained ("'asc' for ...")."""
    for pattern in _ENUM_PATTERNS:
        match = pattern.search(description)
        if match:
            values = [v[1:-1].strip() for v in re.findall(_QUOTED, match.group("run"))]
            values = list(dict.fromkeys(v for v in values if v))
            if len(values) >= 2:
                return tuple(values)
    return None


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "yes"))
