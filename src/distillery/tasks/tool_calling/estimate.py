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
JUDGE_ANSWER_TOKENS = 60  # a grade and a one-sentence reason


def estimate(recipe) -> dict:
    """What the recipe's Mash would take: requests, tokens, USD (None if the price is unknown), seconds."""
    t, m = recipe.teacher, recipe.mash
    if t.provider in ("offline", "replay"):
        return unpaid(recipe)  # no teacher is paid or waited for
    requests = math.ceil(m.total_examples / (m.examples_per_call * ACCEPTANCE))
    # A local server turns the schema into a grammar; a hosted API reads it as prompt tokens.
    with_schema = not is_loopback(t.base_url)
    prompt_chars = 0
    asks = [plan(index, recipe.catalog, m, t, recipe.seed) for index in range(requests)]
    for ask in asks:
        prompt_chars += _prompt_chars(ask.request, with_schema)
    answer = min(t.max_tokens, math.ceil(m.examples_per_call * _example_tokens(recipe) + 5))  # + `{"examples": [...]}`
    if recipe.judge is None:
        return priced(recipe, requests=requests, prompt_chars=prompt_chars, answer_tokens=answer,
                      examples_per_call=m.examples_per_call, acceptance=ACCEPTANCE)
    return _best_of_n(recipe, asks, prompt_chars, answer, with_schema)


def _prompt_chars(request, with_schema: bool) -> int:
    chars = sum(len(message["content"]) + 8 for message in request.messages)
    return chars + (len(json.dumps(request.json_schema)) if with_schema else 0)


def _best_of_n(recipe, asks: list, prompt_chars: int, answer: int, with_schema: bool) -> dict:
    """The estimate with best-of-N and a judge: the teacher answers every request's utterances N-1 more
    times (best_of_n.py), and an llm judge grades every answer (judges/llm.py), both sized on
    the offline teacher's examples; an exact or execute judge sends nothing."""
    from distillery.estimate import DEFAULT_MODELS, PROMPT_CHARS_PER_TOKEN
    from distillery.judges import Case
    from distillery.judges.config import judge_teacher
    from distillery.judges.llm import judge_request
    from distillery.tasks.tool_calling.best_of_n import answer_request, judge_prompt
    from distillery.teachers.cost import price_for

    t, m, judge, n = recipe.teacher, recipe.mash, recipe.judge, recipe.mash.samples_per_request
    by_name = {tool.name: tool for tool in recipe.catalog}
    examples = _offline_examples(recipe, m.examples_per_call)
    utterances = [ex["utterance"] for ex in examples]
    calls_tokens = sum(len(json.dumps({"calls": ex["calls"]}, ensure_ascii=False)) for ex in examples) \
        / ANSWER_CHARS_PER_TOKEN
    sampled = len(asks) * (n - 1)
    for ask in asks:
        shown = [by_name[name] for name in ask.tools]
        for s in range(1, n):
            prompt_chars += _prompt_chars(answer_request(ask, shown, utterances, s, t, recipe.seed), with_schema)
    output = len(asks) * answer + sampled * min(t.max_tokens, math.ceil(calls_tokens + 5))
    numbers = priced(recipe, requests=len(asks) + sampled, prompt_chars=prompt_chars,
                     answer_tokens=math.ceil(output / (len(asks) + sampled)),
                     examples_per_call=m.examples_per_call, acceptance=ACCEPTANCE, samples_per_request=n,
                     writing_requests=len(asks), sample_requests=sampled)
    numbers["judge"] = {"kind": judge.kind, "requests": 0, "input_tokens": 0, "output_tokens": 0, "usd": 0.0}
    if judge.kind == "llm":
        # At most one grade per sample of every example (samples that agree share one): the safe side.
        settings = judge_teacher(judge, t)
        model = settings.model or DEFAULT_MODELS[settings.provider]
        grades = len(asks) * m.examples_per_call * n
        chars = 0
        for k, ask in enumerate(asks[:50]):  # a sample of the prompts, scaled up
            shown = [by_name[name] for name in ask.tools]
            example = examples[k % len(examples)]
            case = Case(index=ask.index, key=f"{ask.index}.0", request={}, answer="calls",
                        prompt=judge_prompt(shown, example["utterance"]), problem=lambda calls: None,
                        same=lambda a, b: a == b, show=json.dumps)
            chars += _prompt_chars(judge_request(case, json.dumps(example["calls"]), judge),
                                   not is_loopback(settings.base_url))
        input_tokens = round(chars / min(len(asks), 50) * grades / PROMPT_CHARS_PER_TOKEN)
        output_tokens = grades * min(judge.max_tokens, JUDGE_ANSWER_TOKENS)
        price = price_for(settings, model)
        numbers["judge"].update(provider=settings.provider, model=model, requests=grades, input_tokens=input_tokens,
                                output_tokens=output_tokens,
                                usd=None if price is None else round(price.cost(input_tokens, output_tokens), 4))
    usd = (numbers["usd"], numbers["judge"]["usd"])
    numbers["total_usd"] = None if None in usd else round(sum(usd), 4)
    return numbers


def _example_tokens(recipe, sample: int = 200) -> float:
    """Answer tokens per example, sized on the offline teacher's examples for this catalog."""
    chars = sum(len(json.dumps(example, ensure_ascii=False)) for example in _offline_examples(recipe, sample))
    return chars / sample / ANSWER_CHARS_PER_TOKEN


def _offline_examples(recipe, n: int) -> list[dict]:
    """`n` of the offline teacher's examples for this catalog: `{"utterance", "calls"}`."""
    teacher = OfflineTeacher(recipe.catalog, seed=recipe.seed, no_call_ratio=recipe.mash.no_call_ratio,
                             parallel_ratio=recipe.mash.parallel_ratio)
    return [{"utterance": c["utterance"], "calls": c["calls"]} for c in map(teacher.candidate, range(n))]
