"""The `tiny` student: a randomly initialised Llama-architecture causal LM.

A standard transformers architecture (RMSNorm, RoPE, SwiGLU, grouped-query attention) is
what makes the Spirit portable: the same weights load in transformers, export to ONNX and
GGUF, and serve anywhere a Llama does. Its tokenizer is a BPE trained on the hearts by the
tokenizer stage (tokenizer.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from distillery import tokenizer as bpe
from distillery.students.base import Built
from distillery.students.prompt_format import tiny_format
from distillery.tokenizer import END, PAD, TOOLS


def model_config(student: Any, vocab_size: int, special_ids: dict[str, int]) -> dict:
    """The LlamaConfig fields for a recipe's `student` section and a trained tokenizer."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": vocab_size,
        "hidden_size": student.d_model,
        "intermediate_size": student.d_ff,
        "num_hidden_layers": student.n_layers,
        "num_attention_heads": student.n_heads,
        "num_key_value_heads": student.n_kv_heads,
        "max_position_embeddings": student.max_seq_len,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        # Tied embeddings: with a 4k vocab the output matrix would be a large share of a tiny model.
        "tie_word_embeddings": True,
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        "bos_token_id": special_ids["bos"],
        "eos_token_id": special_ids["eos"],
        "pad_token_id": special_ids["pad"],
        "torch_dtype": "float32",
    }


def build_model(config: dict, seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(**config))
    return model


class TinyStudent:
    kind = "tiny"
    needs_tokenizer_stage = True  # its BPE is trained on the hearts

    def build(self, recipe, run_dir: Path) -> Built:
        tok = bpe.load_tokenizer((Path(run_dir) / "tokenizer.json").read_text())
        ids = {"bos": tok.token_to_id(TOOLS), "eos": tok.token_to_id(END), "pad": tok.token_to_id(PAD)}
        config = model_config(recipe.student, tok.get_vocab_size(), ids)
        model = build_model(config, seed=recipe.seed)
        return Built(model=model, tokenizer=tok, format=tiny_format(tok, recipe.student.max_seq_len),
                     model_config=config, identity={"kind": "tiny"})

    def export(self, model):
        return model

    def load(self, metadata: dict):
        return build_model(metadata["model_config"])
