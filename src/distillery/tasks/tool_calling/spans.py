"""Values copied from the request.

Most arguments of a tool call are read off the request: a name, a place, a quoted title, a
number. For a parameter whose values the teacher copied word for word in (nearly) every
Mash example, decoding restricts the student to word-aligned spans of the request (strings)
or the numbers written in it. The student then only has to choose *where* a value starts
and ends, never spell it, and it cannot write a value that is not in the request.

The same holds for an enum whose member the teacher always found named in the request
("in celsius", "switch OFF", "a swimming workout"): decoding offers only the members the
request names, and leaves the parameter out when it names none, so the student cannot pick
a member nobody asked for.

Which parameters qualify is measured on the hearts, so a teacher that rewrites values
("tomorrow" -> a date, "half an hour" -> 30, "make it warmer" -> heat) leaves them free.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from distillery.tasks.tool_calling.schema import Tool

# A value starts at a word, or at a symbol after a space ("$40"); it ends after a word, or
# after a symbol that is not followed by a word ("later?" in `"later?" she said`).
_START = re.compile(r"(?<!\w)\w|(?:(?<=\s)|^)[^\w\s]")
_END = re.compile(r"\w(?!\w)|[^\w\s](?!\w)")
# A number written in digits, possibly with a unit glued on ("70kg", "5C"), but not inside a
# word ("v2", "rs603"). Thousands written with commas ("12,000") and percentages ("5%", which
# rates take as 0.05) are read a second way too: both readings are offered, the student picks.
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?!\d)")
_THOUSANDS = re.compile(r"(?<![\w.,])-?\d{1,3}(?:,\d{3})+(?![\d]|[,.]\d)")
# People write small counts as words ("two tickets", "the top ten") and big amounts with a
# scale word ("50 million"): those are read as numbers too.
NUMBER_WORDS = {word: n for n, word in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty".split())}
NUMBER_WORDS.update({"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
                     "ninety": 90, "hundred": 100})
SCALES = {"thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_WORD = re.compile(rf"(?<![\w-])(?:{'|'.join(NUMBER_WORDS)})(?![\w-])", re.IGNORECASE)
_SCALED = re.compile(rf"(?<![\w.])(\d+(?:\.\d+)?) ({'|'.join(SCALES)})(?!\w)", re.IGNORECASE)

MAX_SPAN_CHARS = 200  # longer spans are not offered: keeps grammars small on long requests


def spans(utterance: str) -> list[str]:
    """Every word-aligned substring of the request, in order of first appearance."""
    starts = [m.start() for m in _START.finditer(utterance)]
    ends = [m.end() for m in _END.finditer(utterance)]
    found = {utterance[s:e]: None for s in starts for e in ends if s < e <= s + MAX_SPAN_CHARS}
    return list(found)


def numbers(utterance: str) -> list[int | float]:
    """The numbers written in the request, in order of appearance: "12,000" is 12, 0 and 12000;
    "5%" is 5 and 0.05; "ten" is 10; "1.5 million" is 1.5 and 1500000."""
    found: list[tuple[int, int | float]] = []
    for m in _NUMBER.finditer(utterance):
        text = m.group()
        found.append((m.start(), float(text) if "." in text else int(text)))
        if utterance[m.end():m.end() + 1] == "%":
            found.append((m.start(), float(f"{float(text) / 100:.10g}")))
    for m in _THOUSANDS.finditer(utterance):
        found.append((m.start(), int(m.group().replace(",", ""))))
    for m in _WORD.finditer(utterance):
        found.append((m.start(), NUMBER_WORDS[m.group().lower()]))
    for m in _SCALED.finditer(utterance):
        found.append((m.start(), int(round(float(m.group(1)) * SCALES[m.group(2).lower()]))))
    out: dict[int | float, None] = {}
    for _, value in sorted(found, key=lambda pair: pair[0]):
        out[value] = None
    return list(out)


def is_named(member: Any, utterance: str) -> bool | None:
    """Whether an enum member is written in the request, in any case (`warm_white` as "warm white" too)."""
    if not isinstance(member, str) or not member.strip():
        return None
    words = r"[\s_-]+".join(re.escape(w) for w in re.split(r"[\s_-]+", member.strip()))
    return re.search(rf"(?<!\w){words}(?!\w)", utterance, re.IGNORECASE) is not None


def named_members(enum: tuple, utterance: str) -> list | None:
    """The members of a string enum that the request names; None when the enum is not all strings."""
    verdicts = [is_named(m, utterance) for m in enum]
    if any(v is None for v in verdicts):
        return None
    return [m for m, named in zip(enum, verdicts) if named]


def is_copied(value: Any, utterance: str) -> bool | None:
    """Whether `value` is read off the request word for word; None when the question does not apply."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        return value in set(spans(utterance))
    if isinstance(value, (int, float)):
        return any(float(n) == float(value) for n in numbers(utterance))
    if isinstance(value, list) and value:
        verdicts = [is_copied(v, utterance) for v in value]
        return None if any(v is None for v in verdicts) else all(verdicts)
    return None


def copied_params(examples: list[dict], tools_by_name: dict[str, Tool], *, threshold: float = 0.98,
                  min_support: int = 3) -> list[str]:
    """`tool.param` names whose values the examples copy from the request at least `threshold` of the time.

    For an enum, "copied" means the request names the member.
    """
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for ex in examples:
        for call in ex["calls"]:
            tool = tools_by_name.get(call["name"])
            for key, value in call["arguments"].items():
                param = tool.param(key) if tool else None
                if param is None:
                    continue
                verdict = (is_named if param.enum is not None else is_copied)(value, ex["utterance"])
                if verdict is not None:
                    counts[f"{call['name']}.{key}"][0] += verdict
                    counts[f"{call['name']}.{key}"][1] += 1
    return sorted(name for name, (hit, n) in counts.items() if n >= min_support and hit / n >= threshold)
