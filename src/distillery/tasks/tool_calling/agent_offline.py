"""The offline teacher as an agent: whole conversations, with no network and no key.

A request of one to `max_steps - 1` steps is planned from the catalog; each step is one call,
its result comes from the tool, and the conversation ends with a final answer in text that
reports the results (`report`). The request is written by the offline teacher's phrasing (offline.py),
one clause a step ("find the contact Sarah, then send a message saying I'm late").

A step can depend on the one before it: a parameter named like a field of the last result
(`contact_id` after `find_contact` returned one) takes that field's value and is never said
in the request, as when an agent looks something up before it acts. Tools whose required
parameters only ever come from results are never a first step.

Where the results come from: the tools themselves when the catalog is a Python module
(`tools: {module: ...}`; it is executed, so it should simulate, as examples/agent_tools.py
does), else `simulate`, a made-up but deterministic result per call (the Needle catalog).
Candidate `i` depends only on (seed, i), as the single-request teacher's do.
"""

from __future__ import annotations

import hashlib
import json
import math
import random

from distillery.tasks.tool_calling.offline import OfflineTeacher, _finish, _frame
from distillery.tasks.tool_calling.offline_values import name_words
from distillery.tasks.tool_calling.schema import Tool

THEN = (", then ", " and then ", ". After that, ", ", and after that ")
LINKED_RATE = 0.8  # how often a step that can use the last result does
_GOLDEN = (math.sqrt(5) - 1) / 2


def simulate(tool: Tool, arguments: dict) -> str:
    """A made-up result of a call, the same for the same call: what a JSON catalog's tools answer
    when nothing can run them."""
    digest = hashlib.sha256(json.dumps([tool.name, arguments], sort_keys=True).encode()).hexdigest()
    return json.dumps({"status": "done", "id": f"{tool.name.split('_')[0][:3]}-{int(digest[:6], 16) % 9000 + 1000}"})


def _fields(content: str) -> dict:
    try:
        value = json.loads(content)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def report(steps: list[tuple[Tool, str]], request: str = "") -> str:
    """The final answer: what each step's result says that the request did not, in the result's
    own words ("Done. get_weather: temperature_c 4, conditions snowy."), so a student can copy
    every word of it."""
    parts = []
    for tool, content in steps:
        fields = [(k, v) for k, v in _fields(content).items() if isinstance(v, (str, int, float))
                  and not isinstance(v, bool) and str(v) not in request][:2]
        said = ", ".join(f"{k} {v}" for k, v in fields) if _fields(content) else content.strip()[:80]
        parts.append(f"{tool.name}: {said}" if said else tool.name)
    return "Done. " + "; ".join(parts) + "."


class OfflineAgentTeacher:
    """Makes conversation candidates: {"utterance", "messages" (normalized), "teacher"}."""

    def __init__(self, catalog: list[Tool], *, seed: int = 0, max_steps: int = 4, no_call_ratio: float = 0.1,
                 run_tool=None):
        self.catalog, self.seed, self.max_steps, self.no_call_ratio = list(catalog), seed, max_steps, no_call_ratio
        self.by_name = {t.name: t for t in self.catalog}
        self.single = OfflineTeacher(self.catalog, seed=seed, no_call_ratio=0.0, parallel_ratio=0.0)
        self.run_tool = run_tool or (lambda name, arguments: simulate(self.by_name[name], arguments))
        self.produces = self._probe()
        # A tool is dependent when a required parameter is a field some other tool's result has.
        self.dependent = {t.name for t in self.catalog
                          if any(p.required and any(p.name in self.produces[o.name] for o in self.catalog if o is not t)
                                 for p in t.params)}
        self.first_steps = [t for t in self.catalog if t.name not in self.dependent] or self.catalog
        self._offset = random.Random(f"{seed}:agent:offset").random()

    def _probe(self) -> dict[str, set[str]]:
        """The fields each tool's result has, from a few calls with drawn values."""
        found = {}
        for t in self.catalog:
            keys: set[str] = set()
            for k in range(3):
                _, args, _ = self.single._request(t, random.Random(f"{self.seed}:probe:{t.name}:{k}"), [],
                                                  allow_question=False)
                keys |= set(_fields(self.run_tool(t.name, args)))
            found[t.name] = keys
        return found

    def candidate(self, index: int) -> dict:
        rng = random.Random(f"{self.seed}:agent:{index}")
        if (self._offset + index * _GOLDEN) % 1.0 < self.no_call_ratio:
            text = self.single._small_talk_line(rng)
            return _conversation(text, [{"role": "user", "content": text}, {"role": "assistant", "calls": []}],
                                 "smalltalk")
        first = self.first_steps[index % len(self.first_steps)]
        n_calls = rng.randint(1, self.max_steps - 1)
        steps, cores, free, messages = [], [], [], []
        tool, linked = first, {}
        for step in range(n_calls):
            core, args, _ = self.single._request(tool, rng, free, allow_question=False, hidden=frozenset(linked))
            args = {p.name: {**args, **linked}[p.name] for p in tool.params if p.name in {**args, **linked}}
            content = self.run_tool(tool.name, args)
            messages += [{"role": "assistant", "calls": [{"name": tool.name, "arguments": args}]},
                         {"role": "tool", "name": tool.name, "content": content}]
            steps.append((tool, content))
            if core.strip():
                cores.append(core.strip())
            if step + 1 < n_calls:
                tool, linked = self._next(tool, _fields(content), rng)
                if tool is None:
                    break
        joined = cores[0] if cores else " ".join(name_words(first.name))
        for core in cores[1:]:
            then = rng.choice(THEN)
            joined += then + (core[0].upper() + core[1:] if then.endswith(". ") else core)
        _, template = _frame(rng, [])
        text = _finish(template.replace("{c}", joined), free, rng)
        messages = [{"role": "user", "content": text}] + messages + [{"role": "assistant",
                                                                      "content": report(steps, text)}]
        return _conversation(text, messages, f"agent.{len(steps)}")

    def _next(self, last: Tool, result: dict, rng: random.Random) -> tuple[Tool | None, dict]:
        """The next step's tool and the arguments it takes from the last result, or (None, {})."""
        uses = [t for t in self.catalog if t is not last and any(p.name in result for p in t.params if p.required)]
        if uses and rng.random() < LINKED_RATE:
            tool = rng.choice(uses)
            return tool, {p.name: result[p.name] for p in tool.params if p.name in result}
        others = [t for t in self.first_steps if t is not last]
        return (rng.choice(others), {}) if others else (None, {})

    def around(self, example: dict, k: int, index: int) -> list[dict]:
        """New conversations for a refine round: the next `k` of this teacher's own."""
        return [self.candidate(1_000_000 + index * k + j) for j in range(k)]


def _conversation(text: str, messages: list[dict], kind: str) -> dict:
    return {"utterance": text, "messages": messages, "teacher": {"provider": "offline", "frame": kind}}

