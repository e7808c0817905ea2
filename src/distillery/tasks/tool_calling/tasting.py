"""The Tasting: run the student over the heads and measure it honestly.

The heads were never trained on. Every number in the notes is computed here from the
student's actual outputs; the samples always include failures when there are any, because
a Spirit that hides its weaknesses cannot be trusted.
"""

from __future__ import annotations


from distillery.comparison import compare, verdict_table
from distillery.tasks.base import latency_ms
from distillery.tasks.tool_calling.predictor import ToolCaller
from distillery.tasks.tool_calling.metrics import (
    PROOF_METRIC,
    breakdown,
    score,
    strengths_and_weaknesses,
)
from distillery.tasks.tool_calling.schema import Tool
from distillery.tasks.tool_calling.validate import calls_equal


def pick_samples(rows: list[dict], n: int) -> list[dict]:
    """Up to half failures, the rest successes, in the heads' order."""
    failures = [r for r in rows if r["verdict"] != "exact"]
    successes = [r for r in rows if r["verdict"] == "exact"]
    take_fail = min(len(failures), max(n // 2, n - len(successes)))
    chosen = failures[:take_fail] + successes[:n - take_fail]
    order = {id(r): i for i, r in enumerate(rows)}
    return sorted(chosen, key=lambda r: order[id(r)])


def taste(caller: ToolCaller, heads: list[dict], catalog: list[Tool], *, samples: int = 10,
          held_out: int | None = None, on_progress=None) -> dict:
    """Tasting-notes fields for `heads` (metrics, breakdown, strengths, weaknesses, samples, latency)."""
    tools_by_name = {t.name: t for t in catalog}
    heads = heads[:held_out] if held_out else heads
    predictions, latencies, texts, unfinished = [], [], [], 0
    for i, ex in enumerate(heads):
        pred = caller.predict(ex["utterance"], [tools_by_name[n] for n in ex["tools"]])
        unfinished += pred.unfinished
        predictions.append(pred.calls)
        latencies.append(pred.latency_ms)
        texts.append(pred.text)
        if on_progress:
            on_progress(i + 1, len(heads))
    # The right answer is `expected` where the heads carry one (a judged teacher), else the teacher's calls.
    graded = [(ex, pred) for ex, pred in zip(heads, predictions) if "expected" in ex]
    heads = [{**ex, "calls": ex["expected"]} if "expected" in ex else ex for ex in heads]
    metrics = score(heads, predictions, tools_by_name)
    verdicts = metrics.pop("verdicts")
    parts = breakdown(heads, predictions, tools_by_name)
    strengths, weaknesses = strengths_and_weaknesses(parts)
    rows = [{"id": ex["id"], "input": ex["utterance"], "tools": ex["tools"], "gold": ex["calls"],
             "predicted": pred, "verdict": verdict}
            for ex, pred, verdict in zip(heads, predictions, verdicts)]
    for row, text in zip(rows, texts):
        if row["predicted"] is None:
            row["raw_output"] = text
    found = {
        "proof": metrics[PROOF_METRIC],
        "proof_metric": PROOF_METRIC,
        "metrics": metrics,
        "n_eval": len(heads),
        "strengths": strengths,
        "weaknesses": weaknesses,
        "samples": pick_samples(rows, samples),
        "breakdown": parts,
        "latency_ms": latency_ms(latencies),
        "unfinished": unfinished,  # constrained outputs that ran out of tokens and became "no call"
        "predictions": rows,
    }
    # Teacher against student on the heads that say what was right: the verdict, and each student
    # error inherited (the teacher was wrong too) or compression.
    if graded:
        records = [{"id": ex["id"], "teacher_right": calls_equal(ex["expected"], ex["calls"], tools_by_name),
                    "student_right": pred is not None and calls_equal(ex["expected"], pred, tools_by_name)}
                   for ex, pred in graded]
        found["verdict"] = compare(records, teacher_ms_per_request=None,
                                   student_ms_per_request=found["latency_ms"]["p50"], teacher_cost_per_request=None)
        found["verdict_markdown"] = verdict_table(found["verdict"])
    return found
