"""`distillery predict SPIRIT --input IN.jsonl --output OUT.jsonl`: many requests, one model load."""

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from distillery.tasks.tool_calling.batch import read_requests
from distillery.cli import app
from distillery.errors import DistilleryError
from distillery.spirit import write_spirit
from distillery.students.tiny import build_model, model_config
from distillery.tasks.tool_calling.prompt import END, PAD, TOOLS, render_completion, render_prompt
from distillery.tasks.tool_calling.schema import Param, Tool
from distillery.tokenizer import train_tokenizer

TIMER = Tool("set_timer", "Start a timer.", (Param("minutes", "integer", required=True),))
OPENAI_TIMER = {"type": "function", "function": {"name": "set_timer", "parameters": {
    "type": "object", "properties": {"minutes": {"type": "integer"}}, "required": ["minutes"]}}}
BFCL_FACTORIAL = {"name": "math.factorial", "description": "Factorial of a number.",
                  "parameters": {"type": "dict", "properties": {"number": {"type": "integer"}}, "required": ["number"]}}


class Shape:
    d_model, d_ff, n_layers, n_heads, n_kv_heads, max_seq_len = 16, 32, 1, 2, 1, 96


@pytest.fixture(scope="module")
def spirit(tmp_path_factory) -> Path:
    """A Spirit whose logits are all equal: greedy picks the lowest allowed token id, so with the
    grammar it answers `[]` (no call) and without it only padding, every time."""
    texts = [render_prompt("set a timer for 5 minutes", [TIMER])
             + render_completion([{"name": "set_timer", "arguments": {"minutes": 5}}], {"set_timer": TIMER})] * 5
    tok = train_tokenizer(texts, 300)
    ids = {"bos": tok.token_to_id(TOOLS), "eos": tok.token_to_id(END), "pad": tok.token_to_id(PAD)}
    config = model_config(Shape, tok.get_vocab_size(), ids)
    model = build_model(config)
    with torch.no_grad():
        model.model.norm.weight.zero_()
    path = tmp_path_factory.mktemp("spirit") / "timer.spirit"
    write_spirit(path, model, model_config=config, tokenizer_json=tok.to_str(), recipe_yaml="name: timer\n",
                 task="tool_calling", tools=[TIMER], tasting={}, lineage={},
                 decoding={"grammar": True, "copied_params": []})
    return path


def write_lines(path: Path, *rows) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_reads_utterances_chat_messages_and_tools_in_either_format(tmp_path: Path):
    path = write_lines(
        tmp_path / "in.jsonl",
        {"id": "a", "utterance": " set a timer for 5 minutes ", "tools": [OPENAI_TIMER]},
        "",
        {"id": 7, "messages": [{"role": "system", "content": "be brief"},
                               {"role": "user", "content": "first question"},
                               {"role": "assistant", "content": "ok"},
                               {"role": "user", "content": [{"type": "text", "text": "factorial of 5"}]}],
         "tools": [BFCL_FACTORIAL]},
        {"id": "c", "utterance": "hello"})
    a, b, c = read_requests(path)
    assert (a.id, a.utterance, [t.name for t in a.tools]) == ("a", "set a timer for 5 minutes", ["set_timer"])
    assert (b.id, b.utterance, [t.name for t in b.tools]) == (7, "factorial of 5", ["math.factorial"])
    assert b.tools[0].params[0].type == "integer"
    assert (c.id, c.tools) == ("c", None)  # no tools: the default catalog is used


@pytest.mark.parametrize("line, expected", [
    ('{"id": "x", "utterance": "hi"', "invalid JSON"),
    ('["id", "x"]', "expected a JSON object"),
    ('{"utterance": "hi"}', '"id" is missing'),
    ('{"id": "x"}', 'no "utterance" or "messages"'),
    ('{"id": "x", "utterance": ""}', "non-empty string"),
    ('{"id": "x", "messages": [{"role": "assistant", "content": "hi"}]}', "no user message"),
    ('{"id": "x", "utterance": "hi", "tools": [{"description": "no name"}]}', 'no "name"'),
    ('{"id": "first", "utterance": "hi again"}', "used twice"),
])
def test_a_bad_line_is_named_by_file_and_line(tmp_path: Path, line: str, expected: str):
    path = write_lines(tmp_path / "in.jsonl", {"id": "first", "utterance": "hi"}, line)
    with pytest.raises(DistilleryError) as caught:
        read_requests(path)
    assert f"{path}:2" in str(caught.value) and expected in str(caught.value)


def test_batch_answers_every_line_in_order(spirit: Path, tmp_path: Path):
    requests = write_lines(tmp_path / "in.jsonl",
                           {"id": "q1", "utterance": "set a timer for 5 minutes"},
                           {"id": "q2", "messages": [{"role": "user", "content": "factorial of 5"}],
                            "tools": [BFCL_FACTORIAL]})
    result = CliRunner().invoke(app, ["predict", str(spirit), "--input", str(requests),
                                      "--output", str(tmp_path / "out.jsonl")])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["q1", "q2"]
    assert [r["calls"] for r in rows] == [[], []]
    assert all(set(r) == {"id", "calls", "latency_ms"} and r["latency_ms"] > 0 for r in rows)


def test_without_the_grammar_an_unparsed_output_is_shown(spirit: Path, tmp_path: Path):
    requests = write_lines(tmp_path / "in.jsonl", {"id": "q1", "utterance": "set a timer"})
    result = CliRunner().invoke(app, ["predict", str(spirit), "--input", str(requests), "--no-grammar"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout.splitlines()[0])
    assert row["id"] == "q1" and row["calls"] is None and row["raw_output"].startswith(PAD)


def test_bad_input_exits_2_naming_the_line(spirit: Path, tmp_path: Path):
    requests = write_lines(tmp_path / "in.jsonl", {"id": "q1", "utterance": "hi"}, "{not json")
    result = CliRunner().invoke(app, ["predict", str(spirit), "--input", str(requests)])
    assert result.exit_code == 2
    assert f"{requests}:2" in " ".join(result.output.split()) and "Traceback" not in result.output


def test_one_utterance_still_works_and_both_forms_at_once_do_not(spirit: Path, tmp_path: Path):
    result = CliRunner().invoke(app, ["predict", str(spirit), "set a timer for 5 minutes"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []
    requests = write_lines(tmp_path / "in.jsonl", {"id": "q1", "utterance": "hi"})
    both = CliRunner().invoke(app, ["predict", str(spirit), "hi", "--input", str(requests)])
    assert both.exit_code == 2 and "--input" in both.output
    neither = CliRunner().invoke(app, ["predict", str(spirit)])
    assert neither.exit_code == 2


def test_batched_decoding_gives_every_request_the_answer_it_gets_alone(small_run):
    """Left-padded prompts, one forward pass a step for all: nothing may change an answer."""
    from distillery.jsonl import read_jsonl
    from distillery.spirit import load_spirit
    from distillery.tasks.tool_calling.predictor import ToolCaller

    spirit = load_spirit(small_run.spirit_path())
    by_name = {t.name: t for t in spirit.tools}
    heads = read_jsonl(small_run.dir / "cuts" / "heads.jsonl") + read_jsonl(small_run.dir / "cuts" / "hearts.jsonl")[:20]
    requests = [(h["utterance"], [by_name[n] for n in h["tools"]]) for h in heads]
    decoding = {**spirit.decoding, "known_tools": list(by_name)}  # abstaining on: a filter that stops a sequence
    for grammar in (True, False):
        caller = ToolCaller.from_decoding(spirit.model, spirit.tokenizer, spirit.format, decoding, grammar=grammar)
        alone = [caller.predict(u, tools) for u, tools in requests]
        together = caller.predict_many(requests, batch_size=8)
        assert [(p.calls, p.text, p.abstained, p.unfinished) for p in together] == \
            [(p.calls, p.text, p.abstained, p.unfinished) for p in alone]
