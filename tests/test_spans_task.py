"""The span task's offline teacher and metrics: deterministic, verbatim spans, and scores by hand."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from distillery.tasks.spans import words as W
from distillery.tasks.spans.metrics import locate_spans, span_scores
from distillery.tasks.spans.offline import OfflineSpanTeacher, SpanType, id_slot, kind_of

PII = [
    SpanType("customer", "the customer's full name"), SpanType("email", "an email address"),
    SpanType("phone_number"), SpanType("order_id", "the order number"),
    SpanType("amount", "a money amount"), SpanType("date", "a calendar date"),
    SpanType("address", "a street address"), SpanType("company", "an organization"),
    SpanType("city", "a city or country"), SpanType("iban"),
]
N = 400


@pytest.fixture(scope="module")
def run() -> list[dict]:
    teacher = OfflineSpanTeacher(PII, seed=11, none_ratio=0.15)
    return [teacher.candidate(i) for i in range(N)]


def _by_type(run: list[dict], span_type: str) -> list[str]:
    return [s["text"] for c in run for s in c["spans"] if s["type"] == span_type]


# ----------------------------------------------------------- the offline teacher

def test_candidate_depends_only_on_seed_and_index():
    first = OfflineSpanTeacher(PII, seed=3)
    second = OfflineSpanTeacher(PII, seed=3)
    assert [first.candidate(i) for i in (0, 7, 42)] == [second.candidate(i) for i in (42, 7, 0)][::-1]
    other = OfflineSpanTeacher(PII, seed=4)
    assert sum(first.candidate(i) != other.candidate(i) for i in range(20)) >= 18


def test_every_span_occurs_verbatim_and_in_order(run):
    for candidate in run:
        assert candidate["teacher"]["provider"] == "offline"
        cursor = 0
        for span in candidate["spans"]:
            assert span["type"] in {t.name for t in PII}
            start = candidate["text"].find(span["text"], cursor)
            assert start >= 0, (candidate["text"], span)
            cursor = start + len(span["text"])


@pytest.mark.parametrize("ratio", [0.0, 0.15, 0.5])
def test_none_ratio_is_respected(ratio):
    teacher = OfflineSpanTeacher(PII, seed=5, none_ratio=ratio)
    candidates = [teacher.candidate(i) for i in range(N)]
    empty = [c for c in candidates if not c["spans"]]
    assert abs(len(empty) / N - ratio) <= 0.02
    assert all(c["teacher"]["frame"].startswith("none.") for c in empty)


def test_span_counts_are_mostly_one_to_three_and_types_repeat(run):
    counts = Counter(len(c["spans"]) for c in run if c["spans"])
    assert {1, 2, 3} <= set(counts)
    assert sum(counts[k] for k in (1, 2, 3)) / sum(counts.values()) >= 0.85
    repeated = [c for c in run if any(n > 1 for n in Counter(s["type"] for s in c["spans"]).values())]
    assert len(repeated) >= 20


def test_output_is_varied(run):
    sample = run[:200]
    skeletons = set()
    for candidate in sample:
        skeleton = candidate["text"]
        for span in candidate["spans"]:
            skeleton = skeleton.replace(span["text"], f"<{span['type']}>", 1)
        skeletons.add(skeleton)
    assert len(skeletons) >= 180
    frames = {c["teacher"]["frame"] for c in sample}
    assert {"chat", "email", "ticket", "note", "form", "transcript"} <= frames
    assert len(set(_by_type(sample, "customer"))) >= 40


@pytest.mark.parametrize("span_type, kind", [
    (SpanType("customer", "the customer's full name"), "person"),
    (SpanType("x", "the customer's full name"), "person"),
    (SpanType("full_name"), "person"), (SpanType("PER"), "person"),
    (SpanType("email_address"), "email"), (SpanType("contactEmail"), "email"),
    (SpanType("phone_number"), "phone"), (SpanType("billing_address"), "address"),
    (SpanType("order_total"), "amount"), (SpanType("order_date"), "date"),
    (SpanType("x", "the total amount of the order"), "amount"), (SpanType("MONEY"), "amount"),
    (SpanType("dob", "date of birth"), "date"), (SpanType("start_time"), "time"),
    (SpanType("company_name"), "organization"), (SpanType("ORG"), "organization"),
    (SpanType("GPE"), "location"), (SpanType("city"), "location"),
    (SpanType("customer_id"), "identifier"), (SpanType("iban"), "identifier"),
    (SpanType("symptom", "a medical symptom such as a cough"), None), (SpanType("MISC"), None),
])
def test_types_are_read_from_name_then_description(span_type, kind):
    assert kind_of(span_type) == kind


def test_identifier_types_get_their_own_formats():
    assert id_slot(SpanType("iban")) == "iban"
    assert id_slot(SpanType("acct", "the customer's bank account number")) == "iban"
    assert id_slot(SpanType("order_id")) == "order"
    assert id_slot(SpanType("reference_number", "any identifier")) == "reference"
    assert id_slot(SpanType("identifier")) is None
    teacher = OfflineSpanTeacher([SpanType("iban"), SpanType("ssn"), SpanType("any_id", "an identifier")])
    run = [teacher.candidate(i) for i in range(150)]
    assert all(re.fullmatch(r"[A-Z]{2}\d{2}[ A-Z0-9]{10,}", v) for v in _by_type(run, "iban"))
    assert all(re.fullmatch(r"\d{3}-\d{2}-\d{4}", v) for v in _by_type(run, "ssn"))
    # The general type takes every identifier the specific ones leave: orders, tickets, passports...
    assert len(_by_type(run, "any_id")) >= 30
    assert not set(_by_type(run, "any_id")) & set(_by_type(run, "iban"))


def test_mapped_types_get_realistic_values(run):
    names = _by_type(run, "customer")
    assert names and all(n.split()[0] in W.FIRST_NAMES for n in names)
    assert all(re.fullmatch(r"[a-z0-9._]+@[a-z0-9.-]+\.[a-z]{2,}", e) for e in _by_type(run, "email"))
    phones = _by_type(run, "phone_number")
    assert all(re.fullmatch(r"[+()\d][\d ().-]+", p) and len(re.sub(r"\D", "", p)) >= 10 for p in phones)
    assert len({re.match(r"\+\d+", p).group() for p in phones if p.startswith("+")}) >= 6  # countries
    assert any(p.startswith("(") for p in phones) and any(p[0] == "0" for p in phones)  # national forms
    amounts = _by_type(run, "amount")
    assert all(re.search(r"[$€£¥₹]|USD|EUR|GBP|CHF|AUD", a) and re.search(r"\d", a) for a in amounts)
    month = "|".join(m[:3] for m in W.MONTHS)
    assert all(re.search(rf"\d{{4}}-\d\d-\d\d|\d+[/.]\d+[/.]\d+|{month}", d) for d in _by_type(run, "date"))
    assert all(re.search(r"\d", a) and re.search(r"[A-Za-z]", a) for a in _by_type(run, "address"))


def test_unknown_type_raises_a_clear_error():
    with pytest.raises(ValueError, match=r"'symptom'.*email addresses.*LLM teacher"):
        OfflineSpanTeacher([SpanType("customer"), SpanType("symptom", "a medical symptom")])


def test_two_types_of_one_kind_raise():
    with pytest.raises(ValueError, match=r"'sender' and 'recipient'"):
        OfflineSpanTeacher([SpanType("sender"), SpanType("recipient")])


def test_word_lists_are_consistent():
    all_words = [w for kind_words in W.KIND_WORDS.values() for w in kind_words]
    assert len(all_words) == len(set(all_words))  # a word names one kind
    singles = {re.findall(r"\{(\w+)\}", s)[0] for s in W.SENTENCES if len(re.findall(r"\{(\w+)\}", s)) == 1}
    assert singles == set(W.FORM_LABELS)  # every slot can carry exactly one span
    assert not any("{" in s for s in W.NEUTRAL)


# ----------------------------------------------------------- metrics

def span(span_type: str, text: str) -> dict:
    return {"type": span_type, "text": text}


def test_perfect_and_empty_answers_score_one():
    scores = span_scores([[span("person", "Ana")], []], [[span("person", "Ana")], []])
    assert (scores["span_f1"], scores["partial_f1"], scores["exact_match"]) == (1.0, 1.0, 1.0)
    empty = span_scores([[], []], [[], None])
    assert empty["span_f1"] == empty["span_precision"] == empty["span_recall"] == 1.0
    assert empty["exact_match"] == 1.0 and empty["per_type"] == {}


def test_spurious_and_missed_spans_on_empty_sides():
    spurious = span_scores([[]], [[span("person", "Ana")]])
    assert (spurious["span_precision"], spurious["span_recall"], spurious["span_f1"]) == (0.0, 0.0, 0.0)
    assert spurious["exact_match"] == 0.0 and spurious["per_type"]["person"]["support"] == 0
    missed = span_scores([[span("person", "Ana")]], [None])
    assert (missed["span_precision"], missed["span_recall"], missed["span_f1"]) == (0.0, 0.0, 0.0)


def test_exact_versus_partial_overlap():
    text = "Hi, this is Priya Patel, my order #A-48213 never arrived."
    gold = [[span("person", "Priya Patel"), span("order", "#A-48213")]]
    pred = [[span("person", "Priya"), span("order", "#A-48213")]]
    scores = span_scores(gold, pred, [text])
    assert scores["span_precision"] == 0.5 and scores["span_recall"] == 0.5 and scores["span_f1"] == 0.5
    assert scores["partial_f1"] == 1.0 and scores["exact_match"] == 0.0
    assert scores["per_type"]["person"]["f1"] == 0.0 and scores["per_type"]["person"]["partial_f1"] == 1.0
    wrong_type = span_scores(gold, [[span("org", "Priya"), span("order", "#A-48213")]], [text])
    assert wrong_type["partial_f1"] == 0.5


def test_overlap_is_by_position_with_inputs_and_by_word_without():
    text = "Priya Patel called, and so did Anil Patel."
    gold, pred = [[span("person", "Priya Patel")]], [[span("person", "Anil Patel")]]
    assert span_scores(gold, pred, [text])["partial_f1"] == 0.0  # shares a word, not a position
    assert span_scores(gold, pred)["partial_f1"] == 1.0


def test_spans_are_located_in_order():
    text = "Call Ana or Ana Silva."
    assert locate_spans(["Ana", "Ana Silva"], text) == [(5, 8), (12, 21)]
    assert locate_spans(["Silva", "Ana", "Bob"], text) == [(16, 21), (5, 8), None]
    gold = [[span("person", "Ana"), span("person", "Ana Silva")]]
    scores = span_scores(gold, [[span("person", "Silva")]], [text])
    assert scores["span_f1"] == 0.0 and scores["partial_f1"] == pytest.approx(2 / 3)


def test_each_gold_span_matches_once_and_per_type_counts():
    gold = [[span("person", "Ana"), span("email", "ana@mail.com")], [span("person", "Tom Chen")]]
    pred = [[span("person", "Ana"), span("person", "Ana")], [span("email", "tom@mail.com")]]
    scores = span_scores(gold, pred)
    assert scores["span_precision"] == pytest.approx(1 / 3) and scores["span_recall"] == pytest.approx(1 / 3)
    person, email = scores["per_type"]["person"], scores["per_type"]["email"]
    assert (person["precision"], person["recall"], person["support"]) == (0.5, 0.5, 2)
    assert (email["precision"], email["recall"], email["f1"], email["support"]) == (0.0, 0.0, 0.0, 1)
    assert scores["exact_match"] == 0.0 and scores["n_examples"] == 2


def test_exact_match_ignores_order_and_lengths_must_agree():
    gold = [[span("person", "Ana"), span("city", "Lima")]]
    assert span_scores(gold, [[span("city", "Lima"), span("person", "Ana")]])["exact_match"] == 1.0
    with pytest.raises(ValueError, match="one prediction"):
        span_scores(gold, [])
