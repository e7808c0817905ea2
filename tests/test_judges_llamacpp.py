"""Best-of-N against a real OpenAI-compatible server on loopback: llama.cpp's server serving
SmolLM2-135M-Instruct as both the teacher and the llm judge (the server fixture of
test_teachers_llamacpp.py). N = 4, k = 1: every request the teacher answers with examples is
answered three more times, every distinct answer is graded, each in its journal; `distillery
mash` SIGKILLed twice at random moments and run again pays for nothing twice."""

from __future__ import annotations

import json
import random
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from test_teachers_llamacpp import EXAMPLES, CountingProxy, llama_server, mash_cli  # noqa: F401 (a fixture)

pytestmark = pytest.mark.integration
KILLS = 2
# At a kill at most one teacher and one judge request are in flight (concurrency 1 each).
IN_FLIGHT = 2
RECIPE = """\
name: judged
seed: 2
tools: needle_tools.json
teacher: {{provider: openai, base_url: "{url}", model: smollm2-135m, temperature: 0.3, max_tokens: 250,
           concurrency: 1}}
mash: {{total_examples: 10, examples_per_call: 3, tools_per_call: {{min: 2, max: 2}}, no_call_ratio: 0.1,
        samples_per_request: 4, keep: 1}}
# A 135M model's four answers rarely all agree: one of four is enough here, or most would be tails.
judge: {{kind: llm, rubric: "the calls do exactly what the message asks, with every value taken from it",
         agreement: 0.25, max_tokens: 100, concurrency: 1}}
"""


def journal(run_dir: Path, *parts: str) -> list[dict]:
    path = run_dir.joinpath("journal", *parts, "responses.jsonl")
    found = []
    for line in path.read_text().split("\n") if path.exists() else []:
        try:
            found.append(json.loads(line))
        except ValueError:
            pass  # a torn last line
    return found


@pytest.fixture(scope="module")
def judged_run(llama_server, tmp_path_factory):  # noqa: F811 (the imported fixture)
    folder = tmp_path_factory.mktemp("judged")
    (folder / "needle_tools.json").write_bytes((EXAMPLES / "needle_tools.json").read_bytes())
    rng_seed = random.randrange(10**6)
    rng = random.Random(rng_seed)
    with CountingProxy(llama_server) as proxy:
        recipe = folder / "recipe.yaml"
        recipe.write_text(RECIPE.format(url=proxy.url))
        runs = folder / "runs"
        run_dir = runs / "judged-v1"
        kills = 0
        while kills < KILLS:
            before = len(proxy.answered)
            process = mash_cli(recipe, runs)
            deadline = time.monotonic() + 600
            # Into the thick of it: writing, sampling and grading have all begun.
            while len(proxy.answered) < before + 6 and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(rng.uniform(0, 1.5))
            if process.poll() is not None:
                break
            process.send_signal(signal.SIGKILL)
            process.wait()
            proxy.drain()
            kills += 1
        final = mash_cli(recipe, runs)
        out, err = final.communicate(timeout=1800)
        answered_at_finish = len(proxy.answered)
        again = mash_cli(recipe, runs)
        again_out, again_err = again.communicate(timeout=300)
        with proxy.lock:
            answered = [seed for seed, _ in proxy.answered]
    return dict(rng_seed=rng_seed, kills=kills, final=(final.returncode, out, err),
                again=(again.returncode, again_err), answered=answered, answered_at_finish=answered_at_finish,
                teacher=journal(run_dir), judge=journal(run_dir, "judge"), run_dir=run_dir)


def test_four_samples_of_every_request_and_the_judges_grades_are_each_journaled(judged_run):
    r = judged_run
    rc, out, err = r["final"]
    assert rc == 0, err[-3000:]
    assert "to the tails (llm judge" in " ".join(err.split())
    per_request = Counter(line["index"] for line in r["teacher"])
    # A request whose examples could be read was answered 3 more times; one that could not, never.
    assert set(per_request.values()) <= {1, 4} and 4 in per_request.values(), per_request
    sampled = {index for index, n in per_request.items() if n == 4}
    assert r["judge"] and {line["index"] for line in r["judge"]} <= sampled
    assert len({line["id"] for line in r["teacher"]}) == len(r["teacher"])
    assert len({line["id"] for line in r["judge"]}) == len(r["judge"])
    mash = [json.loads(line) for line in (r["run_dir"] / "mash.jsonl").read_text().splitlines()]
    assert sum("tail" not in ex for ex in mash) == 10
    ids = {line["id"] for line in r["teacher"]}
    for example in mash:
        teacher = example["teacher"]
        assert teacher["samples"] == 4 and teacher["journal_id"] in ids and teacher["request"] in sampled
        assert 1 <= teacher["judge"]["score"] <= 5 and teacher["judge"]["kind"] == "llm"
    rejects = [json.loads(line) for line in (r["run_dir"] / "mash.rejects.jsonl").read_text().splitlines()]
    assert all(isinstance(x["score"], int) for x in rejects if x["reason"].startswith("outranked"))


def test_sigkill_twice_and_a_rerun_pay_for_nothing_twice(judged_run):
    r = judged_run
    note = f"(random seed {r['rng_seed']})"
    assert r["kills"] == KILLS, f"the mash finished before {KILLS} kills {note}"
    counts = Counter(r["answered"])
    twice = {seed: n for seed, n in counts.items() if n > 1}
    # Only a request in flight at a kill, answered but never journaled, is asked again.
    assert sum(n - 1 for n in twice.values()) <= IN_FLIGHT * r["kills"], (twice, note)
    # Every other answer the server gave is in one of the two journals, once.
    assert len(counts) == len(r["teacher"]) + len(r["judge"]), note
    assert r["again"][0] == 0 and "unchanged, skipped" in " ".join(r["again"][1].split())
    assert len(r["answered"]) == r["answered_at_finish"]  # the re-run sent nothing
