"""Run a trained student on one request: prompt in, calls out."""

from __future__ import annotations

import time
from dataclasses import dataclass

from tokenizers import Tokenizer

from distillery.batching import batch_engine, decode_many
from distillery.decoding import as_runner, greedy_decode
from distillery.errors import DistilleryError
from distillery.students.prompt_format import PromptFormat
from distillery.tasks.tool_calling.conversation import fitted_prompt_ids, parse_answer, source_text, trimmed
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
    content: str | None = None  # a conversation's final answer, in text (then `calls` is [])
    dropped: int = 0  # old exchanges of the history left out to fit the context (conversation.py)


class ToolCaller:
    """Greedy tool-call prediction with a student model and its tokenizer.

    With `grammar` (the default) decoding is constrained to calls the offered tools accept.
    A student trained on conversations (`conversation`) reads a history (`predict_turn`) and may
    answer in text, a JSON string, instead of calling.
    """

    def __init__(self, model, tokenizer: Tokenizer, fmt: PromptFormat, max_new_tokens: int = 256,
                 grammar: bool = True, copied: list[str] | None = None, known_tools: list[str] | None = None,
                 conversation: bool = False):
        self.conversation = conversation
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

        `decoding` = {"grammar", "copied_params", "known_tools", "conversation"}; copied values and
        abstaining both need the grammar, so without it they are off.
        """
        grammar = decoding.get("grammar", True) if grammar is None else grammar
        return cls(model, tokenizer, fmt, max_new_tokens=max_new_tokens or fmt.context, grammar=grammar,
                   copied=decoding.get("copied_params") if grammar else None,
                   known_tools=decoding.get("known_tools") if grammar else None,
                   conversation=bool(decoding.get("conversation")))

    def predict(self, utterance: str, tools: list[Tool]) -> Prediction:
        return self._predict(utterance, tools, None)

    def predict_turn(self, history: list[dict], tools: list[Tool]) -> Prediction:
        """The next assistant turn after `history` (normalized messages, conversation.py): calls,
        or with a conversation-trained student a final answer in `content`."""
        return self._predict(None, tools, history)

    def _predict(self, utterance: str | None, tools: list[Tool], history: list[dict] | None) -> Prediction:
        start = time.perf_counter()
        ids, constraint, dropped = self._prepare(utterance, tools, history)
        try:
            out: list[int] | Exception = greedy_decode(self.model, ids, eos_id=self.eos_id,
                                                       max_new_tokens=self.max_new_tokens, logits_filter=constraint)
        except _Abstain as exc:
            out = exc
        prediction = self._finish(out, ids, constraint, tools, (time.perf_counter() - start) * 1000)
        prediction.dropped = dropped
        return prediction

    def predict_many(self, requests: list[tuple[str, list[Tool]]], batch_size: int = 16) -> list[Prediction]:
        """`predict` of every (utterance, tools), `batch_size` of them decoding together (one forward
        pass a step for all, a finished one replaced by the next request) where the runner's runtime
        batches (batching.py); one at a time otherwise. Each answer is `predict`'s; `latency_ms` is
        the whole time shared among the requests."""
        engine = batch_engine(self.model, batch_size) if batch_size > 1 else None
        if engine is None:
            return [self.predict(utterance, tools) for utterance, tools in requests]
        start = time.perf_counter()
        prepared = [self._prepare(utterance, tools)[:2] for utterance, tools in requests]
        outs = decode_many(engine, [ids for ids, _ in prepared], eos_id=self.eos_id,
                           max_new_tokens=[self.max_new_tokens] * len(prepared),
                           logits_filters=[constraint for _, constraint in prepared], width=batch_size)
        for out in outs:
            if isinstance(out, Exception) and not isinstance(out, _Abstain):
                raise out
        share = (time.perf_counter() - start) * 1000 / max(len(requests), 1)
        return [self._finish(out, ids, constraint, tools, share)
                for out, (ids, constraint), (_, tools) in zip(outs, prepared, requests)]

    def _prepare(self, utterance: str | None, tools: list[Tool], history: list[dict] | None = None):
        """The prompt's ids, the decoding constraint (grammar, abstaining) and the old exchanges
        left out of the history (the context policy) of one request or conversation turn."""
        dropped = 0
        if history is None and self.conversation:
            history = [{"role": "user", "content": utterance}]
        if history is None:
            ids = prompt_ids(self.format, self.tokenizer, utterance, tools)
        else:
            by_name = {t.name: t for t in tools}
            ids, dropped = fitted_prompt_ids(self.format, self.tokenizer, history, tools, by_name,
                                             self.max_len - MIN_ANSWER_TOKENS)
            utterance = source_text(trimmed(history, dropped))
        room = self.max_len - len(ids)
        if room < MIN_ANSWER_TOKENS:
            what = "the request" if history is None else "the conversation (its first request and last turn)"
            raise PromptTooLong(
                f"{what} with its {len(tools)} offered tools takes {len(ids)} tokens of the student's "
                f"{self.max_len}-token context, leaving {max(room, 0)} for the answer. Fix: offer fewer tools "
                "(e.g. `--tools FILE` with the few a request can need; the student was trained on the recipe's "
                "`mash.tools_per_call`), or distill with a larger `student.max_seq_len`.")
        constraint = self.grammar.matcher(tools, utterance=utterance, copied=self.copied,
                                          allow_text=self.conversation) if self.grammar else None
        if self.known_first:
            constraint = _AbstainUnoffered(self, {t.name for t in tools}, constraint)
        return ids, constraint, dropped

    def _finish(self, out: list[int] | Exception, ids: list[int], constraint, tools: list[Tool],
                latency_ms: float) -> Prediction:
        """The Prediction from the generated ids (or the abstention that stopped them)."""
        if isinstance(out, _Abstain):
            return Prediction(calls=[], text="[]", latency_ms=latency_ms, abstained=True, prompt_tokens=len(ids))
        text = self.tokenizer.decode(out, skip_special_tokens=False)
        calls, content = parse_completion(text), None
        if calls is None and self.conversation:
            found = parse_answer(text)
            if found is not None:  # a final answer in text: no call
                calls, content = [], found[1]
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
                          prompt_tokens=len(ids), content=content)


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
