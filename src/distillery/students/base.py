"""What every student kind shares: the built student, its trainable state, a model from a config."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import AutoConfig, AutoModelForCausalLM

from distillery.students.prompt_format import PromptFormat


@dataclass
class Built:
    model: torch.nn.Module  # a transformers causal LM (a PEFT model for lora), in train mode
    tokenizer: object  # a `tokenizers.Tokenizer`
    format: PromptFormat
    model_config: dict  # the plain model's config (what `load` rebuilds it from)
    identity: dict  # what the student was made from: {"kind", "base", "base_sha256"}
    chat_template: str | None = None


def trainable(model: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    """The parameters the Still updates (tied weights once)."""
    return [(name, p) for name, p in model.named_parameters() if p.requires_grad]


def training_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """What a checkpoint holds: the trainable parameters only (a lora checkpoint is its adapters)."""
    return {name: p.detach().contiguous() for name, p in trainable(model)}


def load_training_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    own = dict(trainable(model))
    missing, unknown = own.keys() - state.keys(), state.keys() - own.keys()
    if missing or unknown:
        raise ValueError(f"checkpoint does not match the student: missing {sorted(missing)[:3]}, "
                         f"unknown {sorted(unknown)[:3]}")
    with torch.no_grad():
        for name, tensor in state.items():
            own[name].copy_(tensor)


def model_from_config(config: dict) -> torch.nn.Module:
    """An untrained model of the architecture `config` describes (any transformers causal LM)."""
    fields = {k: v for k, v in config.items() if k not in ("model_type", "architectures")}
    return AutoModelForCausalLM.from_config(AutoConfig.for_model(config.get("model_type", "llama"), **fields))


def count_params(model: torch.nn.Module) -> int:
    """Unique parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
