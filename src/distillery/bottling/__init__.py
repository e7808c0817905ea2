"""Bottling: a Spirit exported to the formats other runtimes load (hf, onnx, gguf, pt, web).

Each format module `bottling/<format>.py` provides
- `export(spirit: Spirit, out: Path, quantize: str | None) -> Path`: writes the bottle under
  `out` and returns the path a user hands to `taste`/`predict` (a file or a folder);
- `open_bottle(path: Path) -> Bottle` where the format can be run by distillery (hf, onnx, gguf, pt);
  onnx and gguf also take `threads` (their runtime's thread count).

A Bottle carries what decoding needs and nothing from the Spirit file: a runner (see
`distillery.decoding.Runner`), the student's tokenizer, and the Spirit's metadata (tools,
decoding, model_config, tasting, recipe, lineage, heads) as stored inside the bottle itself.

`bottle()` writes a bottle, then tastes it on the Spirit's heads next to the Spirit itself and
writes the numbers into the bottle; `open_artifact()` opens a Spirit or any bottle by its path.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

from distillery.errors import DistilleryError

FORMATS = ("hf", "onnx", "gguf", "pt", "web")
QUANTIZE = ("f16", "int8", "q8_0", "q4_0")
# The --quantize choices of each format; without one, a bottle keeps the Spirit's f32 weights.
QUANTIZE_BY_FORMAT = {"hf": ("f16",), "pt": ("f16",), "gguf": ("f16", "q8_0", "q4_0"), "onnx": ("int8",),
                      "web": ("int8",)}
# What runs each kind of artifact (`predict --runtime`).
RUNTIMES = {"spirit": "torch", "hf": "torch", "pt": "torch", "onnx": "onnx", "gguf": "llama.cpp"}
_KINDS = "a .spirit, .onnx, .gguf or .pt file, or an hf bottle folder"


@dataclass
class Bottle:
    runner: object  # distillery.decoding.Runner
    tokenizer: Tokenizer
    metadata: dict  # same keys and shapes as distillery.spirit.read_metadata()
    format: str

    @property
    def prompt_format(self):
        """How a request becomes prompt ids for this student (students/prompt_format.py)."""
        from distillery.spirit import prompt_format

        return prompt_format(self.metadata, self.tokenizer)


def check_choice(fmt: str, quantize: str | None) -> None:
    """Refuse an unknown format or a quantization the format does not offer, before any work."""
    if fmt not in FORMATS:
        raise DistilleryError(f"--format {fmt!r} is not a bottle format. Fix: use one of {', '.join(FORMATS)}.")
    if quantize is not None and quantize not in QUANTIZE_BY_FORMAT[fmt]:
        raise DistilleryError(f"--quantize {quantize!r} is not available for --format {fmt}. Fix: use one of "
                              f"{', '.join(QUANTIZE_BY_FORMAT[fmt])}, or leave --quantize out for f32 weights.")


def _module(fmt: str):
    try:
        return importlib.import_module(f"distillery.bottling.{fmt}")
    except ModuleNotFoundError as exc:
        if exc.name != f"distillery.bottling.{fmt}":
            raise DistilleryError(f"the {fmt} bottle needs the `{exc.name}` package. "
                                  "Fix: pip install 'distillery[all]'.") from None
        raise DistilleryError(f"the {fmt} bottle is not available in this version of distillery. "
                              f"Fix: use one of {', '.join(f for f in FORMATS if f != fmt)}.") from None


def open_artifact(path: Path, threads: int | None = None) -> Bottle:
    """A Spirit or a bottle ready to decode: .spirit, .onnx, .gguf, .pt, or an hf folder.

    `threads` sets llama.cpp's or onnxruntime's thread count (default: the runtime's own).
    """
    path = Path(path)
    if path.is_dir():
        if (path / "config.json").is_file() or (path / "distillery.json").is_file():
            return _module("hf").open_bottle(path)
        if (path / "index.html").is_file():
            raise DistilleryError(f"{path}: a web bottle runs in a browser (serve the folder and open index.html). "
                                  f"Fix: taste or run {_KINDS}.")
        raise DistilleryError(f"{path}: a folder that is not an hf bottle (no config.json). Fix: give {_KINDS}.")
    if not path.is_file():
        raise DistilleryError(f"{path}: no such file or folder. Fix: give {_KINDS}.")
    suffix = path.suffix.lower()
    if suffix in (".gguf", ".onnx"):
        return _module(suffix[1:]).open_bottle(path, threads=threads)
    if suffix == ".pt":
        return _module("pt").open_bottle(path)
    from distillery.decoding import TorchRunner
    from distillery.spirit import load_spirit

    spirit = load_spirit(path)  # any other name: a Spirit, or a SpiritError that says what it is not
    return Bottle(runner=TorchRunner(spirit.model, spirit.format.context), tokenizer=spirit.tokenizer,
                  metadata=spirit.metadata,
                  format="spirit")


def on_device(bottle: Bottle, device: str) -> Bottle:
    """The bottle decoding on `device` (auto, cpu, cuda, mps; what `--device` names): a Spirit, pt or
    hf bottle moves there; onnx and gguf bottles run on the CPU, where `auto` leaves them."""
    from distillery.devices import resolve

    if not hasattr(bottle.runner, "to"):
        if device not in ("auto", "cpu"):
            raise DistilleryError(f"--device {device}: a {bottle.format} bottle decodes on the CPU in distillery. "
                                  "Fix: --device cpu, or give the .spirit (or its pt or hf bottle) for the GPU.")
        return bottle
    target = resolve(device, where="--device")
    if target.type != "cpu":
        bottle.runner.to(target)
    return bottle


def caller_for(bottle: Bottle, grammar: bool | None = None):
    """What answers requests over the bottle's runner, decoding as the Spirit's metadata says: its
    task's predictor (a ToolCaller, a LabelPredictor...); `grammar` overrides the stored choice."""
    from distillery.tasks import task_of

    return task_of(bottle.metadata).predictor(bottle.runner, bottle.tokenizer, bottle.prompt_format,
                                              bottle.metadata.get("decoding", {}), grammar=grammar)


def resolve_heads(metadata: dict, on: Path | None, where: str) -> tuple[list[dict], str] | None:
    """The examples to taste on and where they came from: `on`, else the heads inside the artifact."""
    from distillery.tasks import task_of

    task = task_of(metadata, where)
    if on is not None:
        try:
            text = Path(on).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DistilleryError(f"{on}: cannot be read ({exc}). Fix: --on a heads JSON Lines file, "
                                  "e.g. runs/<name>-v<version>/cuts/heads.jsonl.") from None
        return task.parse_heads(text, str(on)), str(on)
    if metadata.get("heads"):
        return task.parse_heads(metadata["heads"], f"{where} (heads metadata)"), "the Spirit's heads"
    return None


def no_heads_error(where: str) -> DistilleryError:
    return DistilleryError(f"{where}: carries no heads to taste on (it comes from a Spirit written before Spirits "
                           "kept their heads). Fix: add --on runs/<name>-v<version>/cuts/heads.jsonl.")


def taste_bottle(bottle: Bottle, heads: list[dict], samples: int = 10) -> dict:
    """Tasting notes of any artifact on `heads`: the pipeline's tasting, over the artifact's runner."""
    from distillery.tasks import task_of

    notes = task_of(bottle.metadata).taste(caller_for(bottle), heads, samples=samples, held_out=None)
    notes.pop("pictures", None)  # the run's notes draw them (a confusion matrix); a bottle's notes are JSON
    return notes


def notes_path(artifact: Path) -> Path:
    """Where a bottle's tasting notes live: tasting.json in a folder, `<file name>.tasting.json` beside
    a file (the whole name: needle-f16.gguf and needle-f16.pt can share a folder)."""
    artifact = Path(artifact)
    return artifact / "tasting.json" if artifact.is_dir() else artifact.with_name(artifact.name + ".tasting.json")


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def bottle(spirit_path: Path, fmt: str, out: Path, quantize: str | None = None, on: Path | None = None,
           log=lambda message: None) -> tuple[Path, dict | None]:
    """Write the Spirit as a `fmt` bottle under `out`, taste it and the Spirit on the same heads, and
    write those notes into the bottle. Returns the bottle's path and its notes (None: not tasted,
    because the format runs in a browser or there are no heads)."""
    check_choice(fmt, quantize)
    module = _module(fmt)
    from distillery.decoding import TorchRunner
    from distillery.spirit import file_sha256, load_spirit

    spirit = load_spirit(spirit_path)
    refusal = getattr(module, "refuse", lambda spirit: None)(spirit)
    if refusal:
        raise DistilleryError(f"{spirit_path}: {refusal}")
    found = resolve_heads(spirit.metadata, on, str(spirit_path)) if fmt != "web" else None
    path = Path(module.export(spirit, Path(out), quantize))
    log(f"{fmt} bottle written: {path}")
    if found is None:
        return path, None
    heads, source = found
    log(f"tasting the bottle and the Spirit on {len(heads)} examples ({source})")
    notes = taste_bottle(module.open_bottle(path), heads)
    own = taste_bottle(Bottle(TorchRunner(spirit.model, spirit.format.context), spirit.tokenizer, spirit.metadata,
                              "spirit"), heads)
    same = sum(a["predicted"] == b["predicted"] for a, b in zip(notes["predictions"], own["predictions"]))
    proof = notes["proof_metric"]
    notes = {"artifact": path.name, "format": fmt, "quantize": quantize, "size_bytes": _size(path),
             "heads": source, **notes,
             "spirit": {"path": str(spirit_path), "sha256": file_sha256(Path(spirit_path)),
                        "metrics": own["metrics"], "latency_ms": own["latency_ms"]},
             f"{proof}_difference": round(notes["metrics"][proof] - own["metrics"][proof], 6),
             # `calls` is what tool calling answers; every task's answers are compared the same way.
             "same_calls_as_spirit": same / len(heads)}
    notes_path(path).write_text(json.dumps(notes, indent=2, ensure_ascii=False), encoding="utf-8")
    if hasattr(module, "record_tasting"):
        module.record_tasting(path, notes)
    return path, notes
