"""A student that learns nothing must fail a test: grammar-constrained decoding makes every call
valid whatever the weights, so validity proves nothing. A seeded small run has to beat both chance
and the same student untrained, on heads it never saw."""

import json
import shutil
from pathlib import Path

import pytest
from safetensors import safe_open

from distillery.jsonl import read_jsonl
from distillery.pipeline import Run
from distillery.tasks.tool_calling.predictor import ToolCaller
from distillery.recipe import load_recipe
from distillery.spirit import load_spirit
from distillery.students import student_for
from distillery.tasks.tool_calling.tasting import taste

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
RECIPE = """\
name: learn
seed: 5
tools: needle_four_tools.json
mash: {total_examples: 300, tools_per_call: {min: 2, max: 4}, no_call_ratio: 0.0}
student: {d_model: 64, n_layers: 2, n_heads: 2, n_kv_heads: 1, d_ff: 128, max_seq_len: 256, vocab_size: 600}
cuts: {hearts: 0.8, heads: 0.2}
still: {epochs: 30, batch_size: 16, lr: 3.0e-3}
tasting: {samples: 8, abstain: false}
"""


@pytest.mark.slow
def test_a_seeded_small_run_beats_chance_and_its_untrained_self(tmp_path: Path):
    shutil.copy(EXAMPLES / "needle_four_tools.json", tmp_path)
    (tmp_path / "learn.yaml").write_text(RECIPE)
    run = Run(load_recipe(tmp_path / "learn.yaml"), runs_root=tmp_path / "runs")
    run.run()
    notes = json.loads((run.dir / "tasting" / "notes.json").read_text())
    heads = read_jsonl(run.dir / "cuts" / "heads.jsonl")
    chance = sum(1 / len(ex["tools"]) for ex in heads) / len(heads)  # a random offered tool: about 0.36

    spirit = load_spirit(run.spirit_path())
    untrained = student_for("tiny").load(spirit.metadata).eval()  # same shape, seed and decoding, no training
    caller = ToolCaller.from_decoding(untrained, spirit.tokenizer, spirit.format, spirit.decoding)
    before = taste(caller, heads, spirit.tools)["metrics"]

    after = notes["metrics"]
    assert after["tool_name_accuracy"] >= 0.9 > chance + 0.4
    assert after["tool_name_accuracy"] - before["tool_name_accuracy"] >= 0.3
    assert after["arg_key_f1"] >= 0.7 and after["arg_key_f1"] - before["arg_key_f1"] >= 0.3
    held = [p["heads_loss"] for p in notes["loss_curve"] if "heads_loss" in p]
    assert len(held) == 30 and held[-1] < held[0] / 3  # the held-out loss fell, not only the training loss
    with safe_open(str(run.spirit_path()), framework="pt") as f:
        assert json.loads(f.metadata()["student"]) == {"kind": "tiny"}
