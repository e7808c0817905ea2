"""Classification metrics, checked against counts worked out by hand."""

from __future__ import annotations

import struct

import pytest

from distillery.tasks.classification.metrics import confusion_png, label_scores

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LABELS = ["cat", "dog", "bird"]
# gold:      cat cat cat dog dog bird bird bird
# predicted: cat cat dog dog cat bird None dog
GOLD = ["cat", "cat", "cat", "dog", "dog", "bird", "bird", "bird"]
PREDICTED = ["cat", "cat", "dog", "dog", "cat", "bird", None, "dog"]


def test_three_label_confusion_and_per_label_scores():
    scores = label_scores(GOLD, PREDICTED, LABELS)
    assert scores["n"] == 8
    assert scores["accuracy"] == 0.5  # 4 of 8 right
    assert scores["confusion"] == {
        "labels": ["cat", "dog", "bird", "(none)"],
        "matrix": [
            [2, 1, 0, 0],  # gold cat
            [1, 1, 0, 0],  # gold dog
            [0, 1, 1, 1],  # gold bird: one right, one called dog, one unparseable
            [0, 0, 0, 0],  # gold is never "(none)"
        ],
    }
    cat, dog, bird = (scores["per_label"][label] for label in LABELS)
    # cat: tp 2, fp 1 (a dog called cat), fn 1
    assert cat == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3})
    # dog: tp 1, fp 2, fn 1 -> F1 = 2 * (1/3) * (1/2) / (5/6) = 0.4
    assert dog == pytest.approx({"precision": 1 / 3, "recall": 0.5, "f1": 0.4, "support": 2})
    # bird: tp 1, fp 0, fn 2 (the None counts against recall only)
    assert bird == pytest.approx({"precision": 1.0, "recall": 1 / 3, "f1": 0.5, "support": 3})
    assert scores["macro_f1"] == pytest.approx((2 / 3 + 0.4 + 0.5) / 3)
    # micro: tp 4, fp 3, fn 4 -> P 4/7, R 1/2, F1 8/15 (not the accuracy: None is no false positive)
    assert scores["micro_f1"] == pytest.approx(8 / 15)


def test_no_none_column_when_every_prediction_parses():
    scores = label_scores(["a", "b"], ["a", "a"], ["a", "b"])
    assert scores["confusion"] == {"labels": ["a", "b"], "matrix": [[1, 0], [1, 0]]}
    assert scores["micro_f1"] == pytest.approx(scores["accuracy"])


def test_macro_f1_leaves_out_a_label_never_seen():
    # a: tp 1, fn 1 -> F1 2/3; b: tp 1, fp 1 -> F1 2/3; c: neither gold nor predicted.
    scores = label_scores(["a", "a", "b"], ["a", "b", "b"], ["a", "b", "c"])
    assert scores["macro_f1"] == pytest.approx(2 / 3)  # not (2/3 + 2/3 + 0) / 3
    assert scores["per_label"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_macro_f1_keeps_a_label_only_ever_predicted():
    # c is never gold but predicted once: its F1 of 0 belongs in the mean; b is left out.
    scores = label_scores(["a", "a"], ["a", "c"], ["a", "b", "c"])
    assert scores["macro_f1"] == pytest.approx((2 / 3 + 0.0) / 2)


def test_multi_label_exact_match_and_counts():
    gold = [["x", "y"], ["x"], ["z"], []]
    predicted = [["y", "x"], ["x", "y"], None, []]
    scores = label_scores(gold, predicted, ["x", "y", "z"], multi_label=True)
    assert scores["accuracy"] == 0.5  # items 0 (order does not matter) and 3 (both empty)
    assert scores["confusion"] == {
        "labels": ["x", "y", "z"],
        "columns": ["tp", "fp", "fn"],
        "matrix": [[2, 0, 0], [1, 1, 0], [0, 0, 1]],
    }
    y = scores["per_label"]["y"]
    assert y == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1})
    assert scores["macro_f1"] == pytest.approx((1.0 + 2 / 3 + 0.0) / 3)
    assert scores["micro_f1"] == pytest.approx(0.75)  # tp 3, fp 1, fn 1


def test_unparseable_multi_label_prediction_is_wrong_even_against_no_labels():
    scores = label_scores([[]], [None], ["x"], multi_label=True)
    assert scores["accuracy"] == 0.0


@pytest.mark.parametrize(
    ("gold", "predicted", "multi_label", "message"),
    [
        (["a"], ["a", "b"], False, "1 gold items but 2 predictions"),
        ([], [], False, "gold is empty"),
        (["zebra"], ["a"], False, "gold label 'zebra'"),
        (["a"], ["zebra"], False, "parse an answer outside the label set to None"),
        ([["a"]], ["a"], True, "lists of labels"),
    ],
)
def test_bad_input_is_refused_with_the_fix(gold, predicted, multi_label, message):
    with pytest.raises(ValueError, match=message):
        label_scores(gold, predicted, ["a", "b"], multi_label=multi_label)


def _png_size(png: bytes) -> tuple[int, int]:
    # The IHDR chunk follows the 8-byte magic: length, type, then width and height.
    return struct.unpack(">II", png[16:24])


def test_confusion_png_is_a_png():
    png = confusion_png(label_scores(GOLD, PREDICTED, LABELS)["confusion"])
    assert png.startswith(PNG_MAGIC)
    assert len(png) > 1000


def test_multi_label_confusion_png_is_a_png():
    scores = label_scores([["x"], ["y"]], [["x", "y"], []], ["x", "y"], multi_label=True)
    assert confusion_png(scores["confusion"]).startswith(PNG_MAGIC)


def test_confusion_png_grows_with_the_label_count():
    labels = [f"label_{i}" for i in range(12)]
    many = confusion_png(label_scores(labels, labels, labels)["confusion"])
    few = confusion_png(label_scores(GOLD, PREDICTED, LABELS)["confusion"])
    assert _png_size(many)[0] > _png_size(few)[0]
    assert _png_size(many)[1] > _png_size(few)[1]
