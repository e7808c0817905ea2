"""Tools that run: a Python module of functions, as a tool catalog and as something to call.

`tools: {module: my_tools.py}` in a Recipe, or `distillery run SPIRIT --tools my_tools.py`: every
public function defined in the module is a tool. Its name is the function's, its description
the docstring's first paragraph, its parameters the signature's, typed by their annotations
(pydantic writes the JSON schema: `str`, `int`, `float`, `bool`, `list[str]`, `Literal[...]` as
an enum; a default makes a parameter optional). A parameter's description is its line in the
docstring's `Args:` section, or `Annotated[str, "what it is"]`.

Loading the module runs it: name only modules you trust. Calling a tool runs the function
with the call's arguments; what it returns becomes the result's text (a string as it is,
anything else as JSON), and an exception becomes an error result the model can read, as an
agent framework would hand it back.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import re
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pydantic import ConfigDict, TypeAdapter

from distillery.errors import CatalogError
from distillery.tasks.tool_calling.catalog import parse_tools
from distillery.tasks.tool_calling.schema import Tool


@dataclass
class ModuleTools:
    """A module's tools: the catalog, and the functions behind it."""

    path: Path
    catalog: list[Tool]
    functions: dict[str, Callable[..., Any]]

    def call(self, name: str, arguments: dict) -> str:
        """Run one call; its result as text."""
        function = self.functions.get(name)
        if function is None:
            return f"error: no tool named {name!r}"
        try:
            result = function(**arguments)
        except Exception as exc:  # noqa: BLE001 - the model reads the failure, as from any agent runtime
            return f"error: {type(exc).__name__}: {exc}"
        return result if isinstance(result, str) else json.dumps(result, ensure_ascii=False, default=str)


def load_module_tools(path: Path) -> ModuleTools:
    """Import `path` and read its public functions as tools; CatalogError says what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"{path}: no such tools module. Fix: check the path (relative to the recipe's folder).")
    if path.suffix != ".py":
        raise CatalogError(f"{path}: a tools module is a Python file (.py). Fix: point `module` at one, or give a "
                           "JSON catalog as `tools: tools.json`.")
    name = "distillery_tools_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pydantic models in the module look themselves up here
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's module failed to import: say so, with where
        del sys.modules[name]
        raise CatalogError(f"{path}: importing the tools module failed ({type(exc).__name__}: {exc}). "
                           "Fix: make `python {path}` run without errors.") from None
    functions = {n: f for n, f in vars(module).items()
                 if inspect.isfunction(f) and not n.startswith("_") and f.__module__ == name}
    if not functions:
        raise CatalogError(f"{path}: the module defines no public functions. Fix: define the tools as functions "
                           "(names not starting with `_`).")
    items = [_openai_tool(n, f, path) for n, f in functions.items()]
    return ModuleTools(path=path, catalog=parse_tools(items, where=str(path)), functions=functions)


def _openai_tool(name: str, function: Callable, path: Path) -> dict:
    doc = inspect.getdoc(function) or ""
    described = _arg_descriptions(doc)
    hints = typing.get_type_hints(function, include_extras=True)
    properties, required = {}, []
    for param in inspect.signature(function).parameters.values():
        where = f"{path}: {name}({param.name})"
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise CatalogError(f"{where}: *args and **kwargs cannot be offered to a model. Fix: name every parameter.")
        if param.name not in hints:
            raise CatalogError(f"{where} has no type annotation, so its JSON type is unknown. Fix: annotate it, "
                               f"e.g. `{param.name}: str`.")
        try:
            schema = TypeAdapter(hints[param.name], config=ConfigDict(arbitrary_types_allowed=False)).json_schema()
        except Exception as exc:  # noqa: BLE001 - pydantic cannot write a schema for this annotation
            raise CatalogError(f"{where}: its annotation has no JSON schema ({exc}). Fix: use str, int, float, "
                               "bool, list[...] or Literal[...].") from None
        schema = _plain(schema)
        schema.pop("title", None)
        notes = [a for a in typing.get_args(hints[param.name])[1:] if isinstance(a, str)] \
            if typing.get_origin(hints[param.name]) is typing.Annotated else []
        if "description" not in schema and (notes or param.name in described):
            schema["description"] = notes[0] if notes else described[param.name]
        properties[param.name] = schema
        if param.default is param.empty:
            required.append(param.name)
    description = doc.split("\n\n", 1)[0].replace("\n", " ").strip()
    return {"type": "function", "function": {"name": name, "description": description,
                                             "parameters": {"type": "object", "properties": properties,
                                                            "required": required}}}


def _plain(schema: dict) -> dict:
    """`Optional[X]` (anyOf X, null) as X: a parameter that may be left out is an optional one."""
    options = schema.get("anyOf")
    if isinstance(options, list):
        kept = [o for o in options if o.get("type") != "null"]
        if len(kept) == 1:
            return {**{k: v for k, v in schema.items() if k != "anyOf"}, **kept[0]}
    return schema


def _arg_descriptions(doc: str) -> dict[str, str]:
    """`name: what it is` lines of a Google-style `Args:` section (`name (type): ...` too)."""
    found, inside = {}, False
    for line in doc.splitlines():
        if re.match(r"\s*(Args|Arguments|Parameters):\s*$", line):
            inside = True
            continue
        if inside:
            match = re.match(r"\s+(\w+)\s*(?:\([^)]*\))?\s*:\s*(.+)", line)
            if match:
                found[match.group(1)] = match.group(2).strip()
            elif line.strip() and not line.startswith((" ", "\t")):
                inside = False
    return found
