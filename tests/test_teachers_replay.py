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
