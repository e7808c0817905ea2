"""`taste` and `predict` on any artifact (a .spirit, a bottle), on the heads the artifact carries;
`bottle`'s choices; and every bad input a clear message with exit code 2."""

import json
from pathlib import Path

import pytest
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from distillery.bottling import gguf as bottle_gguf, hf as bottle_hf, open_artifact, pt as bottle_pt
from distillery.cli import app
from distillery.errors import DistilleryError
from distillery.spirit import load_spirit
from distillery.tasks.tool_calling.catalog import parse_tools
from distillery.tasks.tool_calling.validate import check_calls

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

pytestmark = pytest.mark.slow


def cli(*args) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout if result.exit_code == 0 else " ".join(result.output.split())


@pytest.fixture(scope="module")
def bottles(small_run, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("bottles")
    spirit = load_spirit(small_run.spirit_path())
    return {"spirit": small_run.spirit_path(), "gguf": bottle_gguf.export(spirit, out),
            "hf": bottle_hf.export(spirit, out), "pt": bottle_pt.export(spirit, out)}


@pytest.fixture(scope="module")
def headless(small_run, tmp_path_factory) -> Path:
    """The small Spirit as written before Spirits carried their heads."""
    path = tmp_path_factory.mktemp("old") / "old.spirit"
    with safe_open(str(small_run.spirit_path()), framework="pt") as f:
        metadata = f.metadata()
    del metadata["heads"]
    save_file(load_file(str(small_run.spirit_path())), str(path), metadata=metadata)
    return path


def test_every_artifact_tastes_the_same_on_the_heads_it_carries(small_run, bottles):
    pipeline = json.loads((small_run.dir / "tasting" / "notes.json").read_text())
    code, out = cli("taste", bottles["spirit"], "--json")
    assert code == 0, out
    notes = json.loads(out)
    assert notes["heads"] == "the Spirit's heads" and notes["n_eval"] == pipeline["n_eval"] == 12
    assert notes["metrics"] == pipeline["metrics"]  # the pipeline's tasting, reproduced from the file alone
    assert [r["predicted"] for r in notes["predictions"]] == [r["predicted"] for r in pipeline["predictions"]]
    for kind in ("gguf", "hf"):
        code, out = cli("taste", bottles[kind])
        assert code == 0, out
        assert json.loads(out) == {"proof": notes["proof"], **notes["metrics"], "n_eval": 12}, kind


def test_predict_runs_any_artifact_and_checks_runtime(small_run, bottles):
    four = EXAMPLES / "needle_four_tools.json"  # the whole catalog does not fit this student's context
    tools = parse_tools(json.loads(four.read_text()), where=str(four))
    for kind, runtime in (("gguf", "gguf"), ("hf", "torch"), ("pt", None)):
        code, out = cli("predict", bottles[kind], "set a timer for 10 minutes", "--tools", four,
                        *(["--runtime", runtime] if runtime else []))
        assert code == 0, out
        assert check_calls(json.loads(out), tools) is None
    code, out = cli("predict", bottles["gguf"], "set a timer", "--runtime", "onnx")
    assert code == 2 and "runs in gguf" in out and "--format onnx" in out
    code, out = cli("predict", bottles["spirit"], "set a timer", "--runtime", "tensorflow")
    assert code == 2 and "torch, onnx, gguf" in out


def test_an_artifact_without_heads_needs_on(small_run, headless, tmp_path):
    code, out = cli("taste", headless)
    assert code == 2 and "--on" in out and "old.spirit" in out
    code, out = cli("taste", headless, "--on", small_run.dir / "cuts" / "heads.jsonl")
    assert code == 0, out
    assert json.loads(out)["n_eval"] == 12
    code, out = cli("bottle", headless, "--format", "pt", "--out", tmp_path)
    assert code == 0 and json.loads(out) == {"bottle": str(tmp_path / "old.pt")}
    assert not (tmp_path / "old.pt.tasting.json").exists()


def test_bad_heads_files_name_the_file_and_line(small_run, tmp_path):
    spirit = small_run.spirit_path()
    good = (small_run.dir / "cuts" / "heads.jsonl").read_text().splitlines()[0]
    cases = {"missing.jsonl": None, "broken.jsonl": good + "\n{oops\n",
             "unknown.jsonl": json.dumps({"utterance": "hi", "tools": ["fly_to_mars"], "calls": []}) + "\n",
             "shape.jsonl": json.dumps({"question": "hi"}) + "\n", "empty.jsonl": "\n"}
    expected = {"missing.jsonl": "cannot be read", "broken.jsonl": "broken.jsonl:2", "unknown.jsonl": "fly_to_mars",
                "shape.jsonl": "shape.jsonl:1", "empty.jsonl": "no examples"}
    for name, text in cases.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        code, out = cli("taste", spirit, "--on", tmp_path / name)
        assert code == 2 and expected[name] in out and "Traceback" not in out, (name, out)


@pytest.mark.parametrize("args, expected", [
    (["--format", "gguf", "--quantize", "int8"], "f16, q8_0, q4_0"),
    (["--format", "hf", "--quantize", "q4_0"], "use one of f16"),
    (["--format", "zip"], "hf, onnx, gguf, pt, web"),
])
def test_bottle_refuses_a_bad_choice_before_any_work(small_run, tmp_path, args, expected):
    code, out = cli("bottle", small_run.spirit_path(), "--out", tmp_path / "out", *args)
    assert code == 2 and expected in out
    assert not (tmp_path / "out").exists()


def test_what_is_not_an_artifact(tmp_path):
    code, out = cli("bottle", tmp_path / "nope.spirit", "--format", "pt", "--out", tmp_path)
    assert code == 2 and "nope.spirit" in out
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "index.html").write_text("<html></html>")
    (tmp_path / "empty").mkdir()
    (tmp_path / "model.gguf").write_bytes(b"not a gguf")
    (tmp_path / "notes.txt").write_text("hello")
    for path, message in [(tmp_path / "web", "runs in a browser"), (tmp_path / "empty", "not an hf bottle"),
                          (tmp_path / "missing.onnx", "no such file"), (tmp_path / "model.gguf", "not a readable GGUF"),
                          (tmp_path / "notes.txt", "not a readable safetensors")]:
        with pytest.raises(DistilleryError, match=message):
            open_artifact(path)
    code, out = cli("taste", tmp_path / "recipe.yaml", "--on", tmp_path / "heads.jsonl")
    assert code == 2 and "--on is for artifacts" in out
