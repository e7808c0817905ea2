"""The grammar of a tool-calling completion: only calls the offered tools can accept.

From the offered tools we build a JSON schema of the completion (a list of calls, each one
offered tool name with only its argument keys, in schema order, values of the declared type,
enum members, every required argument) and compile it with llguidance. At each decoding step
the grammar masks every token that would leave that language, so a constrained student can
be wrong about *which* call, but never emit a broken one.

llguidance rather than xgrammar: the same masks in about 10 microseconds a token on a CPU,
and a single dependency-free wheel, where xgrammar pulls in torch's triton (about 1 GB).
"""

from __future__ import annotations

from typing import Any

import llguidance
import llguidance.hf
import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerFast

from distillery.tasks.tool_calling.prompt import END
from distillery.tasks.tool_calling.schema import Param, Tool
from distillery.tasks.tool_calling.spans import named_members, numbers, spans

# The student writes compact JSON (no spaces): the grammar must not allow anything else, or
# a whitespace token could be forced on it that it never saw in training.
_COMPACT = {"whitespace_flexible": False, "item_separator": ",", "key_separator": ":"}
# How json.dumps writes, which is what chat models saw in their tool-calling data.
SPACED = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


def _value_schema(param: Param, copy: dict[str, Any] | None) -> dict[str, Any] | None:
    """A parameter's value; `copy` (the request, its spans and numbers) narrows a copied parameter.

    None: the parameter cannot be written (a copied enum whose members the request never names).
    """
    if param.enum is not None:
        named = named_members(param.enum, copy["text"]) if copy is not None else None
        if named is None or (not named and param.required):
            return {"enum": list(param.enum)}
        return {"enum": named} if named else None
    if copy is not None:
        if param.type == "string" and copy["span"]:
            return {"$ref": "#/$defs/span"}
        if param.type == "array" and param.items in (None, "any", "string") and copy["span"]:
            return {"type": "array", "items": {"$ref": "#/$defs/span"}}
        if param.type == "integer" and copy["integer"]:
            return {"$ref": "#/$defs/integer"}
        if param.type == "number" and copy["number"]:
            return {"$ref": "#/$defs/number"}
    if param.type == "any":
        return {}
    if param.type == "array":
        items = param.items if param.items and param.items != "any" else None
        return {"type": "array", "items": {"type": items} if items else {}}
    return {"type": param.type}


def call_schema(tool: Tool, copy: dict[str, Any] | None = None, copied: frozenset[str] = frozenset()) -> dict:
    """One call of `tool`: its name, then an arguments object in the tool's parameter order."""
    values = {p.name: _value_schema(p, copy if f"{tool.name}.{p.name}" in copied else None) for p in tool.params}
    return {
        "type": "object",
        "properties": {
            "name": {"const": tool.name},
            "arguments": {
                "type": "object",
                "properties": {name: value for name, value in values.items() if value is not None},
                "required": list(tool.required),
                "additionalProperties": False,
            },
        },
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


def calls_schema(tools: list[Tool], *, allow_none: bool = True, allow_parallel: bool = True,
                 utterance: str = "", copied: frozenset[str] = frozenset(),
                 style: dict[str, Any] = _COMPACT, allow_text: bool = False) -> dict[str, Any]:
    """The JSON schema of a whole completion: a list of calls of the offered tools, spaced as `style` says.

    Parameters named in `copied` (`tool.param`) may only take spans or numbers of `utterance`.
    `allow_text`: a conversation's final answer, a JSON string, is an answer too.
    """
    copy = None
    if copied:
        found = numbers(utterance)
        copy = {"text": utterance, "span": spans(utterance), "number": found,
                "integer": [n for n in found if isinstance(n, int)]}
    schema: dict[str, Any] = {
        "type": "array",
        "items": {"anyOf": [call_schema(t, copy, copied) for t in tools]} if tools else False,
        "minItems": 0 if allow_none or not tools else 1,
        "x-guidance": style,
    }
    if not allow_parallel:
        schema["maxItems"] = 1
    if allow_text and allow_none:
        schema = {"anyOf": [{k: v for k, v in schema.items() if k != "x-guidance"}, {"type": "string"}],
                  "x-guidance": style}
    if copy:
        # Shared definitions: one copy of the span list however many parameters use it.
        schema["$defs"] = {kind: {"enum": copy[kind]} for kind in ("span", "number", "integer") if copy[kind]}
    return schema


class CallGrammar:
    """Compiles per-request grammars for one student tokenizer (built once: about 50 ms)."""

    def __init__(self, tokenizer: Tokenizer, fmt=None):
        """`fmt` (a PromptFormat) gives the end-of-answer token and the JSON spacing; without it,
        a tiny student's (`<|end|>`, compact)."""
        hf = PreTrainedTokenizerFast(tokenizer_object=tokenizer)
        self.vocab_size = tokenizer.get_vocab_size()
        self.end_id = tokenizer.token_to_id(END) if fmt is None else fmt.end_id
        self.ll_tokenizer = llguidance.hf.from_tokenizer(hf, n_vocab=self.vocab_size, eos_token=self.end_id)
        self.style = _COMPACT if fmt is None or fmt.json_style == "compact" else SPACED

    @classmethod
    def from_hf(cls, hf_tokenizer: PreTrainedTokenizerFast, end_id: int, *, style: dict = SPACED) -> CallGrammar:
        """The same grammar for another model (a Hugging Face chat model): its tokenizer, the id
        of the token that ends its answer, and the JSON spacing it was trained on."""
        grammar = cls.__new__(cls)
        grammar.vocab_size, grammar.end_id, grammar.style = len(hf_tokenizer), end_id, style
        grammar.ll_tokenizer = llguidance.hf.from_tokenizer(hf_tokenizer, n_vocab=len(hf_tokenizer), eos_token=end_id)
        return grammar

    def matcher(self, tools: list[Tool], *, allow_none: bool = True, allow_parallel: bool = True,
                utterance: str = "", copied: frozenset[str] = frozenset(), allow_text: bool = False) -> CallMatcher:
        return self.schema_matcher(calls_schema(
            tools, allow_none=allow_none, allow_parallel=allow_parallel, utterance=utterance, copied=copied,
            style=self.style, allow_text=allow_text))

    def schema_matcher(self, schema: dict[str, Any]) -> CallMatcher:
        """A matcher for any JSON schema (another task's answer), spaced as this student writes JSON."""
        grammar = llguidance.LLMatcher.grammar_from_json_schema({**schema, "x-guidance": self.style})
        return CallMatcher(llguidance.LLMatcher(self.ll_tokenizer, grammar))


class CallMatcher:
    """A decoding-time filter: feed it the tokens generated so far, it masks the next logits."""

    def __init__(self, matcher: llguidance.LLMatcher):
        if matcher.is_error():
            raise ValueError(f"tool grammar does not compile: {matcher.get_error()}")
        self.matcher = matcher
        self.consumed = 0

    def __call__(self, generated: list[int], logits: torch.Tensor) -> torch.Tensor:
        for token in generated[self.consumed:]:
            self.matcher.consume_token(token)
        self.consumed = len(generated)
        # Bit j of byte i allows token 8*i + j (the mask is little-endian 32-bit words).
        bits = np.unpackbits(np.frombuffer(self.matcher.compute_bitmask(), dtype=np.uint8), bitorder="little")
        allowed = torch.from_numpy(bits[: logits.shape[-1]].astype(bool))
        if allowed.shape[0] < logits.shape[-1]:  # ids past the tokenizer's (padded embedding rows): never
            allowed = torch.cat([allowed, allowed.new_zeros(logits.shape[-1] - allowed.shape[0])])
        return logits.masked_fill(~allowed, float("-inf"))
