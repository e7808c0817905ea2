"""Greedy decoding with a KV cache.

A hand-written loop rather than `model.generate`: for a model this small the per-token
overhead of the generic generator is larger than the forward pass itself.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from transformers import DynamicCache

# Called with the tokens generated so far and the next-token logits; returns logits with
# forbidden tokens masked (used by grammar-constrained decoding).
LogitsFilter = Callable[[list[int], torch.Tensor], torch.Tensor]


@torch.inference_mode()
def greedy_decode(model, prompt_ids: list[int], *, eos_id: int, max_new_tokens: int,
                  logits_filter: LogitsFilter | None = None) -> list[int]:
    """The generated token ids (without the prompt, without the end token)."""
    max_len = model.config.max_position_embeddings
    prompt_ids = prompt_ids[-(max_len - 1):]
    max_new_tokens = min(max_new_tokens, max_len - len(prompt_ids))
    cache = DynamicCache()
    input_ids = torch.tensor([prompt_ids])
    generated: list[int] = []
    for _ in range(max_new_tokens):
        out = model(input_ids=input_ids, past_key_values=cache, use_cache=True)
        logits = out.logits[0, -1]
        if logits_filter is not None:
            logits = logits_filter(generated, logits)
        token = int(torch.argmax(logits))
        if token == eos_id:
            break
        generated.append(token)
        input_ids = torch.tensor([[token]])
    return generated
