"""The LLM teacher writes examples per label: requests, lenient reading, rounds and the journal."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from distillery.errors import DistilleryError
from distillery.recipe_sections import TeacherConfig
from distillery.tasks.classification.generator import generate_examples, generate_request, read_examples
from distillery.teachers.base import Request, Response
from distillery.teachers.cost import Price
from distillery.teachers.retry import RetryPolicy

LABELS = {"weather": "asks about the weather", "music": "wants music played", "timer": "sets or checks a timer"}


class FakeWriter:
    """A provider that writes `maxItems` messages for the label a request asks for.

    `answer(label, n)` may be replaced to return junk; `finish` is the finish reason it reports.
    """

    name, model = "fake", "writer-1"

    def __init__(self, finish: str = "stop"):
        self.requests: list[Request] = []
        self.finish = finish

    def answer(self, label: str, n: int) -> str:
        return json.dumps({"examples": [{"text": f"a {label} message #{k}", "label": label} for k in range(n)]})

    async def complete(self, request: Request) -> Response:
        self.requests.append(request)
        label = asked(request)
        n = request.json_schema["properties"]["examples"]["maxItems"]
        return Response(self.answer(label, n), input_tokens=300, output_tokens=50, finish=self.finish)

    async def aclose(self) -> None:
        pass


def asked(request: Request) -> str:
    return re.search(r"`(\w+)`", request.messages[1]["content"]).group(1)


def generate(fake, journal, total=30, per_call=5, multi_label=False, **kw):
    cfg = TeacherConfig(provider="openai", concurrency=2, **kw.pop("cfg", {}))
    return generate_examples(fake, LABELS, multi_label, total, per_call, cfg, journal, seed=7,
                             policy=RetryPolicy(tries=1), **kw)


def test_every_label_gets_an_equal_share_of_requests(tmp_path):
    fake = FakeWriter()
    out = generate(fake, tmp_path / "journal", total=30, per_call=5, cfg={"temperature": 0.7, "max_tokens": 2000})
    assert len(fake.requests) == 6  # 30 examples, 5 a request: two rounds of three labels
    assert Counter(asked(r) for r in fake.requests) == {"weather": 2, "music": 2, "timer": 2}
    assert len(out) == 30 and Counter(c["asked_for"] for c in out) == {"weather": 10, "music": 10, "timer": 10}
    first = out[0]
    assert first["label"] == first["asked_for"] == "weather" and first["text"] == "a weather message #0"
    assert first["teacher"]["provider"] == "fake" and first["teacher"]["model"] == "writer-1"
    assert len(first["teacher"]["journal_id"]) == 32
    assert {r.temperature for r in fake.requests} == {0.7} and {r.max_tokens for r in fake.requests} == {2000}


def test_a_small_total_asks_for_fewer_per_request_not_fewer_labels(tmp_path):
    fake = FakeWriter()
    out = generate(fake, tmp_path / "journal", total=6, per_call=20)
    assert Counter(asked(r) for r in fake.requests) == {"weather": 1, "music": 1, "timer": 1}
    assert [r.json_schema["properties"]["examples"]["maxItems"] for r in fake.requests] == [2, 2, 2]
    assert len(out) == 6


def test_a_resumed_run_replays_the_journal_and_pays_nothing(tmp_path):
    fake = FakeWriter()
    first = generate(fake, tmp_path / "journal")
    assert len(fake.requests) == 6
    again = FakeWriter()
    second = generate(again, tmp_path / "journal")
    assert again.requests == [] and second == first


def test_unusable_answers_get_more_rounds_within_a_bound(tmp_path):
    fake = FakeWriter()
    fake.answer = lambda label, n: "sorry, no" if label == "timer" else FakeWriter.answer(fake, label, n)
    out = generate(fake, tmp_path / "journal", total=30, per_call=5)
    # Two rounds give 20 usable examples (10 a round), so one more round makes the 30.
    assert len(fake.requests) == 9 and len(out) == 30
    assert Counter(c["label"] for c in out) == {"weather": 15, "music": 15}

    junk = FakeWriter()
    junk.answer = lambda label, n: "```\nnot json at all\n```"
    assert generate(junk, tmp_path / "junk", total=30, per_call=5) == []
    assert len(junk.requests) == 18  # three times the two planned rounds, then it stops


def test_a_truncated_answer_is_not_read(tmp_path):
    fake = FakeWriter(finish="length")
    assert generate(fake, tmp_path / "journal", total=3, per_call=1) == []
    assert len(fake.requests) == 9


def test_the_budget_stops_the_run_with_a_fix(tmp_path):
    with pytest.raises(DistilleryError, match=r"teacher.budget_usd \(\$0.001\) reached.*raise `teacher.budget_usd`"):
        generate(FakeWriter(), tmp_path / "journal", price=Price(1.0, 10.0), cfg={"budget_usd": 0.001})


def test_the_request_names_the_other_labels_and_varies_by_round():
    request = generate_request("weather", LABELS, False, 5, 0, 7, 0.9, 1000)
    system, user = request.messages[0]["content"], request.messages[1]["content"]
    assert "- music: wants music played" in system and "- timer: sets or checks a timer" in system
    assert "clearly `weather` and not `music`, `timer`" in user and "Write 5 different" in user
    assert request.json_schema["properties"]["examples"]["items"]["properties"]["label"] == {
        "enum": ["weather", "music", "timer"]}
    assert request.temperature == 0.9 and request.max_tokens == 1000
    assert generate_request("weather", LABELS, False, 5, 0, 7, 0.9, 1000) == request  # deterministic
    hints = {generate_request("weather", LABELS, False, 5, r, 7, 0.9, 1000).messages[1]["content"].rsplit("\n", 1)[1]
             for r in range(8)}
    assert len(hints) >= 6  # the persona/style/length hint changes between rounds
    assert generate_request("weather", LABELS, False, 5, 0, 8, 0.9, 1000).seed != request.seed


def test_a_multi_label_request_asks_for_every_label_as_an_array():
    request = generate_request("music", LABELS, True, 4, 0, 7, 0.9, 1000)
    label = request.json_schema["properties"]["examples"]["items"]["properties"]["label"]
    assert label == {"type": "array", "items": {"enum": ["weather", "music", "timer"]}, "minItems": 1}
    assert "whose labels include `music`" in request.messages[1]["content"]
    assert '"label": ["...", ...]' in request.messages[0]["content"]


def test_read_examples_keeps_the_set_and_maps_case():
    names = list(LABELS)
    answer = json.dumps({"examples": [
        {"text": " will it rain? ", "label": "WEATHER"}, {"text": "order a pizza", "label": "food"},
        {"text": "", "label": "music"}, {"text": "play jazz", "label": ["Music"]}, {"text": "hi"}, "junk"]})
    assert read_examples(answer, names, False) == [{"text": "will it rain?", "label": "weather"},
                                                   {"text": "play jazz", "label": "music"}]
    bare = '```json\n[{"utterance": "set a timer", "label": "timer"}]\n```'
    assert read_examples(bare, names, False) == [{"text": "set a timer", "label": "timer"}]
    multi = json.dumps({"examples": [{"text": "rain sounds please", "label": ["Music", "weather", "music"]},
                                     {"text": "x", "label": ["music", "food"]}, {"text": "y", "label": []},
                                     {"text": "z", "label": "timer, Weather"}]})
    assert read_examples(multi, names, True) == [{"text": "rain sounds please", "label": ["music", "weather"]},
                                                 {"text": "z", "label": ["timer", "weather"]}]
    wrapped = 'Sure! {"examples": [{"text": "hot today?", "label": "weather"}]} Hope it helps.'
    assert read_examples(wrapped, names, False) == [{"text": "hot today?", "label": "weather"}]


@pytest.mark.parametrize("junk", ["", "not json", "null", "42", "{}", "[1, 2]", '{"examples": "many"}',
                                  '{"examples": [null, 3, {"text": 5, "label": "music"}]}', "{[}"])
def test_read_examples_turns_junk_into_nothing(junk):
    assert read_examples(junk, list(LABELS), False) == []
    assert read_examples(junk, list(LABELS), True) == []
