"""The Mash (validation, distractors, rejects) and the Cuts (ratios, no shared utterance)."""

import json
import random
from types import SimpleNamespace

from distillery.cuts import split
from distillery.mash import normalize_utterance
from distillery.tasks.tool_calling.mash import build_mash, offer_tools
from distillery.tasks.tool_calling.schema import Param, Tool

CATALOG = [Tool(f"tool_{i}", "", (Param("x", "integer", required=True),)) for i in range(8)]


class ScriptedTeacher:
    """Returns prepared candidates in order, then valid filler ones."""

    def __init__(self, scripted):
        self.scripted = scripted

    def candidate(self, index):
        if index < len(self.scripted):
            return self.scripted[index]
        return {"utterance": f"use tool {index}", "calls": [{"name": f"tool_{index % 8}", "arguments": {"x": 1}}]}


def mash_cfg(total):
    return SimpleNamespace(total_examples=total, tools_per_call=SimpleNamespace(min=3, max=5))


def test_rejects_carry_their_reason_and_accepted_examples_offer_distractors(tmp_path):
    scripted = [
        {"utterance": "ok one", "calls": [{"name": "tool_1", "arguments": {"x": 3}}]},
        {"utterance": "OK, one!", "calls": [{"name": "tool_1", "arguments": {"x": 3}}]},  # duplicate
        {"utterance": "bad type", "calls": [{"name": "tool_2", "arguments": {"x": "three"}}]},
        {"utterance": "no such tool", "calls": [{"name": "tool_99", "arguments": {}}]},
        {"utterance": "missing arg", "calls": [{"name": "tool_3", "arguments": {}}]},
        {"utterance": "extra arg", "calls": [{"name": "tool_3", "arguments": {"x": 1, "y": 2}}]},
        {"utterance": "not a list", "calls": {"name": "tool_3"}},
        {"utterance": "nothing to do here", "calls": [], "avoid": ["tool_4"]},
    ]
    stats = build_mash(ScriptedTeacher(scripted), CATALOG, mash_cfg(10), tmp_path, seed=0)
    rejects = [json.loads(line) for line in (tmp_path / "mash.rejects.jsonl").read_text().splitlines()]
    assert [r["reason"].split(":")[0] for r in rejects] == [
        "duplicate", "wrong_type", "unknown_tool", "missing_required", "unknown_argument", "bad_structure"]
    assert stats.accepted == 10 and stats.rejected == 6
    accepted = [json.loads(line) for line in (tmp_path / "mash.jsonl").read_text().splitlines()]
    assert accepted[0]["id"] == "m000000" and accepted[1]["utterance"] == "nothing to do here"
    for ex in accepted:
        assert 3 <= len(ex["tools"]) <= 5
        assert {c["name"] for c in ex["calls"]} < set(ex["tools"])
    assert "tool_4" not in accepted[1]["tools"]


def test_offered_tools_are_shuffled_so_position_gives_nothing_away():
    positions = set()
    for i in range(40):
        offered = offer_tools([{"name": "tool_0"}], [], CATALOG, random.Random(i), 3, 6)
        assert 3 <= len(offered) <= 6 and offered.count("tool_0") == 1
        positions.add(offered.index("tool_0"))
    assert len(positions) >= 4


def test_cuts_follow_the_ratios_and_never_share_a_normalized_utterance():
    examples = [{"id": str(i), "utterance": f"request number {i // 2}" + ("!" if i % 2 else "")}
                for i in range(2000)]  # pairs that differ only by punctuation
    cuts = split(examples, 0.8, 0.1, 0.1, seed=1)
    sizes = {k: len(v) for k, v in cuts.items()}
    assert 1520 <= sizes["hearts"] <= 1680 and 160 <= sizes["heads"] <= 240 and 160 <= sizes["tails"] <= 240
    seen = {}
    for name, rows in cuts.items():
        for ex in rows:
            key = normalize_utterance(ex["utterance"])
            assert seen.setdefault(key, name) == name
    assert split(examples, 0.8, 0.1, 0.1, seed=1) == cuts


def test_adding_examples_moves_no_example_between_cuts():
    first = [{"id": str(i), "utterance": f"set a timer for {i} minutes"} for i in range(300)]
    more = first + [{"id": f"n{i}", "utterance": f"play song number {i}"} for i in range(300)]
    before, after = split(first, 0.9, 0.1, 0.0, seed=3), split(more, 0.9, 0.1, 0.0, seed=3)
    for name in ("hearts", "heads"):
        kept = [ex for ex in after[name] if not ex["id"].startswith("n")]
        assert kept == before[name]
    assert before["heads"] and after["heads"] != before["heads"]
    # Another seed is another split.
    assert split(first, 0.9, 0.1, 0.0, seed=4)["heads"] != before["heads"]


def test_near_identical_requests_are_duplicates_for_every_teacher(tmp_path):
    scripted = [
        {"utterance": "set tool one to 3", "calls": [{"name": "tool_1", "arguments": {"x": 3}}]},
        {"utterance": "please, tool one set to 3", "calls": [{"name": "tool_1", "arguments": {"x": 3}}]},
        {"utterance": "set tool one to 4", "calls": [{"name": "tool_1", "arguments": {"x": 4}}]},
    ]
    build_mash(ScriptedTeacher(scripted), CATALOG, mash_cfg(4), tmp_path, seed=0)
    rejects = [json.loads(line) for line in (tmp_path / "mash.rejects.jsonl").read_text().splitlines()]
    assert [r["candidate"]["utterance"] for r in rejects] == ["please, tool one set to 3"]
    assert rejects[0]["reason"].startswith("duplicate: near-identical")
