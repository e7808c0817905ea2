"""A runner that reads the tool catalog once: the KV cache of a prompt's prefix, reused.

Every prompt reads the offered tools first, then the request (`<|tools|> signatures <|user|>
utterance <|call|>` for a tiny student; a system turn then a user turn for a chat model). A
deployment offers the same catalog again and again, so everything up to and including the
PromptFormat's boundary token (`<|user|>`, or the end of the system turn) is the same across
its requests. `PrefixCachedRunner` keeps the KV cache of such prefixes (a small LRU
keyed by the prefix's token ids, so a different catalog is a different entry) and starts
each request from a copy of it: only the utterance is read per request. The copy matters:
decoding appends to the cache, and the stored prefix must stay as it was.

Not thread-safe: one sequence at a time, like `TorchRunner`.
"""

from __future__ import annotations

import copy
from collections import OrderedDict

import torch
from transformers import DynamicCache

from distillery.decoding import TorchRunner


class PrefixCachedRunner(TorchRunner):
    """A `TorchRunner` whose `start` reuses the cached KV of everything up to `boundary_id`."""

    def __init__(self, model, boundary_id: int, size: int = 16, max_len: int | None = None):
        super().__init__(model, max_len)
        self.boundary_id = boundary_id
        self.size = size
        self.prefixes: OrderedDict[tuple[int, ...], DynamicCache] = OrderedDict()
        self.hits = self.misses = 0

    def _prefix_cache(self, prefix: tuple[int, ...]) -> DynamicCache:
        cached = self.prefixes.get(prefix)
        if cached is not None:
            self.hits += 1
            self.prefixes.move_to_end(prefix)
            return cached
        self.misses += 1
        self.cache = DynamicCache()
        self._forward(list(prefix))
        self.prefixes[prefix] = self.cache
        if len(self.prefixes) > self.size:
            self.prefixes.popitem(last=False)
        return self.cache

    @torch.inference_mode()
    def start(self, prompt_ids: list[int]) -> torch.Tensor:
        # The prefix ends at the first boundary token; with none (a prompt cut to fit the
        # context), or nothing after it, the whole prompt is read as TorchRunner would.
        cut = prompt_ids.index(self.boundary_id) + 1 if self.boundary_id in prompt_ids else 0
        if not 0 < cut < len(prompt_ids):
            return super().start(prompt_ids)
        self.cache = copy.deepcopy(self._prefix_cache(tuple(prompt_ids[:cut])))
        return self._forward(prompt_ids[cut:])
