"""How one argument is written in a sentence: the clauses around its value.

`clause_templates(value)` gives the ways to say one drawn value ("for {v} minutes", "to {v}",
"with shuffle on"); the offline teacher picks one and fills in the value, its unit and the
parameter's words.
"""

from __future__ import annotations

from distillery.tasks.tool_calling.schema import Param
from distillery.tasks.tool_calling import entities
from distillery.tasks.tool_calling import phrasing as P
from distillery.tasks.tool_calling.offline_values import Value, clean_description, name_words, words

_SWITCH = frozenset({"enabled", "enable", "on", "active", "state", "power"})
_BOOL_VERBS = frozenset({"avoid", "include", "repeat", "notify", "allow", "skip", "save", "send",
                         "share", "mute", "loop", "round", "sort", "use", "show", "keep", "add"})

_DURATION_UNITS = ("minutes", "seconds", "hours", "days", "weeks")
_PERCENT_WORDS = ("percent", "percentage", "pct", "level")
_COUNT_WORDS = ("num", "number", "count", "of", "n", "k", "max", "total")


def clause_templates(value: Value) -> tuple[str, ...]:
    """Ways to write one argument; `{v}` is the value, `{u}` its unit, `{pw}` the parameter's words."""
    kind, param = value.kind, value.param
    tokens = set(name_words(param.name))
    if kind == "enum":
        return _enum_templates(param, tokens)
    if kind == "boolean":
        return _bool_templates(param, value.target)
    if kind == "temperature":
        return ("to {v} degrees {u}", "to {v} {u}", "at {v} {u}") if value.unit else \
               ("to {v} degrees", "at {v} degrees", "to {v}°", "to {v}")
    if kind == "percent":
        other = " ".join(w for w in name_words(param.name) if w not in _PERCENT_WORDS)
        if other:
            return (f"with a {{v}}% {other}", f"{other} {{v}}%", f"{other} at {{v}} percent")
        return ("to {v}%", "to {v} percent", "at {v}%", "at {v} percent")
    if kind == "count":
        noun = [w for w in name_words(param.name) if w not in _COUNT_WORDS]
        if noun:
            word = " ".join(noun)
            word = word[:-1] if value.target == 1 and word.endswith("s") else word
            return (f"for {{v}} {word}", f"with {{v}} {word}")
        kind = "number"
    if kind in ("distance", "measure", "money") and not value.unit:
        return P.CLAUSES["number"] + (("at {v}", ": {v}") if kind == "measure" else ())
    if kind == "date":
        return ("on {v}", "for {v}") if value.surface in P.DATES_ON else ("{v}", "for {v}")
    if kind == "number":
        return P.LETTER_CLAUSES if len(param.name) == 1 else P.NUMBER_CLAUSES
    if kind == "fraction":
        return P.FRACTION_CLAUSES
    if kind == "entity":
        return entities.clauses(entities.category(list(tokens), clean_description(param.description)))
    for role, templates in P.ROLE_CLAUSES:
        if tokens & role and kind in ("person", "email", "language", "currency", "time", "unit"):
            return templates
    return P.CLAUSES.get(kind, ("{pw} {v}",))


def unit_word(value: Value) -> str:
    """The unit written after a number: the linked unit, or the one its name implies."""
    if value.unit:
        return value.unit
    if value.kind == "duration":
        tokens = name_words(value.param.name) + words(clean_description(value.param.description))
        unit = next((u for u in _DURATION_UNITS if u in tokens or u[:-1] in tokens), "minutes")
        return unit[:-1] if value.target == 1 else unit
    return ""


def is_switch(param: Param, kind: str) -> bool:
    """An on/off parameter: a boolean named like "enabled", or an enum of on and off."""
    if kind == "boolean":
        return bool(set(name_words(param.name)) & _SWITCH)
    return bool(param.enum) and {str(m) for m in param.enum} <= {"on", "off"}


def _enum_templates(param: Param, tokens: set[str]) -> tuple[str, ...]:
    if tokens & {"unit", "units"}:
        return ("in {v}",)
    if is_switch(param, "enum"):
        return ("switched {v}", "{pw} {v}", "to {v}")
    if tokens & {"mode", "transport", "travel"}:
        return ("by {v}", "in {v} mode")
    if tokens & {"source", "service", "platform", "app", "provider", "carrier", "network",
                 "channel", "exchange", "via"}:
        return ("on {v}", "via {v}", "using {v}")
    if tokens & {"color", "colour"}:
        return ("in {v}", "to {v}")
    return ("{pw} {v}", "with {pw} {v}", "{pw} set to {v}", "as {v}")


def _bool_templates(param: Param, flag: bool) -> tuple[str, ...]:
    phrase = " ".join(w for w in name_words(param.name) if w not in ("is", "has", "should", "enable"))
    phrase = phrase or " ".join(name_words(param.name))
    if is_switch(param, "boolean"):
        return ("on", "to on", "enabled") if flag else ("off", "to off", "disabled")
    first, rest = phrase.split()[0], " ".join(phrase.split()[1:])
    if first == "include" and rest:  # "including human impact", "without tax"
        return (f"including {rest}", f"with {rest}", f"and include {rest}") if flag else \
               (f"without {rest}", f"excluding {rest}", f"not including {rest}")
    if first in _BOOL_VERBS or (first in P.VERBS and len(phrase.split()) > 1):
        return (f"and {phrase}", f"and {phrase} too", f"and make it {phrase}") if flag else \
               (f"and don't {phrase}", f"and do not {phrase}")
    return (f"with {phrase} on", f"with {phrase}", f"{phrase} on") if flag else \
           (f"with {phrase} off", f"no {phrase}", f"without {phrase}", f"{phrase} off")
