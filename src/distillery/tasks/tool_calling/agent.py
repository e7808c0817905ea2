"""The student as an agent: `distillery run SPIRIT --tools my_tools.py "request"`.

The loop: the student answers the conversation so far; each call it makes is run (the tools
module's function), its result appended as a `tool` message, and the student is asked again,
until it answers in text, makes no call, or has taken `max_steps` turns. Decoding is the
Tasting's and serve's (`ToolCaller.predict_turn`, under the grammar of the offered tools), so
a call that reaches a tool is always well-formed.
"""

from __future__ import annotations

from collections.abc import Callable

from distillery.errors import DistilleryError
from distillery.tasks.tool_calling.conversation import to_openai
from distillery.tasks.tool_calling.schema import Tool

DEFAULT_MAX_STEPS = 4


def run_agent(caller, run_tool: Callable[[str, dict], str], tools: list[Tool], request: str, *,
              max_steps: int = DEFAULT_MAX_STEPS, on_step: Callable[[dict], None] | None = None) -> dict:
    """Run the student on `request` with `tools` on offer: {"answer", "stopped", "steps", "messages"}.

    `stopped` says why it ended: "answer" (a final answer in text), "no call" (the student made
    none: an empty answer), or "max_steps". `messages` is the whole conversation in OpenAI's
    chat format; `on_step` sees each normalized message as it is added.
    """
    if not getattr(caller, "conversation", False):
        raise DistilleryError("this Spirit was distilled on single requests, so it cannot read a tool's result "
                              "and go on. Fix: distill one from conversations (a recipe with `agent:`, "
                              "docs/agents.md), or use `distillery predict` for one call.")
    if not request.strip():
        raise DistilleryError("the request is empty. Fix: e.g. `distillery run my.spirit --tools tools.py "
                              "\"what's the weather in Oslo?\"`.")
    history: list[dict] = [{"role": "user", "content": request.strip()}]

    def add(message: dict) -> None:
        history.append(message)
        if on_step:
            on_step(message)

    stopped, answer, steps = "max_steps", None, 0
    while steps < max_steps:
        prediction = caller.predict_turn(history, tools)
        steps += 1
        if prediction.content is not None:
            add({"role": "assistant", "content": prediction.content})
            stopped, answer = "answer", prediction.content
            break
        if not prediction.calls:
            add({"role": "assistant", "calls": []})
            stopped = "no call"
            break
        add({"role": "assistant", "calls": prediction.calls})
        for call in prediction.calls:
            add({"role": "tool", "name": call["name"], "content": run_tool(call["name"], call["arguments"])})
    return {"answer": answer, "stopped": stopped, "steps": steps, "messages": to_openai(history)}


def max_steps_of(metadata: dict) -> int:
    """The recipe's `agent.max_steps` a Spirit was distilled with (its metadata's recipe)."""
    import yaml

    try:
        recipe = yaml.safe_load(metadata.get("recipe") or "") or {}
    except yaml.YAMLError:
        recipe = {}
    agent = recipe.get("agent") if isinstance(recipe, dict) else None
    steps = agent.get("max_steps") if isinstance(agent, dict) else None
    return steps if isinstance(steps, int) and steps > 0 else DEFAULT_MAX_STEPS
