"""The Mash: what every task's Mash shares, whatever its examples are.

A task builds its own Mash (tasks/<kind>/): it asks its teacher, validates each candidate and
writes `mash.jsonl` and `mash.rejects.jsonl`. What they share lives here: the stats a build
reports, and when two requests are the same one (up to case, punctuation and politeness), so
a near-duplicate never enters a Mash, from any teacher.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

# Words that change nothing a tool call depends on: "please set a timer" is "set a timer".
_FILLERS = frozenset("please pls plz kindly hey hi hello ok okay just can could would will you u".split())


@dataclass
class MashStats:
    accepted: int = 0
    rejected: int = 0
    candidates: int = 0
    reasons: Counter = field(default_factory=Counter)
    requests: int = 0  # teacher requests answered in this process (LLM teachers)
    replayed: int = 0  # teacher answers taken from the journal
    cost_usd: float = 0.0  # spent on teacher (and llm judge) requests in this run, journal included
    exhausted: bool = False  # the teacher ran out of candidates (replay) before the total
    teacher_accuracy: float | None = None  # against the examples' `expected` answers, where given
    tails: int = 0  # examples kept for review only (judges/: the samples disagree, a borderline score)
    judge_requests: int = 0  # llm judge requests answered in this process
    judge_replayed: int = 0  # llm judge answers taken from its journal


def normalize_utterance(text: str) -> str:
    """The form two utterances are compared in: case, punctuation and spacing do not count."""
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", text.casefold())).strip()


def near_key(text: str) -> str:
    """Two utterances with the same key are near-identical: the same words up to order, case,
    punctuation and politeness ("Set a timer, please" = "please set a timer")."""
    return " ".join(sorted(w for w in normalize_utterance(text).split() if w not in _FILLERS))


def remember(seen: set[str], utterance: str) -> None:
    """Add an accepted utterance to `seen`, the set a Mash checks candidates against: for every teacher, offline and replay
    included, a near-identical request ("please set a timer" after "set a timer") is a duplicate."""
    seen.add(normalize_utterance(utterance))
    seen.add("~" + near_key(utterance))


def seen_before(seen: set[str], utterance: str) -> bool:
    """Whether `utterance`, or a near-identical one, was accepted already (see `remember`)."""
    return normalize_utterance(utterance) in seen or "~" + near_key(utterance) in seen


class Listed:
    """Candidates already made (an LLM's labels, examples written around a failure), handed to a
    Mash builder one at a time."""

    def __init__(self, candidates: list[dict]):
        self.candidates = candidates

    def candidate(self, index: int) -> dict | None:
        return self.candidates[index] if index < len(self.candidates) else None


def collect(teacher, total: int, judge, *, request=lambda example: example["utterance"], limit: int | None = None,
            on_progress=None) -> tuple[MashStats, list[dict], list[dict]]:
    """Draw candidates from a teacher that makes them itself (offline, replay, labels already
    asked for) until `total` are accepted, `limit` candidates were drawn, or it runs out.

    `judge(candidate)` returns (reason, None) to reject, or (None, example) to accept; an example
    whose `request(example)` text is already in the Mash is a duplicate.
    Returns the stats, the accepted examples (with their ids) and the rejects.
    """
    stats, seen, accepted, rejected = MashStats(), set(), [], []
    index = 0
    while stats.accepted < total and (limit is None or index < limit):
        candidate = teacher.candidate(index)
        if candidate is None:  # a teacher with a fixed supply ran out
            stats.exhausted = True
            break
        stats.candidates += 1
        reason, example = judge(candidate)
        if reason is None and seen_before(seen, request(example)):
            reason = "duplicate: the same request is already in the Mash"
        if reason:
            rejected.append({"index": index, "reason": reason, "candidate": candidate})
            stats.rejected += 1
            stats.reasons[reason.split(":", 1)[0]] += 1
        else:
            remember(seen, request(example))
            accepted.append({"id": f"m{index:06d}", **example})
            stats.accepted += 1
        index += 1
        if on_progress:
            on_progress(stats)
    return stats, accepted, rejected
