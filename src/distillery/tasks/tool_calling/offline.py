"""The offline teacher: tool-calling examples built from the tool catalog alone.

`teacher.provider: offline` is the embedded default: no network, no key, and not an LLM.
It turns each tool's name and description into action phrases ("set a timer", "call
{slot}"), draws realistic values for its parameters (`offline_values.py`), writes them as
clauses and wraps the request in a frame ("can you ...?"). Candidate `i` depends only on
(seed, i), so a run is reproducible and a resumed run makes the same candidates.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass

from distillery.tasks.tool_calling.schema import Tool
from distillery.tasks.tool_calling import entities
from distillery.tasks.tool_calling import phrasing as P
from distillery.tasks.tool_calling.clauses import clause_templates, is_switch, unit_word
from distillery.tasks.tool_calling.offline_values import (
    FREE_TEXT,
    ROLE_WORDS,
    Value,
    choose_unit,
    clean_description,
    link_units,
    make_value,
    name_words,
    param_kind,
    words,
)

OPTIONAL_RATE = 0.4  # how often an optional argument is given
KEY_VALUE_RATE = 0.12  # how often an argument is written "key: value"
# Low-discrepancy sequences: candidate i's kind comes from frac(offset + i * c), so every
# window of candidates holds the asked share of no-call and parallel examples.
_GOLDEN = (math.sqrt(5) - 1) / 2
_SILVER = math.sqrt(2) - 1
_PLAIN_NUMBERS = frozenset({"number", "count", "measure", "money", "distance", "fraction", "list:number"})
_DANGLING = frozenset({"a", "an", "the", "of", "its", "their", "your", "my", "some", "any"})
_SOURCE_WEIGHTS = {"slot": 5, "name": 3, "desc": 1, "question": 1}
_QUESTION_VERBS = frozenset({"get", "check", "fetch", "retrieve", "lookup", "show", "find", "read"})
_DESC_PREFIXES = ("this function ", "this tool ", "function to ", "used to ", "use this to ",
                  "tool to ", "api to ", "helps to ", "allows you to ", "a function to ")
_DESC_STOPS = r",|;|:| to | for | from | in | with | on | into | between | by | given | using " \
              r"| based | at | as | that | which | when | if | or | and "


@dataclass(frozen=True)
class Action:
    """One way to name a tool's action: `{rest}` marks where the arguments go."""

    template: str
    source: str  # name | desc | slot | question
    slot: str | None = None  # the parameter whose value is the action's object ("call {slot}")


class OfflineTeacher:
    """Makes (utterance, calls) candidates for any tool catalog, with no LLM."""

    def __init__(self, catalog: list[Tool], *, seed: int = 0, no_call_ratio: float = 0.1,
                 parallel_ratio: float = 0.0):
        if not catalog:
            raise ValueError("the offline teacher needs at least one tool in the catalog")
        if no_call_ratio < 0 or parallel_ratio < 0 or no_call_ratio + parallel_ratio > 1:
            raise ValueError("no_call_ratio and parallel_ratio must be >= 0 and sum to <= 1")
        self.catalog = list(catalog)
        self.seed = seed
        self.no_call_ratio = no_call_ratio
        self.parallel_ratio = parallel_ratio
        self._kinds = {t.name: {p.name: param_kind(t, p) for p in t.params} for t in self.catalog}
        self._links = {t.name: link_units(t, self._kinds[t.name]) for t in self.catalog}
        self._keyed = {t.name: _needs_key(t, self._kinds[t.name]) for t in self.catalog}
        self._siblings = {t.name: _siblings(t, self._kinds[t.name]) for t in self.catalog}
        self._actions = {t.name: tool_actions(t, self._kinds[t.name], self._links[t.name])
                         for t in self.catalog}
        # Small talk that shares a word with a tool name might be a real request: leave it out.
        tool_words = {w for t in self.catalog for w in name_words(t.name) if len(w) > 3}
        self._small_talk = [s for s in P.SMALL_TALK if not set(words(s)) & tool_words] or ["thanks!"]
        offsets = random.Random(f"{seed}:offsets")
        self._offset, self._offset2 = offsets.random(), offsets.random()

    def candidate(self, index: int) -> dict:
        """Candidate `index`: {"utterance", "calls", "avoid", "teacher": {"provider", "frame"}}."""
        rng = random.Random(f"{self.seed}:{index}")
        tool = self._tool_for(index)
        share = (self._offset + index * _GOLDEN) % 1.0
        if share < self.no_call_ratio:
            half = (self._offset2 + index * _SILVER) % 1.0
            if half < 0.5 or len(self.catalog) < 2:
                return _candidate(self._small_talk_line(rng), [], [], "smalltalk")
            # A real request for a tool that will not be offered: the answer is "no call".
            text, _, frame = self._single(tool, rng)
            return _candidate(text, [], [tool.name], "unoffered." + frame)
        if share < self.no_call_ratio + self.parallel_ratio:
            # Half the time one tool twice ("a timer for 5 and one for 10 minutes"), as parallel
            # requests often are; otherwise two different tools.
            others = [t for t in self.catalog if t.name != tool.name]
            other = tool if not others or rng.random() < 0.5 else rng.choice(others)
            return self._parallel(tool, other, rng)
        text, args, frame = self._single(tool, rng)
        return _candidate(text, [{"name": tool.name, "arguments": args}], [], frame)

    def around(self, example: dict, k: int, index: int) -> list[dict]:
        """`k` new candidates like `example` (one the student got wrong): the same tools with new
        values and new phrasing, or, where the right answer was no call, new requests that need
        none (small talk, or a request for a tool that is not on offer). Seeded by `index`."""
        by_name = {t.name: t for t in self.catalog}
        targets = [by_name[c["name"]] for c in example.get("calls") or [] if c.get("name") in by_name]
        unoffered = [t for t in self.catalog if t.name not in set(example.get("tools") or ())]
        found = []
        for j in range(k):
            rng = random.Random(f"{self.seed}:around:{index}:{j}")
            if len(targets) >= 2:
                found.append(self._parallel(targets[0], targets[1], rng))
            elif targets:
                text, args, frame = self._single(targets[0], rng)
                found.append(_candidate(text, [{"name": targets[0].name, "arguments": args}], [], frame))
            elif j % 2 and unoffered:
                tool = rng.choice(unoffered)
                text, _, frame = self._single(tool, rng)
                found.append(_candidate(text, [], [tool.name], "unoffered." + frame))
            else:
                found.append(_candidate(self._small_talk_line(rng), [], [], "smalltalk"))
        return found

    def _tool_for(self, index: int) -> Tool:
        # Each block of len(catalog) candidates visits every tool once, in a seeded order.
        block, position = divmod(index, len(self.catalog))
        order = list(self.catalog)
        random.Random(f"{self.seed}:order:{block}").shuffle(order)
        return order[position]

    def _small_talk_line(self, rng: random.Random) -> str:
        line = rng.choice(self._small_talk)
        line = rng.choice(P.SMALL_TALK_OPENERS) + line + rng.choice(P.SMALL_TALK_CLOSERS)
        return line[0].upper() + line[1:] if rng.random() < 0.5 else line

    def _single(self, tool: Tool, rng: random.Random) -> tuple[str, dict, str]:
        free: list[str] = []
        core, args, action = self._request(tool, rng, free, allow_question=True)
        if action.source == "question":
            frame_id, template = rng.choice(P.QUESTION_FRAMES)
            text = template.replace("{q}", core)
        else:
            frame_id, template = _frame(rng, [action])
            text = template.replace("{c}", core)
        return _finish(text, free, rng), args, f"{frame_id}.{action.source}"

    def _parallel(self, first: Tool, second: Tool, rng: random.Random) -> dict:
        free: list[str] = []
        core1, args1, action1 = self._request(first, rng, free, allow_question=False)
        core2, args2, action2 = self._request(second, rng, free, allow_question=False)
        joiner = rng.choice(P.JOINERS)
        core2 = rng.choice(("", "", "please ")) + core2
        if joiner.endswith(". "):
            core2 = core2[0].upper() + core2[1:]
        frame_id, template = _frame(rng, [action1, action2])
        text = _finish(template.replace("{c}", core1 + joiner + core2), free, rng)
        calls = [{"name": first.name, "arguments": args1}, {"name": second.name, "arguments": args2}]
        return _candidate(text, calls, [], f"parallel.{frame_id}")

    def _request(self, tool: Tool, rng: random.Random, free: list[str],
                 allow_question: bool, hidden: frozenset[str] = frozenset()) -> tuple[str, dict, Action]:
        """One request without its frame: (core text, arguments, the action used). `hidden`
        parameters are left out of both: an agent fills them from an earlier tool's result."""
        values = self._draw_values(tool, rng)
        if hidden:
            values = {name: v for name, v in values.items() if name not in hidden}
        actions = [a for a in self._actions[tool.name] if a.slot is None or a.slot in values]
        if not allow_question:
            actions = [a for a in actions if a.source != "question"]
        sources = sorted({a.source for a in actions}, key=list(_SOURCE_WEIGHTS).index)
        source = rng.choices(sources, [_SOURCE_WEIGHTS[s] for s in sources])[0]
        action = rng.choice([a for a in actions if a.source == source])

        # A unit is written after its number; with no number drawn it needs a clause of its own.
        units = {unit for number, unit in self._links[tool.name].items() if number in values}
        middle = not action.template.endswith("{rest}")
        keyed = self._keyed[tool.name]
        rendered, in_order = [], []
        siblings = [name for name in self._siblings[tool.name] if name in values and name != action.slot]
        if len(siblings) > 1 and rng.random() < 0.5:
            # Numbers of like parameters in their order, unnamed: "the LCM of 18 and 12", "a, b, c = 1, -3, 2".
            in_order = siblings
            rendered.append((0, rng.choice(P.POSITIONAL_LEADS) + _joined([values[n].surface for n in siblings]), ""))
        rendered += [self._clause(v, rng, free, natural_only=middle, keyed=name in keyed)
                     for name, v in values.items()
                     if name != action.slot and name not in units and v.kind != "object" and name not in in_order]
        inline = [r for r in rendered if r[0] == 0]
        rng.shuffle(inline)
        rest = ""
        for group, piece, key in inline + sorted((r for r in rendered if r[0] > 0), key=lambda r: r[0]):
            if piece.startswith(":") and ": " in rest.rsplit(",", 1)[-1]:
                piece = f", {key}{piece}"  # "app: sms, message: hi", never "app: sms: hi"
            if piece[0] in ",:":
                rest += piece
            elif rest and group in (0, 2) and not piece.startswith("and "):
                rest += rng.choice((" ", " ", " and ", ", "))  # "with base 6 and height 59"
                rest += piece
            else:
                rest += " " + piece
        slot_text, article = "", "a"
        if action.slot:
            slot_text = self._slot_text(values[action.slot], free)
            article = "an" if slot_text[:1].lower() in "aeiou" else "a"
        core = action.template.replace("{slot}", slot_text).replace("{a}", article)
        core = core.replace("{rest}", rest)
        args = {p.name: values[p.name].target for p in tool.params if p.name in values}
        return core, args, action

    def _draw_values(self, tool: Tool, rng: random.Random) -> dict[str, Value]:
        kinds, links = self._kinds[tool.name], self._links[tool.name]
        owners = {unit: number for number, unit in links.items()}
        present = [p for p in tool.params
                   if p.required or (kinds[p.name] != "object" and rng.random() < OPTIONAL_RATE)]
        names = {p.name for p in present}
        # A unit goes with its number, but a required one is given even without it.
        present = [p for p in present if p.required or p.name not in owners or owners[p.name] in names]
        # Enums first, then units, then the rest: "steps" or "lbs" decide a number's range.
        stage = {p.name: 0 if kinds[p.name] == "enum" and p.name not in owners
                 else 1 if p.name in owners else 2 for p in present}
        tool_context = [" ".join(name_words(tool.name)), clean_description(tool.description)]
        drawn: list[str] = []
        values: dict[str, Value] = {}
        for param in sorted(present, key=lambda p: stage[p.name]):
            kind = kinds[param.name]
            used = {str(v.target) for v in values.values() if v.kind not in ("enum", "boolean")}
            for _ in range(6):  # redraw so "from USD to USD", two equal names or "7 and seven" do not happen
                value = self._draw(tool, param, kind, values, drawn + tool_context, rng)
                if kind in ("enum", "boolean") or str(value.target) not in used:
                    break
            if kind == "enum":
                drawn.append(str(value.target).replace("_", " "))
            values[param.name] = value
        return {p.name: values[p.name] for p in tool.params if p.name in values}

    def _draw(self, tool: Tool, param, kind: str, values: dict[str, Value], context: list[str],
              rng: random.Random) -> Value:
        links, owners = self._links[tool.name], {u: n for n, u in self._links[tool.name].items()}
        if param.name in owners:
            number = tool.param(owners[param.name])
            about = [number.name.replace("_", " "), clean_description(number.description)]
            return choose_unit(param, kind, about + context, rng)
        unit = values[links[param.name]].surface if links.get(param.name) in values else ""
        return make_value(tool, param, kind, context, rng, unit=unit)

    def _clause(self, value: Value, rng: random.Random, free: list[str],
                natural_only: bool, keyed: bool) -> tuple[int, str, str]:
        """(group, text, key words) for one argument.

        Groups order the clauses: inline ones (shuffled), then flags and "key: value",
        then lists, then free text, which reads safest at the end.
        """
        words_of_param = " ".join(name_words(value.param.name))
        unit = unit_word(value)
        shown = _hold(value, free)
        if not natural_only and rng.random() < KEY_VALUE_RATE:
            if value.kind == "boolean":
                shown = "yes" if value.target else "no"
            text = f", {words_of_param}: {shown} {unit}".rstrip()
        else:
            templates = clause_templates(value)
            if keyed:  # "base 6 and height 3", never "of 6 of 3"
                templates = tuple(t for t in templates if "{pw}" in t) or templates
            template = rng.choice(templates)
            text = template.replace("{pw}", words_of_param).replace("{u}", unit)
            text = text.replace("{v}", shown).rstrip()
        text = re.sub(r"\ba (?=[aeiou])", "an ", text)  # "an initial investment of 500"
        if value.kind in FREE_TEXT:
            return 3, text, words_of_param
        if value.kind.startswith("list:"):
            return 2, text, words_of_param
        return (1 if text.startswith(",") or value.kind == "boolean" else 0), text, words_of_param

    def _slot_text(self, value: Value, free: list[str]) -> str:
        unit = unit_word(value)
        return f"{_hold(value, free)} {unit}".strip()


def _needs_key(tool: Tool, kinds: dict[str, str]) -> set[str]:
    """Parameters that must be written with their name: two bare numbers, or two named things of
    one category (two teams, two players), cannot be told apart."""
    plain = [p.name for p in tool.params if kinds[p.name] in _PLAIN_NUMBERS]
    keyed = set(plain) if len(plain) > 1 else set()
    named = [(p.name, entities.category(name_words(p.name), clean_description(p.description)))
             for p in tool.params if kinds[p.name] == "entity"]
    categories = [cat for _, cat in named]
    return keyed | {name for name, cat in named if categories.count(cat) > 1}


def _siblings(tool: Tool, kinds: dict[str, str]) -> list[str]:
    """Plain numbers that differ only by a letter or a digit (a, b, c; num1, num2; x, y, z): people
    often give them in order, without their names."""
    plain = [p.name for p in tool.params if kinds[p.name] == "number"]
    if len(plain) > 1 and all(len(n) == 1 for n in plain):
        return plain
    stems = [re.sub(r"_?\d+$", "", n) for n in plain]
    same = [n for n, stem in zip(plain, stems) if stem != n and stems.count(stem) > 1]
    return same if len(same) > 1 else []


def _joined(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _hold(value: Value, free: list[str]) -> str:
    """The value as written; free text becomes a placeholder, quoted later if words follow it."""
    if value.kind not in FREE_TEXT:
        return value.surface
    free.append(value.surface)
    return f"\x00{len(free) - 1}\x00"


def _frame(rng: random.Random, actions: list[Action]) -> tuple[str, str]:
    says_me = any(re.search(r"\bme\b", a.template) for a in actions)
    frame_id, template, _ = rng.choice([f for f in P.FRAMES if not (says_me and f[2])])
    return frame_id, template


def _finish(text: str, free: list[str], rng: random.Random) -> str:
    """Tidy spacing and punctuation, then put the free-text values back (quoted if needed)."""
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r" ([,:?!.])", r"\1", text)
    text = re.sub(r",([,?!.])", r"\1", text)
    if text[-1] not in "?!." and rng.random() < 0.3:
        text += rng.choice(".!")
    for i, value in enumerate(free):
        token = f"\x00{i}\x00"
        after = text[text.index(token) + len(token):]
        # A value is recoverable unquoted only when nothing but an end mark follows it.
        quote = not re.fullmatch(r"[?!.]*", after) or rng.random() < 0.25
        text = text.replace(token, f'"{value}"' if quote else value)
    text = re.sub(r"([?!.])[?!.]+$", r"\1", text)
    if rng.random() < 0.6:
        text = text[0].upper() + text[1:]
    return text


def _candidate(text: str, calls: list[dict], avoid: list[str], frame: str) -> dict:
    return {"utterance": text, "calls": calls, "avoid": avoid,
            "teacher": {"provider": "offline", "frame": frame}}


# ----------------------------------------------------------- action phrases

def tool_actions(tool: Tool, kinds: dict[str, str], links: dict[str, str]) -> list[Action]:
    """Every way this teacher names the tool's action, from its name and description."""
    tokens = name_words(tool.name)
    verb, obj = (tokens[0], tokens[1:]) if tokens and tokens[0] in P.VERBS else (None, tokens)
    synonyms = P.VERB_SYNONYMS.get(verb, (verb,)) if verb else ("get", "find")
    phrase = _object_phrase(verb or "get", obj)
    if obj and obj[0] in P.PREPOSITIONS and verb not in ("navigate", "go", "drive"):
        synonyms = (verb,)  # "add to the list", never "put to the list"
    actions = [Action(f"{s} {phrase} {{rest}}", "name") for s in synonyms]
    described = description_action(tool.description)
    if described:
        actions.append(Action(described + " {rest}", "desc"))
    if (verb in _QUESTION_VERBS or verb is None) and obj and obj[0] not in P.PREPOSITIONS:
        the = "" if obj[0] in P.NO_ARTICLE else "the "
        actions += [Action(f"{q} {the}{' '.join(obj)} {{rest}}", "question") for q in ("what's", "what is")]
    if verb:
        slotted = _slot_actions(tool, verb, obj, synonyms, kinds, links)
        if slotted and len(obj) == 1 and obj[0] in P.PREPOSITIONS:
            actions = [a for a in actions if a.source != "name"]  # "navigate to, destination: Rome"
        actions += slotted
    unique: dict[tuple, Action] = {}
    for action in actions:
        unique.setdefault((action.template, action.slot), action)
    return list(unique.values())


def _slot_actions(tool: Tool, verb: str, obj: list[str], synonyms: tuple[str, ...],
                  kinds: dict[str, str], links: dict[str, str]) -> list[Action]:
    """Actions whose object is an argument's value: "call Sarah", "log my weight",
    "turn off the lights"."""
    required = [p for p in tool.params if p.required]
    owners = {unit: number for number, unit in links.items()}
    noun = " ".join(obj)
    actions: list[Action] = []
    if obj and obj[0] in P.PREPOSITIONS:  # "navigate to {slot}", "add {slot} to the shopping list"
        target = next((p for p in required if kinds[p.name] not in ("boolean", "object")), None)
        if target and obj[1:]:
            where = f"{obj[0]} the {' '.join(obj[1:])}"
            actions.append(Action(f"{verb} {{slot}} {where} {{rest}}", "slot", target.name))
        elif target:
            actions += [Action(f"{s} {obj[0]} {{slot}} {{rest}}", "slot", target.name) for s in synonyms]
        return actions
    if verb == "send" and obj and obj[-1] in P.SEND_IDIOMS:
        target = next((p for p in required if kinds[p.name] in ("person", "email")), None)
        if target:
            actions += [Action(t + " {rest}", "slot", target.name) for t in P.SEND_IDIOMS[obj[-1]]]
    if "remind" in obj or "reminder" in obj:
        target = next((p for p in required if kinds[p.name] in FREE_TEXT), None)
        if target:
            actions += [Action(t, "slot", target.name) for t in (
                "remind me {rest} to {slot}", "remind me to {slot} {rest}")]
    fits = P.SLOT_VERBS.get(verb, set())
    target = next((p for p in required if kinds[p.name].removeprefix("list:") in fits), None)
    if target:
        actions += [Action(f"{s} {{slot}} {{rest}}", "slot", target.name) for s in synonyms]
    for param in tool.params:
        kind, param_words = kinds[param.name], set(name_words(param.name))
        shared = param_words & set(obj) - {"name", "id"}
        slot = owners.get(param.name, param.name)
        # "to_currency" names the object too, but "convert EUR" would read as the source.
        if kind in ("boolean", "object") or (param_words & ROLE_WORDS and param.name not in owners):
            continue
        if kind == "enum" and param_words & P.TYPE_WORDS and obj and (shared or param.required):
            actions += [Action(f"{s} {{a}} {{slot}} {noun} {{rest}}", "slot", slot) for s in synonyms]
        elif kind == "enum" and shared:
            actions += [Action(f"{s} my {{slot}} {{rest}}", "slot", slot) for s in synonyms]
        elif shared:
            actions += [Action(f"{s} {{slot}} {{rest}}", "slot", slot) for s in synonyms]
    for param in required:  # on/off switches: "turn off the lights", "turn on do not disturb"
        if is_switch(param, kinds[param.name]) and obj:
            the = "" if obj[0] in P.NO_ARTICLE else "the "
            actions += [Action(f"{s} {{slot}} {the}{noun} {{rest}}", "slot", param.name)
                        for s in ("turn", "switch")]
    return actions


def _object_phrase(verb: str, obj: list[str]) -> str:
    """The object with a fitting article: "a timer", "the weather", "music", "to the shopping list"."""
    if not obj:
        return ""
    if obj[0] in P.PREPOSITIONS:
        return obj[0] + (" the " + " ".join(obj[1:]) if obj[1:] else "")
    last = obj[-1]
    if obj[0] in P.NO_ARTICLE or last in P.MASS_NOUNS:
        article = ""
    elif verb in P.THE_VERBS or last in P.THE_NOUNS or (last.endswith("s") and not last.endswith("ss")):
        article = "the "
    else:
        article = "an " if obj[0][0] in "aeiou" else "a "
    return article + " ".join(obj)


def description_action(description: str) -> str | None:
    """The description's first clause as an order: "Starts a countdown timer." -> "start a countdown timer".

    None when it does not start with a verb ("The current weather.").
    """
    sentence = re.split(r"(?<=[.!?])\s|\n", description.strip())[0].rstrip(".!? ")
    sentence = re.split(r"\s*\(|\s*e\.g\.", sentence)[0]
    lowered = sentence.lower()
    prefix = next((p for p in _DESC_PREFIXES if lowered.startswith(p)), "")
    sentence = sentence[len(prefix):]
    parts = re.split(_DESC_STOPS, sentence)[0].split()
    while parts and parts[-1].lower() in _DANGLING:  # "calculate the factorial of a" -> "... factorial"
        parts.pop()
    if not parts or len(parts) > 8:
        return None
    first = parts[0].lower()
    base = next((b for b in (first, first[:-1], first[:-2], first[:-3] + "y")
                 if b in P.VERBS and (b == first or first.endswith("s"))), None)
    if base is None:
        return None
    return " ".join([base] + parts[1:])
