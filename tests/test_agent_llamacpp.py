"""An LLM teacher running as an agent against a real server: llama.cpp (llama-cpp-python)
serving SmolLM2-135M-Instruct. `distillery mash` of an agent recipe is SIGKILLed at random
moments; no finished step is lost (asked again) and no recorded tool result is run again."""

from __future__ import annotations

import json
import random
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from test_teachers_llamacpp import CountingProxy, journal_indexes, llama_server, mash_cli  # noqa: F401 - fixture

pytestmark = pytest.mark.integration
KILLS = 3
TOOLS = '''
import json
import os
from pathlib import Path

LOG = Path(__file__).with_name("executions.log")


def _ran(tool, arguments):
    with LOG.open("a") as f:  # the side effect a test can count: one line a real execution
        f.write(json.dumps([tool, arguments], sort_keys=True) + "\\n")
        f.flush()
        os.fsync(f.fileno())


def get_time(city: str = "Oslo") -> dict:
    """Get the local time in a city."""
    _ran("get_time", {"city": city})
    return {"city": city, "time": "12:%02d" % (len(city) * 7 % 60)}


def get_weather(city: str = "Oslo") -> dict:
    """Get the current weather in a city."""
    _ran("get_weather", {"city": city})
    return {"city": city, "temperature_c": len(city) % 30}
'''
RECIPE = """\
name: llm-agent
seed: 4
tools: {{module: tools.py}}
agent: {{max_steps: 3}}
teacher: {{provider: openai, base_url: "{url}", model: smollm2-135m, temperature: 0.8, max_tokens: 120,
           concurrency: 1}}
mash: {{total_examples: 10, tools_per_call: {{min: 2, max: 2}}, no_call_ratio: 0.0}}
"""


def _tool_records(run_dir: Path) -> Counter:
    path = run_dir / "journal" / "tools.jsonl"
    found = Counter()
    for line in (path.read_text().split("\n") if path.exists() else []):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        found[json.dumps([record["name"], record["arguments"]], sort_keys=True)] += 1
    return found


def test_sigkill_during_agentic_generation_loses_no_step_and_runs_no_tool_twice(llama_server, tmp_path):  # noqa: F811
    rng_seed = random.randrange(10**6)
    rng, note = random.Random(rng_seed), f"(random seed {rng_seed})"
    (tmp_path / "tools.py").write_text(TOOLS)
    runs, executions = tmp_path / "runs", tmp_path / "executions.log"
    run_dir = runs / "llm-agent-v1"
    with CountingProxy(llama_server) as proxy:
        recipe = tmp_path / "recipe.yaml"
        recipe.write_text(RECIPE.format(url=proxy.url))
        kills = []  # (requests answered by the server, journal indexes, executions) right after each kill
        for attempt in range(KILLS + 1):
            before = len(proxy.answered)
            process = mash_cli(recipe, runs)
            deadline = time.monotonic() + 300
            wanted = 1 if attempt < KILLS else 3  # the last run goes a little further, then is killed too
            while len(proxy.answered) < before + wanted and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(rng.uniform(0, 1.5))  # a random moment: mid-request, mid-tool, mid-write
            if process.poll() is not None:
                break
            process.send_signal(signal.SIGKILL)
            process.wait()
            proxy.drain()
            with proxy.lock:
                answered = [seed for seed, _ in proxy.answered]
            kills.append((answered, journal_indexes(run_dir),
                          executions.read_text().splitlines() if executions.exists() else []))
    assert len(kills) >= 2, f"the mash finished before it could be killed twice {note}"
    seeds = {(4 * 1_000_003 + i * 32 + k) % 2**31: i * 32 + k for i in range(200) for k in range(4)}
    previous: set[int] = set()
    lost: set[int] = set()
    for answered, journaled, _ in kills:
        assert previous <= journaled, note  # once journaled, never lost
        previous = journaled
        missing = {seeds[s] for s in answered} - journaled  # answered, not journaled: in flight at a kill
        assert len(missing - lost) <= 1, (missing, note)
        lost |= missing
    asked = Counter(seeds[s] for s in kills[-1][0])
    assert all(n == 1 or i in lost for i, n in asked.items()), (asked, lost, note)  # nothing journaled paid twice
    assert len(asked) >= 3, f"too few teacher answers to test anything {note}"
    # Every run of a tool is in the tool journal once, but for one cut off by each kill before it was written.
    ran = Counter(kills[-1][2])
    recorded = _tool_records(run_dir)
    assert recorded, f"no tool was run: nothing to test {note}"
    assert all(ran[key] <= recorded[key] + len(kills) for key in ran), (ran, recorded, note)
    assert sum(ran.values()) - sum(recorded.values()) <= len(kills), note
