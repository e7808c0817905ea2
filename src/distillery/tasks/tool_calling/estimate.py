"""`distillery estimate` for tool calling: the requests of the Mash before anything is sent.

The prompts are the real ones (`toolgen.plan` builds every request the run would start
with); only the answers are guessed: each example is sized like the offline teacher's
examples for the same catalog, and a share `ACCEPTANCE` of them is assumed to pass the
judge. The guess is checked against real runs in tests/test_teachers_llamacpp.py.
"""

from __future__ import annotations

import json
import math

from distillery.estimate import ANSWER_CHARS_PER_TOKEN, priced, unpaid
from distillery.teachers.base import is_loopback
from distillery.tasks.tool_calling.offline import OfflineTeacher
from distillery.tasks.tool_calling.toolgen import plan

# Share of asked-for examples that pass the judge: strong models do better (then the estimate
# errs high, the safe side for a budget), a 135M local model a little worse.
ACCEPTANCE = 0.75


def estimate(recipe) -> dict:
    """What the recipe's Mash would take: requests, tokens, USD (None if the price is unknown), seconds."""
    t, m = recipe.teacher, recipe.mash
    if t.provider in ("offline", "replay"):
        return unpaid(recipe)  # no teacher is paid or waited for
    requests = math.ceil(m.total_examples / (m.examples_per_call * ACCEPTANCE))
    # A local server turns the schema into a grammar; a hosted API reads it as prompt tokens.
    with_schema = not is_loopback(t.base_url)
    prompt_chars = 0
    for index in range(requests):
        request = plan(index, recipe.catalog, m, t, recipe.seed).request
        prompt_chars += sum(len(message["content"]) + 8 for message in request.messages)
        if with_schema:
            prompt_chars += len(json.dumps(request.json_schema))
    answer = min(t.max_tokens, math.ceil(m.examples_per_call * _example_tokens(recipe) + 5))  # + `{"examples": [...]}`
    return priced(recipe, requests=requests, prompt_chars=prompt_chars, answer_tokens=answer,
                  examples_per_call=m.examples_per_call, acceptance=ACCEPTANCE)


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
