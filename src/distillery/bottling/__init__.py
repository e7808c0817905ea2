"""Bottling: a Spirit exported to the formats other runtimes load (hf, onnx, gguf, pt, web).

Each format module `bottling/<format>.py` provides
- `export(spirit: Spirit, out: Path, quantize: str | None) -> Path`: writes the bottle under
  `out` and returns the path a user hands to `taste`/`predict` (a file or a folder);
- `open_bottle(path: Path) -> Bottle` where the format can be run by distillery (hf, onnx, gguf).

A Bottle carries what decoding needs and nothing from the Spirit file: a runner (see
`distillery.decoding.Runner`), the student's tokenizer, and the Spirit's metadata (tools,
decoding, model_config, tasting, recipe, lineage) as stored inside the bottle itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from tokenizers import Tokenizer

FORMATS = ("hf", "onnx", "gguf", "pt", "web")
QUANTIZE = ("f16", "int8", "q8_0", "q4_0")


@dataclass
class Bottle:
    runner: object  # distillery.decoding.Runner
    tokenizer: Tokenizer
    metadata: dict  # same keys and shapes as distillery.spirit.read_metadata()
    format: str
