"""The teacher-vs-student verdict: is the student good enough to replace its teacher?

Generic over tasks: it sees only whether each side got each example right, so any task's
metrics can feed it. The student's errors split in two: *inherited* (the teacher was wrong
too, so more distillation will not fix them) and *compression* (the teacher was right and
the student lost it: the price of the smaller model, and what more data or steps may win back).
"""

from __future__ import annotations

# A drop of under 5 points of accuracy is the usual bar for shipping a distilled model in
# place of its teacher (DistilBERT, the familiar example, kept 97% of BERT's GLUE score);
# past 10 points the student misses a tenth more of the cases and is a different product.
VIABLE_DROP = 0.05  # drop < this: viable
NOT_READY_DROP = 0.10  # drop > this: not ready; in between (both ends included): marginal

VIABLE = "viable"
MARGINAL = "marginal"
NOT_READY = "not ready"

MAX_IDS = 20  # example ids kept per error kind: enough to read, small enough for the notes


def verdict(drop: float) -> str:
    """The verdict for an accuracy drop (a fraction): "viable" under 5 points, "marginal"
    from 5 to 10, "not ready" above."""
    # Rounding keeps 0.95 - 0.90 (0.04999...) from sliding under the bar it sits on.
    drop = round(drop, 9)
    if drop < VIABLE_DROP:
        return VIABLE
    if drop <= NOT_READY_DROP:
        return MARGINAL
    return NOT_READY


def compare(
    records: list[dict],
    *,
    teacher_ms_per_request: float | None,
    student_ms_per_request: float | None,
    teacher_cost_per_request: float | None,
) -> dict:
    """Compare teacher and student on the same examples and give the verdict.

    `records` are {"id", "teacher_right": bool, "student_right": bool}, one per example.
    Returns `n`, `teacher_accuracy`, `student_accuracy`, `drop` (teacher minus student, as a
    fraction: 0.04 is 4 points), `verdict`, `errors` ({"inherited", "compression"} counts),
    `student_fixes` (right where the teacher was wrong), `ids` (the first 20 ids of each
    error kind) and `per_1000`, the bill for 1,000 requests:

    - `teacher_seconds`, `student_seconds`: time to answer 1,000 requests one after another
      (ms per request x 1,000 / 1,000 ms, so numerically the ms per request);
    - `teacher_cost_usd`: the teacher's API cost; `student_cost_usd`: 0.0, the student runs
      on your own hardware with no per-request fee.

    Unknown latency or cost is None.
    """
    if not records:
        raise ValueError("no records to compare: a verdict needs at least one example")
    for i, record in enumerate(records):
        missing = {"id", "teacher_right", "student_right"} - record.keys()
        if missing:
            raise ValueError(
                f"record {i} lacks {sorted(missing)}; each record needs id, teacher_right, student_right"
            )
    n = len(records)
    teacher_right = sum(bool(r["teacher_right"]) for r in records)
    student_right = sum(bool(r["student_right"]) for r in records)
    inherited = [r["id"] for r in records if not r["student_right"] and not r["teacher_right"]]
    compression = [r["id"] for r in records if not r["student_right"] and r["teacher_right"]]
    fixes = sum(bool(r["student_right"]) and not r["teacher_right"] for r in records)
    # From the counts, not from two rounded accuracies, so a 5/100 drop is exactly 0.05.
    drop = (teacher_right - student_right) / n
    return {
        "n": n,
        "teacher_accuracy": teacher_right / n,
        "student_accuracy": student_right / n,
        "drop": drop,
        "verdict": verdict(drop),
        "errors": {"inherited": len(inherited), "compression": len(compression)},
        "student_fixes": fixes,
        "per_1000": {
            "teacher_seconds": _per_1000_seconds(teacher_ms_per_request),
            "student_seconds": _per_1000_seconds(student_ms_per_request),
            "teacher_cost_usd": None if teacher_cost_per_request is None else teacher_cost_per_request * 1000,
            "student_cost_usd": 0.0,
        },
        "ids": {"inherited": inherited[:MAX_IDS], "compression": compression[:MAX_IDS]},
    }


def verdict_table(comparison: dict) -> str:
    """The comparison as Markdown for the Tasting Notes: a teacher | student table, then the
    verdict and where the student's errors come from."""
    per = comparison["per_1000"]
    drop = comparison["drop"]
    rows = [
        ("Accuracy", _percent(comparison["teacher_accuracy"]), _percent(comparison["student_accuracy"])),
        ("Drop", "", f"{drop * 100:.1f} points"),
        ("Latency per 1,000 requests", _seconds(per["teacher_seconds"]), _seconds(per["student_seconds"])),
        ("Cost per 1,000 requests", _usd(per["teacher_cost_usd"]), _usd(per["student_cost_usd"])),
    ]
    lines = [
        "| | Teacher | Student |",
        "|---|---:|---:|",
        *(f"| {name} | {teacher} | {student} |" for name, teacher, student in rows),
        "",
        f"**Verdict: {comparison['verdict']}** ({_verdict_reason(comparison['verdict'])}, "
        f"{comparison['n']} examples).",
        "",
        f"Student errors: {comparison['errors']['inherited']} inherited (the teacher was wrong too), "
        f"{comparison['errors']['compression']} compression (the teacher was right); "
        f"the student fixes {comparison['student_fixes']} the teacher got wrong.",
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- helpers


def _per_1000_seconds(ms_per_request: float | None) -> float | None:
    # ms per request x 1,000 requests / 1,000 ms per second.
    return None if ms_per_request is None else ms_per_request * 1000 / 1000


def _verdict_reason(name: str) -> str:
    low, high = f"{VIABLE_DROP * 100:g}", f"{NOT_READY_DROP * 100:g}"
    return {
        VIABLE: f"drop under {low} points",
        MARGINAL: f"drop of {low} to {high} points",
        NOT_READY: f"drop over {high} points",
    }[name]


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.1f}%"


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f} s"


def _usd(value: float | None) -> str:
    if value is None:
        return "—"
    # Under a cent, two decimals would read $0.00; keep two significant digits instead.
    return f"${value:.2g}" if 0 < value < 0.01 else f"${value:,.2f}"
