"""Run a trained student on one request: prompt in, calls out."""

from __future__ import annotations

import time
from dataclasses import dataclass

from tokenizers import Tokenizer

from distillery.decoding import TorchRunner, as_runner, batch_greedy_decode, greedy_decode
from distillery.errors import DistilleryError
from distillery.students.prompt_format import PromptFormat
from distillery.tasks.tool_calling.grammar import CallGrammar
from distillery.tasks.tool_calling.prompt import call_prefix, parse_completion, prompt_ids
from distillery.tasks.tool_calling.schema import Tool
from distillery.tasks.tool_calling.validate import coerce_arguments


MIN_ANSWER_TOKENS = 32  # a prompt must leave at least this much of the context for the calls


class PromptTooLong(DistilleryError):
    """The offered tools and the request leave too little of the context for an answer."""


@dataclass
class Prediction:
    calls: list[dict] | None  # None: the output was not a list of calls
    text: str  # the raw completion
    latency_ms: float
    unfinished: bool = False  # constrained, but out of tokens before the calls were complete
    abstained: bool = False  # the student asked for a tool it knows that is not offered: no call
    prompt_tokens: int = 0  # the prompt's length in tokens


class ToolCaller:
    """Greedy tool-call prediction with a student model and its tokenizer.

    With `grammar` (the default) decoding is constrained to calls the offered tools accept.
    """

    def __init__(self, model, tokenizer: Tokenizer, fmt: PromptFormat, max_new_tokens: int = 256,
                 grammar: bool = True, copied: list[str] | None = None, known_tools: list[str] | None = None):
        self.model = as_runner(model, fmt.context)
        self.tokenizer = tokenizer
        self.format = fmt
        self.max_new_tokens = max_new_tokens
        self.eos_id = fmt.end_id
        self.max_len = self.model.max_len
        self.grammar = CallGrammar(tokenizer, fmt) if grammar else None
        # `tool.param` names whose values are spans of the request (see tasks/tool_calling/spans.py).
        self.copied = frozenset(copied or ())
        # First token of each tool name the student was trained on (its catalog), for abstaining.
        self.known_first = {}
        for name in known_tools or ():
            self.known_first.setdefault(tokenizer.encode(name).ids[0], set()).add(name)

    @classmethod
    def from_decoding(cls, model, tokenizer: Tokenizer, fmt: PromptFormat, decoding: dict, *,
                      max_new_tokens: int | None = None, grammar: bool | None = None) -> ToolCaller:
        """The caller a Spirit's `decoding` metadata describes; `grammar` overrides its grammar flag.

        `decoding` = {"grammar", "copied_params", "known_tools"}; copied values and abstaining both
        need the grammar, so without it they are off.
        """
        grammar = decoding.get("grammar", True) if grammar is None else grammar
        return cls(model, tokenizer, fmt, max_new_tokens=max_new_tokens or fmt.context, grammar=grammar,
                   copied=decoding.get("copied_params") if grammar else None,
                   known_tools=decoding.get("known_tools") if grammar else None)

    def predict(self, utterance: str, tools: list[Tool]) -> Prediction:
        start = time.perf_counter()
        ids, constraint = self._prepare(utterance, tools)
        try:
            out: list[int] | Exception = greedy_decode(self.model, ids, eos_id=self.eos_id,
                                                       max_new_tokens=self.max_new_tokens, logits_filter=constraint)
        except _Abstain as exc:
            out = exc
        return self._finish(out, ids, constraint, tools, (time.perf_counter() - start) * 1000)

    def predict_many(self, requests: list[tuple[str, list[Tool]]], batch_size: int = 16) -> list[Prediction]:
        """`predict` of every (utterance, tools), decoded `batch_size` at a time in one batch (one
        forward pass per step for all of them) where the model runs in torch; elsewhere (an ONNX
        or llama.cpp bottle's runner) one at a time. Each answer is `predict`'s; `latency_ms` is
        the batch's time shared among its requests."""
        if not isinstance(self.model, TorchRunner) or batch_size <= 1:
            return [self.predict(utterance, tools) for utterance, tools in requests]
        model = self.model.model
        found = []
        for first in range(0, len(requests), batch_size):
            chunk = requests[first:first + batch_size]
            start = time.perf_counter()
            prepared = [self._prepare(utterance, tools) for utterance, tools in chunk]
            prompts = [ids[-(self.max_len - 1):] for ids, _ in prepared]
            outs = batch_greedy_decode(model, prompts, eos_id=self.eos_id, pad_id=self.format.pad_id,
                                       max_new_tokens=[min(self.max_new_tokens, self.max_len - len(p)) for p in prompts],
                                       logits_filters=[constraint for _, constraint in prepared])
            for out in outs:
                if isinstance(out, Exception) and not isinstance(out, _Abstain):
                    raise out
            share = (time.perf_counter() - start) * 1000 / len(chunk)
            found += [self._finish(out, ids, constraint, tools, share)
                      for out, (ids, constraint), (_, tools) in zip(outs, prepared, chunk)]
        return found

    def _prepare(self, utterance: str, tools: list[Tool]):
        """The prompt's ids and the decoding constraint (grammar, abstaining) of one request."""
        ids = prompt_ids(self.format, self.tokenizer, utterance, tools)
        room = self.max_len - len(ids)
        if room < MIN_ANSWER_TOKENS:
            raise PromptTooLong(
                f"the request with its {len(tools)} offered tools takes {len(ids)} tokens of the student's "
                f"{self.max_len}-token context, leaving {max(room, 0)} for the answer. Fix: offer fewer tools "
                "(e.g. `--tools FILE` with the few a request can need; the student was trained on the recipe's "
                "`mash.tools_per_call`), or distill with a larger `student.max_seq_len`.")
        constraint = self.grammar.matcher(tools, utterance=utterance, copied=self.copied) if self.grammar else None
        if self.known_first:
            constraint = _AbstainUnoffered(self, {t.name for t in tools}, constraint)
        return ids, constraint

    def _finish(self, out: list[int] | Exception, ids: list[int], constraint, tools: list[Tool],
                latency_ms: float) -> Prediction:
        """The Prediction from the generated ids (or the abstention that stopped them)."""
        if isinstance(out, _Abstain):
            return Prediction(calls=[], text="[]", latency_ms=latency_ms, abstained=True, prompt_tokens=len(ids))
        text = self.tokenizer.decode(out, skip_special_tokens=False)
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
        return Prediction(calls=calls, text=text, latency_ms=latency_ms, unfinished=unfinished,
                          prompt_tokens=len(ids))


class _Abstain(Exception):
    pass


class _AbstainUnoffered:
    """No call when, at the first tool name, the student prefers a tool it knows that is not offered.

    Requests for a tool that is missing from the offered list must get no call. The grammar
    only lets the student write offered names, so on its own it turns such a request into a
    call of the nearest offered tool. The student's unconstrained choice among the tool names it
    was trained on says what it was asked for; if that tool is not offered, the answer is no call.
    Tools the student never saw are not candidates, so unseen catalogs decode as before.
    """

    def __init__(self, caller: ToolCaller, offered: set[str], inner):
        self.caller, self.offered, self.inner = caller, offered, inner
        self.prefix = call_prefix(caller.format)
        self.checked = False

    def __call__(self, generated: list[int], logits):
        if not self.checked and len(generated) <= 8 and \
                self.caller.tokenizer.decode(generated, skip_special_tokens=False) == self.prefix:
            self.checked = True
            known = self.caller.known_first
            best = max(known, key=lambda i: float(logits[i]))
            if not known[best] & self.offered:
                raise _Abstain
        return self.inner(generated, logits) if self.inner is not None else logits
