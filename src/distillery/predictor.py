"""Run a trained student on one request: prompt in, calls out."""

from __future__ import annotations

import time
from dataclasses import dataclass

from tokenizers import Tokenizer

from distillery.decoding import greedy_decode
from distillery.tasks.tool_calling.prompt import END, parse_completion, render_prompt
from distillery.tasks.tool_calling.schema import Tool
from distillery.tasks.tool_calling.validate import coerce_arguments


@dataclass
class Prediction:
    calls: list[dict] | None  # None: the output was not a list of calls
    text: str  # the raw completion
    latency_ms: float


class ToolCaller:
    """Greedy tool-call prediction with a student model and its tokenizer."""

    def __init__(self, model, tokenizer: Tokenizer, max_new_tokens: int = 256):
        self.model = model
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens
        self.eos_id = tokenizer.token_to_id(END)

    def predict(self, utterance: str, tools: list[Tool]) -> Prediction:
        start = time.perf_counter()
        prompt_ids = self.tokenizer.encode(render_prompt(utterance, tools)).ids
        out_ids = greedy_decode(self.model, prompt_ids, eos_id=self.eos_id, max_new_tokens=self.max_new_tokens)
        text = self.tokenizer.decode(out_ids, skip_special_tokens=False)
        calls = parse_completion(text)
        if calls is not None:
            by_name = {t.name: t for t in tools}
            calls = [{"name": c["name"],
                      "arguments": coerce_arguments(c["arguments"], by_name[c["name"]])
                      if c["name"] in by_name else c["arguments"]} for c in calls]
        return Prediction(calls=calls, text=text, latency_ms=(time.perf_counter() - start) * 1000)
