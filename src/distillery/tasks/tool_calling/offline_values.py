"""What each parameter means, and a realistic value for it written the way people say it.

The offline teacher reads a parameter's name, type and description, infers a *kind*
("person", "time", "duration", "message"...), draws a value from that kind's pool or range,
and the text that says it (`clauses.py` writes the clause around it: "for 10 minutes", "to
Sarah"). The target value is always recoverable from the text: strings verbatim, numbers as
digits.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

from distillery.tasks.tool_calling.schema import Param, Tool
from distillery.tasks.tool_calling.spans import NUMBER_WORDS
from distillery.tasks.tool_calling import entities
from distillery.tasks.tool_calling import phrasing as P

# Kinds whose value is free text: rendered last, quoted when anything follows them.
FREE_TEXT = frozenset({"message", "title", "query", "task", "label", "music", "text"})

_STRING_BY_NAME = (
    ({"email", "cc", "bcc", "mail"}, "email"),
    ({"phone", "mobile", "tel"}, "phone"),
    ({"url", "link", "website", "site", "domain"}, "url"),
    ({"language", "lang", "locale"}, "language"),
    ({"currency"}, "currency"),
    ({"symbol", "ticker", "stock"}, "symbol"),
    ({"tracking", "confirmation", "code", "id", "sku", "serial"}, "code"),
    ({"datetime", "when"}, "datetime"),
    ({"time", "until", "till", "deadline"}, "time"),
    ({"date", "day", "birthday"}, "date"),
    ({"recipient", "recipients", "contact", "person", "attendee", "attendees", "friend",
      "assignee", "caller", "who", "invitee", "invitees", "participants", "guest", "guests",
      "user", "username"}, "person"),
    ({"unit", "units"}, "unit"),  # before the roles: "to_unit" is a unit, not a place
    ({"destination", "dropoff", "to"}, "destination"),
    ({"pickup", "origin", "from", "start", "source"}, "origin"),
    ({"location", "city", "place", "where", "address", "venue", "region", "country", "town"}, "place"),
    ({"message", "body", "text", "content", "note", "comment", "description", "details", "msg",
      "notes", "caption", "reply"}, "message"),
    ({"title", "subject", "summary", "headline", "event"}, "title"),
    ({"query", "search", "keyword", "keywords", "q", "question", "term", "prompt", "topic"}, "query"),
    ({"task", "todo", "reminder", "what"}, "task"),
    ({"list"}, "listname"),
    ({"label", "tag", "tags", "nickname", "name"}, "label"),
    ({"song", "artist", "album", "playlist", "track", "music", "station", "genre"}, "music"),
    ({"restaurant", "store", "shop", "merchant", "vendor"}, "restaurant"),
    ({"food", "dish", "dishes", "meal", "item", "items", "product", "products", "ingredient",
      "ingredients", "groceries", "grocery"}, "item"),
    ({"room", "zone"}, "room"),
    ({"device", "speaker", "output"}, "device"),
    ({"color", "colour"}, "color"),
)
# Fallback when the name says nothing: words of the description, most specific first.
_STRING_BY_DESC = (
    ("email", "email"), ("phone", "phone"), ("city", "place"), ("location", "place"),
    ("address", "place"), ("time", "time"), ("date", "date"), ("day", "date"),
    ("person", "person"), ("contact", "person"), ("language", "language"),
    ("currency", "currency"), ("message", "message"), ("text", "message"),
    ("title", "title"), ("search", "query"),
)
_NUMBER_BY_NAME = (
    ({"minutes", "mins", "seconds", "secs", "hours", "hrs", "days", "weeks", "duration"}, "duration"),
    ({"temperature", "temp", "degrees"}, "temperature"),
    ({"percent", "percentage", "pct", "volume", "brightness", "level"}, "percent"),
    ({"distance", "km", "miles", "meters", "mileage"}, "distance"),
    ({"amount", "price", "cost", "budget", "total", "salary", "balance", "fare", "payment", "investment",
      "income", "principal", "principle", "deposit", "revenue", "loan", "dividends", "profit", "savings",
      "debt", "payout", "equity"}, "money"),
    ({"value", "reading", "measurement"}, "measure"),
    ({"count", "num", "number", "quantity", "qty", "passengers", "people", "guests", "servings",
      "results", "limit", "copies", "times", "n", "k", "top", "seats", "nights", "players"}, "count"),
)
# (word, low, high, step): the realistic range for a quantity whose context has that word.
_RANGES = (
    ("tip", 10, 25, 1), ("fahrenheit", 60, 80, 1), ("celsius", 16, 28, 0.5),
    ("temperature", 16, 28, 0.5), ("lbs", 110, 240, 0.1), ("pounds", 110, 240, 0.1),
    ("kg", 50, 110, 0.1), ("kilograms", 50, 110, 0.1), ("weight", 50, 110, 0.1),
    ("heart", 50, 120, 1), ("bpm", 50, 120, 1), ("steps", 1000, 20000, 10),
    ("sleep", 4, 10, 0.5), ("pressure", 100, 150, 1), ("miles", 1, 26, 0.5),
    ("km", 1, 42, 0.5), ("distance", 1, 42, 0.5), ("meters", 50, 5000, 50),
    ("brightness", 5, 100, 5), ("volume", 5, 100, 5), ("percent", 5, 100, 5), ("level", 5, 100, 5),
    ("minutes", 1, 90, 1), ("seconds", 10, 300, 5), ("hours", 1, 12, 1), ("days", 1, 14, 1),
    ("weeks", 1, 8, 1), ("amount", 5, 500, 0.01), ("price", 5, 500, 0.01), ("cost", 5, 500, 0.01),
    ("passengers", 1, 6, 1), ("results", 1, 10, 1), ("year", 1950, 2030, 1), ("age", 1, 90, 1),
    ("investment", 500, 50000, 500), ("principal", 1000, 100000, 500), ("income", 1000, 200000, 1000),
    ("loan", 1000, 500000, 1000), ("deposit", 100, 20000, 100), ("revenue", 10000, 5000000, 10000),
    ("equity", 10000, 5000000, 10000), ("dividends", 100, 100000, 100),
)
# A float named like these is a share of a whole: passed as 0.05, said as "5%" or "0.05".
_FRACTION_WORDS = frozenset({"rate", "ratio", "probability", "prob", "yield", "return", "growth", "discount",
                             "alpha", "significance", "proportion", "fraction", "chance", "interest"})
# Words that say which end of a transfer a parameter is ("to_currency"), not what it measures.
ROLE_WORDS = frozenset({"to", "from", "target", "source", "into", "base"})


def name_words(name: str) -> list[str]:
    """Split a tool or parameter name into lowercase words: `math.getFactorial` -> get, factorial."""
    last = name.split(".")[-1] or name
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", last)
    return [w.lower() for w in re.split(r"[_\-\s/]+", spaced) if w]


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def clean_description(text: str) -> str:
    """The description without its examples, which name other values ("e.g. 75 for weight")."""
    return re.split(r"\(|e\.g\.|\beg\b|for example", text.lower())[0]


def param_kind(tool: Tool, param: Param) -> str:
    """The kind of value a parameter holds; arrays are `list:<element kind>`."""
    if param.enum:
        return "enum"
    if param.type == "boolean":
        return "boolean"
    if param.type in ("integer", "number"):
        return _number_kind(param)
    if param.type == "object":
        return "object"
    if param.type == "array":
        if param.items in ("object", "array", "boolean"):
            return "object"  # no sensible spoken form: given empty, and only when required
        if param.items in ("integer", "number"):
            return "list:number"
        return "list:" + _string_kind(tool, param)
    return _string_kind(tool, param)


def _number_kind(param: Param) -> str:
    tokens = set(name_words(param.name))
    if param.type == "number" and tokens & _FRACTION_WORDS:
        return "fraction"
    for names, kind in _NUMBER_BY_NAME:
        if tokens & names:
            return kind
    desc = set(words(clean_description(param.description)))
    return "duration" if desc & {"minutes", "seconds", "hours"} else "number"


def _string_kind(tool: Tool, param: Param) -> str:
    desc = clean_description(param.description)
    tokens = set(name_words(param.name))
    if "email address" in desc:
        kind = "email"
    elif {"date", "time"} <= tokens:
        kind = "datetime"
    else:
        kind = next((k for names, k in _STRING_BY_NAME if tokens & names), None)
        if kind is None:
            kind = next((k for w, k in _STRING_BY_DESC if w in words(desc)), "text")
    tool_words = set(name_words(tool.name)) | set(words(tool.description))
    if kind in ("query", "text", "label", "title") and tool_words & {"music", "song", "playlist", "play"}:
        return "music"
    if kind in ("text", "label") and entities.category(name_words(param.name), desc):
        return "entity"
    if kind == "item":
        return "dish" if tool_words & {"food", "restaurant", "meal", "dish", "menu"} else "grocery"
    return kind


# ----------------------------------------------------------------- values

@dataclass
class Value:
    """One argument: its kind, the target put in the call, and how it reads in the text."""

    param: Param
    kind: str
    target: Any
    surface: str
    unit: str = ""  # a number's unit as written ("kg"), from a linked unit parameter


def link_units(tool: Tool, kinds: dict[str, str]) -> dict[str, str]:
    """Map each number parameter to the parameter holding its unit ("value" -> "unit")."""
    numbers = [p for p in tool.params if p.type in ("integer", "number") and p.enum is None]
    links: dict[str, str] = {}
    for p in tool.params:
        tokens = name_words(p.name)
        is_unit = bool(set(tokens) & {"unit", "units"})
        is_from_currency = kinds[p.name] == "currency" and (
            set(tokens) & {"from", "source", "base"} or tokens == ["currency"])
        if not (is_unit or is_from_currency) or p.type not in ("string", "any"):
            continue  # "per_unit_time" (an integer) is a quantity, not a unit
        # Role words name no quantity: "to_unit" is not the unit of "round_to".
        other = set(tokens) - {"unit", "units"} - ROLE_WORDS
        match = [n for n in numbers if other & set(name_words(n.name))]
        if is_from_currency:
            match = [n for n in numbers if kinds[n.name] == "money"] or numbers[:1]
        elif not match and len(numbers) == 1:
            match = numbers
        if match and match[0].name not in links:
            links[match[0].name] = p.name
    return links


def make_value(tool: Tool, param: Param, kind: str, context: list[str], rng: random.Random,
               unit: str = "") -> Value:
    """Draw a realistic value for `param`; `context` holds words of the values already drawn."""
    if kind == "enum":
        member = rng.choice(list(param.enum))
        return Value(param, kind, member, _enum_surface(member, rng))
    if kind == "boolean":
        flag = rng.random() < 0.5
        return Value(param, kind, flag, "on" if flag else "off")
    if kind == "object":
        return Value(param, kind, [] if param.type == "array" else {}, "")
    if kind.startswith("list:"):
        return _list_value(tool, param, kind[5:], context, rng)
    if kind in ("duration", "temperature", "percent", "distance", "money", "measure", "count", "number"):
        number = _number(param, [unit] + context, rng, broad=kind == "number")
        return Value(param, kind, number, _written(number, kind, unit, rng), unit)
    if kind == "fraction":
        return _fraction(param, rng)
    if kind == "entity":
        return Value(param, kind, *[_entity_value(param, rng)] * 2)
    if kind == "text":
        return Value(param, kind, *[_text_value(param, rng)] * 2)
    if kind == "unit":
        choice = rng.choice(_unit_choices(None, context))
        return Value(param, kind, choice, choice)
    text = _string_value(kind, tool, rng)
    return Value(param, kind, text, text)


def choose_unit(param: Param, kind: str, context: list[str], rng: random.Random) -> Value:
    """A unit (or currency) for a number, consistent with what is measured."""
    if kind == "currency":
        code = rng.choice(P.CURRENCIES)
        return Value(param, kind, code, code)
    members = list(param.enum) if param.enum is not None else None
    surface = rng.choice(_unit_choices(members, context))
    target = surface
    if members is not None and surface not in members:
        target = surface = rng.choice(members)
        surface = _enum_surface(target, rng)
    return Value(param, kind, target, surface)


def _unit_choices(members: list | None, context: list[str]) -> list:
    for text in context:
        for key, units in P.UNITS.items():
            if key in words(text):
                fitting = [u for u in units if members is None or u in members]
                if fitting:
                    return fitting
    return members if members else list(P.LENGTH_UNITS)


def _enum_surface(member: Any, rng: random.Random) -> str:
    text = str(member).replace("_", " ")
    roll = rng.random()
    if roll < 0.1:
        return text.upper() if len(text) <= 4 else text.title()
    if roll < 0.2:
        return text.lower()
    return text


def _number(param: Param, context: list[str], rng: random.Random, broad: bool = False) -> int | float:
    # The unit (context[0]) outranks the name: "temperature" in "fahrenheit" is 60-80.
    texts = context[:1] + [param.name.replace("_", " "), clean_description(param.description)] + context[1:]
    # An array's elements have the array's item type: a list of integers holds whole numbers.
    whole = param.type == "integer" or param.items == "integer"
    low, high, step = 1, 100, 1 if whole or param.type == "array" else 1.0
    found = next(((lo, hi, st) for text in texts for word, lo, hi, st in _RANGES
                  if word in words(text)), None)
    if found:
        low, high, step = found
    declared = re.search(r"(\d+)\s*(?:to|-)\s*(\d+)", clean_description(param.description))
    if declared:
        low, high = int(declared.group(1)), int(declared.group(2))
    elif broad and not found:
        return _any_number(whole, rng)
    # Most people say whole numbers; a `number` parameter sometimes gets a fraction.
    if whole or step >= 1 or rng.random() < 0.6:
        step = max(1, int(step))
        return low + step * rng.randint(0, max(0, (high - low) // step))
    if step == 1.0:
        step = 0.1
    value = round(low + step * rng.randint(0, int((high - low) / step)), 2)
    return int(value) if value == int(value) else value


def _any_number(whole: bool, rng: random.Random) -> int | float:
    """A quantity nothing says the range of (a coefficient, an income, a side): mostly small,
    sometimes large, negative or zero, and a fraction now and then."""
    roll = rng.random()
    if roll < 0.45:
        number = rng.randint(1, 20)
    elif roll < 0.7:
        number = rng.randint(21, 999)
    elif roll < 0.85:
        number = rng.choice((1, 2, 5, 10, 12, 15, 25, 50)) * rng.choice((100, 1000, 10000, 100000))
    elif roll < 0.95:
        number = -rng.randint(1, 50)
    else:
        number = 0
    if not whole and rng.random() < 0.3:
        return round(number / rng.choice((10, 100)) if number else rng.randint(1, 99) / 100, 2)
    return number


# Small whole numbers people often write as words; the decoder reads them back (spans.py).
WORD_RATE = 0.2
_WORDY = frozenset({"count", "number", "duration", "distance", "measure"})
_SAID_AS_WORD = {n: word for word, n in NUMBER_WORDS.items() if 0 < n <= 12 or n in (20, 30, 50, 100)}


def _written(number: int | float, kind: str, unit: str, rng: random.Random) -> str:
    """A number as people write it: "12,000" as often as "12000", money without a unit as "$5,000"."""
    text = format_number(number)
    if kind in _WORDY and isinstance(number, int) and number in _SAID_AS_WORD and rng.random() < WORD_RATE:
        return _SAID_AS_WORD[number]  # "two tickets", "the top ten", "for five minutes"
    if kind in ("number", "money") and isinstance(number, int) and number >= 1_000_000 \
            and number % 100_000 == 0 and rng.random() < 0.4:
        scale, name = (1_000_000_000, "billion") if number >= 1_000_000_000 else (1_000_000, "million")
        text = f"{format_number(number / scale)} {name}"  # "50 million", "1.5 billion"
        return "$" + text if kind == "money" and not unit and rng.random() < 0.6 else text
    if kind not in ("number", "money") or (kind == "money" and unit):
        return text
    looks_like_year = isinstance(number, int) and 1900 <= number <= 2100
    if isinstance(number, int) and abs(number) >= 1000 and not looks_like_year and rng.random() < 0.5:
        text = f"{number:,}"
    if kind == "money" and number >= 0 and rng.random() < 0.6:
        text = "$" + text
    return text


def _fraction(param: Param, rng: random.Random) -> Value:
    """A rate or probability: 0.05 in the call; "5%" or "0.05" in the request. A parameter whose
    description asks for a percentage takes 5 and is said "5%"."""
    tokens = set(name_words(param.name))
    rate = bool(tokens & {"rate", "yield", "return", "growth", "discount", "interest"})
    if rate:
        percent = rng.choice((1, 2, 2.5, 3, 4, 5, 5, 6, 7, 8, 10, 12, 15, 20))
    else:
        percent = rng.choice((1, 5, 10, 25, 30, 50, 60, 75, 80, 90, 95, 99))
    described = param.description.lower()
    if "percent" in described and "decimal" not in described:
        return Value(param, "fraction", percent, f"{format_number(percent)}%")
    share = float(f"{percent / 100:.10g}")
    said_percent = rng.random() < (0.7 if rate else 0.2)
    return Value(param, "fraction", share, f"{format_number(percent)}%" if said_percent else format_number(share))


def description_examples(description: str) -> list[str]:
    """Values a description gives as examples: quoted ones, and those after "e.g." or "such as"."""
    found = re.findall(r"'([^'\n]{1,40})'|\"([^\"\n]{1,40})\"", description)
    examples = [a or b for a, b in found]
    for match in re.finditer(r"(?:e\.g\.,?|eg:|for example,?|such as|example,)\s+([^()'\";.]+)", description, re.I):
        examples += [part.strip() for part in re.split(r",| or ", match.group(1)) if part.strip()]
    return [e.strip() for e in dict.fromkeys(examples) if 0 < len(e.strip()) <= 40 and re.search(r"\w", e)]


def _made_up_name(rng: random.Random) -> str:
    """A name nobody uses, so a student learns to copy one rather than to remember one."""
    syllables = ("ka", "lo", "mi", "ran", "te", "vo", "zu", "bel", "dor", "fi", "gan", "hu", "nel", "pra", "sol")
    word = lambda: "".join(rng.choice(syllables) for _ in range(rng.randint(2, 3))).capitalize()  # noqa: E731
    return word() if rng.random() < 0.6 else f"{word()} {word()}"


def _entity_value(param: Param, rng: random.Random) -> str:
    examples = description_examples(param.description)
    if examples and rng.random() < 0.3:
        return rng.choice(examples)
    cat = entities.category(name_words(param.name), clean_description(param.description))
    return rng.choice(entities.values(cat)) if rng.random() < 0.85 else _made_up_name(rng)


def _text_value(param: Param, rng: random.Random) -> str:
    """A string nothing says the kind of: an example from its description, or a name."""
    examples = description_examples(param.description)
    if examples and rng.random() < 0.6:
        return rng.choice(examples)
    return _made_up_name(rng) if rng.random() < 0.5 else rng.choice(P.GENERIC_TEXT)


def format_number(number: int | float) -> str:
    if isinstance(number, float):
        return f"{number:.2f}".rstrip("0").rstrip(".")
    return str(number)


def _person(rng: random.Random) -> str:
    first = rng.choice(P.FIRST_NAMES)
    if rng.random() < 0.2 and " " not in first and first not in ("Mom", "Dad", "Grandma"):
        return f"{first} {rng.choice(P.LAST_NAMES)}"
    return first


def _email(rng: random.Random) -> str:
    first = rng.choice([n for n in P.FIRST_NAMES if n.isalpha() and n not in ("Mom", "Dad", "Grandma")])
    user = first.lower() if rng.random() < 0.5 else f"{first}.{rng.choice(P.LAST_NAMES)}".lower()
    return f"{user}@{rng.choice(P.EMAIL_DOMAINS)}"


def _code(rng: random.Random) -> str:
    alnum = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
    style = rng.randrange(3)
    if style == 0:
        return "1Z" + "".join(rng.choice(alnum) for _ in range(10))
    if style == 1:
        return "".join(rng.choice("0123456789") for _ in range(12))
    return "TBA" + "".join(rng.choice("0123456789") for _ in range(9))


_POOLS = {
    "place": P.CITIES, "language": P.LANGUAGES, "currency": P.CURRENCIES, "symbol": P.SYMBOLS,
    "time": P.TIMES, "date": P.DATES_BARE + P.DATES_ON, "title": P.TITLES, "query": P.QUERIES,
    "task": P.TASKS, "label": P.LABELS, "listname": P.LIST_NAMES, "music": P.MUSIC,
    "restaurant": P.RESTAURANTS, "grocery": P.GROCERIES, "dish": P.DISHES, "room": P.ROOMS,
    "device": P.DEVICES, "color": P.COLORS, "url": P.URLS, "text": P.GENERIC_TEXT,
    "destination": P.PLACES + P.CITIES, "origin": P.PLACES + P.CITIES,
}


def _string_value(kind: str, tool: Tool, rng: random.Random) -> str:
    if kind == "person":
        return _person(rng)
    if kind == "email":
        return _email(rng)
    if kind == "phone":
        return f"555-{rng.randint(100, 9999):04d}"
    if kind == "code":
        return _code(rng)
    if kind == "datetime":
        return f"{rng.choice(P.DATES_BARE + P.DATES_ON)} at {rng.choice(P.TIMES)}"
    if kind == "message":
        is_note = "note" in name_words(tool.name)
        return rng.choice(P.NOTES + P.MESSAGES if is_note else P.MESSAGES)
    return rng.choice(_POOLS.get(kind, P.GENERIC_TEXT))


def _list_value(tool: Tool, param: Param, element: str, context: list[str],
                rng: random.Random) -> Value:
    count = rng.choice((1, 2, 2, 3, 3, 4))
    items: list = []
    for _ in range(count * 4):  # draw until `count` distinct items (pools may be small)
        if len(items) == count:
            break
        if element == "number":
            item = _number(param, [""] + context, rng, broad=True)
        elif element in ("text", "entity"):
            item = _entity_value(param, rng) if element == "entity" else _text_value(param, rng)
        else:
            item = _string_value(element, tool, rng)
        if item not in items:
            items.append(item)
    shown = [format_number(i) if element == "number" else i for i in items]
    if len(shown) == 1:
        surface = shown[0]
    elif element == "number" and rng.random() < 0.4:  # "[200, 300, 400]", as data is often written
        surface = "[" + (", " if rng.random() < 0.7 else ",").join(shown) + "]"
    else:
        comma = ", and " if len(shown) > 2 and rng.random() < 0.3 else " and "
        surface = ", ".join(shown[:-1]) + comma + shown[-1]
    return Value(param, "list:" + element, items, surface)
