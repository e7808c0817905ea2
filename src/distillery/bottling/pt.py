"""The pt bottle: the student's state dict and its metadata, for training on in plain PyTorch.

`torch.load(path, weights_only=True)` returns
`{"format": "distillery.pt/1", "state_dict": {name: tensor}, "metadata": {...}}`: tensors and
plain JSON values only (the model_config and tools as dicts and lists, the tokenizer and recipe
as text), so loading it runs no code. No pickled objects, no distillery import needed:

    obj = torch.load("needle.pt", weights_only=True)
    model = LlamaForCausalLM(LlamaConfig(**obj["metadata"]["model_config"]))
    model.load_state_dict(obj["state_dict"])
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch
from tokenizers import Tokenizer

from distillery.bottling import Bottle, check_choice
from distillery.decoding import TorchRunner
from distillery.errors import DistilleryError
from distillery.spirit import KEYS, Spirit, build_student_model, metadata_strings, parse_metadata, prompt_format

FORMAT = "distillery.pt/1"


def export(spirit: Spirit, out: Path, quantize: str | None = None) -> Path:
    """Write `<name>.pt` (f32) or `<name>-f16.pt` under `out`; returns the file."""
    check_choice("pt", quantize)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{spirit.path.stem}{'-' + quantize if quantize else ''}.pt"
    dtype = torch.float16 if quantize == "f16" else torch.float32
    # Tied tensors (embedding and output layer) stay one tensor, as in the model.
    converted: dict[int, torch.Tensor] = {}
    state = {}
    for name, tensor in spirit.model.state_dict().items():
        key = tensor.data_ptr()
        if key not in converted:
            converted[key] = tensor.detach().to(dtype, copy=True)
        state[name] = converted[key]
    metadata = {key: spirit.metadata[key] for key in KEYS if key in spirit.metadata}
    tmp = path.with_suffix(".pt.tmp")
    torch.save({"format": FORMAT, "state_dict": state, "metadata": metadata}, tmp)
    os.replace(tmp, path)
    return path


def open_bottle(path: Path) -> Bottle:
    """The .pt file's student in PyTorch (f16 weights are computed in f32)."""
    path = Path(path)
    try:
        obj = torch.load(path, weights_only=True, map_location="cpu")
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        raise DistilleryError(f"{path}: not a readable weights-only PyTorch file ({exc}). "
                              "Fix: `distillery bottle SPIRIT --format pt --out DIR`.") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise DistilleryError(f"{path}: not a pt bottle of distillery (expected a dict with format {FORMAT!r}). "
                              "Fix: `distillery bottle SPIRIT --format pt --out DIR`.")
    metadata = parse_metadata(metadata_strings(obj["metadata"]), str(path))
    model = build_student_model(metadata, str(path))
    try:
        model.load_state_dict(obj["state_dict"])
    except RuntimeError as exc:
        raise DistilleryError(f"{path}: its state_dict does not match its model_config ({exc}).") from None
    model.eval()
    tokenizer = Tokenizer.from_str(metadata["tokenizer"])
    return Bottle(runner=TorchRunner(model, prompt_format(metadata, tokenizer).context), tokenizer=tokenizer,
                  metadata=metadata, format="pt")
