"""Greedy decoding with a KV cache.

A hand-written loop rather than `model.generate`: for a model this small the per-token
overhead of the generic generator is larger than the forward pass itself.

The loop talks to a *runner*: anything with `max_len`, `start(prompt_ids)` and `step(token)`,
each returning the next-token logits as a 1-D torch tensor. `TorchRunner` runs a transformers
model; exported bottles (ONNX, GGUF) bring their own runner, so every format decodes with the
same loop, the same grammar and the same prompt. Many sequences decoding together: batching.py.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Protocol

import torch
from transformers import DynamicCache

# Called with the tokens generated so far and the next-token logits; returns logits with
# forbidden tokens masked (used by grammar-constrained decoding).
LogitsFilter = Callable[[list[int], torch.Tensor], torch.Tensor]


class Runner(Protocol):
    max_len: int  # the model's context length in tokens

    def start(self, prompt_ids: list[int]) -> torch.Tensor:
        """Forget any previous sequence, read the prompt, return the next-token logits."""

    def step(self, token: int) -> torch.Tensor:
        """Append one token, return the next-token logits."""


def cache_argument(model) -> str:
    """The name of a transformers model's KV-cache argument: `cache` since transformers 5.2x
    (which warns on the older name), `past_key_values` before."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def last_logits_only(model) -> dict:
    """`logits_to_keep=1` where the model takes it: the output layer then runs on the last position
    only, not on every prompt token (at a 4k-49k-wide vocabulary, most of a prompt's read)."""
    return {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}


class TorchRunner:
    """A transformers causal LM, one sequence at a time, with a KV cache."""

    def __init__(self, model, max_len: int | None = None):
        self.model = model
        # The student's usable context (its PromptFormat says), never more than the model's positions.
        self.max_len = min(max_len or model.config.max_position_embeddings, model.config.max_position_embeddings)
        self.cache = None
        self.cache_key, self.extra = cache_argument(model), last_logits_only(model)
        self.device = model_device(model)

    def to(self, device: torch.device | str) -> TorchRunner:
        """Decode on `device` from now on (the model moves there)."""
        self.model.to(device)
        self.device = model_device(self.model)
        return self

    def _forward(self, ids: list[int]) -> torch.Tensor:
        out = self.model(input_ids=torch.tensor([ids], device=self.device), **{self.cache_key: self.cache},
                         **self.extra, use_cache=True)
        return out.logits[0, -1].cpu()  # the grammar's masks live on the CPU (a no-op there)

    def start(self, prompt_ids: list[int]) -> torch.Tensor:
        self.cache = DynamicCache()
        return self._forward(prompt_ids)

    def step(self, token: int) -> torch.Tensor:
        return self._forward([token])


def model_device(model) -> torch.device:
    """Where a torch model's weights are (the CPU for a model without any)."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def as_runner(model, max_len: int | None = None) -> Runner:
    return model if hasattr(model, "start") and hasattr(model, "step") else TorchRunner(model, max_len)


@torch.inference_mode()
def greedy_decode(model, prompt_ids: list[int], *, eos_id: int, max_new_tokens: int,
                  logits_filter: LogitsFilter | None = None) -> list[int]:
    """The generated token ids (without the prompt, without the end token).

    `model` is a runner or a transformers model (wrapped in a TorchRunner).
    """
    runner = as_runner(model)
    prompt_ids = prompt_ids[-(runner.max_len - 1):]
    max_new_tokens = min(max_new_tokens, runner.max_len - len(prompt_ids))
    generated: list[int] = []
    logits = runner.start(prompt_ids) if max_new_tokens > 0 else None
    for _ in range(max_new_tokens):
        if logits_filter is not None:
            logits = logits_filter(generated, logits)
        token = int(torch.argmax(logits))
        if token == eos_id:
            break
        generated.append(token)
        if len(generated) == max_new_tokens:
            break
        logits = runner.step(token)
    return generated
