"""The replay teacher: OpenAI-style chat logs become the Mash with no request, and every
trace that cannot become an example is a reject with its reason."""

from __future__ import annotations

import shutil
from pathlib import Path

from distillery.jsonl import read_jsonl
from distillery.pipeline import Run
from distillery.recipe import load_recipe

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FIXTURES = Path(__file__).parent / "fixtures"


def test_traces_become_the_mash_and_bad_ones_are_rejected_with_a_reason(tmp_path):
    shutil.copy(EXAMPLES / "needle_tools.json", tmp_path / "needle_tools.json")
    shutil.copy(FIXTURES / "traces.jsonl", tmp_path / "traces.jsonl")
    (tmp_path / "r.yaml").write_text("name: replayed\ntools: needle_tools.json\n"
                                     "teacher: {provider: replay, traces: traces.jsonl}\n"
                                     "mash: {total_examples: 10, tools_per_call: {min: 2, max: 3}}\n")
    run = Run(load_recipe(tmp_path / "r.yaml"), runs_root=tmp_path / "runs")
    run.run(until="mash")
    mash = read_jsonl(run.dir / "mash.jsonl")
    assert [(ex["utterance"], ex["calls"]) for ex in mash] == [
        ("Set a timer for 12 minutes", [{"name": "set_timer", "arguments": {"duration_minutes": 12}}]),
        ("how are you today?", []),
        ("wake me at 7", [{"name": "set_alarm", "arguments": {"time": "07:00"}}]),
    ]
    assert [ex["teacher"] for ex in mash] == [{"provider": "replay", "line": n} for n in (1, 2, 3)]
    # "No call" was the answer with set_timer and get_weather on offer: only those may be offered.
    assert set(mash[1]["tools"]) == {"set_timer", "get_weather"}
    # The first trace offered set_alarm and get_weather beside its target: distractors from there.
    assert set(mash[0]["tools"]) <= {"set_timer", "set_alarm", "get_weather"} and len(mash[0]["tools"]) >= 2
    rejects = {r["candidate"]["teacher"]["line"]: r["reason"] for r in read_jsonl(run.dir / "mash.rejects.jsonl")}
    assert rejects == {
        4: "bad_structure: the arguments of tool call 0 are not JSON",
        5: "bad_trace: the line is not JSON",
        6: "unknown_tool: book_flight",
        7: "duplicate: utterance already in the Mash",
    }
    assert not (run.dir / "journal").exists()  # nothing was asked of anyone


def test_a_judged_trace_teaches_only_its_right_answers_and_the_notes_give_the_verdict(tmp_path):
    """Traces that say what was right (`expected`): the logged assistant is a teacher being judged."""
    import json
    import random

    from distillery.tasks import task_for

    shutil.copy(EXAMPLES / "needle_tools.json", tmp_path / "needle_tools.json")
    rng, lines = random.Random(0), []
    for i in range(160):
        minutes = rng.randint(2, 90)
        said = minutes + 1 if i % 8 == 0 else minutes  # one answer in eight is the teacher's mistake
        call = {"function": {"name": "set_timer", "arguments": json.dumps({"duration_minutes": said})}}
        lines.append(json.dumps({
            "messages": [{"role": "user", "content": f"{rng.choice(['set', 'start', 'run'])} a timer for {minutes} "
                                                     f"minutes #{i}"},
                         {"role": "assistant", "tool_calls": [call]}],
            "expected": [{"name": "set_timer", "arguments": {"duration_minutes": minutes}}]}))
    (tmp_path / "traces.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "r.yaml").write_text(
        "name: judged\ntools: needle_tools.json\nteacher: {provider: replay, traces: traces.jsonl}\n"
        "mash: {total_examples: 160, tools_per_call: {min: 2, max: 3}}\ncuts: {hearts: 0.75, heads: 0.25}\n"
        "student: {d_model: 32, n_layers: 1, n_heads: 2, n_kv_heads: 1, d_ff: 64, max_seq_len: 256, "
        "vocab_size: 512}\nstill: {epochs: 1, batch_size: 16}\n")
    recipe = load_recipe(tmp_path / "r.yaml")
    run = Run(recipe, runs_root=tmp_path / "runs")
    run.run()
    mash = read_jsonl(run.dir / "mash.jsonl")
    assert len(mash) >= 150 and 15 <= sum(ex["calls"] != ex["expected"] for ex in mash) <= 20  # a few near-duplicates
    hearts = read_jsonl(run.dir / "cuts" / "hearts.jsonl")
    taught = task_for(recipe).epoch_examples(hearts, seed=0)(0)
    wrong = sum(ex["calls"][0]["arguments"] != ex["expected"][0]["arguments"] for ex in hearts)
    assert wrong > 0 and len(taught) == len(hearts) - wrong  # the mistakes are never taught
    heads = read_jsonl(run.dir / "cuts" / "heads.jsonl")
    notes = json.loads((run.dir / "tasting" / "notes.json").read_text())
    verdict = notes["verdict"]
    right = sum(ex["calls"][0]["arguments"] == ex["expected"][0]["arguments"] for ex in heads)
    assert verdict["n"] == len(heads) and verdict["teacher_accuracy"] == right / len(heads)
    assert verdict["errors"]["inherited"] + verdict["student_fixes"] == len(heads) - right
    assert "Teacher vs student" in (run.dir / "tasting" / "notes.md").read_text()
