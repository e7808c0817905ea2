"""Tool-calling metrics: how close the student's calls come to the gold ones.

An example is `{"id", "utterance", "tools": [names offered], "calls": [{"name", "arguments"}]}`
(`calls == []`: the right answer is no call). A prediction is a list of calls, possibly
empty, or `None` when the output could not be parsed as calls at all.

The headline number, the proof, is `exact_call_accuracy`: the whole answer right (every call,
every argument value). Tool-name accuracy alone hid value errors: 99.75% right tool names on
BFCL simple_python where 19.25% of the calls were right. Spirits tasted before this change
carry `tool_name_accuracy` as their proof and no `proof_metric`; they load as they are.
The rest explain the proof: tool names, argument keys (p/r/F1), validity, no-call behaviour,
and one verdict per case.
"""

from __future__ import annotations

import math
from collections import Counter

from distillery.tasks.tool_calling.schema import Tool
from distillery.tasks.tool_calling.validate import (
    calls_equal,
    check_calls,
    normalize_value,
)

EXACT = "exact"
WRONG_ARGUMENTS = "right tool, wrong arguments"
WRONG_TOOL = "wrong tool"
MISSED = "missed call"
SPURIOUS = "spurious call"
INVALID = "invalid output"

PROOF_METRIC = "exact_call_accuracy"
NO_CALL = "(no call)"  # the per_tool key for examples whose right answer is no call


def verdict(gold: list[dict], pred: list[dict] | None, tools_by_name: dict[str, Tool]) -> str:
    """The verdict on one case: exact, right tool but wrong arguments, wrong tool, missed call,
    spurious call or invalid output (`pred` is None)."""
    if pred is None:
        return INVALID
    if not gold:
        return EXACT if not pred else SPURIOUS
    if not pred:
        return MISSED
    if calls_equal(gold, pred, tools_by_name):
        return EXACT
    return WRONG_ARGUMENTS if _names_match(gold, pred) else WRONG_TOOL


def score(
    examples: list[dict], predictions: list[list[dict] | None], tools_by_name: dict[str, Tool]
) -> dict:
    """The Tasting metrics for tool calling, plus one verdict per example.

    Returns `tool_name_accuracy`, `arg_key_precision/recall/f1` (micro over
    (tool, key) pairs), `exact_call_accuracy` (the proof), `valid_call_rate`, `no_call_accuracy`
    (None when no example expects no call), `n_eval` and `verdicts`.
    """
    _check_lengths(examples, predictions)
    n = len(examples)
    cases = list(zip(examples, predictions))
    verdicts = [verdict(ex["calls"], pred, tools_by_name) for ex, pred in cases]
    names_right = sum(_names_match(ex["calls"], pred) for ex, pred in cases)
    valid = sum(
        pred is not None and check_calls(pred, _offered(ex, tools_by_name)) is None
        for ex, pred in cases
    )

    hits = n_pred_keys = n_gold_keys = 0
    for ex, pred in cases:
        pairs, _, _ = _pair_by_name(ex["calls"], pred or [])
        hits += sum(len(_args(g).keys() & _args(p).keys()) for g, p in pairs)
        n_pred_keys += sum(len(_args(call)) for call in pred or [])
        n_gold_keys += sum(len(_args(call)) for call in ex["calls"])
    precision = _ratio(hits, n_pred_keys)
    recall = _ratio(hits, n_gold_keys)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    no_call = [v for ex, v in zip(examples, verdicts) if not ex["calls"]]
    return {
        "tool_name_accuracy": _ratio(names_right, n),
        "arg_key_precision": precision,
        "arg_key_recall": recall,
        "arg_key_f1": f1,
        "exact_call_accuracy": _ratio(verdicts.count(EXACT), n),
        "valid_call_rate": _ratio(valid, n),
        "no_call_accuracy": _ratio(no_call.count(EXACT), len(no_call)) if no_call else None,
        "n_eval": n,
        "verdicts": verdicts,
    }


def breakdown(
    examples: list[dict], predictions: list[list[dict] | None], tools_by_name: dict[str, Tool]
) -> dict:
    """Where the student is right and wrong: per gold tool, and per argument type.

    `per_tool[tool]` = {n, tool_name_accuracy, exact_call_accuracy} over the examples whose
    gold calls use that tool (an example with two tools counts under both; no-call examples
    under "(no call)"). `per_arg_type[type]` = {n, value_accuracy} over the gold arguments
    of calls the prediction matched by name; a param with an enum counts as "enum".
    """
    _check_lengths(examples, predictions)
    tools: dict[str, Counter] = {}
    arg_types: dict[str, Counter] = {}
    for ex, pred in zip(examples, predictions):
        gold = ex["calls"]
        is_exact = verdict(gold, pred, tools_by_name) == EXACT
        names_right = _names_match(gold, pred)
        for name in sorted({call["name"] for call in gold}) or [NO_CALL]:
            counts = tools.setdefault(name, Counter())
            counts["n"] += 1
            counts["names_right"] += names_right
            counts["exact"] += is_exact

        pairs, _, _ = _pair_by_name(gold, pred or [])
        for g, p in pairs:
            tool = tools_by_name.get(g["name"])
            predicted = _args(p)
            for key, gold_value in _args(g).items():
                param = tool.param(key) if tool else None
                type_ = param.type if param else None
                right = key in predicted and (
                    normalize_value(gold_value, type_) == normalize_value(predicted[key], type_)
                )
                counts = arg_types.setdefault(_arg_type(param), Counter())
                counts["n"] += 1
                counts["right"] += right

    per_tool = {
        name: {
            "n": c["n"],
            "tool_name_accuracy": c["names_right"] / c["n"],
            "exact_call_accuracy": c["exact"] / c["n"],
        }
        for name, c in sorted(tools.items())
    }
    per_arg_type = {
        type_: {"n": c["n"], "value_accuracy": c["right"] / c["n"]}
        for type_, c in sorted(arg_types.items())
    }
    return {"per_tool": per_tool, "per_arg_type": per_arg_type}


def strengths_and_weaknesses(breakdown: dict, min_n: int = 3) -> tuple[list[str], list[str]]:
    """Short sentences on the best and worst tools and argument types, at most 5 each.

    Only tools and types with at least `min_n` cases are judged. They are ranked by
    accuracy; the better half are strengths, the worse half weaknesses, except that a
    perfect score is never a weakness and a zero never a strength.
    """
    items: list[tuple[float, int, str, str]] = []  # (score, n, name, sentence)
    for name, row in breakdown.get("per_tool", {}).items():
        if row["n"] >= min_n:
            items.append((_tool_score(row), row["n"], name, _tool_sentence(name, row)))
    for type_, row in breakdown.get("per_arg_type", {}).items():
        if row["n"] >= min_n:
            right = round(row["value_accuracy"] * row["n"])
            sentence = f"{type_} values: {row['value_accuracy']:.0%} right ({right}/{row['n']})"
            items.append((row["value_accuracy"], row["n"], type_, sentence))

    # Best first; among equals the better-attested one first, then by name for a stable order.
    items.sort(key=lambda item: (-item[0], -item[1], item[2]))
    half = math.ceil(len(items) / 2)
    strengths = [item for item in items[:half] if item[0] > 0] + [
        item for item in items[half:] if item[0] >= 1
    ]
    weaknesses = [item for item in items[half:] if item[0] < 1] + [
        item for item in items[:half] if item[0] <= 0
    ]
    weaknesses.sort(key=lambda item: (item[0], -item[1], item[2]))  # worst first
    return [item[3] for item in strengths[:5]], [item[3] for item in weaknesses[:5]]


def _tool_score(row: dict) -> float:
    # Picking the tool and filling it in both count, so a tool always picked but never
    # filled in right ranks between a perfect tool and one never picked.
    return (row["tool_name_accuracy"] + row["exact_call_accuracy"]) / 2


def _tool_sentence(name: str, row: dict) -> str:
    n = row["n"]
    named = round(row["tool_name_accuracy"] * n)
    exact = round(row["exact_call_accuracy"] * n)
    if name == NO_CALL:
        return f"requests that need no call: {exact}/{n} correctly left without one"
    if named == exact:
        return f"{name}: {exact}/{n} calls exact"
    return f"{name}: right tool {named}/{n}, exact {exact}/{n}"


def _arg_type(param) -> str:
    if param is None:
        return "unknown"
    return "enum" if param.enum is not None else param.type


def _pair_by_name(gold: list[dict], pred: list[dict]) -> tuple[list, list, list]:
    """Pair gold calls with predicted calls of the same name: (pairs, lone gold, lone predicted).

    With several calls to one tool, each gold call takes the free predicted call sharing
    the most argument keys, so the order the student wrote its calls in does not matter.
    """
    free = list(pred)
    pairs, lonely_gold = [], []
    for g in gold:
        same_name = [p for p in free if p.get("name") == g["name"]]
        if not same_name:
            lonely_gold.append(g)
            continue
        best = max(same_name, key=lambda p: len(_args(p).keys() & _args(g).keys()))
        free.remove(best)
        pairs.append((g, best))
    return pairs, lonely_gold, free


def _names_match(gold: list[dict], pred: list[dict] | None) -> bool:
    if pred is None:
        return False
    return Counter(c["name"] for c in gold) == Counter(c.get("name") for c in pred)


def _args(call: dict) -> dict:
    # A parsed call whose "arguments" is missing or not an object has no keys to credit.
    args = call.get("arguments")
    return args if isinstance(args, dict) else {}


def _offered(example: dict, tools_by_name: dict[str, Tool]) -> list[Tool]:
    return [tools_by_name[name] for name in example["tools"]]


def _ratio(part: int, whole: int) -> float:
    # An empty denominator (no predicted keys, no gold keys) scores 0, as sklearn does.
    return part / whole if whole else 0.0


def _check_lengths(examples: list, predictions: list) -> None:
    if len(examples) != len(predictions):
        raise ValueError(
            f"{len(examples)} examples but {len(predictions)} predictions; "
            "pass exactly one prediction (a list of calls, or None) per example"
        )
