"""Fixtures shared by several test files."""

import shutil
from pathlib import Path

import pytest

from distillery.pipeline import Run
from distillery.recipe import load_recipe

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

SMALL = """\
name: small
version: 2
seed: 3
tools: needle_tools.json
mash: {total_examples: 120, tools_per_call: {min: 2, max: 4}, no_call_ratio: 0.1}
student: {d_model: 64, n_layers: 2, n_heads: 2, n_kv_heads: 1, d_ff: 128, max_seq_len: 320, vocab_size: 600}
cuts: {hearts: 0.8, heads: 0.1, tails: 0.1}
still: {epochs: 6, batch_size: 16, lr: 3.0e-3}
tasting: {samples: 8}
"""


@pytest.fixture(autouse=True)
def _private_cellar(tmp_path_factory, monkeypatch):
    # No test (nor a CLI it starts) ever writes into the user's ~/.distillery/cellar.
    monkeypatch.setenv("DISTILLERY_CELLAR", str(tmp_path_factory.mktemp("cellar")))


@pytest.fixture(scope="session")
def small_run(tmp_path_factory) -> Run:
    root = tmp_path_factory.mktemp("pipeline")
    shutil.copy(EXAMPLES / "needle_tools.json", root / "needle_tools.json")
    (root / "small.yaml").write_text(SMALL)
    run = Run(load_recipe(root / "small.yaml"), runs_root=root / "runs")
    run.run()
    return run
