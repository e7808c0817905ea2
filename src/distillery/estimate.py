"""`distillery estimate`: requests, tokens, dollars and time of a Mash before anything is sent.

The task counts its requests and their prompts (`Task.estimate`, with the real prompts the run
would send); this module turns counts into tokens, dollars and seconds the same way for every
task, and writes the summary people read.
"""

from __future__ import annotations

import math

from distillery.teachers import anthropic, gemini, openai
from distillery.teachers.cost import batch_price, price_for

PROMPT_CHARS_PER_TOKEN = 3.6
ANSWER_CHARS_PER_TOKEN = 3.2  # JSON answers: quotes, braces and short keys tokenize densely
TOKENS_PER_SECOND = 80.0  # a hosted model's answer speed
LATENCY = 0.8  # seconds before the first answer token
BATCH_WINDOW = 24 * 3600.0  # seconds a Batch API may take (all three promise a day; most end far sooner)
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
    # Both prices, whichever way the recipe sends: the Batch API's half is worth knowing about.
    live, batch = (None if p is None else round(p.cost(input_tokens, output_tokens), 4)
                   for p in (price, batch_price(price, t.provider)))
    live_seconds = math.ceil(requests / t.concurrency) * (LATENCY + answer_tokens / TOKENS_PER_SECOND)
    return {**unpaid(recipe), "model": model, "requests": requests, "concurrency": t.concurrency, **extra,
            "input_tokens": input_tokens, "output_tokens": output_tokens,
            "usd": batch if t.batch else live, "usd_live": live, "usd_batch": batch, "batch": t.batch,
            "seconds": BATCH_WINDOW if t.batch else round(live_seconds, 1),
            "price": None if price is None else {"input": price.input, "output": price.output}}


def describe(numbers: dict) -> str:
    """The estimate in a few lines for people."""
    if numbers["requests"] == 0:
        return f"teacher.provider `{numbers['provider']}` sends no requests: $0, no waiting for a teacher."
    if numbers["usd"] is None:
        usd = "unknown (no price for this model: add `teacher.price`)"
    elif numbers.get("batch"):
        usd = f"${numbers['usd_batch']:.2f} through the Batch API (${numbers['usd_live']:.2f} live)"
    else:
        usd = f"${numbers['usd']:.2f} live (${numbers['usd_batch']:.2f} with `teacher.batch: true`)" \
            if numbers.get("usd_batch") and numbers["usd"] > 0 else f"${numbers['usd']:.2f}"
    if numbers.get("batch"):
        time = "up to 24 h (the Batch API's window; most batches end far sooner)"
    else:
        time = (f"~{numbers['seconds'] / 60:.1f} min ({numbers['concurrency']} requests at a time, "
                f"answers at ~{TOKENS_PER_SECOND:.0f} tokens/s)")
    if "examples_per_call" in numbers:
        each = f"{numbers['examples_per_call']} examples each, ~{numbers['acceptance']:.0%} accepted"
    else:
        each = numbers.get("each", "")
    if numbers.get("samples_per_request", 1) > 1:
        each += (f"; {numbers['samples_per_request']} samples of each: {numbers['writing_requests']:,} requests write "
                 f"examples, {numbers['sample_requests']:,} answer them again")
    lines = [
        f"Estimate for {numbers['examples']} examples from {numbers['provider']} `{numbers['model']}` "
        "(nothing has been sent):",
        f"  requests       {numbers['requests']:,}" + (f"  ({each})" if each else ""),
        f"  input tokens   {numbers['input_tokens']:,}",
        f"  output tokens  {numbers['output_tokens']:,}",
        f"  cost           {usd}",
        f"  time           {time}",
    ]
    return "\n".join(lines + _judge_lines(numbers))


def _judge_lines(numbers: dict) -> list[str]:
    """The judge's share of an estimate (docs/judges.md), when the recipe has a judge."""
    judge = numbers.get("judge")
    if not judge:
        return []
    if not judge["requests"]:
        return [f"  judge          {judge['kind']}: runs here, sends nothing"]
    usd = f"${judge['usd']:.2f}" if judge["usd"] is not None else \
        "unknown (no price for the judge model: add `judge.price`)"
    total = "unknown" if numbers.get("total_usd") is None else f"${numbers['total_usd']:.2f}"
    return [f"  judge          {judge['requests']:,} requests at most to {judge['provider']} `{judge['model']}` "
            f"({judge['input_tokens']:,} input + {judge['output_tokens']:,} output tokens), {usd}",
            f"  total cost     {total} (teacher and judge)"]
