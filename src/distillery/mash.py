"""The Mash: teacher candidates turned into validated training examples.

Every accepted example offers the student several tools: the targets plus distractors
sampled from the catalog, shuffled. Offering only the target would leak the label (the
student would learn to copy the one tool name it is shown instead of choosing).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from distillery.errors import DistilleryError
from distillery.jsonl import write_jsonl
from distillery.tasks.tool_calling.schema import Tool
from distillery.tasks.tool_calling.validate import check_calls


@dataclass
class MashStats:
    accepted: int = 0
    rejected: int = 0
    candidates: int = 0
    reasons: Counter = field(default_factory=Counter)


def normalize_utterance(text: str) -> str:
    """The form two utterances are compared in: case, punctuation and spacing do not count."""
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", text.casefold())).strip()


def offer_tools(calls: list[dict], avoid: list[str], catalog: list[Tool], rng: random.Random,
                low: int, high: int) -> list[str]:
    """The tool names offered with an example: its targets plus random distractors, shuffled."""
    targets = list(dict.fromkeys(c["name"] for c in calls))
    pool = [t.name for t in catalog if t.name not in targets and t.name not in avoid]
    size = min(max(rng.randint(low, high), len(targets) + 1), len(targets) + len(pool))
    offered = targets + rng.sample(pool, size - len(targets))
    rng.shuffle(offered)
    return offered


def judge(candidate: object, offered: list[str], tools_by_name: dict[str, Tool], seen: set[str]) -> str | None:
    """Why a candidate cannot enter the Mash, or None when it is accepted."""
    if not isinstance(candidate, dict) or not isinstance(candidate.get("utterance"), str):
        return "bad_structure: no utterance"
    if not candidate["utterance"].strip():
        return "bad_structure: empty utterance"
    reason = check_calls(candidate.get("calls"), [tools_by_name[n] for n in offered])
    if reason:
        return reason
    if normalize_utterance(candidate["utterance"]) in seen:
        return "duplicate: utterance already in the Mash"
    return None


def build_mash(teacher, catalog: list[Tool], mash_cfg, run_dir: Path, *, seed: int,
               max_candidates_factor: int = 20, on_progress=None) -> MashStats:
    """Draw candidates from `teacher` until `mash_cfg.total_examples` are accepted; write both JSONL files."""
    tools_by_name = {t.name: t for t in catalog}
    low, high = mash_cfg.tools_per_call.min, mash_cfg.tools_per_call.max
    stats, seen, accepted, rejected = MashStats(), set(), [], []
    limit = mash_cfg.total_examples * max_candidates_factor
    index = 0
    while stats.accepted < mash_cfg.total_examples:
        if index >= limit:
            raise DistilleryError(
                f"The teacher gave only {stats.accepted} acceptable examples out of {index} candidates "
                f"(top reject reasons: {dict(stats.reasons.most_common(3))}). Fix: lower `mash.total_examples` "
                "or add tools to the catalog.")
        candidate = teacher.candidate(index)
        rng = random.Random(f"{seed}:offer:{index}")
        calls = candidate.get("calls") if isinstance(candidate, dict) else None
        targets = calls if isinstance(calls, list) and all(isinstance(c, dict) and c.get("name") in tools_by_name
                                                          for c in calls) else []
        offered = offer_tools(targets, list(candidate.get("avoid", [])) if isinstance(candidate, dict) else [],
                              catalog, rng, low, high)
        reason = judge(candidate, offered, tools_by_name, seen)
        stats.candidates += 1
        if reason is None:
            seen.add(normalize_utterance(candidate["utterance"]))
            accepted.append({"id": f"m{index:06d}", "utterance": candidate["utterance"].strip(),
                             "tools": offered, "calls": candidate["calls"],
                             "teacher": candidate.get("teacher", {})})
            stats.accepted += 1
        else:
            rejected.append({"index": index, "reason": reason, "candidate": candidate})
            stats.rejected += 1
            stats.reasons[reason.split(":", 1)[0]] += 1
        index += 1
        if on_progress:
            on_progress(stats)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(run_dir / "mash.rejects.jsonl", rejected)
    write_jsonl(run_dir / "mash.jsonl", accepted)
    return stats

