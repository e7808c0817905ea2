"""The whole pipeline on a small recipe: every artifact, skip and redo, and a portable Spirit."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors import safe_open

from distillery.pipeline import Run
from distillery.tasks.tool_calling.catalog import parse_tools
from distillery.tasks.tool_calling.validate import check_calls

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

@pytest.mark.slow
def test_run_directory_has_every_artifact(small_run: Run):
    d = small_run.dir
    assert d.name == "small-v2"
    for rel in ["recipe.yaml", "mash.jsonl", "mash.rejects.jsonl", "cuts/hearts.jsonl", "cuts/heads.jsonl",
                "cuts/tails.jsonl", "tokenizer.json", "still/metrics.csv", "tasting/notes.json", "tasting/notes.md",
                "tasting/notes.html", "tasting/loss.png", "small.spirit"]:
        assert (d / rel).is_file(), rel
    mash = [json.loads(line) for line in (d / "mash.jsonl").read_text().splitlines()]
    assert len(mash) == 120
    assert all(2 <= len(ex["tools"]) <= 4 for ex in mash)
    assert all({c["name"] for c in ex["calls"]} < set(ex["tools"]) for ex in mash)  # distractors always offered
    cut_sizes = {c: len((d / "cuts" / f"{c}.jsonl").read_text().splitlines()) for c in ("hearts", "heads", "tails")}
    assert sum(cut_sizes.values()) == 120 and cut_sizes["heads"] >= 6 and cut_sizes["tails"] >= 6  # 0.8/0.1/0.1 by hash


@pytest.mark.slow
def test_tasting_notes_fields(small_run: Run):
    notes = json.loads((small_run.dir / "tasting" / "notes.json").read_text())
    assert notes["n_eval"] == 12
    assert set(notes["metrics"]) >= {"tool_name_accuracy", "arg_key_precision", "arg_key_recall", "arg_key_f1",
                                     "exact_call_accuracy", "valid_call_rate"}
    assert notes["proof"] == notes["metrics"]["exact_call_accuracy"] and notes["proof_metric"] == "exact_call_accuracy"
    assert len(notes["samples"]) == 8
    assert all({"input", "gold", "predicted", "verdict"} <= set(s) for s in notes["samples"])
    assert notes["params"] > 50_000 and notes["latency_ms"]["p50"] > 0
    assert len(notes["loss_curve"]) >= 2
    # Grammar-constrained decoding: however little the student learned, every call is valid.
    assert notes["grammar"] is True and notes["metrics"]["valid_call_rate"] == 1.0
    assert 0 <= notes["unfinished"] <= notes["n_eval"]
    assert notes["decoding"]["copied_params"], "the offline teacher copies values: some parameters qualify"


@pytest.mark.slow
def test_spirit_metadata_and_predict_from_a_copy_in_an_empty_dir(small_run: Run, tmp_path: Path):
    with safe_open(str(small_run.spirit_path()), framework="pt") as f:
        meta = f.metadata()
    assert meta["format"] == "distillery.spirit/1"
    for key in ("model_config", "tokenizer", "recipe", "tasting", "task", "tools", "lineage", "decoding"):
        assert meta[key], key
    assert json.loads(meta["model_config"])["hidden_size"] == 64
    assert json.loads(meta["tasting"])["n_eval"] == 12
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(small_run.spirit_path(), alone / "copy.spirit")
    # The whole 25-tool catalog does not fit this student's 320-token context: said, exit 2, no traceback.
    result = subprocess.run([sys.executable, "-m", "distillery.cli", "predict", "copy.spirit",
                             "set a timer for 10 minutes"], cwd=alone, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "offer fewer tools" in result.stderr and "Traceback" not in result.stderr
    shutil.copy(EXAMPLES / "needle_four_tools.json", alone / "four.json")
    result = subprocess.run([sys.executable, "-m", "distillery.cli", "predict", "copy.spirit",
                             "set a timer for 10 minutes", "--tools", "four.json"],
                            cwd=alone, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    tools = parse_tools(json.loads((alone / "four.json").read_text()), where="four.json")
    assert check_calls(json.loads(result.stdout), tools) is None

    # Tools the Spirit never saw: the grammar still admits only valid calls of them.
    unseen = [{"type": "function", "function": {"name": "water_plants", "description": "Water the plants.",
               "parameters": {"type": "object", "properties": {
                   "zone": {"type": "string", "enum": ["front", "back"]}, "liters": {"type": "number"}},
                   "required": ["zone", "liters"]}}}]
    (alone / "unseen.json").write_text(json.dumps(unseen))
    result = subprocess.run([sys.executable, "-m", "distillery.cli", "predict", "copy.spirit",
                             "water the back garden with 3 liters", "--tools", "unseen.json"],
                            cwd=alone, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert check_calls(json.loads(result.stdout), parse_tools(unseen, where="unseen.json")) is None


def quiet_run(recipe, root: Path, logs: list[str]) -> Run:
    run = Run(recipe, runs_root=root)
    run.console.print = lambda msg, *a, **k: logs.append(str(msg))
    return run


@pytest.mark.slow
def test_rerun_skips_unchanged_stages_and_redoes_only_downstream(small_run: Run):
    mash_mtime = (small_run.dir / "mash.jsonl").stat().st_mtime_ns
    logs: list[str] = []
    quiet_run(small_run.recipe, small_run.dir.parent, logs).run()
    assert [m for m in logs if "skipped" in m] == [f"[dim]{s}: unchanged, skipped[/dim]" for s in
                                                  ("mash", "cuts", "tokenizer", "still", "tasting", "spirit")]

    fewer_epochs = small_run.recipe.model_copy(
        update={"still": small_run.recipe.still.model_copy(update={"epochs": 1})})
    logs.clear()
    quiet_run(fewer_epochs, small_run.dir.parent, logs).run()
    assert [m for m in logs if "skipped" in m] == [f"[dim]{s}: unchanged, skipped[/dim]" for s in
                                                  ("mash", "cuts", "tokenizer")]
    assert (small_run.dir / "mash.jsonl").stat().st_mtime_ns == mash_mtime
    result = json.loads((small_run.dir / "still" / "result.json").read_text())
    assert result["epochs"] == 1
