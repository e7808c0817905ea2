"""Runtimes (runtimes.py): `--runtime torch|onnx|gguf`, and the default: the fastest installed runtime
that answers the Spirit's heads as PyTorch does, measured once and kept by the Spirit's sha256."""

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from distillery import runtimes
from distillery.cli import app
from distillery.spirit import file_sha256, load_spirit
from distillery.tasks.tool_calling.catalog import parse_tools
from distillery.tasks.tool_calling.validate import check_calls

FOUR = Path(__file__).resolve().parents[1] / "examples" / "needle_four_tools.json"  # the whole catalog does not fit
pytestmark = pytest.mark.slow  # trains the small_run student


def cli(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, " ".join(result.output.split())


def test_the_fastest_runtime_that_reproduces_every_head_is_picked():
    measured = {"torch": {"same": 12, "n": 12, "calls_per_s": 20.0},
                "onnx": {"same": 11, "n": 12, "calls_per_s": 90.0},  # fastest, but one head differs
                "gguf": {"same": 12, "n": 12, "calls_per_s": 55.0}}
    assert runtimes.pick(measured, 12)[0] == "gguf"
    assert runtimes.pick({**measured, "gguf": {"error": "ValueError: cannot export"}}, 12)[0] == "torch"
    assert runtimes.pick({"onnx": measured["onnx"]}, 12) == ("torch", "no runtime answered every head as PyTorch does")


def test_the_choice_is_measured_once_and_kept_by_sha256(small_run, tmp_path, monkeypatch):
    spirit_path = tmp_path / "small.spirit"
    shutil.copy(small_run.spirit_path(), spirit_path)
    spirit, sha = load_spirit(spirit_path), file_sha256(spirit_path)
    chosen = runtimes.choose(spirit, sha)
    record = json.loads((runtimes.cache_root() / f"{sha}.json").read_text())
    assert record["runtime"] == chosen and record["installed"] == runtimes.installed()
    assert set(record["runtimes"]) == set(runtimes.installed())
    assert record["runtimes"][chosen] == {**record["runtimes"][chosen], "same": 12, "n": 12}
    fastest = max((r for r, row in record["runtimes"].items() if row.get("same") == 12),
                  key=lambda r: record["runtimes"][r]["calls_per_s"])
    assert chosen == fastest

    def measure_again(*args, **kwargs):
        raise AssertionError("measured twice")

    monkeypatch.setattr(runtimes, "measure", measure_again)
    assert runtimes.choose(spirit, sha) == chosen  # kept by the sha256: nothing measured
    assert runtimes.cached(sha) == chosen
    monkeypatch.setattr(runtimes, "installed", lambda: ["torch"])  # the installed runtimes changed
    assert runtimes.cached(sha) is None
    with pytest.raises(AssertionError, match="measured twice"):
        runtimes.choose(spirit, sha)


def test_each_runtime_named_is_the_one_that_runs(small_run):
    spirit = small_run.spirit_path()
    torch_notes = None
    for runtime in runtimes.installed():
        result = CliRunner().invoke(app, ["taste", str(spirit), "--runtime", runtime, "--json"])
        assert result.exit_code == 0, result.output
        notes = json.loads(result.stdout)
        assert notes["runtime"] == runtime and notes["n_eval"] == 12
        torch_notes = torch_notes or notes
        assert [r["predicted"] for r in notes["predictions"]] == [r["predicted"] for r in torch_notes["predictions"]]
        result = CliRunner().invoke(app, ["predict", str(spirit), "set a timer for 10 minutes", "--tools", str(FOUR),
                                          "--runtime", runtime])
        assert result.exit_code == 0, result.output
        calls = json.loads(result.stdout)
        assert check_calls(calls, parse_tools(json.loads(FOUR.read_text()), where=str(FOUR))) is None


def test_an_unknown_or_missing_runtime_is_refused_before_anything_loads(small_run, monkeypatch):
    spirit = small_run.spirit_path()
    code, out = cli("predict", spirit, "set a timer", "--runtime", "tensorflow")
    assert code == 2 and "torch, onnx, gguf" in out and "Traceback" not in out
    monkeypatch.setattr(runtimes, "missing", lambda runtime: "llama_cpp" if runtime == "gguf" else None)
    for command in (["predict", spirit, "set a timer"], ["taste", spirit], ["serve", "--port", "0"]):
        code, out = cli(*command, "--runtime", "gguf")
        assert code == 2 and "`llama_cpp` package is not installed" in out and "pip install" in out, (command, out)
