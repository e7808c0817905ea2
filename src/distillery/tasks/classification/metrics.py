"""Classification metrics: accuracy, per-label precision/recall/F1 and the confusion matrix.

Single-label: each gold item is a label and each prediction a label, or None when the
student's output could not be parsed as one. Multi-label: each item is a list of labels
(None again for an unparseable prediction), scored per label and by exact set match.
"""

from __future__ import annotations

import io

# Figure (not pyplot) draws with Agg and touches no global backend state.
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

NONE = "(none)"  # the confusion column for predictions that could not be parsed
MULTI_LABEL_COLUMNS = ["tp", "fp", "fn"]


def label_scores(gold: list, predicted: list, labels: list[str], multi_label: bool = False) -> dict:
    """Score predictions against gold labels drawn from `labels`.

    Returns `accuracy` (exact set match when multi-label), `macro_f1` (mean F1 over the
    labels that occur in gold or predictions), `micro_f1`, `per_label` ({label: precision,
    recall, f1, support}), `confusion` and `n`. Single-label, `confusion` is
    {"labels", "matrix"} with gold on rows and predictions on columns; the labels gain
    "(none)" when a prediction is None (its row is all zeros: gold is never None).
    Multi-label, it is {"labels", "columns": ["tp", "fp", "fn"], "matrix"}, one row per label.
    """
    if len(gold) != len(predicted):
        raise ValueError(
            f"{len(gold)} gold items but {len(predicted)} predictions; "
            "pass exactly one prediction (or None when unparseable) per gold item"
        )
    if not gold:
        raise ValueError("nothing to score: gold is empty")
    if multi_label:
        gold_sets = [_label_set(item, labels, "gold") for item in gold]
        pred_sets = [None if p is None else _label_set(p, labels, "predicted") for p in predicted]
    else:
        # One label is the one-element set; None (unparseable) stays None.
        gold_sets = [{_check_label(item, labels, "gold")} for item in gold]
        pred_sets = [None if p is None else {_check_label(p, labels, "predicted")} for p in predicted]

    counts = _counts(gold_sets, pred_sets, labels)
    per_label = {label: _prf(**counts[label]) for label in labels}
    # A label absent from both gold and predictions has no F1 to speak of, so it is left out.
    present = [label for label in labels if per_label[label]["support"] or counts[label]["fp"]]
    macro_f1 = sum(per_label[label]["f1"] for label in present) / len(present) if present else 0.0
    micro = _prf(
        tp=sum(c["tp"] for c in counts.values()),
        fp=sum(c["fp"] for c in counts.values()),
        fn=sum(c["fn"] for c in counts.values()),
    )
    # An unparseable prediction is never right, even against an empty gold set.
    right = sum(p is not None and g == p for g, p in zip(gold_sets, pred_sets))
    if multi_label:
        confusion = {
            "labels": list(labels),
            "columns": list(MULTI_LABEL_COLUMNS),
            "matrix": [[counts[label][key] for key in MULTI_LABEL_COLUMNS] for label in labels],
        }
    else:
        confusion = _confusion(gold, predicted, labels)
    return {
        "accuracy": right / len(gold),
        "macro_f1": macro_f1,
        "micro_f1": micro["f1"],
        "per_label": per_label,
        "confusion": confusion,
        "n": len(gold),
    }


def confusion_png(confusion: dict) -> bytes:
    """A PNG of a confusion dict from `label_scores`: counts in the cells, gold on rows,
    predicted on columns (or TP/FP/FN columns for a multi-label one)."""
    multi = "columns" in confusion  # multi-label: TP/FP/FN per label, not gold x predicted
    rows = confusion["labels"]
    columns = confusion["columns"] if multi else rows
    matrix = confusion["matrix"]
    # Grow with the label count so names and counts stay legible past a dozen labels.
    fig = Figure(figsize=(max(4.0, 1.0 + 0.6 * len(columns)), max(3.5, 1.0 + 0.5 * len(rows))), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.imshow(matrix, cmap="Oranges", aspect="auto", vmin=0)
    peak = max((value for row in matrix for value in row), default=0)
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            # White on the dark cells, black on the pale ones.
            color = "white" if peak and value > peak / 2 else "black"
            ax.text(j, i, str(value), ha="center", va="center", color=color, fontsize=9)
    # Past four columns, horizontal names run into each other; slant them.
    slant = {"rotation": 45, "ha": "right"} if len(columns) > 4 else {}
    ax.set_xticks(range(len(columns)), labels=columns, **slant)
    ax.set_yticks(range(len(rows)), labels=rows)
    ax.set_xlabel("count" if multi else "predicted")
    ax.set_ylabel("label" if multi else "gold")
    ax.set_title("per-label counts" if multi else "confusion matrix")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


# ---------------------------------------------------------------- helpers


def _check_label(label: object, labels: list[str], side: str) -> str:
    if label not in labels:
        hint = "" if side == "gold" else "; parse an answer outside the label set to None"
        raise ValueError(f"{side} label {label!r} is not one of {labels}{hint}")
    return label


def _label_set(items: object, labels: list[str], side: str) -> set[str]:
    if not isinstance(items, (list, tuple, set)):
        raise ValueError(f"multi-label {side} items are lists of labels, got {items!r}")
    return {_check_label(item, labels, side) for item in items}


def _counts(gold_sets: list[set], pred_sets: list[set | None], labels: list[str]) -> dict:
    """True positives, false positives and false negatives per label."""
    counts = {label: {"tp": 0, "fp": 0, "fn": 0} for label in labels}
    for gold, pred in zip(gold_sets, pred_sets):
        pred = pred or set()  # an unparseable prediction predicts no label
        for label in gold & pred:
            counts[label]["tp"] += 1
        for label in pred - gold:
            counts[label]["fp"] += 1
        for label in gold - pred:
            counts[label]["fn"] += 1
    return counts


def _prf(tp: int, fp: int, fn: int) -> dict:
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1, "support": tp + fn}


def _ratio(part: float, whole: float) -> float:
    # An empty denominator (never predicted, never gold) scores 0, as sklearn does.
    return part / whole if whole else 0.0


def _confusion(gold: list[str], predicted: list[str | None], labels: list[str]) -> dict:
    names = list(labels) + ([NONE] if any(p is None for p in predicted) else [])
    index = {name: i for i, name in enumerate(names)}
    matrix = [[0] * len(names) for _ in names]
    for g, p in zip(gold, predicted):
        matrix[index[g]][index[NONE if p is None else p]] += 1
    return {"labels": names, "matrix": matrix}
