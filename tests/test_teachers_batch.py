"""`teacher.batch: true`: the Mash through OpenAI Batch, Anthropic Message Batches and Gemini batch mode.

Each Batch API's wire format against documented request and response shapes (tests/fixtures),
then a loopback server that speaks all three (tests/batch_fakes.py): one batch for a wave of
requests, answers in the same journal as live ones at the batch price, a kill -9 between
submission and completion that never submits twice, a batch created but never journaled found
again by its label, unanswered requests sent again, refusals and keys."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from batch_fakes import FakeBatchAPI

from distillery.errors import DistilleryError, RecipeError, TeacherError
from distillery.estimate import describe
from distillery.jsonl import read_jsonl
from distillery.recipe import load_recipe
from distillery.recipe_sections import TeacherConfig
from distillery.tasks.classification.labeller import label_inputs
from distillery.tasks.tool_calling.estimate import estimate
from distillery.tasks.tool_calling.mash import build_mash_llm
from distillery.teachers.anthropic import AnthropicTeacher
from distillery.teachers.base import Request, Response
from distillery.teachers.batch import BatchLog, BatchSession
from distillery.teachers.batch_anthropic import AnthropicBatch
from distillery.teachers.batch_gemini import GeminiBatch
from distillery.teachers.batch_openai import OpenAIBatch
from distillery.teachers.batch_wire import ItemError
from distillery.teachers.cost import BATCH_FACTOR, Price, batch_price
from distillery.teachers.gemini import GeminiTeacher
from distillery.teachers.journal import request_id
from distillery.teachers.openai import OpenAITeacher, build_body
from distillery.teachers.retry import RetryPolicy

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FIXTURES = Path(__file__).parent / "fixtures"
CATALOG = load_recipe(EXAMPLES / "needle.yaml").catalog
KEYS = {"openai": "sk-batch-test-0123456789", "anthropic": "sk-ant-batch-test-0123456789",
        "gemini": "AIza-batch-test-0123456789"}
VARIABLES = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY", "gemini": "GEMINI_API_KEY"}
TEACHERS = {"openai": OpenAITeacher, "anthropic": AnthropicTeacher, "gemini": GeminiTeacher}
R1, R2, R3 = "a1" * 16, "b2" * 16, "c3" * 16  # the request ids in the fixtures
REQUEST = Request(messages=({"role": "system", "content": "be brief"}, {"role": "user", "content": "write 2"}),
                  temperature=0.7, max_tokens=256, json_schema={"type": "object"}, seed=7)
EXPECTED_TEXT = {"examples": [
    {"utterance": "Set a timer for 12 minutes for the eggs",
     "calls": [{"name": "set_timer", "arguments": {"duration_minutes": 12, "label": "eggs"}}]},
    {"utterance": "thanks, that's all for now", "calls": []}]}


@pytest.fixture(autouse=True)
def _keys(monkeypatch):
    for provider, name in VARIABLES.items():
        monkeypatch.setenv(name, KEYS[provider])


def run(coroutine):
    return asyncio.run(coroutine)


def recorded(routes: dict[str, str]):
    """A transport that answers `METHOD path` with a fixture file (or JSON text) and keeps what it was sent."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = routes[f"{request.method} {request.url.path}"]
        if answer.startswith("{"):  # written here, not a file
            return httpx.Response(200, json=json.loads(answer))
        return httpx.Response(200, content=(FIXTURES / answer).read_bytes())

    return httpx.MockTransport(handle), seen


# -- the wire formats ----------------------------------------------------------------------------

def test_openai_uploads_a_jsonl_file_creates_a_labelled_batch_and_reads_both_result_files():
    transport, seen = recorded({
        "POST /v1/files": '{"id": "file-9Qm3AqA8xBTXkPZ6rT1sLh", "object": "file", "purpose": "batch"}',
        "POST /v1/batches": "openai_batch_completed.json",
        "GET /v1/batches/batch_67d1b5a4e3c08190a3f0c6e4b2f55b1e": "openai_batch_completed.json",
        "GET /v1/files/file-4Hn2Vb8LqZ1cXwT7yR5pGs/content": "openai_batch_output.jsonl",
        "GET /v1/files/file-7Kp1Zc3MwQ9dYvS2uE6hFj/content": "openai_batch_errors.jsonl"})
    api = OpenAIBatch(OpenAITeacher(model="gpt-4o-mini", transport=transport))

    async def go():
        lines = [api.line(R1, REQUEST), api.line(R2, REQUEST)]
        batch_id = await api.create("5f0c2a9d6b3e4f7a8c1d2e3f4a5b6c7d", lines)
        status = await api.status(batch_id)
        return batch_id, status, await api.results(status)

    batch_id, status, results = run(go())
    upload, create = seen[0], seen[1]
    assert str(upload.url) == "https://api.openai.com/v1/files"
    assert upload.headers["authorization"] == f"Bearer {KEYS['openai']}"
    form = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + upload.headers["content-type"].encode()
                                               + b"\r\n\r\n" + upload.content)
    parts = {p.get_param("name", header="content-disposition"): p for p in form.iter_parts()}
    assert parts["purpose"].get_payload(decode=True) == b"batch"
    lines = [json.loads(line) for line in parts["file"].get_payload(decode=True).decode().splitlines()]
    assert lines == [{"custom_id": rid, "method": "POST", "url": "/v1/chat/completions",
                      "body": build_body("gpt-4o-mini", REQUEST)} for rid in (R1, R2)]
    assert json.loads(create.content) == {"input_file_id": "file-9Qm3AqA8xBTXkPZ6rT1sLh",
                                          "endpoint": "/v1/chat/completions", "completion_window": "24h",
                                          "metadata": {"distillery_batch": "5f0c2a9d6b3e4f7a8c1d2e3f4a5b6c7d"}}
    assert batch_id == "batch_67d1b5a4e3c08190a3f0c6e4b2f55b1e" and status.done and not status.failed
    answer = results[R1]
    assert isinstance(answer, Response) and json.loads(answer.text) == EXPECTED_TEXT
    assert (answer.input_tokens, answer.output_tokens, answer.finish) == (805, 91, "stop")
    # A 400 is the request's fault (not retried); an expired request was never run (sent again).
    assert results[R2] == ItemError("400: Invalid schema for response_format 'answer': In context=(), 'required' "
                                    "is required to be supplied.", retriable=False, status=400)
    assert results[R3].retriable and "batch_expired" in results[R3].message


def test_anthropic_posts_message_batches_and_reads_results_from_the_documented_path_only():
    transport, seen = recorded({
        "POST /v1/messages/batches": "anthropic_message_batch_ended.json",
        "GET /v1/messages/batches/msgbatch_013Zva2CMHLNnXjNJJKqJ2EF": "anthropic_message_batch_ended.json",
        "GET /v1/messages/batches/msgbatch_013Zva2CMHLNnXjNJJKqJ2EF/results": "anthropic_message_batch_results.jsonl"})
    teacher = AnthropicTeacher(model="claude-3-5-haiku-latest", base_url="https://proxy.example",
                               transport=transport)
    api = AnthropicBatch(teacher)

    async def go():
        batch_id = await api.create("label", [api.line(R1, REQUEST)])
        status = await api.status(batch_id)
        return status, await api.results(status)

    status, results = run(go())
    create = seen[0]
    assert str(create.url) == "https://proxy.example/v1/messages/batches"
    assert create.headers["x-api-key"] == KEYS["anthropic"] and create.headers["anthropic-version"] == "2023-06-01"
    body = json.loads(create.content)
    assert body == {"requests": [{"custom_id": R1, "params": {
        "model": "claude-3-5-haiku-latest", "max_tokens": 256, "temperature": 0.7,
        "messages": [{"role": "user", "content": "write 2"}], "system": "be brief",
        "tools": [{"name": "record_answer", "description": "Record the answer.", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "record_answer"}}}]}
    assert status.done and status.state == "ended"
    # The key went to base_url's host only, never to the results_url the answer named (api.anthropic.com).
    assert {request.url.host for request in seen} == {"proxy.example"}
    assert json.loads(results[R1].text) == EXPECTED_TEXT and results[R1].input_tokens == 812
    assert not results[R2].retriable and "invalid_request_error: max_tokens" in results[R2].message
    assert results[R3] == ItemError("expired: the request was not run", retriable=True)


def test_gemini_batch_generate_content_with_inline_requests_and_keyed_answers():
    transport, seen = recorded({
        "POST /v1beta/models/gemini-2.0-flash:batchGenerateContent": "gemini_batch_succeeded.json",
        "GET /v1beta/batches/123456abcdef": "gemini_batch_succeeded.json"})
    api = GeminiBatch(GeminiTeacher(model="models/gemini-2.0-flash", transport=transport))

    async def go():
        batch_id = await api.create("5f0c2a9d6b3e4f7a8c1d2e3f4a5b6c7d", [api.line(R1, REQUEST)])
        status = await api.status(batch_id)
        return batch_id, status, await api.results(status)

    batch_id, status, results = run(go())
    create = seen[0]
    assert "key=" not in str(create.url) and create.headers["x-goog-api-key"] == KEYS["gemini"]
    batch = json.loads(create.content)["batch"]
    assert batch["displayName"] == "distillery-5f0c2a9d6b3e4f7a8c1d2e3f4a5b6c7d"
    [item] = batch["inputConfig"]["requests"]["requests"]
    assert item["metadata"] == {"key": R1} and item["request"]["generationConfig"]["maxOutputTokens"] == 256
    assert item["request"]["systemInstruction"] == {"parts": [{"text": "be brief"}]}
    assert batch_id == "batches/123456abcdef" and status.done and status.state == "BATCH_STATE_SUCCEEDED"
    assert json.loads(results[R1].text) == EXPECTED_TEXT and results[R1].output_tokens == 100  # 88 + 12 thoughts
    assert not results[R2].retriable and results[R3].retriable  # INVALID_ARGUMENT vs DEADLINE_EXCEEDED


def test_batch_prices_are_half_the_live_ones_for_every_provider():
    assert set(BATCH_FACTOR) == {"openai", "anthropic", "gemini"}
    assert batch_price(Price(0.15, 0.60), "openai") == Price(0.075, 0.30)
    assert batch_price(None, "gemini") is None


# -- a Mash through a loopback Batch API ----------------------------------------------------------

def configs(server_url: str, total: int = 40, per_call: int = 4, budget=None):
    mash_cfg = SimpleNamespace(total_examples=total, examples_per_call=per_call, no_call_ratio=0.25,
                               parallel_ratio=0.0, tools_per_call=SimpleNamespace(min=3, max=5))
    teacher_cfg = SimpleNamespace(temperature=0.9, max_tokens=300, concurrency=2, budget_usd=budget, price=None,
                                  base_url=server_url, batch=True, batch_poll_seconds=0.05)
    return mash_cfg, teacher_cfg


def mash(tmp_path: Path, server: FakeBatchAPI, tries: int = 3, **kw):
    teacher = TEACHERS[server.provider](base_url=server.url)
    mash_cfg, teacher_cfg = configs(server.url, **kw)
    return build_mash_llm(teacher, CATALOG, mash_cfg, teacher_cfg, tmp_path, seed=3, price=Price(1.0, 2.0),
                          policy=RetryPolicy(tries=tries, base=0.01))


def events(run_dir: Path) -> list[dict]:
    return read_jsonl(run_dir / "journal" / "batches.jsonl")


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_a_mash_goes_out_as_one_batch_and_lands_in_the_journal_at_the_batch_price(tmp_path, provider):
    with FakeBatchAPI(provider, key=KEYS[provider]) as server:
        stats = mash(tmp_path, server)
        first = (server.created, len(server.hits))
        again = mash(tmp_path, server)  # a finished Mash re-run
        rerun_hits = len(server.hits) - first[1]
    assert stats.accepted == 40 and stats.requests == 10 and server.created == 1 == first[0]
    journal = read_jsonl(tmp_path / "journal" / "responses.jsonl")
    assert sorted(r["id"] for r in journal) == sorted(server.submitted) and len(journal) == 10
    batch_id = next(e["batch"] for e in events(tmp_path) if e["event"] == "submitted")
    assert {r["batch"] for r in journal} == {batch_id} and {r["provider"] for r in journal} == {provider}
    # 500 prompt and 100 answer tokens a request at $1/$2 per million, halved.
    assert stats.cost_usd == pytest.approx(10 * (500 * 1.0 + 100 * 2.0) / 1e6 * 0.5)
    assert all(r["cost_usd"] == pytest.approx(0.00035) for r in journal)
    assert [e["event"] for e in events(tmp_path)] == ["submitting", "submitted", "ended"]
    assert again.requests == 0 and again.replayed == 10 and rerun_hits == 0
    for path in (tmp_path / "journal").iterdir():
        assert KEYS[provider] not in path.read_text(errors="replace")


def test_classification_labels_all_its_inputs_in_one_batch(tmp_path):
    inputs = [{"utterance": f"is it going to rain on day {k}?"} for k in range(7)]
    with FakeBatchAPI("anthropic") as server:
        cfg = TeacherConfig(provider="anthropic", base_url=server.url, batch=True, batch_poll_seconds=0.05)
        out = label_inputs(AnthropicTeacher(base_url=server.url), inputs, {"weather": "about the weather",
                                                                           "music": "wants music"},
                           False, cfg, tmp_path / "journal")
    assert server.created == 1 and len(server.submitted) == 7
    assert [ex["label"] for ex in out] == ["weather"] * 7
    assert {ex["teacher"]["journal_id"] for ex in out} == set(server.submitted)


def test_a_second_wave_is_a_second_batch_when_the_first_fell_short(tmp_path):
    with FakeBatchAPI("openai") as server:
        # Half of the first wave's answers are cut short: the Mash asks for the rest in one more batch.
        server.llm.finish = "length"
        calls = {"n": 0}
        original = server.llm.answer

        def answer(body):
            calls["n"] += 1
            server.llm.finish = "length" if calls["n"] <= 5 else "stop"
            return original(body)

        server.llm.answer = answer
        stats = mash(tmp_path, server)
    assert stats.accepted == 40 and server.created == 2
    sizes = [len(e["requests"]) for e in events(tmp_path) if e["event"] == "submitting"]
    assert sizes[0] == 10 and sizes[1] >= 5 and stats.requests == sum(sizes)


def test_expired_requests_go_into_the_next_batch_and_a_refused_one_is_a_teacher_error(tmp_path):
    request = Request(messages=({"role": "user", "content": "hello"},), temperature=0.5, max_tokens=20)
    other = Request(messages=({"role": "user", "content": "again"},), temperature=0.5, max_tokens=20)

    async def ask_both(server, journal):
        session = BatchSession(OpenAITeacher(base_url=server.url), journal, price=None, budget=None,
                               poll_seconds=0.05, policy=RetryPolicy(tries=3, base=0.01))
        try:
            return await asyncio.gather(session.ask(0, request), session.ask(1, other), return_exceptions=True)
        finally:
            await session.aclose()

    with FakeBatchAPI("openai") as server:
        expired, refused = request_id("openai", "gpt-4o-mini", request, 0), request_id("openai", "gpt-4o-mini",
                                                                                       other, 1)
        server.item_errors[expired] = {"expired": True}
        server.item_errors[refused] = {"error": f"bad value; your key was Bearer {KEYS['openai']}", "status": 400}
        first, second = run(ask_both(server, tmp_path / "journal"))
    assert server.created == 2 and server.submitted[expired] == 2 and server.submitted[refused] == 1
    assert first["id"] == expired and json.loads(first["text"])["examples"]
    assert isinstance(second, TeacherError)
    message = str(second)
    assert "rejected request 1" in message and "400: bad value" in message
    assert KEYS["openai"] not in message and "[redacted]" in message


def test_a_batch_the_provider_refused_whole_says_why_and_is_not_waited_for_again(tmp_path):
    with FakeBatchAPI("gemini") as server:
        server.fail_batch = "Request payload size exceeds the limit: 20971520 bytes."
        with pytest.raises(TeacherError, match="gemini Batch API refused batch batches/1 .Request payload size"):
            mash(tmp_path, server)
        assert [e["event"] for e in events(tmp_path)] == ["submitting", "submitted", "ended"]
        stats = mash(tmp_path, server)  # the cause fixed (here: at the server), the run goes through
    assert stats.accepted == 40 and server.created == 2


def test_a_large_wave_goes_out_in_batches_within_the_providers_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(OpenAIBatch, "max_requests", 4)
    with FakeBatchAPI("openai") as server:
        stats = mash(tmp_path, server)
    sizes = [len(e["requests"]) for e in events(tmp_path) if e["event"] == "submitting"]
    assert stats.accepted == 40 and sizes == [4, 4, 2] and server.created == 3


def test_a_live_run_refuses_to_pay_again_for_batches_not_collected(tmp_path):
    with FakeBatchAPI("openai", hold=True) as server:
        log = tmp_path / "journal" / "batches.jsonl"
        log.parent.mkdir(parents=True)
        log.write_text(json.dumps({"event": "submitting", "label": "k1", "at": 0, "requests": [[R1, 0]]}) + "\n"
                       + json.dumps({"event": "submitted", "label": "k1", "batch": "batch_77"}) + "\n")
        teacher = OpenAITeacher(base_url=server.url)
        mash_cfg, teacher_cfg = configs(server.url)
        teacher_cfg.batch = False
        with pytest.raises(TeacherError, match=r"1 batch\(es\) sent with `teacher.batch: true` are not collected "
                                               r"yet \(batch_77\)"):
            build_mash_llm(teacher, CATALOG, mash_cfg, teacher_cfg, tmp_path, seed=3)
    assert server.hits == []


def test_a_server_without_a_batch_api_is_named_with_the_fix(tmp_path):
    with FakeBatchAPI("openai") as server:
        server.no_batch_api = True
        with pytest.raises(TeacherError, match=r"has no Batch API \(404 on POST /files\). Fix: remove `teacher.batch`"):
            mash(tmp_path, server)
    # Nothing was created, so nothing waits for a re-run.
    assert [e["event"] for e in events(tmp_path)] == ["submitting"]


def test_the_budget_stops_a_batch_before_it_is_submitted(tmp_path):
    # Each request reserves its worst case at the batch price; $0.002 holds only a few of ten.
    with FakeBatchAPI("openai") as server:
        with pytest.raises(DistilleryError, match="teacher.budget_usd"):
            mash(tmp_path, server, budget=0.002)
    # What fit went out as one batch and was collected; the rest was never sent.
    assert server.created == 1 and 0 < sum(server.submitted.values()) < 10
    assert len(read_jsonl(tmp_path / "journal" / "responses.jsonl")) == sum(server.submitted.values())


@pytest.mark.parametrize("provider, found", [("openai", True), ("gemini", True), ("anthropic", False)])
def test_a_batch_created_but_not_yet_journaled_is_found_by_its_label(tmp_path, monkeypatch, provider, found):
    """The process died between the provider creating the batch and its id reaching batches.jsonl."""
    write = BatchLog.write

    def die_before_the_id_is_written(self, event):
        if event["event"] == "submitted":
            raise SystemExit("killed")
        write(self, event)

    with FakeBatchAPI(provider) as server:
        monkeypatch.setattr(BatchLog, "write", die_before_the_id_is_written)
        with pytest.raises(SystemExit):
            mash(tmp_path, server)
        assert server.created == 1 and [e["event"] for e in events(tmp_path)] == ["submitting"]
        monkeypatch.setattr(BatchLog, "write", write)
        stats = mash(tmp_path, server)
    assert stats.accepted == 40 and len(read_jsonl(tmp_path / "journal" / "responses.jsonl")) == 10
    # OpenAI's metadata and Gemini's displayName carry the label; a Message Batch has none.
    assert server.created == (1 if found else 2)
    assert [e["event"] for e in events(tmp_path)][:2] == ["submitting", "submitted" if found else "abandoned"]


# -- kill -9 between submission and completion ----------------------------------------------------

RECIPE = """\
name: killed
tools: needle_tools.json
teacher: {{provider: {provider}, base_url: "{url}", max_tokens: 400, batch: true, batch_poll_seconds: 0.1}}
mash: {{total_examples: 40, examples_per_call: 4, tools_per_call: {{min: 3, max: 4}}}}
"""


# The Mash of killed.yaml through the library: `load_recipe` imports the tasks, and with them torch
# (seconds a start on a busy CI machine), so the sections are read here directly.
CHILD = """
import json
from pathlib import Path
import yaml
from distillery.recipe_sections import MashConfig, TeacherConfig
from distillery.tasks.tool_calling.catalog import parse_tools
from distillery.tasks.tool_calling.mash import build_mash_llm
from distillery.teachers.anthropic import AnthropicTeacher
from distillery.teachers.gemini import GeminiTeacher
from distillery.teachers.journal import request_id
from distillery.teachers.openai import OpenAITeacher

data = yaml.safe_load(Path("killed.yaml").read_text())
t, m = TeacherConfig(**data["teacher"]), MashConfig(**data["mash"])
teacher = {"openai": OpenAITeacher, "anthropic": AnthropicTeacher, "gemini": GeminiTeacher}[t.provider](
    model=t.model, base_url=t.base_url)
catalog = parse_tools(json.loads(Path("needle_tools.json").read_text()), where="needle_tools.json")
build_mash_llm(teacher, catalog, m, t, Path("runs/killed-v1"), seed=0)
"""


def start_mash(cwd: Path, how: str) -> subprocess.Popen:
    command = ["-m", "distillery.cli", "mash", "killed.yaml"] if how == "cli" else ["-c", CHILD]
    return subprocess.Popen([sys.executable, *command], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


@pytest.mark.integration
@pytest.mark.parametrize("provider, how", [("openai", "cli"), ("anthropic", "library"), ("gemini", "library")])
def test_kill_9_after_submission_resumes_by_polling_and_never_submits_twice(tmp_path, provider, how):
    (tmp_path / "needle_tools.json").write_bytes((EXAMPLES / "needle_tools.json").read_bytes())
    log = tmp_path / "runs" / "killed-v1" / "journal" / "batches.jsonl"
    with FakeBatchAPI(provider, hold=True, key=KEYS[provider]) as server:
        (tmp_path / "killed.yaml").write_text(RECIPE.format(provider=provider, url=server.url))
        first = start_mash(tmp_path, how)
        deadline = time.monotonic() + 120
        while not (log.exists() and '"submitted"' in log.read_text()):
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()[1][-3000:]
            time.sleep(0.05)
        polls_before = sum(1 for method, _ in server.hits if method == "GET")
        time.sleep(0.5)  # it is polling the held batch now
        assert sum(1 for method, _ in server.hits if method == "GET") > polls_before
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        assert first.returncode == -signal.SIGKILL
        assert not (tmp_path / "runs" / "killed-v1" / "journal" / "responses.jsonl").exists() or \
            not read_jsonl(tmp_path / "runs" / "killed-v1" / "journal" / "responses.jsonl")
        server.hold = False  # the provider finished the batch while nobody was looking
        second = start_mash(tmp_path, how)
        out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err[-3000:]
    assert server.created == 1  # polled, never submitted again
    assert all(count == 1 for count in server.submitted.values())
    run_dir = tmp_path / "runs" / "killed-v1"
    journal = read_jsonl(run_dir / "journal" / "responses.jsonl")
    assert sorted(r["id"] for r in journal) == sorted(server.submitted)  # every answer landed
    assert len(read_jsonl(run_dir / "mash.jsonl")) == 40
    assert [e["event"] for e in read_jsonl(log)] == ["submitting", "submitted", "ended"]
    for path in (run_dir / "journal").iterdir():
        assert KEYS[provider] not in path.read_text(errors="replace")
    assert KEYS[provider] not in out + err


# -- the recipe and the estimate ------------------------------------------------------------------

def recipe_at(tmp_path: Path, teacher: str) -> Path:
    (tmp_path / "needle_tools.json").write_bytes((EXAMPLES / "needle_tools.json").read_bytes())
    (tmp_path / "r.yaml").write_text(f"name: b\ntools: needle_tools.json\nteacher: {teacher}\n"
                                     "mash: {total_examples: 300, examples_per_call: 10}\n")
    return tmp_path / "r.yaml"


def test_batch_is_refused_where_it_would_do_nothing(tmp_path):
    for teacher, expected in [
            ("{provider: offline, batch: true}", "teacher.batch: the offline teacher sends no requests"),
            ("{provider: openai, batch: true, concurrency: 8}",
             "teacher.concurrency: has no effect with `batch: true`"),
            ("{provider: openai, batch_poll_seconds: 5}",
             "teacher.batch_poll_seconds: is read only with `batch: true`")]:
        with pytest.raises(RecipeError) as caught:
            load_recipe(recipe_at(tmp_path, teacher))
        assert expected in " ".join(str(caught.value).split())
    recipe = load_recipe(recipe_at(tmp_path, "{provider: anthropic, batch: true, batch_poll_seconds: 30}"))
    assert recipe.teacher.batch and recipe.teacher.batch_poll_seconds == 30


def test_estimate_shows_the_live_and_the_batch_price(tmp_path):
    live = estimate(load_recipe(recipe_at(tmp_path, "{provider: openai, model: gpt-4o-mini}")))
    batch = estimate(load_recipe(recipe_at(tmp_path, "{provider: openai, model: gpt-4o-mini, batch: true}")))
    assert live["usd_batch"] == pytest.approx(live["usd_live"] / 2, abs=1e-4) and live["usd"] == live["usd_live"]
    assert batch["usd"] == batch["usd_batch"] == live["usd_batch"] and batch["seconds"] == 24 * 3600
    assert f"${live['usd']:.2f} live (${live['usd_batch']:.2f} with `teacher.batch: true`)" in describe(live)
    text = describe(batch)
    assert f"${batch['usd']:.2f} through the Batch API (${live['usd']:.2f} live)" in text and "up to 24 h" in text
