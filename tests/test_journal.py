"""The request journal: deterministic ids, durable appends, torn lines dropped, one writer."""

from __future__ import annotations

import json

import pytest

from distillery.errors import DistilleryError
from distillery.teachers.base import Request
from distillery.teachers.journal import Journal, request_id

REQUEST = Request(messages=({"role": "user", "content": "hi"},), temperature=0.9, max_tokens=100, seed=1)


def test_request_id_is_stable_and_changes_with_every_input():
    base = request_id("openai", "m", REQUEST, 0)
    assert base == request_id("openai", "m", Request(({"role": "user", "content": "hi"},), 0.9, 100, seed=1), 0)
    variants = {
        request_id("anthropic", "m", REQUEST, 0), request_id("openai", "m2", REQUEST, 0),
        request_id("openai", "m", REQUEST, 1),
        request_id("openai", "m", Request(({"role": "user", "content": "ho"},), 0.9, 100, seed=1), 0),
        request_id("openai", "m", Request(REQUEST.messages, 0.8, 100, seed=1), 0),
        request_id("openai", "m", Request(REQUEST.messages, 0.9, 101, seed=1), 0),
        request_id("openai", "m", Request(REQUEST.messages, 0.9, 100, json_schema={"type": "object"}, seed=1), 0),
    }
    assert base not in variants and len(variants) == 7


def test_appends_survive_a_reopen_and_a_torn_last_line_is_dropped(tmp_path):
    journal = Journal(tmp_path / "journal")
    journal.append("a", {"text": "first"})
    journal.append("b", {"text": "second"})
    journal.close()
    path = tmp_path / "journal" / "responses.jsonl"
    with path.open("a") as f:
        f.write('{"id": "c", "text": "cut sh')  # a kill in the middle of a write
    journal = Journal(tmp_path / "journal")
    assert {k: v["text"] for k, v in journal.answers.items()} == {"a": "first", "b": "second"}
    # The torn bytes are gone, so the next append starts on a line of its own.
    journal.append("c", {"text": "third"})
    journal.close()
    lines = path.read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["a", "b", "c"]


def test_a_damaged_middle_line_is_skipped_not_fatal(tmp_path):
    (tmp_path / "j").mkdir()
    (tmp_path / "j" / "responses.jsonl").write_text('{"id": "a", "text": "x"}\nGARBAGE\n{"id": "b", "text": "y"}\n')
    journal = Journal(tmp_path / "j")
    assert sorted(journal.answers) == ["a", "b"]
    journal.close()


def test_two_writers_on_one_journal_are_refused(tmp_path):
    first = Journal(tmp_path / "j")
    with pytest.raises(DistilleryError, match="another distillery process"):
        Journal(tmp_path / "j")
    first.close()
    Journal(tmp_path / "j").close()  # free again once the first is closed
