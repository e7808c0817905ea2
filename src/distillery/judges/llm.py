"""The `llm` judge: a teacher model grades each answer by the Recipe's rubric.

One request per distinct valid answer of a case (samples that give the same answer share
its grade): the rubric and the scale in the system message, the request and the answer in
the user message, and a JSON schema that allows only `{"reason", "score"}`, the score a
whole number from 1 to `judge.scale`. Requests go through a teacher session of their own,
with its journal in `journal/judge/`, retries, concurrency and `judge.budget_usd`, so a
resumed run asks again for nothing the judge answered. An answer that cannot be read
scores 0, and says why.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from pathlib import Path

from distillery.errors import DistilleryError, TeacherError
from distillery.judges import Case, Score
from distillery.judges.config import JudgeConfig, judge_teacher
from distillery.teachers.base import Request
from distillery.teachers.cost import BudgetReached, price_for
from distillery.teachers.retry import RetryPolicy
from distillery.teachers.session import TeacherSession

SYSTEM = ("You grade one answer to a request, from 1 (wrong) to {scale} (right in every detail), by this "
          "rubric:\n{rubric}\nAnswer with JSON only: "
          '{{"reason": "<one short sentence>", "score": <a whole number from 1 to {scale}>}}.')
REASON_CHARS = 200  # a sentence: a longer reason only costs tokens (and a small model rambles)


def answer_schema(scale: int) -> dict:
    return {"type": "object", "properties": {
        "reason": {"type": "string", "maxLength": REASON_CHARS},
        "score": {"type": "integer", "enum": list(range(1, scale + 1))}},
        "required": ["reason", "score"], "additionalProperties": False}


def judge_request(case: Case, answer: str, cfg: JudgeConfig) -> Request:
    """The request that grades `answer` (a sample as text) to `case`: the same in every run."""
    digest = hashlib.sha256(f"{case.key}\x1f{answer}".encode()).digest()
    system = SYSTEM.format(scale=cfg.scale, rubric=cfg.rubric.strip())
    user = f"{case.prompt}\n\nThe answer to grade:\n{answer}"
    return Request(messages=({"role": "system", "content": system}, {"role": "user", "content": user}),
                   temperature=cfg.temperature, max_tokens=cfg.max_tokens, json_schema=answer_schema(cfg.scale),
                   seed=int.from_bytes(digest[:4], "big") % 2**31)


def read_score(record: dict, scale: int) -> Score:
    """The grade in a judge's journal record; score 0 with the reason when it cannot be read."""
    if record["finish"] != "stop":
        return Score(0, f"unreadable: the judge's answer ended with `{record.get('raw_finish') or record['finish']}`")
    text = re.sub(r"^\s*```(?:json)?\s*|\s*```\s*$", "", record["text"].strip())
    try:
        data = json.loads(text)
    except ValueError:
        return Score(0, "unreadable: the judge's answer is not JSON")
    score = data.get("score") if isinstance(data, dict) else None
    if isinstance(score, float) and score.is_integer():
        score = int(score)
    if not isinstance(score, int) or isinstance(score, bool) or not 1 <= score <= scale:
        return Score(0, f"unreadable: no score from 1 to {scale} in the judge's answer")
    reason = data.get("reason")
    return Score(score, " ".join(reason.split())[:REASON_CHARS] if isinstance(reason, str) else "")


def provider_for(teacher_cfg, transport=None):
    """The provider a (judge's) teacher config names; `transport` lets tests answer in-process."""
    from distillery.teachers.anthropic import AnthropicTeacher
    from distillery.teachers.gemini import GeminiTeacher
    from distillery.teachers.openai import OpenAITeacher

    classes = {"openai": OpenAITeacher, "anthropic": AnthropicTeacher, "gemini": GeminiTeacher}
    return classes[teacher_cfg.provider](model=teacher_cfg.model, base_url=teacher_cfg.base_url,
                                         key_env=teacher_cfg.api_key_env, transport=transport)


class LLMJudge:
    kind = "llm"

    def __init__(self, session: TeacherSession, cfg: JudgeConfig):
        self.session, self.cfg = session, cfg

    @classmethod
    def open(cls, cfg: JudgeConfig, teacher_cfg, journal_dir: Path, *, policy: RetryPolicy | None = None,
             transport=None) -> LLMJudge:
        settings = judge_teacher(cfg, teacher_cfg)
        provider = provider_for(settings, transport)
        price = price_for(settings, provider.model)
        if price is None and settings.budget_usd is not None:
            raise TeacherError(
                f"judge.budget_usd is set but distillery knows no price for the judge model `{provider.model}`, so "
                "it cannot keep the budget. Fix: add `price: {input: 0.15, output: 0.60}` (USD per million tokens) "
                "under `judge:`.")
        session = TeacherSession(provider, journal_dir, price=price, budget=settings.budget_usd,
                                 concurrency=settings.concurrency, policy=policy or RetryPolicy())
        return cls(session, cfg)

    async def score(self, case: Case, samples: list) -> list[Score]:
        problems = [case.problem(s) for s in samples]
        # Samples that give the same answer are graded once, by the first of them.
        first = {}
        for i, sample in enumerate(samples):
            if problems[i] is None:
                first[i] = next(j for j in range(i + 1) if problems[j] is None and case.same(samples[j], sample))
        asked = sorted(set(first.values()))
        records = await asyncio.gather(*(self.session.ask(case.index, judge_request(case, case.show(samples[i]),
                                                                                     self.cfg)) for i in asked),
                                       return_exceptions=True)
        failed = next((r for r in records if isinstance(r, BaseException)), None)
        if isinstance(failed, BudgetReached):
            raise DistilleryError(
                f"judge.budget_usd (${self.cfg.budget_usd:g}) reached: ${self.session.meter.spent:.4f} spent on the "
                "judge. Fix: raise `judge.budget_usd` and run again; every grade paid for is kept in the journal "
                "and not paid again.")
        if failed is not None:
            raise failed
        grades = {i: read_score(record, self.cfg.scale) for i, record in zip(asked, records)}
        return [Score(0, problems[i]) if problems[i] else grades[first[i]] for i in range(len(samples))]

    def spent(self) -> tuple[int, int, float]:
        counts = self.session.counts
        return counts.sent, counts.replayed, self.session.meter.spent

    async def aclose(self) -> None:
        await self.session.aclose()
