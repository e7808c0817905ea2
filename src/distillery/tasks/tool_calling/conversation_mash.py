"""The Mash of an agent recipe: conversations, each checked turn by turn.

A candidate is {"utterance", "messages" (normalized, conversation.py), "teacher"} from the
offline agent teacher or imported traces. It is accepted when every call of every turn fits
the offered tools (the tools it calls plus distractors, shuffled, as for single requests) and
its first request is new to the Mash. An accepted example is written with its messages in
OpenAI's chat format, `calls` the first answer's, `utterance` the first request.
"""

from __future__ import annotations

import random
from pathlib import Path

from distillery.errors import DistilleryError
from distillery.jsonl import write_jsonl
from distillery.mash import MashStats, remember, seen_before
from distillery.tasks.tool_calling.conversation import to_openai
from distillery.tasks.tool_calling.mash import offer_tools
from distillery.tasks.tool_calling.schema import Tool
from distillery.tasks.tool_calling.validate import check_calls


def judge_conversation(candidate: dict, offered: list[str], tools_by_name: dict[str, Tool],
                       seen: set[str]) -> str | None:
    """Why a conversation cannot enter the Mash, or None when it is accepted."""
    messages = candidate.get("messages")
    if not isinstance(candidate.get("utterance"), str) or not candidate["utterance"].strip():
        return "bad_structure: no request"
    if not isinstance(messages, list) or not any(m["role"] == "assistant" for m in messages):
        return "bad_structure: no assistant turn"
    tools = [tools_by_name[n] for n in offered]
    for turn, m in enumerate(x for x in messages if x["role"] == "assistant"):
        reason = check_calls(m["calls"], tools) if "calls" in m else None
        if reason:
            code, _, detail = reason.partition(": ")
            return f"{code}: turn {turn + 1}: {detail}"
    if seen_before(seen, candidate["utterance"]):
        return "duplicate: request already in the Mash"
    return None


def build_conversation_mash(teacher, catalog: list[Tool], mash_cfg, run_dir: Path, *, seed: int,
                            max_candidates_factor: int = 20, on_progress=None) -> MashStats:
    """Draw conversations from `teacher` until `mash_cfg.total_examples` are accepted; write both JSONL files."""
    stats, accepted, rejected = MashStats(), [], []
    try:
        _draw(teacher, catalog, mash_cfg, seed, stats, accepted, rejected, max_candidates_factor, on_progress)
    finally:
        if hasattr(teacher, "close"):  # an LLM agent: its journals and connections
            teacher.close()
    if hasattr(teacher, "requests"):  # an LLM agent: what it asked and what the journal answered
        stats.requests, stats.replayed, stats.cost_usd = teacher.requests, teacher.replayed, teacher.cost_usd
    run_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(run_dir / "mash.rejects.jsonl", rejected)
    write_jsonl(run_dir / "mash.jsonl", accepted)
    return stats


def _draw(teacher, catalog: list[Tool], mash_cfg, seed: int, stats: MashStats, accepted: list, rejected: list,
          factor: int, on_progress) -> None:
    """Judge the teacher's candidates in order into `accepted` and `rejected` until the Mash is full."""
    tools_by_name = {t.name: t for t in catalog}
    low, high = mash_cfg.tools_per_call.min, mash_cfg.tools_per_call.max
    limit, seen, index = mash_cfg.total_examples * factor, set(), 0
    while stats.accepted < mash_cfg.total_examples:
        if index >= limit:
            raise DistilleryError(
                f"The teacher gave only {stats.accepted} acceptable conversations out of {index} candidates "
                f"(top reject reasons: {dict(stats.reasons.most_common(3))}). Fix: lower `mash.total_examples` "
                "or add tools to the catalog.")
        candidate = teacher.candidate(index)
        if candidate is None:  # imported traces ran out
            stats.exhausted = True
            return
        reason = candidate.get("reject")
        offered: list[str] = []
        if reason is None:
            called = list(dict.fromkeys(c["name"] for m in candidate["messages"] if m["role"] == "assistant"
                                        for c in m.get("calls") or ()))
            unknown = [n for n in called if n not in tools_by_name]
            if unknown:
                reason = f"unknown_tool: {unknown[0]}"
            else:
                # Distractors from what the trace offered beside its calls; with none, from the catalog.
                pool = [tools_by_name[n] for n in candidate.get("pool") or () if n in tools_by_name and n not in called]
                rng = random.Random(f"{seed}:offer:{index}")
                offered = offer_tools([{"name": n} for n in called], [], pool or catalog, rng, low, high)
                reason = judge_conversation(candidate, offered, tools_by_name, seen)
        stats.candidates += 1
        if reason is None:
            remember(seen, candidate["utterance"])
            messages = candidate["messages"]
            first = next(m for m in messages if m["role"] == "assistant")
            accepted.append({"id": f"a{index:06d}", "utterance": candidate["utterance"].strip(), "tools": offered,
                             "calls": first.get("calls", []), "messages": to_openai(messages),
                             "teacher": candidate.get("teacher", {})})
            stats.accepted += 1
        else:
            rejected.append({"index": index, "reason": reason, "candidate": candidate})
            stats.rejected += 1
            stats.reasons[reason.split(":", 1)[0]] += 1
        index += 1
        if on_progress:
            on_progress(stats)
