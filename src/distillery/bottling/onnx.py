"""The ONNX bottle: the student's decoder with its KV cache as inputs and outputs, for onnxruntime.

One `.onnx` file, self-contained: the Spirit's metadata (tokenizer, tools, decoding,
model_config, tasting, recipe, lineage, heads) rides in the model's `metadata_props`, so
`distillery taste model.onnx` needs nothing else, and so does any program that only has
onnxruntime and `tokenizers`.

Graph (names follow the usual convention for decoder-only LLMs in ONNX):
  inputs   input_ids [1, seq] int64, position_ids [1, seq] int64,
           past_key_values.{i}.key / .value [1, kv_heads, past, head_dim] float32
  outputs  logits [1, 1, vocab] (the last position only: decoding never needs the others),
           present.{i}.key / .value [1, kv_heads, past + seq, head_dim]
The prompt is read once with an empty past (past = 0), then one token a step.

Exported with `torch.onnx.export(dynamo=True)` (torch.export + onnxscript): it handles the
transformers KV cache without patches, where optimum's exporter pins transformers < 4.58.
`int8` is onnxruntime's dynamic quantization (int8 weights, activations quantized on the fly).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnxruntime
import torch

from distillery.bottling import Bottle
from distillery.decoding import cache_argument
from distillery.errors import DistilleryError
from distillery.spirit import metadata_strings, parse_metadata, prompt_format

QUANTIZE = ("int8",)
# Metadata key of the bottle's own facts (how it was made, and its tasting notes' headline).
BOTTLE_KEY = "distillery.bottle"


class _Decoder(torch.nn.Module):
    """The student as a function of flat tensors: what an ONNX graph can take and return."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.layers = model.config.num_hidden_layers

    def forward(self, input_ids, position_ids, past):
        from transformers import DynamicCache

        cache = DynamicCache()
        for i in range(self.layers):
            cache.update(past[2 * i], past[2 * i + 1], i)
        out = self.model(input_ids=input_ids, position_ids=position_ids, **{cache_argument(self.model): cache},
                         use_cache=True, logits_to_keep=1)
        present = []
        for layer in out.past_key_values.layers:
            present += [layer.keys, layer.values]
        return (out.logits, *present)


def io_names(layers: int) -> tuple[list[str], list[str]]:
    kv = [(i, kind) for i in range(layers) for kind in ("key", "value")]
    return (["input_ids", "position_ids"] + [f"past_key_values.{i}.{kind}" for i, kind in kv],
            ["logits"] + [f"present.{i}.{kind}" for i, kind in kv])


@contextmanager
def _quiet():
    """The exporter's and quantizer's warnings and log lines ("torchvision is not installed", "consider
    pre-processing") say nothing to a user of a bottle."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    # onnxruntime.quantization logs on the root logger, which would otherwise get a stderr handler.
    root, sink = logging.getLogger(), logging.NullHandler()
    added = not root.handlers
    if added:
        root.addHandler(sink)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
        if added:
            root.removeHandler(sink)


def _export_f32(model, path: Path, metadata: dict[str, str]) -> None:
    config = model.config
    layers, kv_heads = config.num_hidden_layers, config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    # Example sizes of 2 and 3: torch.export specializes dimensions it sees as 0 or 1.
    ids = torch.tensor([[1, 2, 3]])
    positions = torch.tensor([[2, 3, 4]])
    past = tuple(torch.zeros(1, kv_heads, 2, head_dim) for _ in range(2 * layers))
    seq = torch.export.Dim("seq", max=config.max_position_embeddings)
    past_len = torch.export.Dim("past", max=config.max_position_embeddings)
    inputs, outputs = io_names(layers)
    with _quiet(), torch.inference_mode(False), torch.no_grad():
        program = torch.onnx.export(_Decoder(model).eval(), (ids, positions, past), input_names=inputs,
                                    output_names=outputs, dynamo=True, optimize=True, verbose=False,
                                    dynamic_shapes=({1: seq}, {1: seq}, ({2: past_len},) * len(past)))
    program.model.metadata_props.update(metadata)
    program.save(str(path), external_data=False)


def _set_metadata(path: Path, metadata: dict[str, str], model=None) -> None:
    """Replace (or add) these metadata_props keys, rewriting the file atomically."""
    import onnx

    model = onnx.load(str(path)) if model is None else model
    kept = {p.key: p.value for p in model.metadata_props if p.key not in metadata}
    del model.metadata_props[:]
    for key, value in {**kept, **metadata}.items():
        model.metadata_props.add(key=key, value=value)
    tmp = path.with_suffix(".onnx.tmp")
    onnx.save(model, str(tmp))
    os.replace(tmp, path)


def quantize_int8(src: Path, dst: Path) -> Path:
    """An int8 copy of an f32 ONNX bottle: weights int8, activations quantized on the fly; metadata kept.

    Only the layers' matrix products: the token embedding stays f32, because it is also the output
    layer (tied) and every logit goes through it. Measured on the Needle heads: exact calls 0.52
    against the Spirit's 0.53 and 6.5 MB; quantizing the embedding too gives 0.51 and 4.5 MB.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    metadata = {p.key: p.value for p in onnx.load(str(src), load_external_data=False).metadata_props}
    bottle = json.loads(metadata.get(BOTTLE_KEY, "{}"))
    metadata[BOTTLE_KEY] = json.dumps({**bottle, "quantize": "int8"}, sort_keys=True)
    with _quiet():
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
    _set_metadata(Path(dst), metadata)
    return Path(dst)


def export(spirit, out: Path, quantize: str | None = None) -> Path:
    """Write `<out>/<spirit name>.onnx` (`.int8.onnx` with quantize="int8") and return its path."""
    if quantize not in (None, *QUANTIZE):
        raise DistilleryError(f"--quantize {quantize!r} is not available for onnx. Fix: use int8, "
                              "or leave --quantize out for f32 weights.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{Path(spirit.path).stem}{'.' + quantize if quantize else ''}.onnx"
    metadata = metadata_strings(spirit.metadata)
    metadata[BOTTLE_KEY] = json.dumps({"format": "onnx", "quantize": quantize, "torch": torch.__version__,
                                       "spirit": Path(spirit.path).name}, sort_keys=True)
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        f32 = Path(tmp) / "model.onnx"
        _export_f32(spirit.model, f32, metadata)
        os.replace(quantize_int8(f32, Path(tmp) / "int8.onnx") if quantize == "int8" else f32, path)
    return path


def record_tasting(path: Path, notes: dict) -> None:
    """Put the bottle's tasting headline (its metrics and the Spirit's, same heads) into the file itself."""
    import onnx

    model = onnx.load(str(path))
    bottle = json.loads({p.key: p.value for p in model.metadata_props}.get(BOTTLE_KEY, "{}"))
    keys = ("proof", "proof_metric", "metrics", "n_eval", "latency_ms", "heads", f"{notes.get('proof_metric')}_difference",
            "same_calls_as_spirit")
    bottle["tasting"] = {key: notes[key] for key in keys if key in notes}
    if "spirit" in notes:
        bottle["tasting"]["spirit_metrics"] = notes["spirit"]["metrics"]
    _set_metadata(Path(path), {BOTTLE_KEY: json.dumps(bottle, sort_keys=True)}, model)


def _session(path: Path, threads: int | None) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: no warnings about unused initializers on stderr
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for unreadable models
        raise DistilleryError(f"{path}: onnxruntime cannot load it ({str(exc).splitlines()[0]}). "
                              "Fix: bottle the Spirit again with `distillery bottle SPIRIT --format onnx`.") from None


class OnnxRunner:
    """The exported decoder in onnxruntime: one sequence, the KV cache kept between calls."""

    def __init__(self, session: onnxruntime.InferenceSession, max_len: int):
        self.session = session
        self.max_len = max_len
        self.past_names = [i.name for i in session.get_inputs() if i.name.startswith("past_key_values.")]
        self.output_names = [o.name for o in session.get_outputs()]
        kv_heads, head_dim = session.get_inputs()[2].shape[1], session.get_inputs()[2].shape[3]
        self.empty = np.zeros((1, kv_heads, 0, head_dim), dtype=np.float32)
        self.past: list[np.ndarray] = []
        self.length = 0

    def _forward(self, ids: list[int]) -> torch.Tensor:
        feed = {"input_ids": np.asarray([ids], dtype=np.int64),
                "position_ids": np.arange(self.length, self.length + len(ids), dtype=np.int64)[None]}
        feed.update(zip(self.past_names, self.past))
        logits, *self.past = self.session.run(self.output_names, feed)
        self.length += len(ids)
        return torch.from_numpy(logits[0, -1])

    def start(self, prompt_ids: list[int]) -> torch.Tensor:
        self.past = [self.empty] * len(self.past_names)
        self.length = 0
        return self._forward(prompt_ids)

    def step(self, token: int) -> torch.Tensor:
        return self._forward([token])


def open_bottle(path: Path, threads: int | None = None) -> Bottle:
    """An ONNX bottle ready to decode; `threads` sets onnxruntime's intra-op threads (default: all cores)."""
    from tokenizers import Tokenizer

    path = Path(path)
    if not path.is_file():
        raise DistilleryError(f"{path}: no such file. Fix: give the .onnx file `distillery bottle --format onnx` wrote.")
    session = _session(path, threads)
    raw = dict(session.get_modelmeta().custom_metadata_map)
    if "tokenizer" not in raw:
        raise DistilleryError(f"{path}: an ONNX model without distillery's metadata (no tokenizer in its "
                              "metadata_props). Fix: bottle a Spirit with `distillery bottle SPIRIT --format onnx`.")
    metadata = parse_metadata(raw, str(path))
    tokenizer = Tokenizer.from_str(metadata["tokenizer"])
    return Bottle(runner=OnnxRunner(session, prompt_format(metadata, tokenizer).context), tokenizer=tokenizer,
                  metadata=metadata, format="onnx")
