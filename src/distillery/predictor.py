"""Run a trained student on one request: prompt in, calls out."""

from __future__ import annotations

import time
from dataclasses import dataclass

from tokenizers import Tokenizer

from distillery.decoding import greedy_decode
from distillery.tasks.tool_calling.grammar import CallGrammar
from distillery.tasks.tool_calling.prompt import END, parse_completion, render_prompt
from distillery.tasks.tool_calling.schema import Tool
from distillery.tokenizer import encode_prompt, whitespace_ids
from distillery.tasks.tool_calling.validate import coerce_arguments


@dataclass
class Prediction:
    calls: list[dict] | None  # None: the output was not a list of calls
    text: str  # the raw completion
    latency_ms: float
    unfinished: bool = False  # constrained, but out of tokens before the calls were complete


class ToolCaller:
    """Greedy tool-call prediction with a student model and its tokenizer.

    With `grammar` (the default) decoding is constrained to calls the offered tools accept.
    """

    def __init__(self, model, tokenizer: Tokenizer, max_new_tokens: int = 256, grammar: bool = True,
                 copied: list[str] | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens
        self.eos_id = tokenizer.token_to_id(END)
        self.skip = whitespace_ids(tokenizer)
        self.grammar = CallGrammar(tokenizer) if grammar else None
        # `tool.param` names whose values are spans of the request (see tasks/tool_calling/spans.py).
        self.copied = frozenset(copied or ())

    def predict(self, utterance: str, tools: list[Tool]) -> Prediction:
        start = time.perf_counter()
        prompt_ids = encode_prompt(self.tokenizer, render_prompt(utterance, tools), self.skip)
        constraint = self.grammar.matcher(tools, utterance=utterance, copied=self.copied) if self.grammar else None
        out_ids = greedy_decode(self.model, prompt_ids, eos_id=self.eos_id, max_new_tokens=self.max_new_tokens,
                                logits_filter=constraint)
        text = self.tokenizer.decode(out_ids, skip_special_tokens=False)
        calls = parse_completion(text)
        # Under the grammar every token keeps the output a valid prefix, so the only way not to
        # end with valid calls is to run out of tokens (a string that never closes). Answer then
        # with no call: an invalid call is never returned, and `unfinished` says what happened.
        unfinished = constraint is not None and calls is None
        if unfinished:
            calls = []
        if calls is not None:
            by_name = {t.name: t for t in tools}
            calls = [{"name": c["name"],
                      "arguments": coerce_arguments(c["arguments"], by_name[c["name"]])
                      if c["name"] in by_name else c["arguments"]} for c in calls]
        return Prediction(calls=calls, text=text, latency_ms=(time.perf_counter() - start) * 1000,
                          unfinished=unfinished)
