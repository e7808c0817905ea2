"""The offline span teacher: span-extraction examples written from the declared types alone.

No LLM and no network. Each declared type is read, from its name and description, as one
kind of value this teacher can write (person names, emails, phone numbers...). A candidate is
a short realistic text (a chat message, an email, a support ticket, a note, a form, a call
transcript) made of sentences from `words.py` whose slots get fresh values; the answer lists
those values in order of appearance. Candidate `i` depends only on (seed, i), so a run is
reproducible and a resumed run makes the same candidates.
"""

from __future__ import annotations

import calendar
import math
import random
import re
import string
import unicodedata
from dataclasses import dataclass

from distillery.tasks.spans import words as W

# The kinds of value this teacher writes, and the sentence slots each one fills.
KIND_SLOTS = {
    "person": ("person",), "email": ("email",), "phone": ("phone",), "address": ("address",),
    "date": ("date",), "time": ("time",), "amount": ("amount",), "organization": ("org",),
    "location": ("location",), "identifier": tuple(W.ID_PATTERNS),
}
KINDS_SAID = ("person names, email addresses, phone numbers, street addresses, dates, times, "
              "identifiers (order, account, IBAN, passport, SSN, card, ticket, invoice and tracking "
              "numbers), money amounts, organizations and locations")

_WORD_KIND = {word: kind for kind, kind_words in W.KIND_WORDS.items() for word in kind_words}
GENRES = ("chat", "email", "ticket", "note", "form", "transcript")
GENRE_WEIGHTS = (3, 3, 2, 2, 1.5, 1.5)
SPAN_COUNTS, SPAN_COUNT_WEIGHTS = (1, 2, 3, 4), (45, 33, 17, 5)
FILLER_RATE = 0.45  # how often a span-less sentence joins the ones that carry spans
# Candidate i carries no span when frac(offset + i * c) < none_ratio, so every window of
# candidates holds the asked share of empty answers.
_GOLDEN = (math.sqrt(5) - 1) / 2
_SLOT = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class SpanType:
    """A kind of span the user wants extracted: "customer", "the customer's full name"."""

    name: str
    description: str = ""


def _words(text: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text)  # "orderNumber" -> "order Number"
    return re.findall(r"[a-z]+", spaced.lower())


def kind_of(span_type: SpanType) -> str | None:
    """The kind of value a type holds, read from its name, then its description; None if neither says."""
    readings = (_words(span_type.name)[::-1], _words(span_type.description))
    for table in (_WORD_KIND, W.WEAK_WORDS):
        for words in readings:
            kind = next((table[w] for w in words if w in table), None)
            if kind:
                return kind
    return None


def id_slot(span_type: SpanType) -> str | None:
    """Which identifier an identifier type means ("iban", "order"...), None for any of them."""
    said = set(_words(span_type.name)) | set(_words(span_type.description))
    return next((slot for slot, slot_words in W.ID_WORDS if said & slot_words), None)


class OfflineSpanTeacher:
    """Makes (text, spans) candidates for any declared span types this teacher can read, with no LLM."""

    def __init__(self, types: list[SpanType], *, seed: int = 0, none_ratio: float = 0.15):
        if not types:
            raise ValueError("the offline span teacher needs at least one span type")
        if not 0 <= none_ratio <= 1:
            raise ValueError(f"none_ratio must be between 0 and 1, got {none_ratio}")
        names = [t.name for t in types]
        if len(set(names)) < len(names):
            raise ValueError(f"span type names must be unique, got {names}")
        self.types = list(types)
        self.seed = seed
        self.none_ratio = none_ratio
        self.kinds = {t.name: kind_of(t) for t in self.types}
        unknown = [t for t in self.types if self.kinds[t.name] is None]
        if unknown:
            said = ", ".join(f"'{t.name}' ({t.description!r})" if t.description else f"'{t.name}'"
                             for t in unknown)
            raise ValueError(
                f"the offline teacher cannot write values for span type {said}: it writes {KINDS_SAID}. "
                f"Name or describe the type with one of those words (e.g. 'customer': \"the customer's "
                f"full name\"), or use an LLM teacher.")
        self._slot_types = _assign_slots(self.types, self.kinds)
        usable = [s for s in W.SENTENCES if set(_SLOT.findall(s)) <= set(self._slot_types)]
        self._by_type = {t.name: [s for s in usable
                                  if t.name in {self._slot_types[x] for x in _SLOT.findall(s)}]
                         for t in self.types}
        self._offset = random.Random(f"{seed}:offset").random()

    def candidate(self, index: int) -> dict:
        """Candidate `index`: {"text", "spans": [{"type", "text"}], "teacher": {"provider", "frame"}}."""
        rng = random.Random(f"{self.seed}:{index}")
        genre = rng.choices(GENRES, GENRE_WEIGHTS)[0]
        if (self._offset + index * _GOLDEN) % 1.0 < self.none_ratio:
            genre = "chat" if genre == "form" else genre  # an empty form is not a message
            sentences = rng.sample(W.NEUTRAL, rng.randint(1, 3))
            text, spans = self._fill(_wrap(genre, sentences, rng, signed=False), rng)
            return _candidate(text, spans, "none." + genre)
        target = rng.choices(SPAN_COUNTS, SPAN_COUNT_WEIGHTS)[0]
        if genre == "form":
            template = self._form(target, rng)
        else:
            sentences = self._sentences(target, rng)
            if rng.random() < FILLER_RATE:
                sentences.insert(rng.randint(0, len(sentences)), rng.choice(W.NEUTRAL))
            signed = "person" in self._slot_types and rng.random() < 0.5
            template = _wrap(genre, sentences, rng, signed)
        text, spans = self._fill(template, rng)
        return _candidate(text, spans, genre)

    def _sentences(self, target: int, rng: random.Random) -> list[str]:
        """Sentences whose slots add up to `target` spans; types take turns at random, so a type
        with many sentences (any identifier) does not crowd out the others."""
        chosen: list[str] = []
        count = 0
        while count < target:
            pool = self._by_type[rng.choice(self.types).name]
            fits = [s for s in pool if s not in chosen and count + len(_SLOT.findall(s)) <= target]
            sentence = rng.choice(fits or [s for s in pool if len(_SLOT.findall(s)) == 1])
            chosen.append(sentence)
            count += len(_SLOT.findall(sentence))
        return chosen

    def _form(self, target: int, rng: random.Random) -> str:
        """A filled-in form, one "Label: value" line per type."""
        types = rng.sample(self.types, min(target, len(self.types)))
        slots = [rng.choice([s for s, name in self._slot_types.items() if name == t.name]) for t in types]
        lines = [f"{rng.choice(W.FORM_LABELS[slot])}: {{{slot}}}" for slot in slots]
        if rng.random() < 0.4:
            lines.append("Comments: " + rng.choice(W.NEUTRAL))
        return rng.choice(W.FORM_SEPARATORS).join(lines)

    def _fill(self, template: str, rng: random.Random) -> tuple[str, list[dict]]:
        """The template with a fresh value in each slot, and the spans in order of appearance."""
        text, spans, starts, used, names, last = "", [], [], set(), [], 0
        for match in _SLOT.finditer(template):
            text += template[last:match.start()]
            slot = match.group(1)
            value = self._value(slot, rng, used, names)
            starts.append(len(text))
            spans.append({"type": self._slot_types[slot], "text": value})
            text += value
            last = match.end()
        text += template[last:]
        for start, span in zip(starts, spans):
            assert text[start:start + len(span["text"])] == span["text"], (text, span)
        return text, spans

    def _value(self, slot: str, rng: random.Random, used: set[str], names: list[str]) -> str:
        # Redraw a value that repeats or contains an earlier one: each span is found once, in order.
        for _ in range(8):
            value = self._draw(slot, rng, names)
            if not any(value in u or u in value for u in used):
                break
        used.add(value)
        if slot == "person":
            names.append(value)
        return value

    def _draw(self, slot: str, rng: random.Random, names: list[str]) -> str:
        if slot == "email":
            return email_address(rng, names[-1] if names and rng.random() < 0.5 else None)
        if slot == "date":
            # A date-time only when times are not a type of their own: a time inside a date span
            # would be a time the answer does not list.
            with_time = "time" not in self._slot_types and rng.random() < 0.12
            return date(rng) + (" at " + time_of_day(rng) if with_time else "")
        if slot in W.ID_PATTERNS:
            return pattern(rng, rng.choice(W.ID_PATTERNS[slot]))
        return _DRAW[slot](rng)


def _assign_slots(types: list[SpanType], kinds: dict[str, str]) -> dict[str, str]:
    """Which type each sentence slot's values belong to. Two types that would fill one slot are an
    error: the text could not say which of the two a value is."""
    claims: dict[str, list[str]] = {}
    general = []
    for span_type in types:
        kind = kinds[span_type.name]
        specific = id_slot(span_type) if kind == "identifier" else None
        if kind == "identifier" and specific is None:
            general.append(span_type.name)
            continue
        for slot in (specific,) if specific else KIND_SLOTS[kind]:
            claims.setdefault(slot, []).append(span_type.name)
    # A general identifier ("reference number") takes the identifier slots no specific one took.
    taken = set(claims)
    for name in general:
        for slot in KIND_SLOTS["identifier"]:
            if slot not in taken:
                claims.setdefault(slot, []).append(name)
    for slot, names in claims.items():
        if len(names) > 1:
            kind = kinds[names[0]]
            raise ValueError(
                f"span types {' and '.join(repr(n) for n in names)} both read as {kind} values, so the "
                f"offline teacher could not tell them apart: merge them, or use an LLM teacher.")
    slot_types = {slot: names[0] for slot, names in claims.items()}
    idle = [t.name for t in types if t.name not in slot_types.values()]
    if idle:  # a general identifier when specific ones took every slot
        raise ValueError(f"span type {idle[0]!r} has no identifiers left to write; merge it with another.")
    return slot_types


def _wrap(genre: str, sentences: list[str], rng: random.Random, signed: bool) -> str:
    """The sentences in the kind of text a genre is; a signed email ends with a `{person}` slot."""
    body = " ".join(sentences)
    if genre == "chat":
        opener = rng.choice(W.CHAT_OPENERS)
        if opener or rng.random() < 0.3:  # chat is often all lowercase at the start, no final stop
            body = (body[0].lower() + body[1:]).rstrip(".")
        return opener + body + rng.choice(W.CHAT_CLOSERS)
    if genre == "email":
        signoff = rng.choice(W.SIGNOFFS) + (",\n{person}" if signed else ",")
        return f"{rng.choice(W.GREETINGS)}\n\n{body}\n\n{signoff}"
    if genre == "ticket":
        subject = rng.choice(W.SUBJECTS)
        return f"Subject: {subject}\n\n{body}" if rng.random() < 0.6 else f"[{subject}] {body}"
    if genre == "note":
        if len(sentences) > 1 and rng.random() < 0.5:
            return "\n".join("- " + s for s in sentences)
        return rng.choice(W.NOTE_HEADS) + body
    # A call transcript: the customer's sentences, an agent line before and between them.
    lines = [f"Agent: {rng.choice(W.AGENT_LINES)}", f"Customer: {sentences[0]}"]
    if sentences[1:]:
        lines += [f"Agent: {rng.choice(W.AGENT_LINES)}", "Customer: " + " ".join(sentences[1:])]
    return "\n".join(lines)


def _candidate(text: str, spans: list[dict], frame: str) -> dict:
    return {"text": text, "spans": spans, "teacher": {"provider": "offline", "frame": frame}}


# ----------------------------------------------------------- values

def pattern(rng: random.Random, template: str) -> str:
    """A value drawn from a pattern: "#" a digit, "%" a digit from 2 to 9, "@" a letter, "~" a "#"."""
    draw = {"#": lambda: str(rng.randint(0, 9)), "%": lambda: str(rng.randint(2, 9)),
            "@": lambda: rng.choice(string.ascii_uppercase), "~": lambda: "#"}
    return "".join(draw[c]() if c in draw else c for c in template)


def person_name(rng: random.Random) -> str:
    first, last = rng.choice(W.FIRST_NAMES), rng.choice(W.LAST_NAMES)
    form = rng.random()
    if form < 0.6:
        return f"{first} {last}"
    if form < 0.8:
        return first  # "Thanks, Priya": first names alone are common in messages
    if form < 0.92:
        return f"{first} {rng.choice(W.MIDDLE_INITIALS)}. {last}"
    return f"{first} {last}-{rng.choice(W.LAST_NAMES)}"


def email_address(rng: random.Random, name: str | None = None) -> str:
    """An email address, made from `name` when given (people write their own address after their name)."""
    name = name or f"{rng.choice(W.FIRST_NAMES)} {rng.choice(W.LAST_NAMES)}"
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    parts = [re.sub(r"[^a-z]", "", p) for p in ascii_name.split() if len(p.strip(".")) > 1]
    first, last = parts[0], parts[-1] if len(parts) > 1 else ""
    if last:
        local = rng.choice((f"{first}.{last}", f"{first[0]}{last}", f"{first}_{last}",
                            f"{first}{last}{rng.randint(1, 99)}", f"{last}.{first[0]}", first))
    else:
        local = rng.choice((first, f"{first}{rng.randint(1, 99)}", f"{first}.{rng.randint(70, 99)}"))
    return f"{local}@{rng.choice(W.EMAIL_DOMAINS)}"


def street_address(rng: random.Random) -> str:
    """A street address in US, UK, German or French form, or just the street line."""
    street = f"{rng.choice(W.STREETS)} {rng.choice(W.STREET_SUFFIXES)}"
    style = rng.random()
    if style < 0.35:
        city, state = rng.choice(W.US_CITIES)
        unit = rng.choice(("", "", f", Apt {rng.randint(1, 40)}", f", Suite {rng.randint(100, 999)}"))
        return f"{rng.randint(1, 2400)} {street}{unit}, {city}, {state} {rng.randint(10000, 99999)}"
    if style < 0.55:
        flat = rng.choice(("", "", f"Flat {rng.randint(1, 12)}, "))
        postcode = pattern(rng, rng.choice(("@# #@@", "@@# #@@", "@@## #@@")))
        return f"{flat}{rng.randint(1, 240)} {street}, {rng.choice(W.UK_CITIES)} {postcode}"
    if style < 0.7:
        return f"{rng.choice(W.DE_STREETS)} {rng.randint(1, 120)}, {rng.randint(10000, 99999)} " \
               f"{rng.choice(W.DE_CITIES)}"
    if style < 0.82:
        return f"{rng.randint(1, 120)} {rng.choice(W.FR_STREETS)}, {rng.randint(1, 95):02d}" \
               f"{rng.randint(0, 999):03d} {rng.choice(W.FR_CITIES)}"
    return f"{rng.randint(1, 2400)} {street}"


def date(rng: random.Random) -> str:
    """A calendar date in one of the ways people write them: "March 3, 2025", "03/14/2025", "2025-03-14"..."""
    year = rng.randint(2022, 2026) if rng.random() < 0.95 else rng.randint(1950, 2005)
    month, day = rng.randint(1, 12), rng.randint(1, 28)
    name = W.MONTHS[month - 1]
    weekday = calendar.day_name[calendar.weekday(year, month, day)]
    suffix = "th" if day in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return rng.choice((
        f"{name} {day}, {year}", f"{day} {name} {year}", f"{name[:3]} {day}", f"{name} {day}",
        f"{month:02d}/{day:02d}/{year}", f"{day:02d}/{month:02d}/{year}", f"{year}-{month:02d}-{day:02d}",
        f"{day:02d}.{month:02d}.{year}", f"{weekday}, {name} {day}", f"{day}/{month}/{year % 100:02d}",
        f"{name} {day}{suffix}", f"{day} {name[:3]} {year}",
    ))


def time_of_day(rng: random.Random) -> str:
    hour, minute = rng.randint(7, 21), rng.choice((0, 0, 0, 15, 30, 30, 45, 10, 20, 50))
    h12, half = hour % 12 or 12, "am" if hour < 12 else "pm"
    forms = [f"{h12}:{minute:02d} {half}", f"{h12}:{minute:02d} {half.upper()}", f"{hour:02d}:{minute:02d}"]
    if minute == 0:
        forms += [f"{h12} {half}", f"{h12}{half}", f"{h12} o'clock"]
    return rng.choice(forms)


def amount(rng: random.Random) -> str:
    """A money amount with its currency: "$1,249.99", "USD 450.00", "89,50 €", "¥12,000"."""
    before, after, decimals, decimal_comma = rng.choice(W.CURRENCIES)
    value = rng.choice((rng.uniform(3, 200), rng.uniform(200, 3000), rng.uniform(3000, 90000)))
    if before == "¥":
        value *= 100  # yen have no cents, and prices in yen run a hundred times higher
    number = f"{value:,.{decimals}f}"
    if decimal_comma:
        number = number.translate(str.maketrans(",.", ".,"))  # "1.249,99"
    return f"{before}{number}" + (f" {after}" if after else "")


def organization(rng: random.Random) -> str:
    if rng.random() < 0.7:
        return rng.choice(W.COMPANIES)
    parts = (rng.choice(W.COMPANY_STEMS), rng.choice(W.COMPANY_TRADES), rng.choice(W.COMPANY_SUFFIXES))
    return " ".join(p for p in parts if p)


# The value each remaining slot gets.
_DRAW = {
    "person": person_name, "phone": lambda rng: pattern(rng, rng.choice(W.PHONE_PATTERNS)),
    "address": street_address, "time": time_of_day, "amount": amount, "org": organization,
    "location": lambda rng: rng.choice(W.CITIES) if rng.random() < 0.7 else rng.choice(W.COUNTRIES),
}
