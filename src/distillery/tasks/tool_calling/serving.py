"""A tool-calling Spirit behind `/v1/chat/completions`: the offered tools, `tool_choice`, and
the calls as `tool_calls`.

The request's `tools` replace the Spirit's own catalog; `tool_choice` becomes the grammar's
rules (a call required, at most one call, one named tool). Decoding is `ToolCaller.predict`,
the same as `predict` and the Tasting; only the token budget and the grammar change, on the
per-request copy of the caller that serve hands to `run`.
"""

from __future__ import annotations

from distillery.errors import DistilleryError
from distillery.openai_api import ApiError, ChatRequest
from distillery.tasks.base import Reply
from distillery.tasks.tool_calling.catalog import parse_tools
from distillery.tasks.tool_calling.conversation import ConversationError, read_messages
from distillery.tasks.tool_calling.predictor import PromptTooLong
from distillery.tasks.tool_calling.schema import Tool


class _Choice:
    """The call grammar with tool_choice applied: a call required, or at most one call."""

    def __init__(self, grammar, allow_none: bool, allow_parallel: bool):
        self.grammar, self.allow_none, self.allow_parallel = grammar, allow_none, allow_parallel

    def matcher(self, tools, **kwargs):
        return self.grammar.matcher(tools, allow_none=self.allow_none, allow_parallel=self.allow_parallel, **kwargs)


def offered_tools(request: ChatRequest, catalog: list[Tool]) -> tuple[list[Tool], bool]:
    """The offered tools and whether answering with no call is allowed, from tools and tool_choice."""
    tools = catalog
    if request.tools is not None:
        try:
            tools = parse_tools(request.tools, where="tools")
        except DistilleryError as exc:
            raise ApiError(400, str(exc), param="tools") from None
    choice = request.tool_choice
    if choice in (None, "auto", "none"):  # "none" is answered without decoding
        return tools, True
    if not tools:
        raise ApiError(400, f"tool_choice {choice if isinstance(choice, str) else 'function'!r} needs tools. "
                            "Fix: send tools, or leave out tool_choice.", param="tool_choice")
    if choice == "required":
        return tools, False
    named = [t for t in tools if t.name == choice.function.name]
    if not named:
        raise ApiError(400, f"tool_choice names {choice.function.name!r}, which is not among the offered tools "
                            f"({', '.join(t.name for t in tools)}).", param="tool_choice")
    return named, False


class CallTurn:
    """One chat request to a tool-calling Spirit. `reply` is set when no decoding is needed
    (`tool_choice: "none"`, no tools on offer); else serve calls `run` with its caller copy.

    A Spirit distilled from conversations answers the next turn of the whole conversation (the
    calls made so far, their `tool` results); one distilled on single requests answers the last
    user message, and refuses a conversation that ends with tool results, which it cannot read.
    """

    def __init__(self, request: ChatRequest, utterance: str, catalog: list[Tool], conversation: bool = False,
                 model: str = "this model"):
        self.utterance = utterance
        self.history = None
        if conversation:
            try:
                self.history = read_messages(request.messages, final=False)
            except ConversationError as why:
                raise ApiError(400, f"messages: {why}. Fix: send the conversation in OpenAI's chat format, ending "
                                    "with a user message or the tool results of the last calls.",
                               param="messages") from None
        elif isinstance(request.messages[-1], dict) and request.messages[-1].get("role") in ("tool", "function"):
            raise ApiError(400, f"{model} was distilled on single requests and cannot read tool results. Fix: send "
                                "the request alone, or distill a Spirit from conversations (an `agent:` recipe, "
                                "docs/agents.md).", param="messages")
        self.tools, self.allow_none = offered_tools(request, catalog)
        self.allow_parallel = request.parallel_tool_calls is not False
        self.max_tokens = request.token_limit()
        self.reply = Reply([], None, "stop", 0) if request.tool_choice == "none" or not self.tools else None

    def run(self, caller) -> Reply:
        caller.max_new_tokens = self.max_tokens or caller.model.max_len  # decoding stops at the context's end
        if not (self.allow_none and self.allow_parallel):
            caller.grammar = _Choice(caller.grammar, self.allow_none, self.allow_parallel)
            caller.known_first = {}  # a call was asked for: never abstain
        try:
            prediction = (caller.predict(self.utterance, self.tools) if self.history is None
                          else caller.predict_turn(self.history, self.tools))
        except PromptTooLong as exc:
            # The prompt would leave the answer no room: refuse instead of answering blind.
            raise ApiError(400, str(exc), param="messages", code="context_length_exceeded") from None
        except ValueError as exc:  # a catalog llguidance cannot compile (CallMatcher raises it)
            raise ApiError(400, f"the offered tools do not make a grammar: {exc}", param="tools") from None
        finish = "length" if prediction.unfinished else "tool_calls" if prediction.calls else "stop"
        return Reply(prediction.calls or [], prediction.content, finish, prediction.prompt_tokens)
