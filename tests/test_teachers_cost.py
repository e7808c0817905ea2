"""Prices, the budget meter, `distillery estimate`, and the live Mash progress line."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console

from distillery.errors import RecipeError, TeacherError
from distillery.mash import MashStats
from distillery.pipeline import mash_progress
from distillery.recipe import load_recipe
from distillery.teachers.base import Request
from distillery.teachers.cost import BudgetReached, CostMeter, Price, check_budget_is_enforceable, price_for
from distillery.tasks.tool_calling.estimate import estimate

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def teacher(**kw):
    return SimpleNamespace(**{"price": None, "base_url": None, "budget_usd": None, **kw})


def test_prices_come_from_the_table_by_longest_prefix_or_the_recipe():
    assert price_for(teacher(), "gpt-4o-mini-2024-07-18") == Price(0.15, 0.60)
    assert price_for(teacher(), "gpt-4o-2024-08-06") == Price(2.50, 10.00)
    assert price_for(teacher(), "models/gemini-2.0-flash-lite") == Price(0.075, 0.30)
    assert price_for(teacher(), "claude-3-5-haiku-latest") == Price(0.80, 4.00)
    assert price_for(teacher(), "some-new-model") is None
    assert price_for(teacher(base_url="http://localhost:11434/v1"), "some-new-model") == Price(0.0, 0.0)
    override = teacher(price=SimpleNamespace(input=1.0, output=2.0))
    assert price_for(override, "gpt-4o-mini") == Price(1.0, 2.0)
    assert Price(1.0, 2.0).cost(1_000_000, 500_000) == pytest.approx(2.0)


def test_a_budget_with_no_known_price_is_refused_before_anything_is_sent():
    with pytest.raises(TeacherError, match=r"no price for model `my-finetune`.*price: \{input"):
        check_budget_is_enforceable(teacher(budget_usd=5.0), "my-finetune")
    assert check_budget_is_enforceable(teacher(), "my-finetune") is None  # no budget: nothing to keep


def test_the_meter_reserves_the_worst_case_and_settles_to_real_usage():
    request = Request(messages=({"role": "user", "content": "x" * 3500},), temperature=1, max_tokens=1000)
    meter = CostMeter(Price(input=0.0, output=100.0), budget=0.25)  # $0.10 per 1000 answer tokens
    first = meter.reserve(request)
    second = meter.reserve(request)
    assert first == second == pytest.approx(0.1)
    with pytest.raises(BudgetReached):
        meter.reserve(request)  # 0.3 reserved would pass 0.25
    assert meter.settle(first, 1000, 200) == pytest.approx(0.02)
    meter.reserve(request)  # room again once an answer came in under its reservation
    assert meter.spent + meter.reserved == pytest.approx(0.22)


def recipe_dir(tmp_path: Path, teacher_block: str, mash_block: str = "") -> Path:
    shutil.copy(EXAMPLES / "needle_tools.json", tmp_path / "needle_tools.json")
    (tmp_path / "r.yaml").write_text(f"name: est\ntools: needle_tools.json\nteacher: {teacher_block}\n{mash_block}")
    return tmp_path / "r.yaml"


def test_estimate_counts_requests_tokens_dollars_from_the_real_prompts(tmp_path):
    path = recipe_dir(tmp_path, "{provider: openai, model: gpt-4o-mini, concurrency: 4}",
                      "mash: {total_examples: 300, examples_per_call: 10}\n")
    numbers = estimate(load_recipe(path))
    assert numbers["requests"] == 40  # 300 / (10 x 0.75)
    assert 40 * 500 < numbers["input_tokens"] < 40 * 3000  # tools, instructions and schema per request
    assert 40 * 10 * 20 < numbers["output_tokens"] < 40 * 10 * 120
    expected = (numbers["input_tokens"] * 0.15 + numbers["output_tokens"] * 0.60) / 1e6
    assert numbers["usd"] == pytest.approx(expected, abs=1e-4) and numbers["seconds"] > 0
    offline = estimate(load_recipe(recipe_dir(tmp_path, "{provider: offline}")))
    assert offline["requests"] == 0 and offline["usd"] == 0.0


def test_estimate_command_prints_json_or_a_summary_and_needs_no_key(tmp_path):
    path = recipe_dir(tmp_path, "{provider: anthropic, model: claude-3-5-haiku-latest}")
    env = {k: v for k, v in __import__("os").environ.items() if not k.endswith("_API_KEY")}
    run = subprocess.run([sys.executable, "-m", "distillery.cli", "estimate", str(path), "--json"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    numbers = json.loads(run.stdout)
    assert numbers["provider"] == "anthropic" and numbers["requests"] == 134  # 1000 / (10 x 0.75)
    assert numbers["price"] == {"input": 0.8, "output": 4.0}
    text = subprocess.run([sys.executable, "-m", "distillery.cli", "estimate", str(path)], capture_output=True,
                          text=True, env=env, timeout=120).stdout
    assert "requests       134" in text and "nothing has been sent" in text and "$" in text


def test_price_and_key_fields_are_checked_with_the_fix(tmp_path):
    path = recipe_dir(tmp_path, "{provider: openai, price: {input: -1}, api_key_env: sk-live-123}")
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    text = str(caught.value)
    assert "teacher.price.input: -1 is not allowed; it must be at least 0" in text
    assert "teacher.price.output: missing. Fix: add e.g. `output: 0.60`." in text
    assert "teacher.api_key_env: is not an environment variable name" in text and "sk-live-123" not in text


def test_the_progress_line_shows_accepted_rejected_requests_and_cost():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160)
    with mash_progress(console, total=50) as update:
        update(MashStats(accepted=20, rejected=3, requests=4, replayed=2, cost_usd=0.0123))
    text = out.getvalue()
    assert "20/50" in text and "rejected 3" in text and "requests 4 (+2 journal)" in text and "$0.0123" in text
