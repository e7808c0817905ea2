"""Judges and best-of-N (docs/judges.md), against an in-process OpenAI-format teacher and judge:
N samples per request, each journaled once; the judge's pick, its rejects with their scores;
tails for disagreement and borderline grades; resume without paying twice; the Recipe's
checks; and `distillery estimate` counting every teacher and judge request."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import yaml
from teacher_fakes import FakeLLM

from distillery import cuts, pipeline
from distillery.errors import DistilleryError, RecipeError
from distillery.estimate import describe
from distillery.judges import Case, Score, build_judge, decide
from distillery.judges.config import JudgeConfig
from distillery.judges.execute import ExecuteJudge, load_checks
from distillery.judges.llm import LLMJudge
from distillery.jsonl import read_jsonl
from distillery.pipeline import Run, make_teacher
from distillery.recipe import load_recipe, recipe_from_dict
from distillery.tasks.tool_calling import toolgen
from distillery.tasks.tool_calling.best_of_n import ANSWER_SYSTEM
from distillery.tasks.tool_calling.estimate import estimate
from distillery.tasks.tool_calling.mash import build_mash_llm
from distillery.teachers.openai import OpenAITeacher
from distillery.teachers.retry import RetryPolicy

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CATALOG = load_recipe(EXAMPLES / "needle.yaml").catalog
TOOLS = {t.name: t for t in CATALOG}


def _corrupt(calls: list[dict]) -> bool:
    """Change the first free-text argument of the first call (still a valid call); False if it has none."""
    for call in calls[:1]:
        tool = TOOLS[call["name"]]
        for key, value in call["arguments"].items():
            if tool.param(key).type == "string" and tool.param(key).enum is None:
                call["arguments"][key] = value + " (misread)"
                return True
    return False


class BestOfNFake:
    """An OpenAI-format server playing teacher and judge. It writes examples like FakeLLM and knows
    each one's right calls; the writer misreads some of them (`misread(k)` of example number k),
    a sample answering them again never does, and the judge grades the right calls `right` and
    any other `wrong`. `fail_after` answers HTTP 400 from that request on (a run that dies)."""

    def __init__(self, misread=lambda k: k % 4 == 1, right=5, wrong=2, fail_after: int | None = None,
                 grade=None):
        self.writer = FakeLLM("openai")
        self.misread, self.right, self.wrong, self.fail_after = misread, right, wrong, fail_after
        self.grade_of = grade  # (utterance, right or not) -> score, overriding right/wrong
        self.truth: dict[str, list] = {}
        self.bodies: list[dict] = []

    def kind(self, body: dict) -> str:
        system = body["messages"][0]["content"]
        return "write" if system == toolgen.SYSTEM else "answer" if system == ANSWER_SYSTEM else "judge"

    def handler(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if self.fail_after is not None and len(self.bodies) >= self.fail_after:
            return httpx.Response(400, json={"error": {"message": "the server went away"}})
        self.bodies.append(body)
        content = getattr(self, self.kind(body))(body)
        return httpx.Response(200, json={"choices": [{"message": {"content": json.dumps(content)},
                                                      "finish_reason": "stop"}],
                                         "usage": {"prompt_tokens": 300, "completion_tokens": 60}})

    def write(self, body: dict) -> dict:
        answer = self.writer.examples(body)
        for example in answer["examples"]:
            self.truth[example["utterance"]] = copy.deepcopy(example["calls"])
            if self.misread(int(re.search(r"number (\d+)", example["utterance"]).group(1))):
                _corrupt(example["calls"])
        return answer

    def answer(self, body: dict) -> dict:
        user = body["messages"][1]["content"]
        listed = [json.loads(m) for m in re.findall(r"^\d+\. (\".*\")$", user, flags=re.M)]
        return {"answers": [{"calls": self.truth[u]} for u in listed]}

    def judge(self, body: dict) -> dict:
        user = body["messages"][1]["content"]
        utterance = json.loads(user.split("User message:\n", 1)[1].split("\n", 1)[0])
        calls = json.loads(user.split("The answer to grade:\n", 1)[1])
        right = calls == self.truth[utterance]
        score = self.grade_of(utterance, right) if self.grade_of else self.right if right else self.wrong
        return {"reason": "matches the request" if right else "a value is not the one asked for", "score": score}

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)

    def count(self, kind: str) -> int:
        return sum(self.kind(b) == kind for b in self.bodies)


def configs(total=24, n=4, per_call=4):
    mash_cfg = SimpleNamespace(total_examples=total, examples_per_call=per_call, no_call_ratio=0.25,
                               parallel_ratio=0.0, tools_per_call=SimpleNamespace(min=3, max=5),
                               samples_per_request=n, keep=1)
    teacher_cfg = SimpleNamespace(temperature=0.9, max_tokens=600, concurrency=2, budget_usd=None, price=None,
                                  base_url=None, provider="openai", model="gpt-4o-mini", api_key_env=None)
    return mash_cfg, teacher_cfg


def build(tmp_path, fake, judge_cfg, *, total=24, n=4, judge=None, **kw):
    mash_cfg, teacher_cfg = configs(total, n)
    teacher = OpenAITeacher(model="gpt-4o-mini", transport=fake.transport())
    if judge is None and judge_cfg.kind == "llm":
        judge = LLMJudge.open(judge_cfg, teacher_cfg, tmp_path / "journal" / "judge", policy=RetryPolicy(tries=1),
                              transport=fake.transport())
    elif judge is None:
        judge = build_judge(SimpleNamespace(judge=judge_cfg, base_dir=tmp_path), tmp_path)
    return build_mash_llm(teacher, CATALOG, mash_cfg, teacher_cfg, tmp_path, seed=5, policy=RetryPolicy(tries=1),
                          judge=judge, judge_cfg=judge_cfg, **kw)


def lines(path: Path) -> list[dict]:
    return read_jsonl(path) if path.exists() else []


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")


def test_exact_judge_keeps_the_majority_answer_and_journals_every_sample_once(tmp_path):
    fake = BestOfNFake()
    stats = build(tmp_path, fake, JudgeConfig(kind="exact", agreement=0.75))
    journal = lines(tmp_path / "journal" / "responses.jsonl")
    writes, answers = fake.count("write"), fake.count("answer")
    assert answers == 3 * writes and len(journal) == 4 * writes == len(fake.bodies)  # N = 4 samples of each
    assert len({line["id"] for line in journal}) == len(journal) and fake.count("judge") == 0
    assert not (tmp_path / "journal" / "judge").exists()  # the exact judge sends nothing
    mash = lines(tmp_path / "mash.jsonl")
    assert len(mash) == stats.accepted == 24 and not any("tail" in ex for ex in mash)
    for example in mash:  # the majority's calls are the right ones, the misread sample 0 lost the vote
        assert example["calls"] == fake.truth[example["utterance"]]
    misread = [ex for ex in mash if ex["teacher"]["sample"] != 0]
    assert misread and all(ex["teacher"]["agreement"] == 3 and ex["teacher"]["judge"]["score"] == 3 for ex in misread)
    journal_ids = {line["id"] for line in journal}
    assert all(ex["teacher"]["journal_id"] in journal_ids for ex in mash)
    rejects = lines(tmp_path / "mash.rejects.jsonl")
    outranked = [r for r in rejects if r["reason"].startswith("outranked")]
    # Every other sample of a kept example is a reject, with its score: 3 per example.
    assert len(outranked) >= 3 * len(mash) - len(misread)
    misread_rejects = [r for r in outranked if r["sample"] == 0 and r["score"] == 1]
    assert len(misread_rejects) == len(misread)
    assert "exact judge scored it 1" in misread_rejects[0]["reason"]


def test_samples_that_disagree_send_the_example_to_the_tails_not_to_the_total(tmp_path):
    fake = BestOfNFake()
    stats = build(tmp_path, fake, JudgeConfig(kind="exact"), total=20)  # agreement 1.0: all 4 must agree
    mash = lines(tmp_path / "mash.jsonl")
    tails = [ex for ex in mash if "tail" in ex]
    assert stats.accepted == 20 == len(mash) - len(tails) and stats.tails == len(tails) > 0
    assert all(ex["tail"].startswith("disagree: 3 of 4 samples") and ex["teacher"]["sample"] != 0 for ex in tails)
    # The cuts put them in tails/, whatever their hash says: neither trained on nor tasted.
    split = cuts.split(mash, 0.5, 0.5, 0.0, seed=1)
    assert {ex["id"] for ex in split["tails"]} == {ex["id"] for ex in tails}
    assert not any("tail" in ex for ex in split["hearts"] + split["heads"])


def test_llm_judge_grades_each_distinct_answer_once_and_borderline_goes_to_tails(tmp_path):
    no_call = lambda utterance, right: 3 if "hello" in utterance else 5 if right else 1  # noqa: E731
    fake = BestOfNFake(grade=no_call)
    cfg = JudgeConfig(kind="llm", rubric="the calls do what the message asks", agreement=0.75, borderline=3)
    stats = build(tmp_path, fake, cfg)
    judge_journal = lines(tmp_path / "journal" / "judge" / "responses.jsonl")
    # One grade per distinct answer: 1 where the four samples agree, 2 where the writer misread.
    assert stats.judge_requests == len(judge_journal) == fake.count("judge")
    mash = lines(tmp_path / "mash.jsonl")
    for example in mash:
        assert example["calls"] == fake.truth[example["utterance"]]
        assert example["teacher"]["judge"]["kind"] == "llm"
    borderline = [ex for ex in mash if "tail" in ex]
    assert borderline and all(ex["tail"].startswith("borderline: the judge scored it 3") and not ex["calls"]
                              for ex in borderline)
    assert all(ex["teacher"]["judge"]["score"] == 5 for ex in mash if "tail" not in ex)
    rejects = [r for r in lines(tmp_path / "mash.rejects.jsonl") if r["reason"].startswith("outranked")]
    assert any(r["score"] == 1 and "a value is not the one asked for" in r["reason"] for r in rejects)
    judged = [line for line in judge_journal]
    assert len(judged) == len({line["id"] for line in judged})


def test_a_run_that_dies_midway_resumes_from_both_journals_and_pays_nothing_twice(tmp_path):
    cfg = JudgeConfig(kind="llm", rubric="right calls", agreement=0.75)
    dying = BestOfNFake(fail_after=23)
    with pytest.raises(DistilleryError):
        build(tmp_path, dying, cfg)
    first = [json.dumps(b, sort_keys=True) for b in dying.bodies]
    assert len(first) == 23 and dying.count("judge") > 0
    fake = BestOfNFake()
    fake.writer, fake.truth = dying.writer, dying.truth  # the same server, up again
    stats = build(tmp_path, fake, cfg)
    again = [json.dumps(b, sort_keys=True) for b in fake.bodies]
    assert not set(first) & set(again)  # nothing answered before is asked again
    assert stats.replayed + stats.judge_replayed >= 22  # all that was answered came from the journals
    mash = (tmp_path / "mash.jsonl").read_bytes()
    # Replayed from the journals alone: not one request, the same Mash.
    silent = BestOfNFake(fail_after=0)
    silent.truth = fake.truth
    (tmp_path / "mash.jsonl").unlink()
    replay = build(tmp_path, silent, cfg)
    assert replay.requests == replay.judge_requests == 0 and not silent.bodies
    assert (tmp_path / "mash.jsonl").read_bytes() == mash


CHECKS = '''
def check_no_misreading(example):
    for call in example["calls"]:
        if any("misread" in str(v) for v in call["arguments"].values()):
            return "a value the message does not say"


def check_runs(example):
    for call in example["calls"]:
        if call["name"].startswith("s"):  # send_message, set_timer...: the user's code cannot run them
            raise ValueError(f"no {call['name']} here")
    return True
'''


def test_execute_judge_runs_the_users_checks_and_never_keeps_a_failing_answer(tmp_path):
    (tmp_path / "checks.py").write_text(CHECKS)
    fake = BestOfNFake(misread=lambda k: True)  # sample 0 is misread wherever it can be
    cfg = JudgeConfig(kind="execute", checks="checks.py", agreement=0.5)
    stats = build(tmp_path, fake, cfg, n=2)
    mash = lines(tmp_path / "mash.jsonl")
    assert len(mash) == stats.accepted == 24 and not any("tail" in ex for ex in mash)
    for example in mash:  # the misread sample failed a check; the other one was kept
        assert example["calls"] == fake.truth[example["utterance"]]
        assert not any(call["name"].startswith("s") for call in example["calls"])
    assert any(ex["teacher"]["sample"] == 1 and ex["teacher"]["judge"]["score"] == 1 for ex in mash)
    rejects = lines(tmp_path / "mash.rejects.jsonl")
    assert any(r["reason"] == "check_failed: check_no_misreading: a value the message does not say"
               and r["sample"] == 0 and r["score"] == 0 for r in rejects)
    raised = [r for r in rejects if re.match(r"check_failed: check_runs raised ValueError: no s\w+ here", r["reason"])]
    assert {r["sample"] for r in raised} == {0, 1}  # both samples failed: the example is not in the Mash


def test_execute_checks_that_cannot_load_or_answer_oddly_are_the_users_to_fix(tmp_path):
    (tmp_path / "broken.py").write_text("def check_x(example):\n    return (\n")
    with pytest.raises(DistilleryError, match=r"judge.checks: .*broken.py failed to load \(SyntaxError"):
        load_checks(tmp_path / "broken.py")
    (tmp_path / "none.py").write_text("def helper(example):\n    return None\n")
    with pytest.raises(DistilleryError, match="defines no `check_...` function"):
        load_checks(tmp_path / "none.py")
    judge = ExecuteJudge([("check_odd", lambda example: 3)])
    case = Case(0, "0.0", {"utterance": "hi", "tools": []}, "calls", "", lambda calls: None, lambda a, b: a == b, str)
    import asyncio

    with pytest.raises(DistilleryError, match="check_odd returned 3"):
        asyncio.run(judge.score(case, [[]]))


def test_one_sample_with_an_llm_judge_grades_the_teachers_own_answers(tmp_path):
    fake = BestOfNFake(misread=lambda k: k % 3 == 0)
    cfg = JudgeConfig(kind="llm", rubric="right calls", borderline=2)
    stats = build(tmp_path, fake, cfg, n=1, total=12)
    assert fake.count("answer") == 0 and fake.count("judge") == stats.judge_requests > 0
    mash = lines(tmp_path / "mash.jsonl")
    misread = [ex for ex in mash if ex["calls"] != fake.truth[ex["utterance"]]]
    # A misread answer is the only one there is: kept, but graded 2, so it goes to the tails.
    assert misread and all(ex["tail"].startswith("borderline") for ex in misread)
    assert stats.accepted == 12 == sum("tail" not in ex for ex in mash)


def test_the_judge_budget_stops_the_mash_with_what_was_paid_journaled(tmp_path):
    cfg = JudgeConfig(kind="llm", rubric="right calls", budget_usd=0.0001, price={"input": 1.0, "output": 1.0})
    fake = BestOfNFake()
    with pytest.raises(DistilleryError, match=r"judge.budget_usd \(\$0.0001\) reached"):
        build(tmp_path, fake, cfg)
    assert len(lines(tmp_path / "journal" / "judge" / "responses.jsonl")) == fake.count("judge")


def test_decide_ranks_by_score_then_agreement_then_order():
    case = Case(0, "0.0", {}, "calls", "", lambda a: "bad" if a == "x" else None, lambda a, b: a == b, str)
    samples = ["a", "b", "b", "x"]
    verdict = decide(case, samples, [Score(4, ""), Score(4, ""), Score(4, ""), Score(9, "")], keep=1,
                     needed=0.5, borderline=None)
    assert verdict.kept == [1] and verdict.agree == [1, 2, 2, 0] and verdict.tails == [None]
    verdict = decide(case, samples, [Score(5, ""), Score(4, ""), Score(4, ""), Score(9, "")], keep=1,
                     needed=0.5, borderline=5)
    assert verdict.kept == [0] and verdict.tails[0].startswith("disagree: 1 of 4")
    verdict = decide(case, ["x", "x"], [Score(0, "bad")] * 2, keep=1, needed=1.0, borderline=None)
    assert verdict.kept == [] and verdict.problems == ["bad", "bad"]


# -- the Recipe, the stage hash, estimate and the pipeline ---------------------------------------

def recipe_dict(**sections) -> dict:
    data = {"name": "bon", "tools": "needle_tools.json", "teacher": {"provider": "openai", "model": "gpt-4o-mini"},
            "mash": {"total_examples": 20, "examples_per_call": 4, "tools_per_call": {"min": 3, "max": 5}},
            "student": {"d_model": 32, "n_layers": 1, "n_heads": 2, "n_kv_heads": 1, "d_ff": 64, "vocab_size": 600,
                        "max_seq_len": 256},
            "cuts": {"hearts": 0.7, "heads": 0.3}, "still": {"epochs": 1}}
    for name, value in sections.items():
        data[name] = {**data.get(name, {}), **value} if isinstance(value, dict) else value
    return data


def test_recipes_without_best_of_n_read_and_hash_as_before():
    for path in sorted(EXAMPLES.glob("*.yaml")):
        if "judge" in yaml.safe_load(path.read_text()):
            continue  # it asks for one (examples/reply.yaml: a judge grades its Tasting)
        text = load_recipe(path).resolved_yaml()
        assert "samples_per_request" not in text and "\nkeep:" not in text and "judge" not in text, path


def test_best_of_n_without_a_judge_gets_the_voting_one_and_its_resolved_recipe_loads_again():
    r = recipe_from_dict(recipe_dict(mash={"samples_per_request": 4}), base_dir=EXAMPLES)
    assert r.judge.kind == "exact" and r.judge.agreement == 1.0
    again = recipe_from_dict(yaml.safe_load(r.resolved_yaml()), base_dir=EXAMPLES)
    assert again.sha256() == r.sha256() and "samples_per_request: 4" in r.resolved_yaml()
    llm = recipe_from_dict(recipe_dict(judge={"kind": "llm", "rubric": "right calls", "borderline": 2}),
                           base_dir=EXAMPLES)
    assert recipe_from_dict(yaml.safe_load(llm.resolved_yaml()), base_dir=EXAMPLES).sha256() == llm.sha256()


@pytest.mark.parametrize("sections, where, words", [
    ({"mash": {"samples_per_request": 4, "keep": 5}}, "mash.keep", "more than the 4 samples"),
    ({"mash": {"samples_per_request": 4, "keep": 2}}, "mash.keep", "two answers to one request"),
    ({"teacher": {"provider": "offline", "model": None}, "mash": {"samples_per_request": 3}},
     "mash.samples_per_request", "offline teacher is deterministic"),
    ({"judge": {"kind": "exact"}}, "judge.kind", "`mash.samples_per_request` is 1"),
    ({"judge": {"kind": "llm"}}, "judge.rubric", "missing"),
    ({"judge": {"kind": "llm", "rubric": "x", "borderline": 5}}, "judge.borderline", "every answer"),
    ({"judge": {"kind": "exact", "rubric": "x"}, "mash": {"samples_per_request": 2}}, "judge.rubric",
     "only `kind: llm` reads it"),
    ({"judge": {"kind": "execute"}}, "judge.checks", "missing"),
    ({"judge": {"kind": "execute", "checks": "nope.py"}}, "judge.checks", "file not found"),
    ({"judge": {"kind": "llm", "rubric": "x", "agreement": 0.5}}, "judge.agreement", "samples_per_request` is 1"),
    ({"judge": {"kind": "lm"}}, "judge.kind", "Did you mean `llm`?"),
])
def test_settings_that_would_do_nothing_are_refused_with_the_field_and_the_fix(sections, where, words):
    with pytest.raises(RecipeError) as err:
        recipe_from_dict(recipe_dict(**sections), base_dir=EXAMPLES)
    assert any(line.strip().startswith(f"{where}:") and words in line and ("Fix" in line or "Did you mean" in line)
               for line in str(err.value).splitlines()), str(err.value)


def test_other_task_kinds_refuse_best_of_n(tmp_path):
    data = {"name": "router", "task": {"kind": "classification", "labels": {"a": "first", "b": "second"}},
            "teacher": {"provider": "openai"}, "mash": {"samples_per_request": 3}}
    with pytest.raises(RecipeError, match="mash.samples_per_request: best-of-N and judges work for tool calling"):
        recipe_from_dict(data, base_dir=tmp_path)


def test_estimate_counts_n_teacher_samples_and_the_judges_requests(tmp_path):
    plain = estimate(recipe_from_dict(recipe_dict(), base_dir=EXAMPLES))
    voted = estimate(recipe_from_dict(recipe_dict(mash={"samples_per_request": 4}), base_dir=EXAMPLES))
    assert voted["requests"] == 4 * plain["requests"] and voted["sample_requests"] == 3 * plain["requests"]
    assert voted["judge"] == {"kind": "exact", "requests": 0, "input_tokens": 0, "output_tokens": 0, "usd": 0.0}
    assert voted["input_tokens"] > 2 * plain["input_tokens"] and voted["usd"] > plain["usd"] > 0
    graded = estimate(recipe_from_dict(recipe_dict(mash={"samples_per_request": 4},
                                                   judge={"kind": "llm", "rubric": "right calls"}), base_dir=EXAMPLES))
    judge = graded["judge"]
    assert judge["requests"] == plain["requests"] * 4 * 4 and judge["model"] == "gpt-4o-mini"
    assert judge["usd"] > 0 and graded["total_usd"] == round(graded["usd"] + judge["usd"], 4)
    text = describe(graded)
    assert "4 samples of each" in text and f"judge          {judge['requests']:,} requests" in text
    assert "total cost" in text
    unpriced = estimate(recipe_from_dict(recipe_dict(judge={"kind": "llm", "rubric": "x", "model": "judge-x"}),
                                         base_dir=EXAMPLES))
    assert unpriced["judge"]["usd"] is None and unpriced["total_usd"] is None
    assert "add `judge.price`" in describe(unpriced)


def test_distill_with_a_judge_puts_tails_in_their_cut_and_judge_settings_remake_the_mash(tmp_path, monkeypatch):
    shutil.copy(EXAMPLES / "needle_tools.json", tmp_path / "needle_tools.json")
    fake = BestOfNFake(grade=lambda utterance, right: 2 if "hello" in utterance else 5 if right else 1)
    monkeypatch.setattr(pipeline, "make_teacher", lambda r, **kw: make_teacher(r, transport=fake.transport(), **kw))
    from distillery.judges import llm

    real = llm.provider_for
    monkeypatch.setattr(llm, "provider_for", lambda cfg, transport=None: real(cfg, fake.transport()))
    judge = {"kind": "llm", "rubric": "the calls do what the message asks", "agreement": 0.6, "borderline": 2}
    path = tmp_path / "bon.yaml"
    path.write_text(yaml.safe_dump(recipe_dict(mash={"samples_per_request": 3}, judge=judge)))
    run = Run(load_recipe(path), runs_root=tmp_path / "runs")
    run.run(until="cuts")
    tails = read_jsonl(run.dir / "cuts" / "tails.jsonl")
    assert tails and all(ex["tail"].startswith("borderline") and ex["calls"] == [] for ex in tails)
    for name in ("hearts", "heads"):
        assert not any("tail" in ex for ex in read_jsonl(run.dir / "cuts" / f"{name}.jsonl"))
    sent = len(fake.bodies)
    Run(load_recipe(path), runs_root=tmp_path / "runs").run(until="cuts")
    assert len(fake.bodies) == sent  # unchanged: skipped
    judge["borderline"] = 1  # a judge setting is a Mash input: the Mash is remade, from the journals
    path.write_text(yaml.safe_dump(recipe_dict(mash={"samples_per_request": 3}, judge=judge)))
    rerun = Run(load_recipe(path), runs_root=tmp_path / "runs")
    rerun.run(until="cuts")
    assert len(fake.bodies) == sent and not read_jsonl(rerun.dir / "cuts" / "tails.jsonl")


def test_estimate_command_shows_the_judge(tmp_path):
    shutil.copy(EXAMPLES / "needle_tools.json", tmp_path / "needle_tools.json")
    path = tmp_path / "bon.yaml"
    path.write_text(yaml.safe_dump(recipe_dict(mash={"samples_per_request": 4},
                                               judge={"kind": "llm", "rubric": "right calls"})))
    out = subprocess.run([sys.executable, "-m", "distillery.cli", "estimate", str(path)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "4 samples of each" in out.stdout and "judge " in out.stdout and "total cost" in out.stdout
