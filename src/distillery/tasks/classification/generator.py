"""An LLM teacher writes examples for each label: the Mash when the recipe gives no inputs.

Requests go in rounds; a round asks once per label, in the labels' order, so every label
gets the same number of requests. Each request names all the labels and what they mean, so
the teacher writes messages that are clearly this label and not its neighbours, and carries
a persona, style and length hint picked from (seed, label, round): repeated rounds ask for
different messages, and request `i` is the same in every run, so a resumed run finds every
answer it has in the journal and pays for nothing twice.

The teacher answers `{"examples": [{"text", "label"}]}` and says each message's label
itself (all of them when multi-label): what it says, not what was asked for, is the label,
and the Mash judges the candidates like any other teacher's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import re

from distillery.errors import DistilleryError
from distillery.tasks.classification.data import INPUT_KEYS
from distillery.teachers.base import Request
from distillery.teachers.cost import BudgetReached
from distillery.teachers.retry import RetryPolicy
from distillery.teachers.session import open_session

log = logging.getLogger("distillery.teachers")

PERSONAS = (
    "a busy parent", "a retiree new to chat assistants", "a software engineer", "a student",
    "a nurse on a night shift", "a small business owner", "a traveller abroad", "a teenager",
    "a non-native English speaker", "a customer who is in a hurry", "a polite older customer",
    "someone typing on a phone",
)
STYLES = (
    "terse", "polite and complete", "casual, lowercase, little punctuation", "chatty, with some context first",
    "direct commands", "questions", "hurried, with abbreviations and a typo or two", "precise and specific",
)
LENGTHS = ("a few words each", "one short sentence each", "one or two sentences each", "mixed lengths")
ROUNDS_FACTOR = 3  # at most this many times the planned rounds, however many answers are unusable


def answer_schema(labels: list[str], multi_label: bool, n: int) -> dict:
    """JSON schema of the answer: up to `n` examples, each a text and its label(s) from the set."""
    label = {"type": "array", "items": {"enum": labels}, "minItems": 1} if multi_label else {"enum": labels}
    example = {"type": "object", "properties": {"text": {"type": "string"}, "label": label},
               "required": ["text", "label"], "additionalProperties": False}
    return {"type": "object", "properties": {
        "examples": {"type": "array", "items": example, "minItems": 1, "maxItems": n}},
        "required": ["examples"], "additionalProperties": False}


def generate_request(label: str, labels: dict[str, str], multi_label: bool, n: int, round_index: int,
                     seed: int, temperature: float, max_tokens: int) -> Request:
    """The request for `n` messages of `label` in round `round_index`: the same for the same arguments."""
    rng = random.Random(f"{seed}:classify-gen:{label}:{round_index}")
    persona, style, length = rng.choice(PERSONAS), rng.choice(STYLES), rng.choice(LENGTHS)
    listed = "\n".join(f"- {name}: {meaning}" for name, meaning in labels.items())
    others = ", ".join(f"`{name}`" for name in labels if name != label) or "nothing else"
    shape = '"label": ["...", ...]' if multi_label else '"label": "..."'
    system = ("You write training data for a small model that sorts user messages into these labels:\n"
              f"{listed}\nAnswer with JSON only, no prose: "
              f'{{"examples": [{{"text": "...", {shape}}}]}}.')
    if multi_label:
        ask = (f"Write {n} different, realistic messages a user might send whose labels include `{label}`. "
               "A message may also carry other labels where they truly apply; give each message every "
               "label that applies, from the list.")
    else:
        ask = (f"Write {n} different, realistic messages a user might send that are clearly `{label}` "
               f"and not {others}. Give each message its label from the list.")
    user = (f"{ask}\nVary the topic, wording and details; no two messages alike; no numbering or "
            f"quotes around them.\nWrite them as {persona} would: {style}, {length}.")
    return Request(messages=({"role": "system", "content": system}, {"role": "user", "content": user}),
                   temperature=temperature, max_tokens=max_tokens,
                   json_schema=answer_schema(list(labels), multi_label, n), seed=rng.randrange(2**31))


def read_examples(text: str, labels: list[str], multi_label: bool) -> list[dict]:
    """The usable examples in an answer: `[{"text", "label"}]`, labels spelled as in `labels`.

    Takes `{"examples": [...]}` or a bare list, in a code fence or not; drops items with no
    text or a label outside the set. Junk gives [], never an error.
    """
    data = _json(text)
    items = data.get("examples") if isinstance(data, dict) else data
    if not isinstance(items, list):
        return []
    by_case = {label.casefold(): label for label in labels}
    out = []
    for item in items:
        if not isinstance(item, dict):
            continue
        said = next((item[k] for k in ("text", *INPUT_KEYS) if isinstance(item.get(k), str) and item[k].strip()),
                    None)
        label = _label(item.get("label"), by_case, multi_label)
        if said is not None and label is not None:
            out.append({"text": said.strip(), "label": label})
    return out


def _json(text: str) -> object:
    text = re.sub(r"^\s*```(?:json)?\s*|\s*```\s*$", "", text.strip())
    try:
        return json.loads(text)
    except ValueError:
        pass
    # Prose around the JSON: take the outermost object (or list).
    for start, end in (("{", "}"), ("[", "]")):
        i, j = text.find(start), text.rfind(end)
        if 0 <= i < j:
            try:
                return json.loads(text[i:j + 1])
            except ValueError:
                pass
    return None


def _label(value: object, by_case: dict[str, str], multi_label: bool) -> str | list[str] | None:
    if multi_label:
        items = value if isinstance(value, list) else re.split(r"\s*,\s*", value) if isinstance(value, str) else []
        found = [by_case.get(item.strip().casefold()) if isinstance(item, str) else None for item in items]
        if not found or None in found:
            return None
        return list(dict.fromkeys(found))  # a label said twice counts once
    if isinstance(value, list) and len(value) == 1:  # ["billing"] for "billing"
        value = value[0]
    return by_case.get(value.strip().casefold()) if isinstance(value, str) else None


def plan(n_labels: int, total: int, per_call: int) -> tuple[int, int]:
    """(examples asked for per request, rounds planned) for `total` examples over `n_labels` labels.
    Small totals ask for fewer per request rather than leave a label out of a round."""
    n = max(1, min(per_call, math.ceil(total / n_labels)))
    return n, math.ceil(total / (n * n_labels))


def generate_examples(provider, labels: dict[str, str], multi_label: bool, total: int, per_call: int,
                      teacher_cfg, journal, *, seed: int, price=None, policy=None) -> list[dict]:
    """Candidates for the Mash, written by the teacher when the recipe has no inputs.

    Asks enough rounds for about `total` usable examples (each request asks for `per_call`,
    fewer when `total` is small), then more rounds while answers fall short, up to
    ROUNDS_FACTOR times the plan. Each candidate is `{"text", "label", "teacher", "asked_for"}`;
    texts may repeat (the Mash drops near-duplicates). Raises DistilleryError when
    `teacher.budget_usd` runs out.
    """
    return asyncio.run(_generate(provider, labels, multi_label, total, per_call, teacher_cfg, journal, seed,
                                 price, policy))


async def _generate(provider, labels, multi_label, total, per_call, teacher_cfg, journal, seed, price,
                    policy) -> list[dict]:
    names = list(labels)
    n, planned = plan(len(names), total, per_call)
    limit = ROUNDS_FACTOR * planned
    session = open_session(provider, journal, teacher_cfg, price=price, policy=policy or RetryPolicy())
    out: list[dict] = []
    unusable = rounds = 0
    try:
        wave = planned
        while wave > 0:
            asks = [(r * len(names) + k, name) for r in range(rounds, rounds + wave) for k, name in enumerate(names)]
            requests = [generate_request(name, labels, multi_label, n, i // len(names), seed,
                                         teacher_cfg.temperature, teacher_cfg.max_tokens) for i, name in asks]
            # Let every request settle before raising, so all that was paid for lands in the journal.
            records = await asyncio.gather(*(session.ask(i, r) for (i, _), r in zip(asks, requests)),
                                           return_exceptions=True)
            failed = next((r for r in records if isinstance(r, BaseException)), None)
            if isinstance(failed, BudgetReached):
                raise DistilleryError(
                    f"teacher.budget_usd (${teacher_cfg.budget_usd:g}) reached: ${session.meter.spent:.4f} spent, "
                    f"{len(out)} of {total} examples written. Fix: raise `teacher.budget_usd` and run again; "
                    "every answer paid for is kept in the journal and not paid again.")
            if failed is not None:
                raise failed
            for (_, name), record in zip(asks, records):
                found = read_examples(record["text"], names, multi_label) if record["finish"] == "stop" else []
                unusable += not found
                teacher = {"provider": record["provider"], "model": record["model"], "journal_id": record["id"]}
                out += [{**ex, "teacher": teacher, "asked_for": name} for ex in found]
            rounds += wave
            # Another wave sized by this run's yield per round, until `total` or the limit.
            per_round = len(out) / rounds
            missing = total - len(out)
            wave = 0 if missing <= 0 else min(limit - rounds, math.ceil(missing / max(per_round, 1.0)))
    finally:
        await session.aclose()
    log.info("wrote %d candidate examples in %d requests (%d sent, %d from the journal, %d unusable)",
             len(out), rounds * len(names), session.counts.sent, session.counts.replayed, unusable)
    return out
