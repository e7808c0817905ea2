"""The internal form of tools and calls, whatever format the catalog was written in.

Every catalog format (OpenAI `tools`, BFCL/Gorilla function docs) is read into `Tool`;
every other module only ever sees this form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The value types a parameter can declare, after normalization of the catalog's spelling
# (BFCL's "dict" -> "object", "float" -> "number", "tuple" -> "array", "any" stays).
PARAM_TYPES = ("string", "integer", "number", "boolean", "array", "object", "any")


@dataclass(frozen=True)
class Param:
    name: str
    type: str  # one of PARAM_TYPES
    description: str = ""
    required: bool = False
    enum: tuple[Any, ...] | None = None
    items: str | None = None  # element type of an array, one of PARAM_TYPES
    default: Any = None

    def json_schema(self) -> dict:
        schema: dict[str, Any] = {}
        if self.type != "any":
            schema["type"] = self.type
        if self.description:
            schema["description"] = self.description
        if self.enum is not None:
            schema["enum"] = list(self.enum)
        if self.type == "array":
            schema["items"] = {"type": self.items} if self.items and self.items != "any" else {}
        if self.default is not None:
            schema["default"] = self.default
        return schema


@dataclass(frozen=True)
class Tool:
    name: str
    description: str = ""
    params: tuple[Param, ...] = field(default_factory=tuple)

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params if p.required)

    def json_schema(self) -> dict:
        """The arguments object's JSON schema."""
        return {
            "type": "object",
            "properties": {p.name: p.json_schema() for p in self.params},
            "required": list(self.required),
        }

    def to_openai(self) -> dict:
        """The tool in OpenAI `tools` format."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.json_schema(),
            },
        }


@dataclass(frozen=True)
class Call:
    name: str
    arguments: dict[str, Any]

    def to_json(self) -> dict:
        return {"name": self.name, "arguments": self.arguments}
