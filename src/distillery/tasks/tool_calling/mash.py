"""The tool-calling Mash: teacher candidates turned into validated training examples.

Every accepted example offers the student several tools: the targets plus distractors
sampled from the catalog, shuffled. Offering only the target would leak the label (the
student would learn to copy the one tool name it is shown instead of choosing).

Two ways in: `build_mash` draws candidates one at a time from a teacher that makes them
itself (offline, replay); `build_mash_llm` asks an LLM provider for batches of examples
through the journal, retry and budget layers of `teachers/session.py`.
"""

from __future__ import annotations

import asyncio
import math
import random
from pathlib import Path

from distillery.errors import DistilleryError
from distillery.jsonl import write_jsonl
from distillery.mash import MashStats, near_key, normalize_utterance, remember
from distillery.tasks.tool_calling.schema import Tool
from distillery.tasks.tool_calling.toolgen import parse_answer, plan
from distillery.tasks.tool_calling.validate import calls_equal, check_calls
from distillery.teachers.cost import BudgetReached
from distillery.teachers.retry import RetryPolicy
from distillery.teachers.session import open_session


def offer_tools(calls: list[dict], avoid: list[str], catalog: list[Tool], rng: random.Random,
                low: int, high: int) -> list[str]:
    """The tool names offered with an example: its targets plus random distractors, shuffled."""
    targets = list(dict.fromkeys(c["name"] for c in calls))
    pool = [t.name for t in catalog if t.name not in targets and t.name not in avoid]
    size = min(max(rng.randint(low, high), len(targets) + 1), len(targets) + len(pool))
    offered = targets + rng.sample(pool, size - len(targets))
    rng.shuffle(offered)
    return offered


def reject_reason(candidate: object, offered: list[str], tools_by_name: dict[str, Tool], seen: set[str]) -> str | None:
    """Why a candidate cannot enter the Mash, or None when it is accepted. `seen` holds the
    normalized and the near keys (`near_key`) of the utterances accepted so far."""
    if not isinstance(candidate, dict) or not isinstance(candidate.get("utterance"), str):
        return "bad_structure: no utterance"
    if not candidate["utterance"].strip():
        return "bad_structure: empty utterance"
    reason = check_calls(candidate.get("calls"), [tools_by_name[n] for n in offered])
    if reason:
        return reason
    if normalize_utterance(candidate["utterance"]) in seen:
        return "duplicate: utterance already in the Mash"
    if "~" + near_key(candidate["utterance"]) in seen:
        return "duplicate: near-identical to an utterance already in the Mash"
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
        if candidate is None:  # a teacher with a fixed supply (replay) ran out
            stats.exhausted = True
            break
        rng = random.Random(f"{seed}:offer:{index}")
        calls = candidate.get("calls") if isinstance(candidate, dict) else None
        # The right answer's tools are offered too, where a trace says what it was.
        known = (calls if isinstance(calls, list) else []) + (candidate.get("expected") or []
                                                              if isinstance(candidate, dict) else [])
        targets = known if all(isinstance(c, dict) and c.get("name") in tools_by_name for c in known) else []
        # Distractors come from the tools the teacher knew were there, when it says which.
        pool = [tools_by_name[n] for n in candidate.get("pool") or []] if isinstance(candidate, dict) else []
        offered = offer_tools(targets, list(candidate.get("avoid", [])) if isinstance(candidate, dict) else [],
                              pool or catalog, rng, low, high)
        reason = candidate["reject"] if isinstance(candidate, dict) and "reject" in candidate else \
            reject_reason(candidate, offered, tools_by_name, seen)
        if reason is None and "expected" in candidate:
            reason = check_calls(candidate["expected"], [tools_by_name[n] for n in offered])
            reason = reason and reason.replace(":", ": expected", 1)
        stats.candidates += 1
        if reason is None:
            remember(seen, candidate["utterance"])
            extra = {"expected": candidate["expected"]} if "expected" in candidate else {}
            accepted.append({"id": f"m{index:06d}", "utterance": candidate["utterance"].strip(),
                             "tools": offered, "calls": candidate["calls"], **extra,
                             "teacher": candidate.get("teacher", {})})
            stats.accepted += 1
        else:
            rejected.append({"index": index, "reason": reason, "candidate": candidate})
            stats.rejected += 1
            stats.reasons[reason.split(":", 1)[0]] += 1
        index += 1
        if on_progress:
            on_progress(stats)
    graded = [right_answer(ex, tools_by_name) for ex in accepted if "expected" in ex]
    stats.teacher_accuracy = sum(graded) / len(graded) if graded else None
    run_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(run_dir / "mash.rejects.jsonl", rejected)
    write_jsonl(run_dir / "mash.jsonl", accepted)
    return stats


def right_answer(example: dict, tools_by_name: dict[str, Tool]) -> bool:
    """Whether the teacher's calls are the example's `expected` ones (True where none is given)."""
    return "expected" not in example or calls_equal(example["expected"], example["calls"], tools_by_name)


# -- LLM teachers ------------------------------------------------------------------------------

def build_mash_llm(provider, catalog: list[Tool], mash_cfg, teacher_cfg, run_dir: Path, *, seed: int,
                   price=None, policy=None, on_progress=None, max_requests_factor: int = 20, judge=None,
                   judge_cfg=None) -> MashStats:
    """Ask an LLM teacher (`tasks/tool_calling/toolgen.py` requests) until `mash_cfg.total_examples` are accepted.

    Answers are judged in request order, whatever order they arrive in, and requests are
    launched only at those points, so the Mash and the set of requests depend on the answers
    alone: a run resumed from the journal makes the same Mash and re-asks nothing it has.
    With a `judge` (judges/, set up by `judge_cfg`) each request is sampled N times and the
    judge keeps the best answer (best_of_n.py).
    """
    if getattr(mash_cfg, "samples_per_request", 1) > 1 and judge is None:
        raise ValueError("samples_per_request > 1 needs a judge to pick among the samples")
    return asyncio.run(_build_llm(provider, catalog, mash_cfg, teacher_cfg, run_dir, seed, price, policy,
                                  on_progress, max_requests_factor, judge, judge_cfg))


async def _build_llm(provider, catalog, mash_cfg, teacher_cfg, run_dir, seed, price, policy, on_progress,
                     factor, judge, judge_cfg) -> MashStats:
    run_dir.mkdir(parents=True, exist_ok=True)
    session = open_session(provider, run_dir / "journal", teacher_cfg, price=price, policy=policy or RetryPolicy())
    sort_answer, fetch = _Answers(catalog, mash_cfg, seed), lambda ask: session.ask(ask.index, ask.request)
    if judge is not None:
        from distillery.tasks.tool_calling.best_of_n import Sampler  # it builds on this module's checks

        sampler = Sampler(session, judge, judge_cfg, catalog, mash_cfg, teacher_cfg, seed)
        sort_answer, fetch = sampler.sorter, sampler.fetch
    stats = sort_answer.stats
    total, per_call = mash_cfg.total_examples, mash_cfg.examples_per_call
    limit = math.ceil(total / per_call) * factor
    # A batch goes out whole: every request the yield so far calls for, not a window of them.
    window = limit if getattr(teacher_cfg, "batch", False) else 2 * teacher_cfg.concurrency
    tasks: dict[int, asyncio.Task] = {}
    asks: dict[int, object] = {}
    launched = judged = 0

    def want_more() -> bool:
        # Expected yield of what is in flight, from the answers judged so far (optimistic at first).
        per_request = stats.accepted / judged if judged else per_call
        in_flight = launched - judged
        return launched < limit and in_flight < window and in_flight * max(per_request, 0.1) < total - stats.accepted

    try:
        while stats.accepted < total:
            while want_more():
                asks[launched] = plan(launched, catalog, mash_cfg, teacher_cfg, seed)
                tasks[launched] = asyncio.create_task(fetch(asks[launched]))
                launched += 1
            if judged == launched:
                write_jsonl(run_dir / "mash.rejects.jsonl", sort_answer.rejected)  # to see why
                tails = f", {stats.tails} more for the tails" if stats.tails else ""
                raise DistilleryError(
                    f"The teacher gave only {stats.accepted} acceptable examples{tails} in {judged} requests "
                    f"(top reject reasons: {dict(stats.reasons.most_common(3))}; all in "
                    f"{run_dir / 'mash.rejects.jsonl'}). Fix: lower `mash.total_examples`, use a stronger "
                    "`teacher.model`, or raise `teacher.max_tokens` if answers were truncated.")
            try:
                record = await tasks.pop(judged)
            except BudgetReached:
                raise DistilleryError(
                    f"teacher.budget_usd (${teacher_cfg.budget_usd:g}) reached: ${session.meter.spent:.4f} spent, "
                    f"{stats.accepted} of {total} examples accepted. Fix: raise `teacher.budget_usd` and run "
                    "again; every answer paid for is kept in the journal and not paid again.") from None
            sort_answer(asks.pop(judged), record)
            judged += 1
            _count(stats, session, judge)
            if on_progress:
                on_progress(stats)
    finally:
        # Answers in flight are paid for either way: let them land in the journal.
        if tasks:
            await asyncio.gather(*tasks.values(), return_exceptions=True)
        _count(stats, session, judge)
        await session.aclose()
        if judge is not None:
            await judge.aclose()
    write_jsonl(run_dir / "mash.rejects.jsonl", sort_answer.rejected)
    write_jsonl(run_dir / "mash.jsonl", sort_answer.accepted)
    return stats


def _count(stats: MashStats, session, judge) -> None:
    stats.requests, stats.replayed = session.counts.sent, session.counts.replayed
    stats.cost_usd = session.meter.spent
    if judge is not None:
        stats.judge_requests, stats.judge_replayed, spent = judge.spent()
        stats.cost_usd += spent


def finish_problem(record: dict) -> str | None:
    """Why a journaled answer that did not end normally cannot be used (None: it ended normally)."""
    if record["finish"] == "stop":
        return None
    return "truncated: the answer hit teacher.max_tokens" if record["finish"] == "length" else \
        "content_filter: the provider withheld the answer" if record["finish"] == "content_filter" else \
        f"finish: the answer ended with `{record.get('raw_finish') or record['finish']}`"


class _Answers:
    """Turns one journaled answer into accepted examples and rejects, in request order."""

    def __init__(self, catalog: list[Tool], mash_cfg, seed: int):
        self.tools_by_name = {t.name: t for t in catalog}
        self.cfg, self.seed = mash_cfg, seed
        self.stats, self.seen = MashStats(), set()
        self.accepted: list[dict] = []
        self.rejected: list[dict] = []

    def _reject(self, where: dict, reason: str, candidate: object) -> None:
        self.rejected.append({**where, "reason": reason, "candidate": candidate})
        self.stats.rejected += 1
        self.stats.reasons[reason.split(":", 1)[0]] += 1

    def __call__(self, ask, record: dict) -> None:
        stats, where = self.stats, {"request": ask.index, "journal_id": record["id"]}
        why = finish_problem(record)
        if why:
            stats.candidates += 1
            return self._reject(where, why, record["text"][:4000])
        try:
            examples = parse_answer(record["text"], limit=2 * ask.n)
        except ValueError as why:
            stats.candidates += 1
            return self._reject(where, str(why), record["text"][:4000])
        shown = [self.tools_by_name[name] for name in ask.tools]
        low, high = self.cfg.tools_per_call.min, self.cfg.tools_per_call.max
        for j, candidate in enumerate(examples):
            if stats.accepted >= self.cfg.total_examples:
                return
            stats.candidates += 1
            calls = candidate.get("calls") if isinstance(candidate, dict) else None
            targets = [c for c in calls if isinstance(c, dict) and c.get("name") in ask.tools] \
                if isinstance(calls, list) else []
            # Distractors only from the slice the teacher saw: it judged that none of the others applies.
            offered = offer_tools(targets, [], shown, random.Random(f"{self.seed}:offer:{ask.index}:{j}"), low, high)
            reason = reject_reason(candidate, offered, self.tools_by_name, self.seen)
            if reason:
                self._reject({**where, "example": j}, reason, candidate)
                continue
            remember(self.seen, candidate["utterance"])
            self.accepted.append({
                "id": f"t{ask.index:05d}.{j:02d}", "utterance": candidate["utterance"].strip(),
                "tools": offered, "calls": candidate["calls"],
                "teacher": {"provider": record["provider"], "model": record["model"], "request": ask.index,
                            "journal_id": record["id"], "persona": ask.persona, "style": ask.style}})
            stats.accepted += 1
