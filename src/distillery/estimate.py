"""`distillery estimate`: requests, tokens, dollars and time of a Mash before anything is sent.

The task counts its requests and their prompts (`Task.estimate`, with the real prompts the run
would send); this module turns counts into tokens, dollars and seconds the same way for every
task, and writes the summary people read.
"""

from __future__ import annotations

import math

from distillery.teachers import anthropic, gemini, openai
from distillery.teachers.cost import price_for

PROMPT_CHARS_PER_TOKEN = 3.6
ANSWER_CHARS_PER_TOKEN = 3.2  # JSON answers: quotes, braces and short keys tokenize densely
TOKENS_PER_SECOND = 80.0  # a hosted model's answer speed
LATENCY = 0.8  # seconds before the first answer token
DEFAULT_MODELS = {"openai": openai.DEFAULT_MODEL, "anthropic": anthropic.DEFAULT_MODEL, "gemini": gemini.DEFAULT_MODEL}


def unpaid(recipe) -> dict:
    """The numbers of a Mash that sends nothing (offline and replay teachers)."""
    return {"provider": recipe.teacher.provider, "model": None, "examples": recipe.mash.total_examples,
            "requests": 0, "input_tokens": 0, "output_tokens": 0, "usd": 0.0, "seconds": 0.0}


def priced(recipe, *, requests: int, prompt_chars: int, answer_tokens: int, **extra) -> dict:
    """The numbers of `requests` teacher requests whose prompts total `prompt_chars` characters
    and whose answers take `answer_tokens` tokens each; `extra` keys describe how the task counted."""
    t = recipe.teacher
    model = t.model or DEFAULT_MODELS[t.provider]
    price = price_for(t, model)
    input_tokens, output_tokens = round(prompt_chars / PROMPT_CHARS_PER_TOKEN), requests * answer_tokens
    return {**unpaid(recipe), "model": model, "requests": requests, "concurrency": t.concurrency, **extra,
            "input_tokens": input_tokens, "output_tokens": output_tokens,
            "usd": None if price is None else round(price.cost(input_tokens, output_tokens), 4),
            "seconds": round(math.ceil(requests / t.concurrency) * (LATENCY + answer_tokens / TOKENS_PER_SECOND), 1),
            "price": None if price is None else {"input": price.input, "output": price.output}}


def describe(numbers: dict) -> str:
    """The estimate in a few lines for people."""
    if numbers["requests"] == 0:
        return f"teacher.provider `{numbers['provider']}` sends no requests: $0, no waiting for a teacher."
    usd = "unknown (no price for this model: add `teacher.price`)" if numbers["usd"] is None else \
        f"${numbers['usd']:.2f}"
    minutes = numbers["seconds"] / 60
    if "examples_per_call" in numbers:
        each = f"{numbers['examples_per_call']} examples each, ~{numbers['acceptance']:.0%} accepted"
    else:
        each = numbers.get("each", "")
    return "\n".join([
        f"Estimate for {numbers['examples']} examples from {numbers['provider']} `{numbers['model']}` "
        "(nothing has been sent):",
        f"  requests       {numbers['requests']:,}" + (f"  ({each})" if each else ""),
        f"  input tokens   {numbers['input_tokens']:,}",
        f"  output tokens  {numbers['output_tokens']:,}",
        f"  cost           {usd}",
        f"  time           ~{minutes:.1f} min ({numbers['concurrency']} requests at a time, "
        f"answers at ~{TOKENS_PER_SECOND:.0f} tokens/s)",
    ])
