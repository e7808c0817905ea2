"""Answer a generation request: the student writes free text, greedily or sampled.

Greedy (temperature 0) is the default. With a temperature, each token is drawn from the
student's distribution at that temperature, cut to the nucleus `top_p`. The draw is seeded
from (the Recipe's seed, the request), so the same request gets the same answer in the
Tasting, in `predict`, in every bottle and in serve, unless a chat request names its own seed.
There is no grammar: the answer is any text, ended by the student's end token or cut at
`max_new_tokens`. Only the vocabulary's control tokens other than the end token (a tiny
student's `<|user|>`, a chat template's `<|im_start|>`) are never written: they are not text.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import torch

from distillery.decoding import as_runner
from distillery.errors import DistilleryError

DEFAULT_MAX_NEW_TOKENS = 256


class PromptTooLong(DistilleryError):
    """The request leaves the answer no room in the student's context."""


@dataclass
class TextPrediction:
    output: str
    latency_ms: float
    unfinished: bool = False  # cut at max_new_tokens (or the context's end), not ended by the student
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def text(self) -> str:
        return self.output

    @property
    def answer(self) -> dict:
        return {"output": self.output}


def decoding_settings(tasting, seed: int) -> dict:
    """How a generation Spirit decodes, from the Recipe's `tasting:` (stored in the Spirit)."""
    return {"grammar": False, "temperature": tasting.temperature or 0.0, "top_p": tasting.top_p or 1.0,
            "max_new_tokens": tasting.max_new_tokens or DEFAULT_MAX_NEW_TOKENS, "seed": seed}


def request_seed(seed: int, utterance: str) -> int:
    digest = hashlib.sha256(f"{seed}\x1f{utterance}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 2**63


def next_token(logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None) -> int:
    """The argmax when `temperature` is 0; else a draw at `temperature` from the smallest set of
    most likely tokens whose probability reaches `top_p`."""
    if temperature <= 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p >= 1:
        return int(torch.multinomial(probs, 1, generator=generator))
    ordered, order = torch.sort(probs, descending=True)
    # A token stays when the tokens more likely than it hold less than top_p: the first always does.
    kept = ordered * ((torch.cumsum(ordered, dim=0) - ordered) < top_p)
    return int(order[torch.multinomial(kept, 1, generator=generator)])


class TextPredictor:
    """The student's answer to a request. `temperature`, `top_p`, `max_new_tokens` and `seed` are
    plain attributes: serve changes them on a per-request copy."""

    def __init__(self, model, tokenizer, fmt, context: str, decoding: dict):
        self.model = as_runner(model, fmt.context)
        self.tokenizer, self.format, self.context = tokenizer, fmt, context
        self.temperature = float(decoding.get("temperature") or 0.0)
        self.top_p = float(decoding.get("top_p") or 1.0)
        self.max_new_tokens = int(decoding.get("max_new_tokens") or DEFAULT_MAX_NEW_TOKENS)
        self.seed = int(decoding.get("seed") or 0)
        control = (tokenizer.token_to_id(t) for t in fmt.special_tokens)
        self.control = sorted({i for i in control if i is not None and i != fmt.end_id})

    def prompt_ids(self, utterance: str) -> list[int]:
        return self.format.text_ids(self.tokenizer, self.format.framed(utterance, self.context))

    @torch.inference_mode()
    def predict(self, utterance: str) -> TextPrediction:
        start = time.perf_counter()
        prompt = self.prompt_ids(utterance)
        room = self.model.max_len - len(prompt)
        if room < 1:
            raise PromptTooLong(f"the request takes {len(prompt)} tokens of the student's {self.model.max_len}-token "
                                "context and leaves no room for an answer. Fix: send a shorter request.")
        limit = min(self.max_new_tokens, room)
        generator = None
        if self.temperature > 0:
            generator = torch.Generator().manual_seed(request_seed(self.seed, utterance))
        ids: list[int] = []
        unfinished = True
        logits = self.model.start(prompt)
        while True:
            if self.control:
                logits = logits.clone()
                logits[self.control] = float("-inf")
            token = next_token(logits, self.temperature, self.top_p, generator)
            if token == self.format.end_id:
                unfinished = False
                break
            ids.append(token)
            if len(ids) >= limit:
                break
            logits = self.model.step(token)
        return TextPrediction(output=self.tokenizer.decode(ids).strip(), unfinished=unfinished,
                              latency_ms=(time.perf_counter() - start) * 1000, prompt_tokens=len(prompt),
                              completion_tokens=len(ids))
