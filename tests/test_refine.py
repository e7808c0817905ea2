"""`distillery refine`: failures on fresh requests go back to the teacher, the student trains
again from its weights, and a round is kept only if the heads' proof holds."""

import json
import shutil

from typer.testing import CliRunner

from distillery.cli import app
from distillery.jsonl import read_jsonl
from distillery.mash import normalize_utterance
from distillery.spirit import file_sha256, load_spirit


def test_a_round_adds_examples_around_the_failures_and_keeps_the_spirit_only_if_the_heads_hold(small_run, tmp_path):
    run = tmp_path / small_run.dir.name
    shutil.copytree(small_run.dir, run)
    parent = run / small_run.spirit_path().name
    result = CliRunner().invoke(app, ["refine", str(run), "--probe", "40", "--per-failure", "2", "--epochs", "1"])
    assert result.exit_code == 0, result.output
    row = json.loads((run / "refine" / "refine.json").read_text())[0]
    added = read_jsonl(run / "refine" / "round-1" / "examples.jsonl")
    assert row["round"] == 1 and row["probe"] == 40 and 0 < row["failures"] <= 40
    assert row["added"] == len(added) > 0 and row["mash_size"] == len(read_jsonl(run / "cuts" / "hearts.jsonl")) + \
        len(added)
    # New examples are about the failures' tools, never a head (nor a heart) again.
    known = {normalize_utterance(ex["utterance"]) for part in ("hearts", "heads")
             for ex in read_jsonl(run / "cuts" / f"{part}.jsonl")}
    assert not {normalize_utterance(ex["utterance"]) for ex in added} & known
    assert all(ex["id"].startswith("r1-") and ex["round"] == 1 for ex in added)
    assert row["kept"] == (row["proof_after"] >= row["proof_before"])
    if row["kept"]:
        refined = load_spirit(run / row["spirit"])
        assert refined.metadata["lineage"]["parent"] == file_sha256(parent)
        assert refined.metadata["tasting"]["proof"] == row["proof_after"]
    # A second call adds a round to the first, from the Spirit the first kept.
    again = CliRunner().invoke(app, ["refine", str(run), "--probe", "40", "--per-failure", "1", "--epochs", "1"])
    assert again.exit_code == 0, again.output
    rows = json.loads((run / "refine" / "refine.json").read_text())
    assert [r["round"] for r in rows] == [1, 2]
    assert rows[1]["parent"] == (row["spirit"] or parent.name)


def test_refine_refuses_what_it_cannot_do(tmp_path):
    result = CliRunner().invoke(app, ["refine", str(tmp_path)])
    assert result.exit_code == 2 and "not a finished run" in result.output
