"""Asking an LLM teacher for tool-calling examples: the request plan, the prompt, the answer.

Request `i` depends only on (recipe, seed, i): a seeded slice of the catalog (each block of
requests visits every tool first), how many of its examples need no call or two calls, and
a persona and style hint for variety. So a resumed run rebuilds exactly the same requests
and finds their answers in the journal. The teacher answers JSON
`{"examples": [{"utterance", "calls": [{"name", "arguments"}]}]}`; we add the distractor
tools and judge every example like the offline teacher's.
"""

from __future__ import annotations

import json
import math
import random
import re
from dataclasses import dataclass

from distillery.tasks.tool_calling.schema import Tool
from distillery.teachers.base import Request

PERSONAS = (
    "a busy parent", "a retiree who is new to voice assistants", "a software engineer", "a student",
    "a nurse on a night shift", "a small business owner", "a traveller abroad", "a teenager",
    "a non-native English speaker", "a home cook", "a sales manager on the road", "a fitness enthusiast",
)
STYLES = (
    "short and terse", "polite and complete", "casual, with lowercase and no punctuation",
    "chatty, with a little context before the request", "direct commands", "questions",
    "hurried, with abbreviations", "precise, giving exact values",
)
SYSTEM = (
    "You write training data for a small model that turns one user message into calls to the tools "
    "it is offered. Answer with JSON only, no prose: "
    '{"examples": [{"utterance": "...", "calls": [{"name": "...", "arguments": {...}}]}]}.')


@dataclass(frozen=True)
class Ask:
    """One planned teacher request and what it asks for."""

    index: int
    tools: tuple[str, ...]  # the catalog slice shown to the teacher
    n: int
    no_call: int
    parallel: int
    persona: str
    style: str
    request: Request


def _share(index: int, n: int, ratio: float, offset: float) -> int:
    # Low-discrepancy counts: over any run of requests the shares come out as asked.
    return math.floor((index + 1) * n * ratio + offset) - math.floor(index * n * ratio + offset)


def _slice(index: int, catalog: list[Tool], low: int, high: int, seed: int, rng: random.Random) -> list[Tool]:
    block, position = divmod(index, len(catalog))
    order = list(catalog)
    random.Random(f"{seed}:llm-order:{block}").shuffle(order)
    anchor = order[position]
    size = min(rng.randint(low, high), len(catalog))
    others = rng.sample([t for t in catalog if t.name != anchor.name], size - 1)
    chosen = [anchor, *others]
    rng.shuffle(chosen)
    return chosen


def shown_calls_schema(tools: list[Tool]) -> dict:
    """JSON schema of one answer's calls: each names one shown tool with that tool's arguments."""
    calls = [{"type": "object", "properties": {
        "name": {"type": "string", "enum": [t.name]},
        "arguments": {**t.json_schema(), "additionalProperties": False}},
        "required": ["name", "arguments"], "additionalProperties": False} for t in tools]
    return {"type": "array", "items": {"anyOf": calls} if len(calls) > 1 else calls[0], "maxItems": 3}


def answer_schema(tools: list[Tool], n: int) -> dict:
    """JSON schema of the answer: examples whose calls name shown tools with their arguments."""
    example = {"type": "object", "properties": {"utterance": {"type": "string"}, "calls": shown_calls_schema(tools)},
               "required": ["utterance", "calls"], "additionalProperties": False}
    return {"type": "object", "properties": {
        "examples": {"type": "array", "items": example, "minItems": 1, "maxItems": n}},
        "required": ["examples"], "additionalProperties": False}


def plan(index: int, catalog: list[Tool], mash_cfg, teacher_cfg, seed: int) -> Ask:
    """Request `index` of the Mash, the same in every run."""
    rng = random.Random(f"{seed}:llm:{index}")
    offsets = random.Random(f"{seed}:llm-offsets")
    tools = _slice(index, catalog, mash_cfg.tools_per_call.min, mash_cfg.tools_per_call.max, seed, rng)
    n = mash_cfg.examples_per_call
    no_call = _share(index, n, mash_cfg.no_call_ratio, offsets.random())
    parallel = min(_share(index, n, mash_cfg.parallel_ratio, offsets.random()), n - no_call) \
        if len(tools) > 1 else 0
    persona, style = rng.choice(PERSONAS), rng.choice(STYLES)
    single = n - no_call - parallel
    asks = [f"{single} need exactly one call" if single else "",
            f"{parallel} ask for two things at once and need two calls" if parallel else "",
            f"{no_call} need no tool (small talk, or a request none of these tools can serve): "
            "their calls are []" if no_call else ""]
    user = (
        "Tools:\n" + json.dumps([t.to_openai()["function"] for t in tools], ensure_ascii=False) + "\n\n"
        f"Write {n} different messages a user might send to an assistant that has these tools, each with "
        f"the exact calls that fulfil it. Of the {n}: " + "; ".join(a for a in asks if a) + ".\n"
        "Rules: every argument value is stated or clearly implied in the message; use only the tools and "
        "argument names above, with their types and enum values; give every required argument; vary the "
        "wording, length and values; no two messages alike.\n"
        f"Write them as {persona} would: {style}.")
    request = Request(messages=({"role": "system", "content": SYSTEM}, {"role": "user", "content": user}),
                      temperature=teacher_cfg.temperature, max_tokens=teacher_cfg.max_tokens,
                      json_schema=answer_schema(tools, n), seed=rng.randrange(2**31))
    return Ask(index, tuple(t.name for t in tools), n, no_call, parallel, persona, style, request)


def read_json(text: str) -> object:
    """The JSON in a teacher's answer, in a code fence or with prose around it; ValueError if none."""
    text = re.sub(r"^\s*```(?:json)?\s*|\s*```\s*$", "", text.strip())
    try:
        return json.loads(text)
    except ValueError:
        start, end = text.find("{"), text.rfind("}")
        try:
            data = json.loads(text[start:end + 1]) if 0 <= start < end else None
        except ValueError:
            data = None
        if data is None:
            raise ValueError("invalid_json: the answer is not JSON") from None
        return data


def parse_answer(text: str, limit: int) -> list[dict]:
    """The examples in a teacher's answer (at most `limit`); ValueError says why there are none."""
    data = read_json(text)
    examples = data.get("examples") if isinstance(data, dict) else data
    if not isinstance(examples, list) or not examples:
        raise ValueError("bad_structure: no `examples` list in the answer")
    return [loosen(example) for example in examples[:limit]]


def loosen(example: object) -> object:
    # OpenAI's own tool_calls carry arguments as a JSON string; a teacher may copy that habit.
    if isinstance(example, dict) and isinstance(example.get("calls"), list):
        for call in example["calls"]:
            if isinstance(call, dict) and isinstance(call.get("arguments"), str):
                try:
                    call["arguments"] = json.loads(call["arguments"])
                except ValueError:
                    pass
    return example
