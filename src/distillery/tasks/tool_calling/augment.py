"""Training-time augmentation of the hearts, redrawn every epoch.

A small student trained on a thousand examples memorizes the values it saw ("Kyoto, Japan")
instead of learning to copy them from the request. Two rewrites that keep an example
consistent by construction fix that:

- value swap: an argument whose value is written verbatim, exactly once, in the utterance is
  replaced, in both places, by another value: one the same parameter takes elsewhere in the
  hearts, one of any parameter, or a made-up word. The student can no longer guess a value
  from memory; it has to read it.
- tool drop: the called tool is removed from the offered tools and the target becomes "no
  call", which teaches the student to check that the tool it wants is actually offered.
- re-offer: the distractors offered beside the called tools are drawn again, so the student
  reads which tools are offered instead of remembering an example's list. The offered list is
  ours, not the teacher's, so this never changes a label. Examples whose target is "no call"
  keep their list: a fresh draw could offer the very tool the request asks for.

Only hearts are rewritten; the heads are never touched, so the Tasting stays honest.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict

from distillery.tasks.tool_calling.mash import offer_tools

_SYLLABLES = ["ka", "lo", "mi", "ran", "te", "vo", "zu", "bel", "dor", "fi", "gan", "hu", "ix", "jo", "ne",
              "pra", "qui", "sol", "tam", "wen", "yr", "zel"]


def _occurrences(text: str, value: str) -> list[int]:
    # Word-boundary match so "10" is not found inside "2010" and "Ann" not inside "Anna".
    pattern = r"(?<![\w])" + re.escape(value) + r"(?![\w])"
    return [m.start() for m in re.finditer(pattern, text)]


def _made_up_word(rng: random.Random) -> str:
    word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3)))
    return word.capitalize() if rng.random() < 0.5 else word


def _new_number(value: int | float, rng: random.Random) -> int | float:
    if isinstance(value, int):
        return rng.randint(0, max(9, 2 * abs(value)))
    return round(rng.uniform(0, max(10.0, 2 * abs(value))), 2)


class Augmenter:
    """Rewrites of the hearts, seeded per (epoch, example)."""

    def __init__(self, hearts: list[dict], tools_by_name: dict, value_swap: float, tool_drop: float, seed: int,
                 reoffer: float = 0.0, tools_per_call: tuple[int, int] = (3, 6)):
        self.value_swap, self.tool_drop, self.reoffer, self.seed = value_swap, tool_drop, reoffer, seed
        self.catalog = list(tools_by_name.values())
        self.tools_per_call = tools_per_call
        # Enum values are closed sets: swapping one for an outside word would teach a wrong call.
        self.closed = {(t.name, p.name) for t in tools_by_name.values() for p in t.params if p.enum is not None}
        self.by_param: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.all_strings: list[str] = []
        for ex in hearts:
            for call in ex["calls"]:
                for key, value in call["arguments"].items():
                    if isinstance(value, str) and value:
                        self.by_param[(call["name"], key)].append(value)
                        self.all_strings.append(value)
        self.by_param = {k: sorted(set(v)) for k, v in self.by_param.items()}
        self.all_strings = sorted(set(self.all_strings))

    def _swap_string(self, tool: str, key: str, rng: random.Random) -> str:
        roll = rng.random()
        same = self.by_param.get((tool, key), [])
        if roll < 0.4 and same:
            return rng.choice(same)
        if roll < 0.75 and self.all_strings:
            return rng.choice(self.all_strings)
        return _made_up_word(rng) if rng.random() < 0.7 else f"{_made_up_word(rng)} {_made_up_word(rng)}"

    def _swap_values(self, ex: dict, rng: random.Random) -> dict:
        utterance = ex["utterance"]
        calls = [{"name": c["name"], "arguments": dict(c["arguments"])} for c in ex["calls"]]
        for call in calls:
            for key, value in list(call["arguments"].items()):
                if (call["name"], key) in self.closed:
                    continue
                if isinstance(value, list):
                    items = list(value)
                    for i, item in enumerate(items):
                        utterance, items[i] = self._swap_one(utterance, item, call["name"], key, rng)
                    call["arguments"][key] = items
                else:
                    utterance, call["arguments"][key] = self._swap_one(utterance, value, call["name"], key, rng)
        return {**ex, "utterance": utterance, "calls": calls}

    def _swap_one(self, utterance: str, value, tool: str, key: str, rng: random.Random):
        """(utterance, value) with the value replaced in both, or unchanged when that is not safe."""
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            return utterance, value
        surface = str(value)
        spots = _occurrences(utterance, surface) if surface else []
        if len(spots) != 1:
            return utterance, value
        new_value = self._swap_string(tool, key, rng) if isinstance(value, str) else _new_number(value, rng)
        new_surface = str(new_value)
        # A new value that already occurs in the utterance would make the target ambiguous.
        if new_surface == surface or _occurrences(utterance, new_surface):
            return utterance, value
        start = spots[0]
        return utterance[:start] + new_surface + utterance[start + len(surface):], new_value

    def __call__(self, ex: dict, epoch: int, index: int) -> dict:
        rng = random.Random(f"{self.seed}:{epoch}:{index}")
        if self.reoffer and ex["calls"] and rng.random() < self.reoffer:
            ex = {**ex, "tools": offer_tools(ex["calls"], [], self.catalog, rng, *self.tools_per_call)}
        if ex["calls"] and rng.random() < self.tool_drop:
            called = {c["name"] for c in ex["calls"]}
            remaining = [t for t in ex["tools"] if t not in called]
            if remaining:
                return {**ex, "tools": remaining, "calls": []}
        if ex["calls"] and rng.random() < self.value_swap:
            return self._swap_values(ex, rng)
        return ex
