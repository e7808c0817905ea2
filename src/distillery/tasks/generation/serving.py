"""A generation Spirit behind `/v1/chat/completions`: the answer is the message's text content.

The request's `temperature`, `top_p`, `seed` and `max_tokens` (or `max_completion_tokens`)
replace the Spirit's own decoding settings for that request, as the OpenAI API reads them.
Tools, and a response format other than text, would do nothing here and are refused.
"""

from __future__ import annotations

from distillery.openai_api import ApiError, ChatRequest
from distillery.tasks.base import Reply
from distillery.tasks.generation.predictor import PromptTooLong


def _number(extra: dict, name: str, low: float, high: float, *, low_open: bool = False) -> float | None:
    value = extra.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value > high or \
            (value <= low if low_open else value < low):
        bound = f"above {low:g}" if low_open else f"from {low:g}"
        raise ApiError(400, f"{name}: {value!r} is not a number {bound} to {high:g}.", param=name)
    return float(value)


class TextTurn:
    """One chat request to a generation Spirit; serve calls `run` with its caller copy."""

    reply = None  # always decoded

    def __init__(self, request: ChatRequest, utterance: str, model: str):
        if request.tools:
            raise ApiError(400, f"{model} is a generation Spirit and calls no tools. Fix: leave out tools.",
                           param="tools")
        extra = request.model_extra or {}
        wanted = extra.get("response_format")
        given = wanted.get("type") if isinstance(wanted, dict) else None
        if wanted is not None and given != "text":
            raise ApiError(400, f"{model} writes free text; response_format {given!r} cannot make it JSON. "
                                "Fix: `response_format: {\"type\": \"text\"}` or leave it out.",
                           param="response_format")
        seed = extra.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ApiError(400, f"seed: {seed!r} is not an integer.", param="seed")
        self.utterance, self.seed = utterance, seed
        self.temperature = _number(extra, "temperature", 0, 2)
        self.top_p = _number(extra, "top_p", 0, 1, low_open=True)
        self.max_tokens = request.token_limit()

    def run(self, caller) -> Reply:
        for name in ("temperature", "top_p", "seed"):
            if getattr(self, name) is not None:
                setattr(caller, name, getattr(self, name))
        if self.max_tokens is not None:
            caller.max_new_tokens = self.max_tokens
        try:
            prediction = caller.predict(self.utterance)
        except PromptTooLong as exc:
            raise ApiError(400, str(exc), param="messages", code="context_length_exceeded") from None
        return Reply([], prediction.output, "length" if prediction.unfinished else "stop", prediction.prompt_tokens)
