"""Tool-calling metrics, on a small hand-scored eval set."""

from __future__ import annotations

import pytest

from distillery.tasks.tool_calling.metrics import (
    breakdown,
    score,
    strengths_and_weaknesses,
)
from distillery.tasks.tool_calling.schema import Param, Tool

TOOLS = {
    tool.name: tool
    for tool in (
        Tool(
            "set_timer",
            params=(
                Param("minutes", "integer", required=True),
                Param("label", "string"),
            ),
        ),
        Tool(
            "get_weather",
            params=(
                Param("city", "string", required=True),
                Param("unit", "string", enum=("celsius", "fahrenheit")),
            ),
        ),
        Tool(
            "send_money",
            params=(Param("amount", "number", required=True), Param("to", "string", required=True)),
        ),
    )
}
ALL = ["set_timer", "get_weather", "send_money"]


def call(name: str, **arguments) -> dict:
    return {"name": name, "arguments": arguments}


def example(i: int, calls: list[dict], tools: list[str] = ALL) -> dict:
    return {"id": f"e{i}", "utterance": f"utterance {i}", "tools": tools, "calls": calls}


# (example, prediction, verdict): one of each verdict, plus normalization and call order.
CASES = [
    (example(1, [call("set_timer", minutes=10)]), [call("set_timer", minutes=10)], "exact"),
    (
        example(2, [call("get_weather", city="Paris", unit="celsius")]),
        [call("get_weather", city=" paris ", unit="fahrenheit")],
        "right tool, wrong arguments",
    ),
    (  # get_weather is not offered here, so the prediction is also not valid
        example(3, [call("set_timer", minutes=5, label="tea")], ["set_timer", "send_money"]),
        [call("get_weather", city="tea")],
        "wrong tool",
    ),
    (example(4, []), [], "exact"),
    (example(5, []), [call("set_timer", minutes="3")], "spurious call"),  # "3": wrong type
    (example(6, [call("get_weather", city="Oslo")]), [], "missed call"),
    (example(7, [call("set_timer", minutes=1)]), None, "invalid output"),
    (  # 5 == 5.0 for a number, "ANN" == "ann" once normalized
        example(8, [call("send_money", amount=5, to="ann")]),
        [call("send_money", amount=5.0, to="ANN")],
        "exact",
    ),
    (  # parallel calls in the other order
        example(9, [call("set_timer", minutes=10, label="eggs"), call("set_timer", minutes=3)]),
        [call("set_timer", minutes=3), call("set_timer", minutes=10, label="eggs")],
        "exact",
    ),
]
EXAMPLES = [case[0] for case in CASES]
PREDICTIONS = [case[1] for case in CASES]


def test_verdicts_one_per_example():
    result = score(EXAMPLES, PREDICTIONS, TOOLS)
    assert result["verdicts"] == [case[2] for case in CASES]
    assert result["n_eval"] == 9


def test_accuracies():
    result = score(EXAMPLES, PREDICTIONS, TOOLS)
    # Tool names right in e1, e2, e4, e8, e9.
    assert result["tool_name_accuracy"] == pytest.approx(5 / 9)
    # Exact in e1, e4, e8, e9.
    assert result["exact_call_accuracy"] == pytest.approx(4 / 9)
    # Invalid: e3 (tool not offered), e5 (minutes is a string), e7 (unparsed).
    assert result["valid_call_rate"] == pytest.approx(6 / 9)
    # No-call examples e4 (right) and e5 (spurious call).
    assert result["no_call_accuracy"] == pytest.approx(0.5)


def test_arg_key_precision_recall_f1():
    result = score(EXAMPLES, PREDICTIONS, TOOLS)
    # Gold keys: 1+2+2+0+0+1+1+2+3 = 12. Predicted keys: 1+2+1+0+1+0+0+2+3 = 10.
    # Matched (same tool name, same key): e1 1, e2 2, e8 2, e9 3 = 8.
    assert result["arg_key_precision"] == pytest.approx(8 / 10)
    assert result["arg_key_recall"] == pytest.approx(8 / 12)
    assert result["arg_key_f1"] == pytest.approx(8 / 11)  # 2pr/(p+r) = (16/15)/(22/15)


def test_all_no_call_examples_answered_with_no_call():
    examples = [example(1, []), example(2, [])]
    result = score(examples, [[], []], TOOLS)
    assert result["tool_name_accuracy"] == 1.0
    assert result["exact_call_accuracy"] == 1.0
    assert result["valid_call_rate"] == 1.0
    assert result["no_call_accuracy"] == 1.0
    # Nothing predicted and nothing expected: no keys to score.
    assert (result["arg_key_precision"], result["arg_key_recall"], result["arg_key_f1"]) == (0, 0, 0)


def test_no_call_accuracy_is_none_without_no_call_examples():
    result = score(EXAMPLES[:1], PREDICTIONS[:1], TOOLS)
    assert result["no_call_accuracy"] is None


def test_score_wants_one_prediction_per_example():
    with pytest.raises(ValueError, match="2 examples but 1 predictions"):
        score(EXAMPLES[:2], PREDICTIONS[:1], TOOLS)


def test_breakdown_per_tool():
    per_tool = breakdown(EXAMPLES, PREDICTIONS, TOOLS)["per_tool"]
    assert per_tool == {
        "(no call)": {"n": 2, "tool_name_accuracy": 0.5, "exact_call_accuracy": 0.5},  # e4, e5
        "get_weather": {"n": 2, "tool_name_accuracy": 0.5, "exact_call_accuracy": 0.0},  # e2, e6
        "send_money": {"n": 1, "tool_name_accuracy": 1.0, "exact_call_accuracy": 1.0},  # e8
        "set_timer": {"n": 4, "tool_name_accuracy": 0.5, "exact_call_accuracy": 0.5},  # e1 e3 e7 e9
    }


def test_breakdown_per_arg_type():
    per_type = breakdown(EXAMPLES, PREDICTIONS, TOOLS)["per_arg_type"]
    # Only calls matched by name count: e1, e2, e8, e9. The unit is an enum, wrong in e2.
    assert per_type == {
        "enum": {"n": 1, "value_accuracy": 0.0},
        "integer": {"n": 3, "value_accuracy": 1.0},  # e1, e9 twice
        "number": {"n": 1, "value_accuracy": 1.0},  # e8: 5 == 5.0
        "string": {"n": 3, "value_accuracy": 1.0},  # e2 city, e8 to, e9 label
    }


def test_a_missing_argument_is_a_wrong_value():
    examples = [example(1, [call("set_timer", minutes=10, label="tea")])]
    per_type = breakdown(examples, [[call("set_timer", minutes=10)]], TOOLS)["per_arg_type"]
    assert per_type == {
        "integer": {"n": 1, "value_accuracy": 1.0},
        "string": {"n": 1, "value_accuracy": 0.0},
    }


def test_strengths_and_weaknesses_split_best_from_worst():
    table = {
        "per_tool": {
            "set_timer": {"n": 12, "tool_name_accuracy": 1.0, "exact_call_accuracy": 1.0},
            "get_weather": {"n": 10, "tool_name_accuracy": 0.9, "exact_call_accuracy": 0.3},
            "rare_tool": {"n": 2, "tool_name_accuracy": 0.0, "exact_call_accuracy": 0.0},
            "(no call)": {"n": 4, "tool_name_accuracy": 0.75, "exact_call_accuracy": 0.75},
        },
        "per_arg_type": {
            "integer": {"n": 34, "value_accuracy": 24 / 34},
            "enum": {"n": 5, "value_accuracy": 0.0},
            "string": {"n": 20, "value_accuracy": 0.95},
        },
    }
    strengths, weaknesses = strengths_and_weaknesses(table, min_n=3)
    # Ranked: set_timer 1.0, string .95, no call .75 | integer .71, get_weather .6, enum 0.
    assert strengths == [
        "set_timer: 12/12 calls exact",
        "string values: 95% right (19/20)",
        "requests that need no call: 3/4 correctly left without one",
    ]
    # Worst first; rare_tool has fewer than min_n cases and is not judged.
    assert weaknesses == [
        "enum values: 0% right (0/5)",
        "get_weather: right tool 9/10, exact 3/10",
        "integer values: 71% right (24/34)",
    ]


def test_perfect_is_never_a_weakness_and_zero_never_a_strength():
    perfect = {"n": 5, "tool_name_accuracy": 1.0, "exact_call_accuracy": 1.0}
    strengths, weaknesses = strengths_and_weaknesses({"per_tool": {"a": perfect, "b": perfect}})
    assert strengths == ["a: 5/5 calls exact", "b: 5/5 calls exact"]
    assert weaknesses == []

    zero = {"per_arg_type": {"boolean": {"n": 4, "value_accuracy": 0.0}}}
    assert strengths_and_weaknesses(zero) == ([], ["boolean values: 0% right (0/4)"])


def test_at_most_five_of_each():
    row = {"n": 3, "tool_name_accuracy": 1.0, "exact_call_accuracy": 1.0}
    strengths, weaknesses = strengths_and_weaknesses({"per_tool": {f"t{i}": row for i in range(8)}})
    assert strengths == [f"t{i}: 3/3 calls exact" for i in range(5)]
    assert weaknesses == []
