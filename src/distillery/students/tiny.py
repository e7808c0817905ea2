"""The `tiny` student: a randomly initialised Llama-architecture causal LM.

A standard transformers architecture (RMSNorm, RoPE, SwiGLU, grouped-query attention) is
what makes the Spirit portable: the same weights load in transformers, export to ONNX and
GGUF, and serve anywhere a Llama does.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import LlamaConfig, LlamaForCausalLM


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


def count_params(model: torch.nn.Module) -> int:
    """Unique parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
