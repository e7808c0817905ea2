"""Agents end to end: an `agent:` recipe (tools in a Python module, the offline teacher running
them) distills conversations; `distillery run` executes the student's calls and feeds their
results back; serve answers the next turn of a conversation through the official client; a
chat log imports whole, and a broken line stops the import at file:line with nothing written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import openai
import pytest
from typer.testing import CliRunner

from distillery.cellar import Cellar
from distillery.cli import app
from distillery.jsonl import read_jsonl
from distillery.pipeline import Run
from distillery.recipe import load_recipe
from distillery.serve import create_app
from distillery.spirit import load_spirit
from distillery.tasks.tool_calling.conversation import read_messages, turns
from distillery.tasks.tool_calling.tool_module import load_module_tools

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# Four tools an agent chains (a contact's id from `find_contact` goes into `send_message`) and
# one held out; small enough for a test student to learn when to call and when to answer.
TOOLS = '''
def find_contact(name: str) -> dict:
    """Look up a contact by name."""
    return {"contact_id": "c-" + str(sum(map(ord, name)) % 900 + 100)}


def send_message(contact_id: str, text: str) -> dict:
    """Send a text message to a contact."""
    return {"status": "sent"}


def get_weather(city: str) -> dict:
    """Get the weather in a city."""
    return {"temperature_c": len(city) * 3 % 35}


def set_timer(minutes: int) -> dict:
    """Start a countdown timer."""
    return {"timer_id": "t-" + str(minutes * 7 % 90 + 10)}


def play_song(title: str) -> dict:
    """Play a song."""
    return {"playing": title, "track_id": "s-" + str(len(title) * 13 % 900 + 100)}
'''
RECIPE = """\
name: agent-small
seed: 1
tools: {module: tools.py}
agent: {max_steps: 3, held_out_tools: [get_weather]}
mash: {total_examples: 120, tools_per_call: {min: 2, max: 3}, no_call_ratio: 0.0}
student: {d_model: 64, n_layers: 2, n_heads: 2, n_kv_heads: 1, d_ff: 128, max_seq_len: 256, vocab_size: 512}
cuts: {hearts: 0.85, heads: 0.15}
still: {epochs: 20, batch_size: 16, lr: 3.0e-3}
tasting: {samples: 8}
"""


@pytest.fixture(scope="module")
def agent_run(tmp_path_factory) -> Run:
    root = tmp_path_factory.mktemp("agent")
    (root / "tools.py").write_text(TOOLS)
    (root / "agent.yaml").write_text(RECIPE)
    run = Run(load_recipe(root / "agent.yaml"), runs_root=root / "runs")
    run.run()
    return run


@pytest.mark.slow
def test_an_agent_recipe_distills_conversations_and_tastes_turns_tasks_and_the_gap(agent_run):
    run = agent_run
    mash = read_jsonl(run.dir / "mash.jsonl")
    assert len(mash) == 120 and all(m["messages"][0] == {"role": "user", "content": m["utterance"]} for m in mash)
    assert max(sum(x["role"] == "assistant" for x in m["messages"]) for m in mash) == 3  # up to max_steps turns
    assert any(x["role"] == "tool" for x in mash[0]["messages"]) and mash[0]["messages"][-1]["content"]
    calls = lambda ex: {c["function"]["name"] for x in ex["messages"] for c in x.get("tool_calls") or ()}  # noqa: E731
    unseen, hearts = read_jsonl(run.dir / "cuts" / "unseen.jsonl"), read_jsonl(run.dir / "cuts" / "hearts.jsonl")
    assert unseen and all("get_weather" in calls(ex) for ex in unseen)
    assert not any("get_weather" in calls(ex) for ex in hearts + read_jsonl(run.dir / "cuts" / "heads.jsonl"))
    notes = json.loads((run.dir / "tasting" / "notes.json").read_text())
    m = notes["metrics"]
    assert m["n_turns"] == sum(len(turns(ex)) for ex in read_jsonl(run.dir / "cuts" / "heads.jsonl"))
    assert 0 <= m["trajectory_success"] <= m["call_turn_accuracy"] <= 1 and 0 <= m["turn_accuracy"] <= 1
    sets = notes["memorization"]["sets"]
    assert sets["unseen tools (held-out tools)"]["n_conversations"] == len(unseen)
    assert m["memorization_gap"] == pytest.approx(sets["hearts (trained on)"]["exact_call_accuracy"]
                                                 - sets["unseen tools (held-out tools)"]["exact_call_accuracy"])
    # Trained on, it does better than on a tool it never saw: what memorization looks like.
    assert sets["hearts (trained on)"]["exact_call_accuracy"] > sets["unseen tools (held-out tools)"][
        "exact_call_accuracy"]
    assert notes["context"]["n_turns"] == m["n_turns"] and "oldest exchanges" in notes["context"]["policy"]
    # It learned when a task is done: after the last result it answers instead of calling again.
    assert m["final_answer_rate"] >= 0.6 and m["exact_call_accuracy"] >= 0.3
    report = (run.dir / "tasting" / "notes.md").read_text()
    assert "## Memorization gap" in report and "## Context" in report and "trajectory_success" in report
    assert load_spirit(run.spirit_path()).decoding["conversation"] is True


@pytest.mark.slow
def test_distillery_run_executes_the_students_calls_and_feeds_the_results_back(agent_run):
    tools = agent_run.dir.parent.parent / "tools.py"
    module = load_module_tools(tools)
    result = CliRunner().invoke(app, ["run", str(agent_run.spirit_path()), "--tools", str(tools),
                                      "find the contact Ada Lovelace and then send her a message saying hi"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    messages = read_messages(found["messages"])
    assert messages[0] == {"role": "user", "content": "find the contact Ada Lovelace and then send her a message "
                                                      "saying hi"}
    assert 1 <= found["steps"] <= 3 and found["stopped"] in ("answer", "no call", "max_steps")
    for m, after in zip(messages, messages[1:]):
        if m["role"] == "assistant" and m.get("calls"):  # every call was run, its result fed back
            assert after == {"role": "tool", "name": m["calls"][0]["name"],
                             "content": module.call(m["calls"][0]["name"], m["calls"][0]["arguments"])}
    assert (found["answer"] is not None) == (found["stopped"] == "answer")
    # A Spirit of single requests cannot read a result: refused, with the fix.
    refused = CliRunner().invoke(app, ["run", str(agent_run.spirit_path()), "--tools", str(tools), "  "])
    assert refused.exit_code == 2 and "the request is empty" in refused.output


@pytest.mark.slow
def test_a_single_request_spirit_is_not_run_as_an_agent(small_run):
    result = CliRunner().invoke(app, ["run", str(small_run.spirit_path()), "--tools",
                                      str(EXAMPLES / "agent_tools.py"), "set a timer for 5 minutes"])
    assert result.exit_code == 2 and "distilled on single requests" in result.output


def _server(cellar):
    from test_serve import Server

    return Server(create_app(cellar))


@pytest.mark.slow
@pytest.mark.integration  # a real server on loopback
def test_serve_answers_the_next_turn_of_a_conversation_through_the_openai_client(agent_run, tmp_path):
    spirit = load_spirit(agent_run.spirit_path())
    caller = spirit.task.predictor(spirit.model, spirit.tokenizer, spirit.format, spirit.decoding)
    by_name = {t.name: t for t in spirit.tools}
    # A held-out conversation whose calls are done: the right next turn is the final answer, in text.
    found = None
    for ex in read_jsonl(agent_run.dir / "cuts" / "heads.jsonl"):
        last = turns(ex)[-1]
        answer = caller.predict_turn(last.history, [by_name[n] for n in ex["tools"]])
        if len(turns(ex)) > 1 and "content" in last.answer and answer.content is not None:
            found = (ex, last, answer)
            break
    assert found, "the agent student never answered after the last tool result"
    ex, last, answer = found
    cellar = Cellar(tmp_path / "cellar")
    name = cellar.add(agent_run.spirit_path())["name"]
    server = _server(cellar)
    try:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
        tools = [by_name[n].to_openai() for n in ex["tools"]]
        # The conversation as a client's agent loop sends it: OpenAI messages, tool results included.
        sent = ex["messages"][:-1]
        assert sent[-1]["role"] == "tool"
        reply = client.chat.completions.create(model=name, messages=sent, tools=tools)
        choice = reply.choices[0]
        assert choice.message.content == answer.content and not choice.message.tool_calls
        assert choice.finish_reason == "stop" and reply.usage.prompt_tokens == answer.prompt_tokens
        # One step earlier (after the first result) it answers what the library's own decoding does.
        first = [n for n, m in enumerate(sent) if m["role"] == "tool"][0] + 1
        expected = caller.predict_turn(read_messages(sent[:first], final=False), [by_name[n] for n in ex["tools"]])
        reply = client.chat.completions.create(model=name, messages=sent[:first], tools=tools)
        message = reply.choices[0].message
        if expected.content is not None:
            assert message.content == expected.content
        else:
            assert [{"name": c.function.name, "arguments": json.loads(c.function.arguments)}
                    for c in message.tool_calls or []] == expected.calls
        with pytest.raises(openai.BadRequestError, match="tool result that answers no tool call"):
            client.chat.completions.create(model=name, messages=[sent[0], sent[2]], tools=tools)
    finally:
        server.stop()


@pytest.mark.slow
@pytest.mark.integration
def test_a_single_request_spirit_refuses_a_conversation_that_ends_with_tool_results(small_run, tmp_path):
    cellar = Cellar(tmp_path / "cellar")
    name = cellar.add(small_run.spirit_path())["name"]
    server = _server(cellar)
    try:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
        messages = [{"role": "user", "content": "set a timer for 5 minutes"},
                    {"role": "assistant", "tool_calls": [{"id": "a", "type": "function", "function": {
                        "name": "set_timer", "arguments": '{"duration_minutes": 5}'}}]},
                    {"role": "tool", "tool_call_id": "a", "content": "ok"}]
        with pytest.raises(openai.BadRequestError, match="cannot read tool results"):
            client.chat.completions.create(model=name, messages=messages)
    finally:
        server.stop()


def _log(*lines: object) -> str:
    return "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)


def _traces(tmp_path: Path, text: str) -> Path:
    shutil.copy(EXAMPLES / "needle_tools.json", tmp_path / "needle_tools.json")
    (tmp_path / "traces.jsonl").write_text(text)
    path = tmp_path / "r.yaml"
    path.write_text("name: logs\ntools: needle_tools.json\nagent: {}\nteacher: {provider: replay, traces: traces.jsonl}\n"
                    "mash: {total_examples: 10, tools_per_call: {min: 2, max: 3}}\n")
    return path


def _conversation(i: int) -> dict:
    call = {"id": f"c{i}", "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps({"location": f"Town{i}"})}}
    return {"messages": [{"role": "system", "content": "be brief"},
                         {"role": "user", "content": f"weather in Town{i}, and set a {i} minute timer"},
                         {"role": "assistant", "content": None, "tool_calls": [call]},
                         {"role": "tool", "tool_call_id": f"c{i}", "content": json.dumps({"temp": i})},
                         {"role": "assistant", "tool_calls": [{"id": "t", "type": "function", "function": {
                             "name": "set_timer", "arguments": json.dumps({"duration_minutes": i})}}]},
                         {"role": "tool", "tool_call_id": "t", "content": "started"},
                         {"role": "assistant", "content": f"{i} degrees; timer set."}],
            "tools": [{"type": "function", "function": {"name": n}} for n in ("get_weather", "set_timer", "set_alarm")]}


def test_a_chat_log_imports_with_every_turn(tmp_path):
    unknown = {"messages": [{"role": "user", "content": "book a flight"},
                            {"role": "assistant", "tool_calls": [{"id": "x", "type": "function", "function": {
                                "name": "book_flight", "arguments": "{}"}}]}]}
    recipe = _traces(tmp_path, _log(_conversation(1), _conversation(2), unknown, _conversation(1)))
    run = Run(load_recipe(recipe), runs_root=tmp_path / "runs")
    run.run(until="mash")
    mash = read_jsonl(run.dir / "mash.jsonl")
    assert [ex["teacher"] for ex in mash] == [{"provider": "replay", "line": 1}, {"provider": "replay", "line": 2}]
    assert read_messages(mash[0]["messages"]) == read_messages(_conversation(1)["messages"])  # every turn
    assert set(mash[0]["tools"]) == {"get_weather", "set_timer", "set_alarm"}  # distractors from the log's own
    rejects = {r["candidate"]["teacher"]["line"]: r["reason"] for r in read_jsonl(run.dir / "mash.rejects.jsonl")}
    assert rejects == {3: "unknown_tool: book_flight", 4: "duplicate: request already in the Mash"}


def test_a_broken_line_stops_the_import_at_file_and_line_with_nothing_written(tmp_path):
    no_call = {"messages": [{"role": "user", "content": "hi"}, {"role": "tool", "content": "orphan"}]}
    recipe = _traces(tmp_path, _log(_conversation(1), '{"messages": [', _conversation(2), no_call))
    result = CliRunner().invoke(app, ["mash", str(recipe), "--runs", str(tmp_path / "runs")])
    assert result.exit_code == 2, result.output
    traces = tmp_path / "traces.jsonl"
    assert f"{traces}:2: not JSON" in result.output
    assert f"{traces}:4: messages[1]: a tool result that answers no tool call" in result.output
    assert "nothing was imported" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "runs" / "logs-v1" / "mash.jsonl").exists()


COUNTED_TOOLS = '''
import json
from pathlib import Path

LOG = Path(__file__).with_name("executions.log")


def _ran(tool, arguments):
    with LOG.open("a") as f:
        f.write(json.dumps([tool, arguments]) + "\\n")


def find_contact(name: str) -> dict:
    """Look up a contact by name."""
    _ran("find_contact", {"name": name})
    return {"contact_id": "c-" + str(len(name) * 7), "name": name}


def send_message(contact_id: str, text: str) -> dict:
    """Send a text message to a contact."""
    _ran("send_message", {"contact_id": contact_id, "text": text})
    return {"status": "sent"}
'''


class AgentLLM:
    """An OpenAI-compatible teacher that writes a request, then finds the contact, texts it and answers."""

    def __init__(self):
        self.bodies = []

    def __call__(self, request):
        import httpx

        body = json.loads(request.content)
        self.bodies.append(body)
        system = body["messages"][0]["content"]
        if system.startswith("You write realistic requests"):
            answer = {"request": f"text Ada number {body['seed']} that I am late"}
        else:
            done = [m for m in body["messages"] if m["role"] == "assistant"]
            if not done:
                answer = {"calls": [{"name": "find_contact", "arguments": {"name": "Ada"}}], "answer": ""}
            elif len(done) == 1:
                found = json.loads(body["messages"][-1]["content"].split("find_contact: ", 1)[1])
                answer = {"calls": [{"name": "send_message", "arguments": {"contact_id": found["contact_id"],
                                                                           "text": "I am late"}}], "answer": ""}
            else:
                answer = {"calls": [], "answer": "Done: Ada knows you are late."}
        return httpx.Response(200, json={
            "id": "x", "object": "chat.completion", "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": json.dumps(answer)},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}})


def test_an_llm_teacher_runs_as_an_agent_and_a_resumed_run_neither_pays_nor_runs_a_step_twice(tmp_path):
    import httpx

    from distillery.tasks import task_for
    from distillery.teachers.openai import OpenAITeacher

    (tmp_path / "tools.py").write_text(COUNTED_TOOLS)
    (tmp_path / "r.yaml").write_text(
        "name: llm-agent\ntools: {module: tools.py}\nagent: {max_steps: 4}\n"
        "teacher: {provider: openai, base_url: 'http://127.0.0.1:9/v1', model: teacher-1}\n"
        "mash: {total_examples: 10, tools_per_call: {min: 2, max: 2}}\n")
    recipe = load_recipe(tmp_path / "r.yaml")
    run_dir, log = tmp_path / "run", tmp_path / "executions.log"

    def mash(fake):
        teacher = OpenAITeacher(model="teacher-1", base_url="http://127.0.0.1:9/v1", transport=httpx.MockTransport(fake))
        return task_for(recipe).build_mash(teacher, run_dir)

    first = AgentLLM()
    stats = mash(first)
    examples = read_jsonl(run_dir / "mash.jsonl")
    assert stats.accepted == 10 and stats.requests == len(first.bodies) == 40  # a request, then 3 steps, each
    messages = read_messages(examples[0]["messages"])
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    assert messages[3]["calls"][0]["arguments"]["contact_id"] == "c-21"  # read off the first result
    assert messages[2]["content"] == json.dumps({"contact_id": "c-21", "name": "Ada"})
    assert len(log.read_text().splitlines()) == 20  # two tools a conversation, each run once

    # Everything answered and run is on disk: a second run asks nothing and runs nothing.
    (run_dir / "mash.jsonl").unlink()
    again = AgentLLM()
    assert mash(again).replayed == 40 and not again.bodies and len(log.read_text().splitlines()) == 20
    assert read_jsonl(run_dir / "mash.jsonl") == examples

    # A run killed half way (the journals cut at a line): only the missing answers and results are redone.
    answers, results = run_dir / "journal" / "responses.jsonl", run_dir / "journal" / "tools.jsonl"
    kept = answers.read_text().splitlines()[:22]
    answers.write_text("\n".join(kept) + "\n" + '{"id": "torn')
    results.write_text("\n".join(results.read_text().splitlines()[:9]) + "\n")
    log.write_text("")
    resumed = AgentLLM()
    stats = mash(resumed)
    assert len(resumed.bodies) == 40 - 22 and stats.replayed == 22
    assert len(log.read_text().splitlines()) == 20 - 9  # only the results that were not recorded
    assert read_jsonl(run_dir / "mash.jsonl") == examples
