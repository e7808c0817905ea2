"""Best-of-N for the tool-calling Mash: N answers to every request the teacher wrote, judged.

An LLM teacher writes the requests as well as their calls: request `i` of the plan
(`toolgen.plan`) comes back as examples, each an utterance with its calls. Those calls are
sample 0. Samples 1..N-1 come from asking the teacher again, in one request per sample, to
answer the same utterances with the same tools shown and nothing else (the student's own
position), at the recipe's temperature. The judge (`judges/`) scores the N answers to each
utterance, the best is kept, and the others go to mash.rejects.jsonl with their scores. The
kept answer goes to the tails instead (`"tail"` in mash.jsonl, then cuts/tails.jsonl: for
review, neither trained on nor tasted) when the samples disagree or the judge scored it
borderline; tails do not count towards `mash.total_examples`.

Every request is a function of what the journals hold: sample `s` of request `i` is built
from request `i`'s journaled answer with a seed drawn from (seed, i, s), and each grade from
the samples. So a resumed run rebuilds the same requests and finds them all in the journals.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field

from distillery.judges import Case, Verdict, decide
from distillery.mash import MashStats, remember
from distillery.tasks.tool_calling.mash import finish_problem, offer_tools, reject_reason
from distillery.tasks.tool_calling.schema import Tool
from distillery.tasks.tool_calling.toolgen import Ask, loosen, parse_answer, read_json, shown_calls_schema
from distillery.tasks.tool_calling.validate import calls_equal, check_calls
from distillery.teachers.base import Request

ANSWER_SYSTEM = (
    "You are an assistant that answers each user message with the calls to the offered tools that fulfil it, "
    "or no call ([]) when none of the tools can serve it. Answer with JSON only, no prose: "
    '{"answers": [{"calls": [{"name": "...", "arguments": {...}}]}]}, one answer per message, in order.')
TASK = ("An assistant answers a user's message with calls to the tools it is offered, as JSON "
        '[{"name": ..., "arguments": {...}}], or [] when none of the tools can serve the message.')


@dataclass(frozen=True)
class Missing:
    """A sample with no answer to read (its request was truncated, or its JSON had none for this message)."""

    reason: str


def judge_prompt(tools: list[Tool], utterance: str) -> str:
    """An utterance and the tools it was offered with, as an llm judge reads them."""
    listed = json.dumps([t.to_openai()["function"] for t in tools], ensure_ascii=False)
    return f"{TASK}\n\nTools offered:\n{listed}\n\nUser message:\n{json.dumps(utterance, ensure_ascii=False)}"


def answer_request(ask: Ask, tools: list[Tool], utterances: list[str], sample: int, teacher_cfg, seed: int) -> Request:
    """Sample `sample` (1..N-1) of request `ask`: the teacher answers its utterances again, in order."""
    listed = "\n".join(f"{k + 1}. {json.dumps(u, ensure_ascii=False)}" for k, u in enumerate(utterances))
    user = ("Tools:\n" + json.dumps([t.to_openai()["function"] for t in tools], ensure_ascii=False) + "\n\n"
            f"Messages:\n{listed}\n\n"
            f"Give the calls for each of the {len(utterances)} messages, in order. Use only the tools and argument "
            "names above, with their types and enum values, and take every value from the message.")
    answer = {"type": "object", "properties": {"calls": shown_calls_schema(tools)}, "required": ["calls"],
              "additionalProperties": False}
    schema = {"type": "object", "properties": {"answers": {
        "type": "array", "items": answer, "minItems": len(utterances), "maxItems": len(utterances)}},
        "required": ["answers"], "additionalProperties": False}
    rng = random.Random(f"{seed}:llm-sample:{ask.index}:{sample}")
    return Request(messages=({"role": "system", "content": ANSWER_SYSTEM}, {"role": "user", "content": user}),
                   temperature=teacher_cfg.temperature, max_tokens=teacher_cfg.max_tokens, json_schema=schema,
                   seed=rng.randrange(2**31))


def read_answers(record: dict, count: int) -> list:
    """The calls a sample's answer gives each of `count` messages, in order; Missing where none."""
    problem = finish_problem(record)
    if problem is None:
        try:
            data = read_json(record["text"])
        except ValueError as why:
            problem = str(why)
    if problem is None:
        answers = data.get("answers") if isinstance(data, dict) else data
        if not isinstance(answers, list):
            problem = "bad_structure: no `answers` list in the answer"
    if problem:
        return [Missing(problem)] * count
    out = []
    for k in range(count):
        item = answers[k] if k < len(answers) else None
        item = {"calls": item} if isinstance(item, list) else item  # a bare list of calls
        if isinstance(item, dict) and "calls" in item:
            out.append(loosen(item)["calls"])
        else:
            out.append(Missing(f"bad_structure: the answer has nothing for message {k + 1}"))
    return out


async def settle(coroutines) -> list:
    """Await them all, so what was paid for lands in the journal, then raise the first failure."""
    results = await asyncio.gather(*coroutines, return_exceptions=True)
    failed = next((r for r in results if isinstance(r, BaseException)), None)
    if failed is not None:
        raise failed
    return results


@dataclass
class Sampled:
    """One planned request, sampled and judged: what `Sorter` turns into examples."""

    record: dict  # the journal record of the teacher's examples (sample 0)
    problem: str | None = None  # why that answer is unusable
    examples: list = field(default_factory=list)
    judged: dict[int, tuple[list, Verdict]] = field(default_factory=dict)  # example -> (samples, verdict)
    records: list[dict] = field(default_factory=list)  # the journal records of samples 1..N-1


class Sampler:
    """Fetches a planned request's N samples through the teacher's session and has them judged."""

    def __init__(self, session, judge, judge_cfg, catalog: list[Tool], mash_cfg, teacher_cfg, seed: int):
        if mash_cfg.keep != 1:
            raise ValueError("tool calling keeps one answer per request")
        self.session, self.judge, self.seed = session, judge, seed
        self.n, self.teacher_cfg = mash_cfg.samples_per_request, teacher_cfg
        self.needed = judge_cfg.agreement
        self.borderline = judge_cfg.borderline if judge_cfg.kind == "llm" else None
        self.by_name = {t.name: t for t in catalog}
        self.sorter = Sorter(catalog, mash_cfg, seed, judge.kind)

    async def fetch(self, ask: Ask) -> Sampled:
        record = await self.session.ask(ask.index, ask.request)
        problem = finish_problem(record)
        if problem is None:
            try:
                examples = parse_answer(record["text"], limit=2 * ask.n)
            except ValueError as why:
                problem = str(why)
        if problem:
            return Sampled(record, problem)
        asked = [(j, ex["utterance"].strip()) for j, ex in enumerate(examples)
                 if isinstance(ex, dict) and isinstance(ex.get("utterance"), str) and ex["utterance"].strip()]
        shown = [self.by_name[name] for name in ask.tools]
        records = []
        if asked and self.n > 1:
            utterances = [u for _, u in asked]
            records = await settle(self.session.ask(ask.index, answer_request(ask, shown, utterances, s,
                                                                              self.teacher_cfg, self.seed))
                                   for s in range(1, self.n))
        answers = [read_answers(r, len(asked)) for r in records]
        cases = [(j, self._case(ask, j, utterance, shown), [examples[j].get("calls")] + [a[k] for a in answers])
                 for k, (j, utterance) in enumerate(asked)]
        scores = await settle(self.judge.score(case, samples) for _, case, samples in cases)
        judged = {j: (samples, decide(case, samples, found, keep=1, needed=self.needed, borderline=self.borderline))
                  for (j, case, samples), found in zip(cases, scores)}
        return Sampled(record, None, examples, judged, records)

    def _case(self, ask: Ask, j: int, utterance: str, shown: list[Tool]) -> Case:
        return Case(index=ask.index, key=f"{ask.index}.{j}", request={"utterance": utterance, "tools": list(ask.tools)},
                    answer="calls", prompt=judge_prompt(shown, utterance),
                    problem=lambda calls: calls.reason if isinstance(calls, Missing) else check_calls(calls, shown),
                    same=lambda a, b: calls_equal(a, b, self.by_name),
                    show=lambda calls: json.dumps(calls, ensure_ascii=False))


class Sorter:
    """Turns one request's judged samples into examples, tails and rejects, in request order."""

    def __init__(self, catalog: list[Tool], mash_cfg, seed: int, judge_kind: str):
        self.tools_by_name = {t.name: t for t in catalog}
        self.cfg, self.seed, self.judge_kind = mash_cfg, seed, judge_kind
        self.stats, self.seen = MashStats(), set()
        self.accepted: list[dict] = []  # the kept examples, the tails among them
        self.rejected: list[dict] = []

    def _reject(self, where: dict, reason: str, candidate: object) -> None:
        self.rejected.append({**where, "reason": reason, "candidate": candidate})
        self.stats.rejected += 1
        self.stats.reasons[reason.split(":", 1)[0]] += 1

    def __call__(self, ask: Ask, sampled: Sampled) -> None:
        stats, where = self.stats, {"request": ask.index, "journal_id": sampled.record["id"]}
        if sampled.problem:
            stats.candidates += 1
            return self._reject(where, sampled.problem, sampled.record["text"][:4000])
        shown = [self.tools_by_name[name] for name in ask.tools]
        low, high = self.cfg.tools_per_call.min, self.cfg.tools_per_call.max
        for j, candidate in enumerate(sampled.examples):
            if stats.accepted >= self.cfg.total_examples:
                return
            stats.candidates += 1
            if j not in sampled.judged:  # no utterance to answer
                self._reject({**where, "example": j}, reject_reason(candidate, [], self.tools_by_name, self.seen),
                             candidate)
                continue
            samples, verdict = sampled.judged[j]
            utterance = candidate["utterance"].strip()
            kept = verdict.kept[0] if verdict.kept else None

            def sample_where(s: int) -> dict:
                record = sampled.record if s == 0 else sampled.records[s - 1]
                return {"request": ask.index, "journal_id": record["id"], "example": j, "sample": s,
                        "score": verdict.scores[s].score}

            def shown_calls(s: int):
                return None if isinstance(samples[s], Missing) else samples[s]

            for s in range(len(samples)):
                if s != kept:
                    best = verdict.scores[kept].score if kept is not None else None
                    reason = verdict.problems[s] or (
                        f"outranked: the {self.judge_kind} judge scored it {verdict.scores[s].score} "
                        f"({verdict.scores[s].reason}); sample {kept} was kept with {best}")
                    self._reject(sample_where(s), reason, {"utterance": utterance, "calls": shown_calls(s)})
            if kept is None:
                continue
            chosen = {"utterance": utterance, "calls": samples[kept]}
            # Distractors only from the slice the teacher saw: it judged that none of the others applies.
            offered = offer_tools(samples[kept], [], shown, random.Random(f"{self.seed}:offer:{ask.index}:{j}"),
                                  low, high)
            reason = reject_reason(chosen, offered, self.tools_by_name, self.seen)
            if reason:
                self._reject(sample_where(kept), reason, chosen)
                continue
            remember(self.seen, utterance)
            score = verdict.scores[kept]
            source = sampled.record if kept == 0 else sampled.records[kept - 1]
            example = {"id": f"t{ask.index:05d}.{j:02d}", "utterance": utterance, "tools": offered,
                       "calls": samples[kept],
                       "teacher": {"provider": source["provider"], "model": source["model"], "request": ask.index,
                                   "journal_id": source["id"], "persona": ask.persona, "style": ask.style,
                                   "sample": kept, "samples": len(samples), "agreement": verdict.agree[kept],
                                   "judge": {"kind": self.judge_kind, "score": score.score, "reason": score.reason}}}
            if verdict.tails[0]:
                example["tail"] = verdict.tails[0]
                stats.tails += 1
            else:
                stats.accepted += 1
            self.accepted.append(example)
