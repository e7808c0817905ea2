"""The gguf bottle: a llama-architecture GGUF file for llama.cpp, with its BPE tokenizer.

Written with the `gguf` package the way llama.cpp's own converter writes a Llama: the same
tensor names, the query and key rows permuted for llama.cpp's rotary layout, norms in f32.
`q8_0` and `q4_0` quantize each weight matrix in blocks of 32 along its rows; a matrix whose
rows are not a multiple of 32 stays f16, as llama.cpp's converter does. With `q4_0` the token
embedding, which is also the output layer (tied), stays `q8_0`: llama.cpp's quantizer keeps
the output layer at higher precision too, because every logit goes through it.

Everything distillery needs travels in the file's metadata under `distillery.*` (the Spirit's
tokenizer, tools, decoding, tasting, recipe, lineage, heads), so the .gguf alone can be tasted.
Next to it, `<name>.gbnf` is the grammar of the Spirit's tool calls for llama.cpp.

distillery runs the file through llama-cpp-python fed with its own prompt ids: llama.cpp's
pre-tokenizer differs from the student's, and the prompt drops whitespace tokens.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from distillery.bottling import Bottle, check_choice
from distillery.bottling.hf import chat_template
from distillery.errors import DistilleryError
from distillery.spirit import Spirit, metadata_strings, parse_metadata, prompt_format
from distillery.students.prompt_format import PromptFormat
from distillery.tokenizer import SPECIAL_TOKENS

_PREFIX = "distillery."
_INSTALL_GGUF = "Fix: pip install 'distillery[all]' (or pip install gguf)."
_INSTALL_LLAMA = "Fix: pip install llama-cpp-python (it builds llama.cpp: a few minutes, once)."


def _gguf():
    try:
        import gguf
    except ImportError:
        raise DistilleryError(f"writing or reading a .gguf needs the `gguf` package. {_INSTALL_GGUF}") from None
    return gguf


def _permute(w: np.ndarray, n_head: int) -> np.ndarray:
    # transformers rotates the two halves of each head; llama.cpp rotates interleaved pairs.
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _tensor_type(gguf, name: str, data: np.ndarray, quantize: str | None):
    if quantize is None or data.ndim == 1:
        return gguf.GGMLQuantizationType.F32
    wanted = {"f16": gguf.GGMLQuantizationType.F16, "q8_0": gguf.GGMLQuantizationType.Q8_0,
              "q4_0": gguf.GGMLQuantizationType.Q4_0}[quantize]
    if wanted == gguf.GGMLQuantizationType.Q4_0 and name == "token_embd.weight":
        wanted = gguf.GGMLQuantizationType.Q8_0
    block = gguf.GGML_QUANT_SIZES[wanted][0]
    return wanted if data.shape[-1] % block == 0 else gguf.GGMLQuantizationType.F16


def _add_tokenizer(gguf, writer, tokenizer: Tokenizer, config: dict, fmt: PromptFormat) -> None:
    vocab = tokenizer.get_vocab()
    tokens = sorted(vocab, key=vocab.get)
    if [vocab[t] for t in tokens] != list(range(config["vocab_size"])):
        raise DistilleryError(f"the Spirit's tokenizer has {len(vocab)} tokens with gaps in their ids, its model "
                              f"{config['vocab_size']}: it cannot be written as a GGUF vocabulary.")
    merges = json.loads(tokenizer.to_str())["model"]["merges"]
    writer.add_tokenizer_model("gpt2")  # llama.cpp's name for a byte-level BPE
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    control = set(fmt.special_tokens or SPECIAL_TOKENS)
    writer.add_token_types([gguf.TokenType.CONTROL if t in control else gguf.TokenType.NORMAL for t in tokens])
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in merges])
    if config.get("bos_token_id") is not None:
        writer.add_bos_token_id(config["bos_token_id"])
    writer.add_eos_token_id(fmt.end_id)  # the end of an answer: llama.cpp stops there
    writer.add_pad_token_id(fmt.pad_id)
    writer.add_add_bos_token(False)  # the prompt carries its own first token (<|tools|>, or the chat frame's)
    writer.add_chat_template(chat_template(fmt))


def export(spirit: Spirit, out: Path, quantize: str | None = None) -> Path:
    """Write `<name>-<f32|f16|q8_0|q4_0>.gguf` and `<name>.gbnf` under `out`; returns the .gguf."""
    check_choice("gguf", quantize)
    gguf = _gguf()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{spirit.path.stem}-{quantize or 'f32'}.gguf"
    config = spirit.metadata["model_config"]
    n_head, n_kv = config["num_attention_heads"], config["num_key_value_heads"]
    file_type = {None: gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
                 "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0, "q4_0": gguf.LlamaFileType.MOSTLY_Q4_0}[quantize]

    tmp = path.with_suffix(".gguf.tmp")
    writer = gguf.GGUFWriter(tmp, "llama")
    writer.add_name(spirit.path.stem)
    writer.add_context_length(spirit.format.context)
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_kv)
    writer.add_rope_dimension_count(config.get("head_dim") or config["hidden_size"] // n_head)
    # transformers 5 keeps the rotary base in `rope_parameters`; older configs have `rope_theta`.
    writer.add_rope_freq_base((config.get("rope_parameters") or {}).get("rope_theta") or config["rope_theta"])
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    writer.add_vocab_size(config["vocab_size"])
    writer.add_file_type(file_type)
    _add_tokenizer(gguf, writer, spirit.tokenizer, config, spirit.format)
    for key, value in metadata_strings(spirit.metadata).items():
        writer.add_string(_PREFIX + key, value)

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config["num_hidden_layers"])
    state = spirit.model.state_dict()
    for hf_name, tensor in state.items():
        if hf_name == "lm_head.weight" and config.get("tie_word_embeddings"):
            continue  # llama.cpp uses token_embd as the output layer when there is no output.weight
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise DistilleryError(f"{spirit.path}: tensor {hf_name} has no GGUF name; the gguf bottle only "
                                  "knows the Llama architecture of distillery's students.")
        data = tensor.detach().float().numpy()
        if hf_name.endswith("q_proj.weight"):
            data = _permute(data, n_head)
        elif hf_name.endswith("k_proj.weight"):
            data = _permute(data, n_kv)
        kind = _tensor_type(gguf, name, data, quantize)
        if kind == gguf.GGMLQuantizationType.F32:
            writer.add_tensor(name, data)
        elif kind == gguf.GGMLQuantizationType.F16:
            writer.add_tensor(name, data.astype(np.float16))
        else:
            writer.add_tensor(name, gguf.quants.quantize(data, kind), raw_dtype=kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, path)
    schema = spirit.task.answer_schema()
    if schema is not None:
        write_gbnf(schema, out / f"{spirit.path.stem}.gbnf", compact=spirit.format.json_style == "compact")
    return path


def schema_gbnf(schema: dict, compact: bool = True) -> str:
    """The GBNF grammar of an answer that meets the JSON `schema` (the task's answer schema: the
    calls of the offered tools, the spans of the declared types), for llama.cpp (`--grammar-file`,
    LlamaGrammar).

    Made by llama.cpp's JSON-schema converter from the same schema distillery's grammar uses,
    without whitespace between JSON tokens when the student writes compact JSON. Unlike
    distillery's grammar it cannot narrow copied values to spans of the request, and it
    writes the required arguments before the optional ones.
    """
    try:
        from llama_cpp.llama_grammar import json_schema_to_gbnf
    except ImportError:
        raise DistilleryError(f"writing the .gbnf grammar needs llama-cpp-python. {_INSTALL_LLAMA}") from None
    grammar = json_schema_to_gbnf(json.dumps(schema))
    # A tiny student writes compact JSON: no space anywhere. A chat model's spaced JSON keeps the
    # converter's optional single space.
    lines = [('space ::= ""' if compact and line.startswith("space ::=") else line) for line in grammar.splitlines()]
    return "\n".join(lines) + "\n"


def write_gbnf(schema: dict, path: Path, compact: bool = True) -> Path:
    Path(path).write_text(schema_gbnf(schema, compact), encoding="utf-8")
    return Path(path)


def read_metadata(path: Path) -> dict:
    """The Spirit metadata stored in a distillery .gguf (JSON fields parsed)."""
    gguf = _gguf()
    try:
        reader = gguf.GGUFReader(path)
    except (ValueError, OSError) as exc:
        raise DistilleryError(f"{path}: not a readable GGUF file ({exc}). Fix: bottle the Spirit again with "
                              "`distillery bottle SPIRIT --format gguf --out DIR`.") from None
    # A string field's value is the part its `data` index points at (the same in every gguf release).
    raw = {name[len(_PREFIX):]: bytes(field.parts[field.data[0]]).decode("utf-8")
           for name, field in reader.fields.items() if name.startswith(_PREFIX)}
    if not raw:
        raise DistilleryError(f"{path}: a GGUF file without distillery metadata; distillery runs only the GGUF "
                              "files it bottled. Fix: `distillery bottle SPIRIT --format gguf --out DIR`.")
    return parse_metadata(raw, str(path))


@contextmanager
def _quiet_stderr():
    # llama.cpp warns on its own stderr that its context (rounded up to a multiple of 256) is
    # longer than the model's; decoding never goes past max_len, so the warning is only noise.
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def open_bottle(path: Path, threads: int | None = None, width: int = 1) -> Bottle:
    """A distillery .gguf ready to decode through llama.cpp (`threads`: default torch's thread count),
    `width` sequences at a time (gguf_engine.py; the runner reads one, `predict_many` up to `width`)."""
    from distillery.batching import EngineRunner
    from distillery.bottling.gguf_engine import LlamaCppEngine

    path = Path(path)
    metadata = read_metadata(path)
    tokenizer = Tokenizer.from_str(metadata["tokenizer"])
    fmt = prompt_format(metadata, tokenizer)
    engine = LlamaCppEngine(path, fmt.context, width=width, threads=threads, boundary_id=fmt.boundary_id(tokenizer),
                            prefixes=0 if width == 1 else 8)
    return Bottle(runner=EngineRunner(engine), tokenizer=tokenizer, metadata=metadata, format="gguf")
