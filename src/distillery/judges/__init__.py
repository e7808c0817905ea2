"""Judges: the teacher's N samples answering one request, scored, so the best is kept.

One small interface, chosen by the Recipe's `judge.kind` (`build_judge`):

    await judge.score(case, samples) -> list[Score]   # one per sample, a higher score is better

- `exact` (exact.py): the task's own comparison. The samples vote: a sample scores how many
  of the N give the same answer.
- `execute` (execute.py): runs each answer: the task's own check (a tool call against the
  schema), then the user's check functions. 1 when all pass, 0 with the first failure.
- `llm` (llm.py): a teacher provider grades each distinct answer by the Recipe's rubric, an
  integer and a reason, through its own journal, retries and budget.

A `Case` is all a judge knows of the task: the request, as data and as text, and how the task
checks, compares and shows an answer, so no judge imports a task. `decide` then ranks the
samples (score, then agreement, then order) and says whether the kept one goes to the tails
(the samples disagree, or the judge scored it borderline).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class Score:
    score: int  # 0: never kept (invalid, a failed check, a grade that could not be read)
    reason: str


@dataclass(frozen=True)
class Case:
    """One request the N samples answer, and what its task says about answers."""

    index: int  # the teacher request it came from
    key: str  # names the case in the journal and in messages, e.g. "12.3" (request 12, example 3)
    request: dict  # the request as the Mash writes it, without the answer
    answer: str  # the key an answer goes under in an example ("calls")
    prompt: str  # the request as a judge model reads it
    problem: Callable[[Any], str | None]  # why an answer is not a valid one (None: valid)
    same: Callable[[Any, Any], bool]  # whether two valid answers are the same answer
    show: Callable[[Any], str]  # an answer as text


class Judge(Protocol):
    kind: str

    async def score(self, case: Case, samples: list) -> list[Score]: ...

    def spent(self) -> tuple[int, int, float]:
        """(requests sent, answers replayed from the journal, USD): what the judge cost this run."""

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class Verdict:
    scores: list[Score]
    agree: list[int]  # how many samples give each sample's answer (0 for an invalid one)
    problems: list[str | None]  # why each sample cannot be kept (None: it can)
    kept: list[int]  # the best valid samples, best first, at most `keep`
    tails: list[str | None]  # for each kept sample: why it goes to the tails (None: it trains)


def agreement(case: Case, samples: list, problems: list[str | None]) -> list[int]:
    """For each sample, how many valid samples give the same answer (itself included); 0 if invalid."""
    return [0 if problems[i] else sum(problems[j] is None and case.same(samples[i], samples[j])
                                      for j in range(len(samples))) for i in range(len(samples))]


def decide(case: Case, samples: list, scores: list[Score], *, keep: int, needed: float,
           borderline: int | None) -> Verdict:
    """The samples ranked by score, then agreement, then order; the top `keep` valid ones kept.

    A sample is never kept when it is not a valid answer or the judge scored it 0. A kept answer
    goes to the tails when fewer than `needed` (a share) of the samples give it, or when its
    score is `borderline` or lower.
    """
    valid = [case.problem(s) for s in samples]
    agree = agreement(case, samples, valid)
    problems = [problem or (score.reason or "scored 0" if score.score <= 0 else None)
                for problem, score in zip(valid, scores)]
    order = sorted(range(len(samples)), key=lambda i: (problems[i] is not None, -scores[i].score, -agree[i], i))
    kept = [i for i in order if problems[i] is None][:keep]
    n, tails = len(samples), []
    for i in kept:
        if agree[i] < needed * n - 1e-9:
            tails.append(f"disagree: {agree[i]} of {n} samples give this answer (judge.agreement asks for "
                         f"{needed:g} of them)")
        elif borderline is not None and scores[i].score <= borderline:
            tails.append(f"borderline: the judge scored it {scores[i].score} (judge.borderline {borderline}): "
                         f"{scores[i].reason}")
        else:
            tails.append(None)
    return Verdict(scores, agree, problems, kept, tails)


def mash_inputs(recipe) -> list[str]:
    """What of the judge remakes the Mash when it changes: its settings and its checks file ([]: no judge)."""
    if recipe.judge is None:
        return []
    parts = [recipe.section_sha256("judge")]
    if recipe.judge.checks:
        path = (recipe.base_dir or Path.cwd()) / Path(recipe.judge.checks).expanduser()
        parts.append(hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing")
    return parts


def build_judge(recipe, run_dir: Path, *, policy=None, transport=None) -> Judge:
    """The judge `recipe.judge` describes; an llm judge journals under `run_dir/journal/judge`."""
    cfg = recipe.judge
    if cfg.kind == "exact":
        from distillery.judges.exact import ExactJudge

        return ExactJudge()
    if cfg.kind == "execute":
        from distillery.judges.execute import ExecuteJudge, load_checks

        return ExecuteJudge(load_checks((recipe.base_dir or Path.cwd()) / Path(cfg.checks).expanduser()))
    from distillery.judges.llm import LLMJudge

    return LLMJudge.open(cfg, recipe.teacher, run_dir / "journal" / "judge", policy=policy, transport=transport)
