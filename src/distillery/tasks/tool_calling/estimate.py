"""`distillery estimate`: requests, tokens, dollars and time of a Mash before anything is sent.

The prompts are the real ones (`toolgen.plan` builds every request the run would start
with); only the answers are guessed: each example is sized like the offline teacher's
examples for the same catalog, and a share `ACCEPTANCE` of them is assumed to pass the
judge. The guess is checked against real runs in tests/test_teachers_llamacpp.py.
"""

from __future__ import annotations

import json
import math

from distillery.teachers import anthropic, gemini, openai
from distillery.teachers.base import is_loopback
from distillery.teachers.cost import price_for
from distillery.tasks.tool_calling.offline import OfflineTeacher
from distillery.tasks.tool_calling.toolgen import plan

# Share of asked-for examples that pass the judge: strong models do better (then the estimate
# errs high, the safe side for a budget), a 135M local model a little worse.
ACCEPTANCE = 0.75
PROMPT_CHARS_PER_TOKEN = 3.6
ANSWER_CHARS_PER_TOKEN = 3.2  # JSON answers: quotes, braces and short keys tokenize densely
TOKENS_PER_SECOND = 80.0  # a hosted model's answer speed
LATENCY = 0.8  # seconds before the first answer token
DEFAULT_MODELS = {"openai": openai.DEFAULT_MODEL, "anthropic": anthropic.DEFAULT_MODEL, "gemini": gemini.DEFAULT_MODEL}


def estimate(recipe) -> dict:
    """What the recipe's Mash would take: requests, tokens, USD (None if the price is unknown), seconds."""
    t, m = recipe.teacher, recipe.mash
    result = {"provider": t.provider, "model": None, "examples": m.total_examples, "requests": 0,
              "input_tokens": 0, "output_tokens": 0, "usd": 0.0, "seconds": 0.0}
    if t.provider in ("offline", "replay"):
        return result  # no teacher is paid or waited for
    model = t.model or DEFAULT_MODELS[t.provider]
    requests = math.ceil(m.total_examples / (m.examples_per_call * ACCEPTANCE))
    # A local server turns the schema into a grammar; a hosted API reads it as prompt tokens.
    with_schema = not is_loopback(t.base_url)
    prompt_chars = 0
    for index in range(requests):
        request = plan(index, recipe.catalog, m, t, recipe.seed).request
        prompt_chars += sum(len(message["content"]) + 8 for message in request.messages)
        if with_schema:
            prompt_chars += len(json.dumps(request.json_schema))
    per_example = _example_tokens(recipe)
    answer = min(t.max_tokens, math.ceil(m.examples_per_call * per_example + 5))  # + `{"examples": [...]}`
    price = price_for(t, model)
    input_tokens, output_tokens = round(prompt_chars / PROMPT_CHARS_PER_TOKEN), requests * answer
    result.update(model=model, requests=requests, concurrency=t.concurrency, examples_per_call=m.examples_per_call,
                  acceptance=ACCEPTANCE, input_tokens=input_tokens, output_tokens=output_tokens,
                  usd=None if price is None else round(price.cost(input_tokens, output_tokens), 4),
                  seconds=round(math.ceil(requests / t.concurrency) * (LATENCY + answer / TOKENS_PER_SECOND), 1),
                  price=None if price is None else {"input": price.input, "output": price.output})
    return result


def _example_tokens(recipe, sample: int = 200) -> float:
    """Answer tokens per example, sized on the offline teacher's examples for this catalog."""
    teacher = OfflineTeacher(recipe.catalog, seed=recipe.seed, no_call_ratio=recipe.mash.no_call_ratio,
                             parallel_ratio=recipe.mash.parallel_ratio)
    chars = 0
    for index in range(sample):
        candidate = teacher.candidate(index)
        chars += len(json.dumps({"utterance": candidate["utterance"], "calls": candidate["calls"]},
                                ensure_ascii=False))
    return chars / sample / ANSWER_CHARS_PER_TOKEN


def describe(numbers: dict) -> str:
    """The estimate in a few lines for people."""
    if numbers["requests"] == 0:
        return f"teacher.provider `{numbers['provider']}` sends no requests: $0, no waiting for a teacher."
    usd = "unknown (no price for this model: add `teacher.price`)" if numbers["usd"] is None else \
        f"${numbers['usd']:.2f}"
    minutes = numbers["seconds"] / 60
    return "\n".join([
        f"Estimate for {numbers['examples']} examples from {numbers['provider']} `{numbers['model']}` "
        "(nothing has been sent):",
        f"  requests       {numbers['requests']:,}  ({numbers['examples_per_call']} examples each, "
        f"~{numbers['acceptance']:.0%} accepted)",
        f"  input tokens   {numbers['input_tokens']:,}",
        f"  output tokens  {numbers['output_tokens']:,}",
        f"  cost           {usd}",
        f"  time           ~{minutes:.1f} min ({numbers['concurrency']} requests at a time, "
        f"answers at ~{TOKENS_PER_SECOND:.0f} tokens/s)",
    ])
