"""The generation task kind (docs/generation.md), against an in-process OpenAI-format teacher and
judge: the Recipe's checks, the Mash from your requests (journaled, near-duplicates never sent,
over-long and cut-off answers rejected), sampling, a tiny student distilled end to end with the
judge's reasons on its worst answers, a re-tasting that pays for no grade twice, and `predict`,
`serve` and bottles on its Spirit."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import torch
import yaml
from starlette.testclient import TestClient
from typer.testing import CliRunner

from distillery import pipeline
from distillery.cellar import Cellar
from distillery.cli import app
from distillery.errors import DistilleryError, RecipeError
from distillery.estimate import describe
from distillery.jsonl import read_jsonl
from distillery.openai_api import ApiError, ChatRequest
from distillery.pipeline import Run, make_teacher
from distillery.recipe import load_recipe, recipe_from_dict
from distillery.serve import create_app
from distillery.students.prompt_format import tiny_format
from distillery.tasks import task_for
from distillery.tasks.generation.mash import answer_inputs, read_inputs
from distillery.tasks.generation.predictor import PromptTooLong, TextPredictor, next_token
from distillery.tasks.generation.serving import TextTurn
from distillery.teachers.openai import OpenAITeacher
from distillery.teachers.retry import RetryPolicy
from distillery.tokenizer import train_tokenizer

PROBLEMS = {
    "my parcel is late": "Sorry your parcel is late. We will ask the courier today.",
    "the lamp arrived broken": "Sorry the lamp broke. We will send a new one.",
    "I was charged twice": "Sorry for the double charge. We will refund one today.",
    "I want to return my shoes": "Of course. We will email you a return label.",
    "the app keeps crashing": "Sorry about the crashes. We will pass this to our app team.",
}
RUBRIC = "the reply answers this customer's problem politely"


class ReplyFake:
    """An OpenAI-format server that plays the teacher (each problem's one reply; `too_long` and
    `cut` name requests it answers badly) and the judge (5 for the teacher's reply word for word,
    3 for a reply that starts like it, 1 otherwise, each with a reason)."""

    def __init__(self, too_long: tuple[str, ...] = (), cut: tuple[str, ...] = ()):
        self.too_long, self.cut = too_long, cut
        self.bodies: list[dict] = []

    @staticmethod
    def is_judge(body: dict) -> bool:
        return body["messages"][0]["content"].startswith("You grade one answer")

    def count(self, judge: bool) -> int:
        return sum(self.is_judge(b) == judge for b in self.bodies)

    def handler(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        user, finish = body["messages"][1]["content"], "stop"
        if self.is_judge(body):
            reference = user.split("written by a larger model:\n", 1)[1].split("\n\nThe answer to grade:", 1)[0]
            answer = user.split("The answer to grade:\n", 1)[1]
            if answer == reference:
                content = json.dumps({"reason": "says what the reference says", "score": 5})
            elif answer.split()[:2] == reference.split()[:2]:
                content = json.dumps({"reason": "starts right but drifts from the problem", "score": 3})
            else:
                content = json.dumps({"reason": f"not about this problem (expected: {reference[:24]})", "score": 1})
        else:
            problem = next(p for p in PROBLEMS if user.startswith(p))
            content = PROBLEMS[problem]
            if user in self.too_long:
                content = " ".join(["very"] * 80) + " sorry."
            if user in self.cut:
                content, finish = content[:10], "length"
        return httpx.Response(200, json={"choices": [{"message": {"content": content}, "finish_reason": finish}],
                                         "usage": {"prompt_tokens": 80, "completion_tokens": 20}})

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)


def requests_file(path: Path, n: int = 60) -> Path:
    lines = [json.dumps({"text": f"{problem}, order {k}"}) for k in range(n // len(PROBLEMS))
             for problem in PROBLEMS]
    path.write_text("\n".join(lines) + "\n")
    return path


def recipe_dict(**sections) -> dict:
    data = {"name": "reply", "seed": 1,
            "task": {"kind": "generation", "instruction": "Reply to the customer in one or two sentences.",
                     "max_words": 30},
            "teacher": {"provider": "openai", "model": "gpt-4o-mini", "temperature": 0.2, "max_tokens": 80},
            "mash": {"inputs": "requests.jsonl", "total_examples": 60},
            "judge": {"kind": "llm", "rubric": RUBRIC, "max_tokens": 60},
            "cuts": {"hearts": 0.8, "heads": 0.2},
            "student": {"kind": "tiny", "d_model": 64, "n_layers": 2, "n_heads": 2, "n_kv_heads": 1, "d_ff": 128,
                        "max_seq_len": 96, "vocab_size": 512},
            "still": {"epochs": 8, "batch_size": 8, "lr": 3e-3},
            "tasting": {"samples": 8, "max_new_tokens": 24}}
    for name, value in sections.items():
        if value is None:
            data.pop(name, None)
        elif isinstance(value, dict) and isinstance(data.get(name), dict):
            data[name] = {**data[name], **value}
        else:
            data[name] = value
    return data


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")


def problems_of(tmp_path, **sections) -> str:
    requests_file(tmp_path / "requests.jsonl")
    with pytest.raises(RecipeError) as err:
        recipe_from_dict(recipe_dict(**sections), base_dir=tmp_path)
    return str(err.value)


def test_the_recipe_refuses_what_generation_cannot_honour(tmp_path):
    requests_file(tmp_path / "requests.jsonl")
    recipe = recipe_from_dict(recipe_dict(), base_dir=tmp_path)
    resolved = yaml.safe_load(recipe.resolved_yaml())
    assert resolved["task"] == {"kind": "generation", "instruction": "Reply to the customer in one or two sentences.",
                                "max_words": 30}
    assert resolved["tasting"]["max_new_tokens"] == 24 and "temperature" not in resolved["tasting"]
    assert recipe_from_dict(resolved, base_dir=tmp_path).sha256() == recipe.sha256()  # it loads again, the same
    numbers = task_for(recipe).estimate()  # one request per distinct input; one grade per heads example
    assert numbers["requests"] == 60 and numbers["judge"]["requests"] == 12 and numbers["total_usd"] > 0
    assert "judge          12 requests at most to openai `gpt-4o-mini`" in describe(numbers)

    assert "judge: missing; the proof of a generation task is an llm judge's mean score" in problems_of(
        tmp_path, judge=None)
    assert "judge: `tasting.proof: exact` compares answers" in problems_of(tmp_path, tasting={"proof": "exact"})
    assert recipe_from_dict(recipe_dict(judge=None, tasting={"proof": "exact"}), base_dir=tmp_path)
    said = problems_of(tmp_path, judge={"kind": "llm", "rubric": RUBRIC, "borderline": 2, "agreement": 0.5},
                       tasting={"top_p": 0.9}, bottling={"formats": ["web"]}, mash={"no_call_ratio": 0.3})
    for words in ("judge.borderline: sends borderline", "judge.agreement: compares the teacher's N samples",
                  "tasting.top_p: narrows sampling, and decoding is greedy", "bottling.formats: the web page",
                  "mash.no_call_ratio: only a tool_calling task reads it"):
        assert words in said
    assert "judge.kind: an exact judge has nothing to compare" in problems_of(tmp_path, judge="exact")
    assert "mash.samples_per_request: best-of-N is not available for generation" in problems_of(
        tmp_path, mash={"samples_per_request": 3})
    assert "teacher.provider: no offline teacher" in problems_of(tmp_path, teacher={"provider": "offline"})
    assert "mash.inputs: missing; the teacher answers your requests" in problems_of(
        tmp_path, mash={"inputs": None, "total_examples": 60})
    said = problems_of(tmp_path, teacher={"provider": "replay", "traces": "requests.jsonl", "temperature": 0.5})
    assert "mash.inputs: the replay teacher reads" in said and "teacher.temperature: a replayed file" in said
    assert "judge.provider: missing; the judge would be the replay teacher" in said
    assert "task.instruction: a generation task needs what to write" in problems_of(
        tmp_path, task="generation")
    # Generation's own settings are refused for every other kind, and change nothing there.
    examples = Path(__file__).resolve().parents[1] / "examples"
    for given, words in (({"tasting": {"temperature": 0.7}}, "tasting.temperature: only a generation task reads it"),
                         ({"task": {"kind": "tool_calling", "instruction": "hi"}},
                          "task.instruction: only a generation task has `instruction`")):
        with pytest.raises(RecipeError) as err:
            recipe_from_dict({"name": "x", "tools": "needle_tools.json", **given}, base_dir=examples)
        assert words in str(err.value)
    needle = load_recipe(Path(__file__).resolve().parents[1] / "examples" / "needle.yaml").resolved_yaml()
    assert "proof" not in needle and "instruction" not in needle and "top_p" not in needle


def teacher_cfg(**kw):
    return SimpleNamespace(**{"temperature": 0.2, "max_tokens": 80, "concurrency": 2, "budget_usd": None,
                              "price": None, "batch": False, **kw})


def test_the_teacher_answers_each_distinct_request_once_and_bad_answers_are_rejected(tmp_path):
    path = tmp_path / "requests.jsonl"
    lines = ["my parcel is late, order 1", "My parcel is late, order 1!", "the lamp arrived broken, order 2",
             "I was charged twice, order 3", "I want to return my shoes, order 4", "the app keeps crashing, order 5",
             "my parcel is late, order 6"]
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in lines))
    fake = ReplyFake(too_long=(lines[2],), cut=(lines[3],))

    def build(journal_dir):
        provider = OpenAITeacher(model="gpt-4o-mini", transport=fake.transport())
        return answer_inputs(provider, read_inputs(path), 4, instruction="Reply.", max_words=30,
                             teacher_cfg=teacher_cfg(), journal=journal_dir, seed=1, policy=RetryPolicy(tries=1))

    stats, accepted, rejected = build(tmp_path / "journal")
    # Four usable answers wanted: the first wave asks four, two come back unusable, the next asks two more.
    assert [ex["utterance"] for ex in accepted] == [lines[0], lines[4], lines[5], lines[6]]
    assert accepted[0]["output"] == PROBLEMS["my parcel is late"] and accepted[0]["teacher"]["journal_id"]
    reasons = {r["line"]: r["reason"].split(":")[0] for r in rejected}
    assert reasons == {2: "duplicate", 3: "too_long", 4: "truncated"}
    assert stats.requests == len(fake.bodies) == 6 and stats.accepted == 4 and not stats.exhausted
    assert all(b["messages"][1]["content"] != lines[1] for b in fake.bodies)  # a near-duplicate is never sent
    assert "at most 30 words" in fake.bodies[0]["messages"][0]["content"]
    again = build(tmp_path / "journal")
    assert len(fake.bodies) == 6 and again[0].replayed == 6 and again[1] == accepted  # all from the journal

    path.write_text('{"text": "fine"}\n{"id": 2}\n')
    with pytest.raises(DistilleryError, match=r"requests.jsonl:2: no request text"):
        read_inputs(path)


def test_sampling_is_greedy_at_zero_seeded_and_cut_to_the_nucleus():
    logits = torch.tensor([0.0, 2.0, 1.0, -1.0])
    assert next_token(logits, 0.0, 1.0, None) == 1
    assert {next_token(logits, 1.5, 0.05, torch.Generator().manual_seed(s)) for s in range(50)} == {1}
    draws = [next_token(logits, 1.0, 1.0, torch.Generator().manual_seed(s)) for s in range(2000)]
    share = draws.count(1) / len(draws)
    assert abs(share - torch.softmax(logits, 0)[1].item()) < 0.04  # drawn from the student's distribution
    nucleus = {next_token(logits, 1.0, 0.8, torch.Generator().manual_seed(s)) for s in range(300)}
    assert nucleus == {1, 2}  # 0.61 + 0.22 reach 0.8; the two unlikely tokens are never drawn
    assert [next_token(logits, 1.0, 1.0, torch.Generator().manual_seed(7)) for _ in range(3)] == \
        [next_token(logits, 1.0, 1.0, torch.Generator().manual_seed(7))] * 3


class ScriptedRunner:
    """A runner whose logits always favour the next token of `script`."""

    def __init__(self, script: list[int], vocab: int, max_len: int = 64):
        self.script, self.vocab, self.max_len, self.at = script, vocab, max_len, 0

    def _logits(self):
        out = torch.zeros(self.vocab)
        out[self.script[min(self.at, len(self.script) - 1)]] = 10.0
        return out

    def start(self, prompt_ids):
        self.at = 0
        return self._logits()

    def step(self, token):
        self.at += 1
        return self._logits()


def test_the_predictor_stops_at_the_end_token_or_the_cap_and_refuses_a_prompt_with_no_room():
    tok = train_tokenizer(["we will send a new lamp today", "sorry about the parcel"] * 20, 512)
    fmt = tiny_format(tok, 64)
    words = tok.encode(" we will send", add_special_tokens=False).ids
    predictor = TextPredictor(ScriptedRunner(words + [fmt.end_id], tok.get_vocab_size()), tok, fmt, "Reply.",
                              {"max_new_tokens": 50})
    said = predictor.predict("my lamp broke")
    assert said.output == "we will send" and not said.unfinished and said.answer == {"output": "we will send"}
    predictor.max_new_tokens = 1
    cut = predictor.predict("my lamp broke")
    assert cut.unfinished and cut.completion_tokens == 1
    predictor.model.max_len = 8
    with pytest.raises(PromptTooLong, match="leaves no room for an answer"):
        predictor.predict("my lamp broke and the parcel was late and nobody answers the phone")


def test_a_chat_turn_takes_the_requests_sampling_and_refuses_tools_and_json():
    def request(**kw):
        return ChatRequest.model_validate({"model": "reply", "messages": [{"role": "user", "content": "hi"}], **kw})

    for kw, param in (({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
                      ({"response_format": {"type": "json_object"}}, "response_format"),
                      ({"temperature": 3}, "temperature"), ({"top_p": 0}, "top_p"), ({"seed": "x"}, "seed")):
        with pytest.raises(ApiError) as err:
            TextTurn(request(**kw), "hi", "reply")
        assert err.value.status == 400 and err.value.param == param
    turn = TextTurn(request(temperature=0.7, top_p=0.9, seed=3, max_tokens=5), "hi", "reply")
    caller = SimpleNamespace(temperature=0.0, top_p=1.0, seed=0, max_new_tokens=256,
                             predict=lambda text: SimpleNamespace(output="hello", unfinished=True, prompt_tokens=4))
    reply = turn.run(caller)
    assert (caller.temperature, caller.top_p, caller.seed, caller.max_new_tokens) == (0.7, 0.9, 3, 5)
    assert reply.content == "hello" and reply.finish_reason == "length" and reply.calls == []


def distill(tmp_path, fake, **sections) -> Run:
    requests_file(tmp_path / "requests.jsonl")
    path = tmp_path / "reply.yaml"
    path.write_text(yaml.safe_dump(recipe_dict(**sections)))
    run = Run(load_recipe(path), runs_root=tmp_path / "runs")
    run.run()
    return run


@pytest.fixture(scope="module")
def replies(tmp_path_factory):
    """A tiny student distilled from the fake teacher, graded by the fake judge."""
    tmp_path = tmp_path_factory.mktemp("reply")
    fake = ReplyFake()
    from distillery.judges import llm

    real = llm.provider_for
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_API_KEY", "sk-fake")
        mp.setattr(pipeline, "make_teacher", lambda r, **kw: make_teacher(r, transport=fake.transport(), **kw))
        mp.setattr(llm, "provider_for", lambda cfg, transport=None: real(cfg, fake.transport()))
        run = distill(tmp_path, fake)
        yield run, fake, mp, tmp_path


def test_the_notes_carry_the_judges_reasons_on_the_worst_answers(replies):
    run, fake, _, _ = replies
    notes = json.loads((run.dir / "tasting" / "notes.json").read_text())
    heads = read_jsonl(run.dir / "cuts" / "heads.jsonl")
    assert notes["task"] == "generation" and notes["proof_metric"] == "judge_score" and notes["n_eval"] == len(heads)
    rows = notes["predictions"]
    # (g - 1) / (scale - 1) per answer, averaged: the judge's mean score on 0..1.
    assert notes["proof"] == pytest.approx(sum((r["score"] - 1) / 4 for r in rows) / len(rows), abs=1e-6)
    assert 0 <= notes["proof"] <= 1 and notes["metrics"]["judge_mean"] >= 1
    scores = [s["score"] for s in notes["samples"]]
    assert scores == sorted(scores) and len(scores) == min(8, len(heads))  # the worst first
    for sample in notes["samples"]:
        assert sample["reason"] and sample["verdict"] == f"{sample['score']}/5: {sample['reason']}"
    assert fake.count(judge=True) == len(heads) and notes["judge"]["requests_sent"] == len(heads)
    judged = read_jsonl(run.dir / "journal" / "judge" / "responses.jsonl")
    assert len(judged) == len(heads)  # every grade journaled before it was used
    md = (run.dir / "tasting" / "notes.md").read_text()
    assert "Worst samples: the judge's reasons" in md and notes["samples"][0]["reason"] in md
    assert "grammar-constrained decoding off" in md
    assert notes["decoding"] == {"grammar": False, "temperature": 0.0, "top_p": 1.0, "max_new_tokens": 24, "seed": 1}


def test_a_new_rubric_re_tastes_without_retraining_and_a_re_run_pays_for_no_grade(replies):
    run, fake, _, tmp_path = replies
    sent = len(fake.bodies)
    still = (run.dir / "still" / "student.safetensors").stat().st_mtime_ns
    path = tmp_path / "reply.yaml"
    path.write_text(yaml.safe_dump(recipe_dict(tasting={"samples": 9})))  # the Tasting is redone...
    Run(load_recipe(path), runs_root=tmp_path / "runs").run()
    notes = json.loads((run.dir / "tasting" / "notes.json").read_text())
    assert len(fake.bodies) == sent and notes["judge"]["requests_sent"] == 0  # ...every grade from the journal
    assert notes["judge"]["replayed"] == notes["n_eval"]
    path.write_text(yaml.safe_dump(recipe_dict(judge={"rubric": "the reply is short"})))
    Run(load_recipe(path), runs_root=tmp_path / "runs").run()
    assert fake.count(judge=False) == sum(not ReplyFake.is_judge(b) for b in fake.bodies[:sent])  # no new Mash
    assert fake.count(judge=True) > len(read_jsonl(run.dir / "cuts" / "heads.jsonl"))  # graded anew
    assert (run.dir / "still" / "student.safetensors").stat().st_mtime_ns == still  # not retrained


def test_predict_serve_and_bottles_answer_as_the_tasting_did(replies, tmp_path):
    run, _, _, _ = replies
    spirit = run.spirit_path()
    heads = read_jsonl(run.dir / "cuts" / "heads.jsonl")
    tasted = {r["id"]: r["predicted"] for r in json.loads((run.dir / "tasting" / "notes.json").read_text())
              ["predictions"]}
    runner = CliRunner()
    said = runner.invoke(app, ["predict", str(spirit), heads[0]["utterance"], "--runtime", "torch"])
    assert said.exit_code == 0, said.output
    assert json.loads(said.stdout) == {"output": tasted[heads[0]["id"]]}
    refused = runner.invoke(app, ["predict", str(spirit), "hi", "--no-grammar", "--runtime", "torch"])
    assert refused.exit_code == 2 and "decodes with no grammar" in refused.output

    cellar = Cellar(tmp_path / "cellar")
    entry = cellar.add(spirit)
    client = TestClient(create_app(cellar), raise_server_exceptions=False)
    body = {"model": entry["name"], "messages": [{"role": "user", "content": heads[0]["utterance"]}]}
    answer = client.post("/v1/chat/completions", json=body).json()
    assert answer["choices"][0]["message"]["content"] == tasted[heads[0]["id"]]
    short = client.post("/v1/chat/completions", json={**body, "max_tokens": 1}).json()
    assert short["choices"][0]["finish_reason"] == "length" and short["usage"]["completion_tokens"] == 1
    hot = {**body, "temperature": 1.5, "seed": 11}
    assert client.post("/v1/chat/completions", json=hot).json()["choices"][0]["message"]["content"] == \
        client.post("/v1/chat/completions", json=hot).json()["choices"][0]["message"]["content"]
    tools = client.post("/v1/chat/completions", json={**body, "tools": [{"type": "function",
                                                                         "function": {"name": "f"}}]})
    assert tools.status_code == 400 and "calls no tools" in tools.json()["error"]["message"]

    made = runner.invoke(app, ["bottle", str(spirit), "--format", "pt", "--out", str(tmp_path)])
    assert made.exit_code == 0, made.output
    out = json.loads(made.stdout)
    # A bottle is compared with its Spirit without a judge: exact match with the teacher, same answers.
    assert out["same_calls_as_spirit"] == 1.0 and out["difference"] == 0.0 and "exact_match" in out
    web = runner.invoke(app, ["bottle", str(spirit), "--format", "web", "--out", str(tmp_path)])
    assert web.exit_code == 2 and "answers tool calls only" in web.output
    assert re.search(r"generation", web.output)
