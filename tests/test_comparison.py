"""The teacher-vs-student verdict, checked against counts worked out by hand."""

from __future__ import annotations

import pytest

from distillery.comparison import MAX_IDS, compare, verdict, verdict_table

# One of each kind: both right, compression, inherited, a student fix, compression again.
RECORDS = [
    {"id": "r1", "teacher_right": True, "student_right": True},
    {"id": "r2", "teacher_right": True, "student_right": False},
    {"id": "r3", "teacher_right": False, "student_right": False},
    {"id": "r4", "teacher_right": False, "student_right": True},
    {"id": "r5", "teacher_right": True, "student_right": False},
]
COSTS = {"teacher_ms_per_request": 850.0, "student_ms_per_request": 12.5, "teacher_cost_per_request": 0.0025}


def _records(n: int, teacher_right: int, student_right: int) -> list[dict]:
    """n records: the teacher right on the first `teacher_right`, the student on the first `student_right`."""
    return [
        {"id": i, "teacher_right": i < teacher_right, "student_right": i < student_right} for i in range(n)
    ]


def test_counts_accuracies_and_error_kinds():
    result = compare(RECORDS, **COSTS)
    assert result["n"] == 5
    assert result["teacher_accuracy"] == pytest.approx(0.6)
    assert result["student_accuracy"] == pytest.approx(0.4)
    assert result["drop"] == pytest.approx(0.2)
    assert result["verdict"] == "not ready"
    assert result["errors"] == {"inherited": 1, "compression": 2}
    assert result["student_fixes"] == 1
    assert result["ids"] == {"inherited": ["r3"], "compression": ["r2", "r5"]}


@pytest.mark.parametrize(
    ("student_right", "drop", "expected"),
    [(951, 0.049, "viable"), (950, 0.05, "marginal"), (900, 0.10, "marginal"), (890, 0.11, "not ready")],
)
def test_verdict_at_the_thresholds(student_right, drop, expected):
    result = compare(_records(1000, 1000, student_right), **COSTS)
    assert result["drop"] == pytest.approx(drop)
    assert result["verdict"] == expected
    assert result["errors"] == {"inherited": 0, "compression": 1000 - student_right}


def test_verdict_is_not_fooled_by_float_noise():
    assert 0.95 - 0.90 < 0.05 and 0.8 - 0.7 > 0.10  # the noise this guards against
    assert verdict(0.95 - 0.90) == "marginal"
    assert verdict(0.8 - 0.7) == "marginal"


def test_a_student_better_than_its_teacher_is_viable():
    result = compare(_records(10, 5, 8), **COSTS)
    assert result["drop"] == pytest.approx(-0.3)
    assert result["verdict"] == "viable"
    assert result["student_fixes"] == 3


def test_ids_keep_the_first_twenty():
    result = compare(_records(30, 0, 0), **COSTS)
    assert result["errors"]["inherited"] == 30
    assert result["ids"]["inherited"] == list(range(MAX_IDS))
    assert MAX_IDS == 20


def test_per_1000_requests():
    result = compare(RECORDS, **COSTS)
    # 850 ms x 1,000 requests = 850 s; $0.0025 x 1,000 = $2.50; the student has no fee.
    assert result["per_1000"] == pytest.approx(
        {"teacher_seconds": 850.0, "student_seconds": 12.5, "teacher_cost_usd": 2.5, "student_cost_usd": 0.0}
    )


def test_unknown_latency_and_cost_are_none():
    result = compare(RECORDS, **dict.fromkeys(COSTS))
    assert result["per_1000"] == {
        "teacher_seconds": None,
        "student_seconds": None,
        "teacher_cost_usd": None,
        "student_cost_usd": 0.0,
    }
    table = verdict_table(result)
    assert "| Latency per 1,000 requests | — | — |" in table
    assert "| Cost per 1,000 requests | — | $0.00 |" in table


def test_bad_records_are_refused():
    with pytest.raises(ValueError, match="at least one example"):
        compare([], **COSTS)
    with pytest.raises(ValueError, match=r"record 1 lacks \['student_right'\]"):
        compare([RECORDS[0], {"id": "x", "teacher_right": True}], **COSTS)


def test_verdict_table_carries_the_numbers():
    table = verdict_table(compare(RECORDS, **COSTS))
    rows = [line for line in table.splitlines() if line.startswith("|")]
    assert rows == [
        "| | Teacher | Student |",
        "|---|---:|---:|",
        "| Accuracy | 60.0% | 40.0% |",
        "| Drop |  | 20.0 points |",  # the teacher is the baseline: no drop of its own
        "| Latency per 1,000 requests | 850.0 s | 12.5 s |",
        "| Cost per 1,000 requests | $2.50 | $0.00 |",
    ]
    assert "**Verdict: not ready** (drop over 10 points, 5 examples)." in table
    assert "1 inherited" in table
    assert "2 compression" in table
    assert "fixes 1 the teacher got wrong" in table


def test_verdict_table_says_why_for_each_verdict():
    assert "(drop under 5 points" in verdict_table(compare(_records(100, 100, 97), **COSTS))
    assert "(drop of 5 to 10 points" in verdict_table(compare(_records(100, 100, 93), **COSTS))


def test_tiny_costs_do_not_round_to_zero():
    result = compare(RECORDS, **{**COSTS, "teacher_cost_per_request": 0.000004})
    assert "| Cost per 1,000 requests | $0.004 | $0.00 |" in verdict_table(result)
