"""The command line: bad input is a clear message and exit code 2, never a traceback."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "distillery.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def recipe_dir(tmp_path: Path) -> Path:
    shutil.copy(EXAMPLES / "needle_tools.json", tmp_path / "needle_tools.json")
    return tmp_path


BROKEN = {
    "negative epochs": ("still: {epochs: -3}", "still.epochs"),
    "zero lr": ("still: {lr: 0}", "still.lr"),
    "unknown provider": ("teacher: {provider: openia}", "teacher.provider"),
    "misspelled section": ("studnet: {d_model: 64}", "did you mean `student`"),
    "missing tools file": (None, "tools"),
    "unreadable yaml": ("still: {epochs: [1,", "line"),
    "empty file": ("", "empty"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_recipe_exits_2_with_field_and_no_traceback(recipe_dir: Path, case: str):
    extra, expected = BROKEN[case]
    if extra is None:
        text = "name: needle\ntools: missing_tools.json\n"
    elif extra == "":
        text = ""
    else:
        text = "name: needle\ntools: needle_tools.json\n" + extra + "\n"
    (recipe_dir / "bad.yaml").write_text(text)
    result = run_cli("distill", "bad.yaml", cwd=recipe_dir)
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert "bad.yaml" in message
    assert expected.lower() in message.lower()
    assert "Traceback" not in result.stderr + result.stdout


def test_missing_recipe_file_exits_2(tmp_path: Path):
    result = run_cli("distill", "nope.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert "nope.yaml" in result.stderr and "Traceback" not in result.stderr


def test_predict_on_a_file_that_is_not_a_spirit_exits_2(tmp_path: Path):
    (tmp_path / "fake.spirit").write_bytes(b"not safetensors at all")
    result = run_cli("predict", "fake.spirit", "set a timer", cwd=tmp_path)
    assert result.returncode == 2
    assert "fake.spirit" in result.stderr and "Traceback" not in result.stderr
