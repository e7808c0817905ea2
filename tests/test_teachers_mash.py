"""The Mash from an LLM teacher, answered in-process in each provider's wire format: the
Needle through any provider, truncated answers never accepted, resume from the journal with
no request twice, the budget, near-duplicates, and distractors only from the shown slice."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import yaml
from teacher_fakes import FakeLLM

from distillery import pipeline
from distillery.errors import DistilleryError
from distillery.jsonl import read_jsonl
from distillery.mash import near_key
from distillery.tasks.tool_calling.mash import build_mash_llm
from distillery.pipeline import Run, make_teacher
from distillery.recipe import load_recipe
from distillery.teachers.cost import Price
from distillery.teachers.openai import OpenAITeacher
from distillery.teachers.retry import RetryPolicy

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
KEYS = {"OPENAI_API_KEY": "sk-fake", "ANTHROPIC_API_KEY": "sk-ant-fake", "GEMINI_API_KEY": "AIza-fake"}
CATALOG = load_recipe(EXAMPLES / "needle.yaml").catalog
TOOLS = {t.name: t for t in CATALOG}


def needle_with_teacher(tmp_path: Path, teacher: dict) -> Path:
    """examples/needle.yaml with only its `teacher:` block replaced."""
    shutil.copy(EXAMPLES / "needle_tools.json", tmp_path / "needle_tools.json")
    data = yaml.safe_load((EXAMPLES / "needle.yaml").read_text())
    data["teacher"] = teacher
    (tmp_path / "needle.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return tmp_path / "needle.yaml"


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_needle_mash_from_any_provider_by_changing_only_the_teacher_block(tmp_path, monkeypatch, provider):
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    fake = FakeLLM(provider)
    monkeypatch.setattr(pipeline, "make_teacher", lambda r, **kw: make_teacher(r, transport=fake.transport(), **kw))
    recipe = load_recipe(needle_with_teacher(tmp_path, {"provider": provider}))
    run = Run(recipe, runs_root=tmp_path / "runs")
    run.run(until="mash")
    mash = read_jsonl(run.dir / "mash.jsonl")
    assert len(mash) == 1000 == recipe.mash.total_examples
    journal = read_jsonl(run.dir / "journal" / "responses.jsonl")
    assert len(journal) == len(fake.bodies) == 100  # 10 valid examples per request, no more asked
    assert {r["provider"] for r in journal} == {provider}
    for example in mash:
        assert example["teacher"]["provider"] == provider
        assert {c["name"] for c in example["calls"]} <= set(example["tools"]) <= set(TOOLS)
        assert 3 <= len(example["tools"]) or not example["calls"]
    assert sum(not ex["calls"] for ex in mash) > 50  # the no-call examples made it through too
    # Every tool of the catalog was shown to the teacher: each block of requests visits them all.
    shown = {name for body in fake.bodies for name in re.findall(r'"enum": \["(\w+)"\]', json.dumps(body))}
    assert shown == set(TOOLS)


class Scripted:
    """An OpenAI-format server that answers request bodies through `script(body, count)`."""

    def __init__(self, script):
        self.script, self.bodies = script, []

    def transport(self):
        def handle(request):
            body = json.loads(request.content)
            self.bodies.append(body)
            return self.script(body, len(self.bodies))

        return httpx.MockTransport(handle)


def openai_answer(examples: list[dict], finish: str = "stop", completion_tokens: int = 100) -> httpx.Response:
    return httpx.Response(200, json={"choices": [{"message": {"content": json.dumps({"examples": examples})},
                                                  "finish_reason": finish}],
                                     "usage": {"prompt_tokens": 400, "completion_tokens": completion_tokens}})


def configs(total: int, per_call: int = 4, concurrency: int = 2, budget=None, max_tokens: int = 300):
    mash_cfg = SimpleNamespace(total_examples=total, examples_per_call=per_call, no_call_ratio=0.25,
                               parallel_ratio=0.0, tools_per_call=SimpleNamespace(min=3, max=5))
    teacher_cfg = SimpleNamespace(temperature=0.9, max_tokens=max_tokens, concurrency=concurrency,
                                  budget_usd=budget, price=None, base_url=None)
    return mash_cfg, teacher_cfg


def build(tmp_path, server, total, factor=20, price=None, **kw):
    teacher = OpenAITeacher(model="gpt-4o-mini", transport=server.transport())
    mash_cfg, teacher_cfg = configs(total, **kw)
    return build_mash_llm(teacher, CATALOG, mash_cfg, teacher_cfg, tmp_path, seed=3, price=price,
                          policy=RetryPolicy(tries=1), max_requests_factor=factor)


def test_answers_that_stopped_on_length_or_a_filter_are_never_accepted(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
    fake = FakeLLM("openai")

    def script(body, count):
        good = fake.answer(body)["choices"][0]["message"]["content"]
        finish = {1: "length", 2: "content_filter"}.get(count, "stop")
        return openai_answer(json.loads(good)["examples"], finish=finish)

    server = Scripted(script)
    stats = build(tmp_path, server, total=12, per_call=4, concurrency=1)
    rejects = read_jsonl(tmp_path / "mash.rejects.jsonl")
    assert [(r["request"], r["reason"].split(":")[0]) for r in rejects] == [(0, "truncated"), (1, "content_filter")]
    assert {ex["teacher"]["request"] for ex in read_jsonl(tmp_path / "mash.jsonl")} == {2, 3, 4}
    # Request 5 was already in flight when the Mash filled up: paid for, so journaled, not lost.
    assert stats.accepted == 12 and stats.requests == 6
    assert len(read_jsonl(tmp_path / "journal" / "responses.jsonl")) == 6


def test_a_killed_mash_resumes_without_asking_twice_and_a_finished_one_asks_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
    fake = FakeLLM("openai")

    def flaky(body, count):
        if count > 3:
            raise httpx.ConnectError("the network went away")
        return httpx.Response(200, json=fake.answer(body))

    first = Scripted(flaky)
    with pytest.raises(DistilleryError, match="failed once"):
        build(tmp_path, first, total=30, concurrency=1)
    assert len(read_jsonl(tmp_path / "journal" / "responses.jsonl")) == 3

    second = Scripted(lambda body, count: httpx.Response(200, json=fake.answer(body)))
    stats = build(tmp_path, second, total=30, concurrency=1)
    assert stats.replayed == 3 and stats.requests == len(second.bodies) == 5  # 8 requests in all
    seeds_first = {b["seed"] for b in first.bodies[:3]}
    assert seeds_first.isdisjoint(b["seed"] for b in second.bodies)  # nothing answered was asked again
    mash = (tmp_path / "mash.jsonl").read_text()

    third = Scripted(lambda body, count: pytest.fail("a finished Mash must not send a request"))
    (tmp_path / "mash.jsonl").unlink()
    stats = build(tmp_path, third, total=30, concurrency=3)
    assert stats.requests == 0 and stats.replayed == 8
    assert (tmp_path / "mash.jsonl").read_text() == mash  # the same Mash, from the journal alone


def test_the_budget_stops_before_the_request_that_could_pass_it(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
    fake = FakeLLM("openai")
    server = Scripted(lambda body, count: httpx.Response(200, json=fake.answer(body)))
    # $1000 per million answer tokens: each request reserves $0.10 (max_tokens 100) and spends $0.10.
    price = Price(input=0.0, output=1000.0)
    with pytest.raises(DistilleryError, match=r"budget_usd \(\$0.35\) reached: \$0.3000 spent"):
        build(tmp_path, server, total=100, concurrency=2, budget=0.35, max_tokens=100, price=price)
    assert len(server.bodies) == 3
    journal = read_jsonl(tmp_path / "journal" / "responses.jsonl")
    assert [r["cost_usd"] for r in journal] == pytest.approx([0.1, 0.1, 0.1])
    # A bigger budget goes on from there: what was paid for is not paid again.
    stats = build(tmp_path, server, total=20, concurrency=2, budget=0.65, max_tokens=100, price=price)
    assert stats.replayed == 3 and stats.requests == 2 and len(server.bodies) == 5
    assert stats.cost_usd == pytest.approx(0.5)


def test_near_identical_utterances_are_duplicates_and_distractors_come_from_the_shown_slice(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
    assert near_key("Set a timer, please!") == near_key("please set a TIMER") != near_key("set a timer for 5")

    def script(body, count):
        shown = re.findall(r'"enum": \["(\w+)"\]', json.dumps(body["response_format"]))
        tool = TOOLS[shown[0]]
        args = {p: ("x" if tool.param(p).type == "string" else 1) for p in tool.required}
        if tool.param(tool.required[0]).enum if tool.required else False:
            args[tool.required[0]] = tool.param(tool.required[0]).enum[0]
        return openai_answer([
            {"utterance": f"Hello there, how are you doing {count}?", "calls": []},
            {"utterance": f"please, how are you doing {count} there? hello", "calls": []},
            {"utterance": f"run {shown[0]} number {count}", "calls": [{"name": shown[0], "arguments": args}]},
            {"utterance": f"use a tool not shown {count}", "calls": [
                {"name": next(t for t in TOOLS if t not in shown), "arguments": {}}]},
        ])

    server = Scripted(script)
    build(tmp_path, server, total=10, per_call=4, concurrency=1)
    reasons = [r["reason"] for r in read_jsonl(tmp_path / "mash.rejects.jsonl")]
    assert reasons.count("duplicate: near-identical to an utterance already in the Mash") == 5
    assert all(r.startswith("unknown_tool") for r in reasons if not r.startswith("duplicate"))
    for example in read_jsonl(tmp_path / "mash.jsonl"):
        body = server.bodies[example["teacher"]["request"]]
        shown = set(re.findall(r'"enum": \["(\w+)"\]', json.dumps(body["response_format"])))
        assert set(example["tools"]) <= shown  # the teacher saw every tool the example offers


def test_invalid_json_answers_are_rejected_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
    fake = FakeLLM("openai")

    def script(body, count):
        if count == 1:
            return httpx.Response(200, json={"choices": [{"message": {"content": "Sure! Here are {some"},
                                                          "finish_reason": "stop"}], "usage": {}})
        return httpx.Response(200, json=fake.answer(body))

    server = Scripted(script)
    build(tmp_path, server, total=10, per_call=4, concurrency=1)
    first = read_jsonl(tmp_path / "mash.rejects.jsonl")[0]
    assert first["reason"] == "invalid_json: the answer is not JSON" and first["candidate"].startswith("Sure!")


def test_a_teacher_that_never_gives_valid_examples_stops_with_a_message(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
    server = Scripted(lambda body, count: openai_answer([{"utterance": "x", "calls": [{"name": "nope"}]}]))
    with pytest.raises(DistilleryError, match=r"only 0 acceptable examples in 6 requests.*unknown_tool"):
        build(tmp_path, server, total=10, per_call=4, factor=2)
    assert len(read_jsonl(tmp_path / "mash.rejects.jsonl")) == 6
