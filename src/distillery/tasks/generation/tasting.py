"""The generation Tasting: the student answers every heads request; a judge grades each answer.

With `tasting.proof: judge` (the default) the Recipe's llm judge (judges/llm.py) reads the
instruction, the request, the teacher's answer as a reference and the student's answer, and
gives a whole score from 1 to `judge.scale` with a one-sentence reason. Its requests go
through its own journal in the run (`journal/judge/`), retries and `judge.budget_usd`, so a
re-run of the Tasting pays for no grade twice. A grade g counts (g - 1) / (scale - 1): the
lowest grade is 0, the top one 1. An empty answer, or one the judge's reply gave no grade
for, counts 0. The proof is the mean, `judge_score`.

With `tasting.proof: exact`, and wherever no run holds a judge's journal (a bottle tasted
beside its Spirit, `distillery taste` of an artifact), the proof is `exact_match`: the share of
answers equal to the teacher's, spacing aside. A bottle is never graded by a model: that would
need the judge's endpoint and key, and pay again, to compare two copies of one student.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from distillery.errors import DistilleryError
from distillery.judges import Case, Score, build_judge
from distillery.judges.config import judge_teacher
from distillery.tasks.base import latency_ms
from distillery.tasks.generation.predictor import PromptTooLong, TextPrediction

LOW = 2  # a grade at or below this is a failure worth a weakness line


def same(a: str, b: str) -> bool:
    """Two answers are the same text, spacing aside."""
    return " ".join(a.split()) == " ".join(b.split())


def judge_prompt(context: str, request: str, reference: str) -> str:
    """What the judge reads before the answer it grades (judges/llm.py adds the answer)."""
    return (f"The instruction the answer follows:\n{context}\n\nThe request:\n{request}\n\n"
            f"A reference answer, written by a larger model:\n{reference}")


def case_for(index: int, example: dict, context: str, problem: str | None) -> Case:
    """The judge's view of one heads example; `problem` says why the student has no answer to grade."""
    return Case(index=index, key=f"tasting:{example['id']}", request={"utterance": example["utterance"]},
                answer="output", prompt=judge_prompt(context, example["utterance"], example["output"]),
                problem=lambda output: problem or (None if output.strip() else "empty: the student wrote nothing"),
                same=lambda a, b: a == b, show=str)


def grade(recipe, run_dir: Path, cases: list[Case], outputs: list[str]) -> tuple[list[Score], dict]:
    """The judge's score of each output, and what grading took (requests sent, from the journal, USD)."""
    judge = build_judge(recipe, run_dir)

    async def all_cases() -> list:
        try:
            # Every grade settles before a failure is raised, so all that was paid for is journaled.
            found = await asyncio.gather(*(judge.score(case, [output]) for case, output in zip(cases, outputs)),
                                         return_exceptions=True)
        finally:
            await judge.aclose()
        failed = next((f for f in found if isinstance(f, BaseException)), None)
        if failed is not None:
            raise failed
        return [scores[0] for scores in found]

    scores = asyncio.run(all_cases())
    sent, replayed, usd = judge.spent()
    settings = judge_teacher(recipe.judge, recipe.teacher)
    return scores, {"kind": recipe.judge.kind, "provider": settings.provider, "model": settings.model,
                    "scale": recipe.judge.scale, "rubric": recipe.judge.rubric, "requests_sent": sent,
                    "replayed": replayed, "cost_usd": round(usd, 6)}


def answer_all(predictor, heads: list[dict]) -> tuple[list[TextPrediction], list[str | None]]:
    """The student's answer to each head, and why there is none (a request too long for its context)."""
    predictions, problems = [], []
    for ex in heads:
        try:
            predictions.append(predictor.predict(ex["utterance"]))
            problems.append(None)
        except PromptTooLong as exc:
            predictions.append(TextPrediction(output="", latency_ms=0.0))
            problems.append(f"too_long: {exc}")
    return predictions, problems


def notes(heads: list[dict], predictions: list[TextPrediction], problems: list[str | None],
          scores: list[Score] | None, judge: dict | None, *, samples: int, max_words: int | None,
          max_new_tokens: int) -> dict:
    """Tasting-notes fields: the proof, metrics, the worst samples with the judge's reasons, latency."""
    n = len(heads)
    if not n:
        raise DistilleryError("no held-out examples to taste. Fix: raise `mash.total_examples` or `cuts.heads`.")
    outputs = [p.output for p in predictions]
    exact = [same(o, ex["output"]) for o, ex in zip(outputs, heads)]
    metrics: dict = {}
    rows = []
    for i, (ex, output) in enumerate(zip(heads, outputs)):
        row = {"id": ex["id"], "input": ex["utterance"], "gold": ex["output"], "predicted": output}
        if scores is not None:
            s = scores[i]
            row.update(score=s.score, reason=s.reason,
                       verdict=f"{s.score}/{judge['scale']}: {s.reason}" if s.score else f"ungraded: {s.reason}")
        else:
            row["verdict"] = "exact" if exact[i] else (problems[i] or "different")
        rows.append(row)
    if scores is not None:
        scale = judge["scale"]
        graded = [s.score for s in scores if s.score > 0]
        metrics["judge_score"] = round(sum((s.score - 1) / (scale - 1) if s.score else 0.0 for s in scores) / n, 6)
        metrics["judge_mean"] = round(sum(graded) / len(graded), 4) if graded else None
        metrics["judge_ungraded"] = n - len(graded)
        # The worst first: the lowest grade (ungraded lowest of all), then the heads' order.
        ranked = sorted(rows, key=lambda r: r["score"])
        proof_metric = "judge_score"
    else:
        ranked = [r for r in rows if r["verdict"] != "exact"] + [r for r in rows if r["verdict"] == "exact"]
        proof_metric = "exact_match"
    metrics["exact_match"] = round(sum(exact) / n, 6)
    lengths = [len(o.split()) for o in outputs]
    metrics["mean_words"] = round(sum(lengths) / n, 2)
    metrics["teacher_mean_words"] = round(sum(len(ex["output"].split()) for ex in heads) / n, 2)
    if max_words:
        metrics["within_max_words"] = round(sum(k <= max_words for k in lengths) / n, 6)
    unfinished = sum(p.unfinished for p in predictions)
    metrics["unfinished_rate"] = round(unfinished / n, 6)
    strengths, weaknesses = _points(rows, scores, judge, lengths, exact, max_words, unfinished, max_new_tokens)
    found = {
        "proof": metrics[proof_metric],
        "proof_metric": proof_metric,
        "metrics": metrics,
        "n_eval": n,
        "strengths": strengths,
        "weaknesses": weaknesses,
        "samples": ranked[:samples],
        "latency_ms": latency_ms([p.latency_ms for p in predictions if p.latency_ms]),
        "unfinished": unfinished,
        "grammar": False,
        "judge": judge,
        "predictions": rows,
        "tables": [],
    }
    if scores is not None:
        found["tables"] = [
            {"title": "Worst samples: the judge's reasons",
             "header": ["id", "score", "the judge's reason", "the student's answer"],
             "rows": [[r["id"], f"{r['score']}/{judge['scale']}" if r["score"] else "—", r["reason"],
                       _short(r["predicted"])] for r in ranked[:samples]]},
            {"title": "Scores", "header": ["score", "answers"],
             "rows": [[str(k) if k else "ungraded", v] for k, v in sorted(Counter(r["score"] for r in rows).items())]},
        ]
    return found


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _points(rows, scores, judge, lengths, exact, max_words, unfinished, max_new_tokens) -> tuple[list, list]:
    n = len(rows)
    strengths, weaknesses = [], []
    if scores is not None:
        scale = judge["scale"]
        top = sum(s.score == scale for s in scores)
        low = [r for r in sorted(rows, key=lambda r: r["score"]) if r["score"] <= LOW]
        if top:
            strengths.append(f"{top} of {n} answers scored {scale}/{scale} by the judge")
        if low:
            weaknesses.append(f"{len(low)} of {n} answers scored {LOW} or less (or ungraded); the worst: "
                              f"{low[0]['reason'] or 'no reason given'}")
    if sum(exact):
        strengths.append(f"{sum(exact)} of {n} answers are word for word the teacher's")
    if max_words:
        over = sum(k > max_words for k in lengths)
        (weaknesses if over else strengths).append(
            f"{over} of {n} answers longer than task.max_words ({max_words})" if over else
            f"every answer within task.max_words ({max_words})")
    if unfinished:
        weaknesses.append(f"{unfinished} of {n} answers cut at {max_new_tokens} tokens (tasting.max_new_tokens) "
                          "before the student ended them")
    return strengths, weaknesses
