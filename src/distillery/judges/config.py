"""The Recipe's `judge:` section, and the checks that span it and `mash:` / `teacher:`.

A recipe with no `judge:` and `mash.samples_per_request: 1` makes the Mash it always made,
and reads and hashes as it always did: neither is written into the resolved recipe.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_serializer, model_validator

from distillery.recipe_sections import PriceConfig, Section, TeacherConfig, _check
from distillery.tasks import TASTING_JUDGED

LLM_TEACHERS = ("openai", "anthropic", "gemini")
# Fields only `kind: llm` reads: the judge model's endpoint and what it is asked.
_LLM_ONLY = ("rubric", "scale", "borderline", "provider", "model", "base_url", "api_key_env", "temperature",
             "max_tokens", "concurrency", "budget_usd", "price")


class JudgeConfig(Section):
    """How the teacher's N samples of a request are scored, so the best is kept (docs/judges.md)."""

    kind: Literal["exact", "execute", "llm"] = Field(..., description=(
        "exact: the samples vote (a sample scores how many give the same answer); execute: each answer is run "
        "through the schema and your `checks`; llm: a teacher model grades each answer by the `rubric`."))
    agreement: float = Field(1.0, gt=0, le=1, description=(
        "Share of the N samples that must give the kept answer; with fewer, the samples disagree and the "
        "example goes to cuts/tails.jsonl for review instead of training or tasting."))
    checks: str | None = Field(None, description=(
        "execute: a Python file, relative to the recipe, of `check_...(example)` functions; each returns None "
        "or True to pass, False or a reason to fail."))
    rubric: str | None = Field(None, description="llm: what a right answer is, in words the judge model reads.")
    scale: int = Field(5, ge=2, le=10, description="llm: scores run from 1 (wrong) to this (right in every detail).")
    borderline: int | None = Field(None, ge=1, description=(
        "llm: a kept answer scored this or lower goes to cuts/tails.jsonl for review, not to training."))
    provider: Literal["openai", "anthropic", "gemini"] | None = Field(None, description=(
        "llm: who answers as the judge; None = the teacher's provider, model, endpoint and key."))
    model: str | None = Field(None, description=(
        "llm: the judge model; None = the teacher's (or the provider's default)."))
    base_url: str | None = Field(None, description="llm: the judge's endpoint; None = the teacher's.")
    api_key_env: str | None = Field(None, description="llm: variable holding the judge's key; None = the teacher's.")
    temperature: float = Field(0.0, ge=0, le=2, description="llm: the judge's sampling temperature.")
    max_tokens: int = Field(256, gt=0, description="llm: most tokens of one judge answer (a score and a reason).")
    concurrency: int | None = Field(None, ge=1, description="llm: judge requests in flight; None = the teacher's.")
    budget_usd: float | None = Field(None, gt=0, description="llm: stop before the judge spends more than this.")
    price: PriceConfig | None = Field(None, description="llm: the judge model's USD per million tokens.")

    @model_validator(mode="before")
    @classmethod
    def _kind_shorthand(cls, data):
        return {"kind": data} if isinstance(data, str) else data  # `judge: exact`

    @model_serializer(mode="wrap")
    def _only_what_the_kind_reads(self, handler):
        data = handler(self)
        unused = {"exact": (*_LLM_ONLY, "checks"), "execute": _LLM_ONLY, "llm": ("checks",)}[self.kind]
        return {k: v for k, v in data.items() if k not in unused}

    @model_validator(mode="after")
    def _fields_of_the_kind(self) -> JudgeConfig:
        problems = []
        for name in _LLM_ONLY:
            if self.kind != "llm" and _changed(self, name):
                problems.append((name, f"only `kind: llm` reads it; the {self.kind} judge would ignore it. "
                                       "Fix: remove it, or set `kind: llm`."))
        if self.kind != "execute" and self.checks is not None:
            problems.append(("checks", "only `kind: execute` runs checks. Fix: remove it, or set `kind: execute`."))
        if self.kind == "execute" and self.checks is None:
            problems.append(("checks", "missing; an execute judge runs your check functions. Fix: add e.g. "
                                       "`checks: checks.py`, or use `kind: exact`."))
        if self.kind == "llm":
            if not (self.rubric or "").strip():
                problems.append(("rubric", "missing; an llm judge grades by it. Fix: e.g. `rubric: the calls do "
                                           "exactly what the message asks, with every value taken from it`."))
            if self.borderline is not None and self.borderline >= self.scale:
                problems.append(("borderline", f"{self.borderline} would send every answer (scored 1 to "
                                               f"{self.scale}) to the tails. Fix: set it below {self.scale}."))
        _check(problems)
        return self


def _changed(section, name: str) -> bool:
    """Whether `name` was written with other than its default (a resolved recipe writes defaults out)."""
    default = type(section).model_fields[name].get_default(call_default_factory=True)
    return name in section.model_fields_set and getattr(section, name) != default


def judge_problems(recipe) -> list[tuple[str, str]]:
    """(field, message) for best-of-N and judge settings the rest of `recipe` cannot honour."""
    m, judge, problems = recipe.mash, recipe.judge, []
    n, keep = m.samples_per_request, m.keep
    if keep > n:
        problems.append(("mash.keep", f"{keep} is more than the {n} samples asked for (`samples_per_request`). "
                                      f"Fix: set `keep` to at most {n}."))
    elif keep > 1:
        problems.append(("mash.keep", "keeping more than one answer to a request would teach the student two "
                                      "answers to one request (or the same one twice); no task kind of this version "
                                      "can use that. Fix: `keep: 1`."))
    if n == 1 and judge is None:
        return problems
    if recipe.task.kind in TASTING_JUDGED:
        return problems  # its judge grades the student at the Tasting; the task checks what it can honour
    where = "mash.samples_per_request" if n > 1 else "judge"
    if recipe.task.kind != "tool_calling":
        problems.append((where, f"best-of-N and judges work for tool calling in this version, not {recipe.task.kind}. "
                                "Fix: remove it."))
    if recipe.teacher.provider not in LLM_TEACHERS:
        why = "is deterministic: its N samples would all be the same" if recipe.teacher.provider == "offline" else \
            "replays one answer per request"
        problems.append((where, f"the {recipe.teacher.provider} teacher {why}, and judges score LLM teacher "
                                "answers. Fix: remove it, or use an LLM teacher (openai, anthropic, gemini)."))
    if judge is not None and n == 1:
        if judge.kind == "exact":
            problems.append(("judge.kind", "an exact judge compares the N samples of a request, and "
                                           "`mash.samples_per_request` is 1. Fix: set `samples_per_request: 4` "
                                           "(or more), or use an execute or llm judge."))
        elif _changed(judge, "agreement"):
            problems.append(("judge.agreement", "compares the N samples of a request, and "
                                                "`mash.samples_per_request` is 1. Fix: remove it, or ask for more "
                                                "samples."))
    return problems


def judge_teacher(judge: JudgeConfig, teacher: TeacherConfig) -> TeacherConfig:
    """The teacher settings an llm judge is asked through: its own, the teacher's where it names no provider."""
    inherit = judge.provider is None
    return TeacherConfig(
        provider=teacher.provider if inherit else judge.provider,
        model=judge.model or (teacher.model if inherit else None),
        base_url=judge.base_url or (teacher.base_url if inherit else None),
        api_key_env=judge.api_key_env or (teacher.api_key_env if inherit else None),
        # The teacher's price is its model's: it holds for the judge only on the same model.
        price=judge.price or (teacher.price if inherit and judge.model in (None, teacher.model) else None),
        temperature=judge.temperature, max_tokens=judge.max_tokens,
        concurrency=judge.concurrency or teacher.concurrency, budget_usd=judge.budget_usd)
