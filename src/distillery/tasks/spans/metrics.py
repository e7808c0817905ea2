"""Span extraction metrics: how close the student's spans come to the gold ones.

An answer is a list of spans `{"type", "text"}`, each text a verbatim piece of the input.
A predicted span counts as right in two ways:

- exact: same type and same text as a gold span;
- partial: same type, and the two spans overlap. With the input texts given, each answer's
  spans are located in its input in order (each searched for from the end of the previous one,
  then from the start of the input), and two spans overlap when their character ranges share
  at least one character. Without the inputs, or for a span whose text is not in its input,
  two spans overlap when their texts share a word (case-insensitive).

Each gold span is matched at most once. Partial matching pairs the exact matches first, then
the overlaps among what is left, so a partial score is never below the exact one.
"""

from __future__ import annotations

import re
from collections import Counter

Span = tuple[str, str]  # (type, text)
Range = tuple[int, int] | None  # where a span's text lies in its input; None when not found


def span_scores(gold: list[list[dict]], predicted: list[list[dict] | None],
                inputs: list[str] | None = None) -> dict:
    """Span metrics over a list of examples, micro-averaged over spans.

    `predicted[i]` may be None (output that could not be parsed): it counts as no span.
    `inputs[i]`, when given, is example i's input text, used to locate spans for partial overlap.
    Returns `span_precision/recall/f1` (exact), `partial_f1`, `exact_match` (the share of
    examples whose answer holds the same spans as the gold one, in any order; an empty answer
    to an example with no gold span is right), `n_examples`, and `per_type`: for each type in
    the gold or the predictions, its `precision`, `recall`, `f1`, `partial_f1` and `support`
    (gold spans of that type). Precision with nothing predicted, and recall with nothing to
    find, are 1.0 when the other side is empty too and 0.0 otherwise, so F1 is 1.0 when there
    is no gold and no predicted span at all.
    """
    if len(predicted) != len(gold) or (inputs is not None and len(inputs) != len(gold)):
        raise ValueError(f"span_scores needs one prediction (and input) per example: got "
                         f"{len(gold)} gold, {len(predicted)} predicted, "
                         f"{'no' if inputs is None else len(inputs)} inputs")
    n_gold, n_pred, exact_hits, partial_hits = Counter(), Counter(), Counter(), Counter()
    exact_matches = 0
    for i, (gold_answer, pred_answer) in enumerate(zip(gold, predicted)):
        gold_spans = [_span(s) for s in gold_answer]
        pred_spans = [_span(s) for s in pred_answer or []]
        text = inputs[i] if inputs is not None else None
        exact, partial = match_spans(gold_spans, pred_spans, text)
        n_gold.update(t for t, _ in gold_spans)
        n_pred.update(t for t, _ in pred_spans)
        exact_hits.update(gold_spans[g][0] for g in exact)
        partial_hits.update(gold_spans[g][0] for g in partial)
        exact_matches += Counter(gold_spans) == Counter(pred_spans)

    def total(counter: Counter) -> int:
        return sum(counter.values())

    precision, recall, f1 = _prf(total(exact_hits), total(n_pred), total(n_gold))
    per_type = {}
    for span_type in sorted(set(n_gold) | set(n_pred)):
        p, r, f = _prf(exact_hits[span_type], n_pred[span_type], n_gold[span_type])
        partial_f1 = _prf(partial_hits[span_type], n_pred[span_type], n_gold[span_type])[2]
        per_type[span_type] = {"precision": p, "recall": r, "f1": f, "partial_f1": partial_f1,
                               "support": n_gold[span_type]}
    return {
        "span_f1": f1,
        "span_precision": precision,
        "span_recall": recall,
        "partial_f1": _prf(total(partial_hits), total(n_pred), total(n_gold))[2],
        "per_type": per_type,
        "exact_match": exact_matches / len(gold) if gold else 1.0,
        "n_examples": len(gold),
    }


def match_spans(gold: list[Span], predicted: list[Span],
                text: str | None = None) -> tuple[list[int], list[int]]:
    """The gold spans hit (by index), exactly and partially; each gold span is hit at most once."""
    free = list(range(len(gold)))
    exact, unmatched = [], []
    for p, span in enumerate(predicted):
        g = next((g for g in free if gold[g] == span), None)
        if g is None:
            unmatched.append(p)
        else:
            free.remove(g)
            exact.append(g)
    gold_ranges = locate_spans([t for _, t in gold], text)
    pred_ranges = locate_spans([t for _, t in predicted], text)
    partial = list(exact)
    for p in unmatched:
        g = next((g for g in free if gold[g][0] == predicted[p][0]
                  and _overlap(gold[g][1], gold_ranges[g], predicted[p][1], pred_ranges[p])), None)
        if g is not None:
            free.remove(g)
            partial.append(g)
    return exact, partial


def locate_spans(texts: list[str], text: str | None) -> list[Range]:
    """Where each span text lies in `text`, in order: searched for from the end of the previous
    span, then from the start (a prediction may list spans out of order); None when not found."""
    ranges: list[Range] = []
    cursor = 0
    for span_text in texts:
        start = -1
        if text is not None and span_text:
            start = text.find(span_text, cursor)
            start = text.find(span_text) if start < 0 else start
        if start < 0:
            ranges.append(None)
            continue
        ranges.append((start, start + len(span_text)))
        cursor = start + len(span_text)
    return ranges


def _overlap(a_text: str, a_range: Range, b_text: str, b_range: Range) -> bool:
    if a_range is not None and b_range is not None:
        return a_range[0] < b_range[1] and b_range[0] < a_range[1]
    return bool(_word_set(a_text) & _word_set(b_text))


def _word_set(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.casefold()))


def _span(span: dict) -> Span:
    # Predictions come from parsed model output: a missing key reads as empty, not as a crash.
    return str(span.get("type", "")), str(span.get("text", ""))


def _prf(hits: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
    precision = hits / n_pred if n_pred else float(n_gold == 0)
    recall = hits / n_gold if n_gold else float(n_pred == 0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1
