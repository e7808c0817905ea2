"""A canary API key in the environment, DEBUG logging, a server that echoes the key back in
its errors: the key reaches the server and nothing else — no log, no output, no run file,
no Spirit."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from teacher_fakes import FakeLLM, LoopbackServer, send_json

from distillery.errors import TeacherError
from distillery.teachers.base import Request
from distillery.teachers.openai import OpenAITeacher
from distillery.teachers.retry import RetryPolicy
from distillery.teachers.session import TeacherSession

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CANARY = "sk-canary-" + secrets.token_hex(16)
RECIPE = """\
name: {name}
tools: needle_tools.json
teacher: {{provider: openai, base_url: "{url}", model: gpt-4o-mini, max_tokens: 400}}
mash: {{total_examples: 40, examples_per_call: 10, tools_per_call: {{min: 3, max: 4}}}}
student: {{d_model: 32, n_layers: 1, n_heads: 2, n_kv_heads: 1, d_ff: 64, max_seq_len: 320, vocab_size: 600}}
still: {{epochs: 1, batch_size: 8}}
tasting: {{samples: 8}}
"""


def echoing_server(mode: dict) -> LoopbackServer:
    """An OpenAI-style server that insists on the canary key and, when asked to, fails by
    echoing it back: in a 500's body and header, or in a 401 "incorrect key" message."""
    fake = FakeLLM("openai")

    def respond(handler, body, count):
        auth = handler.headers.get("Authorization", "")
        if auth != f"Bearer {CANARY}":
            return send_json(handler, 401, {"error": {"message": "no key"}})
        if mode["fail"] == "refuse":
            return send_json(handler, 401, {"error": {"message": f"Incorrect API key provided: {auth[7:]}"}})
        if mode["fail"] == "always" or count % 2 == 1:
            return send_json(handler, 500, {"error": f"upstream choked on {auth}"}, {"X-Echo": auth})
        send_json(handler, 200, fake.answer(body))

    return LoopbackServer(respond)


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OPENAI_API_KEY": CANARY, "DISTILLERY_LOG": "debug", "DISTILLERY_DEBUG": "1"}
    return subprocess.run([sys.executable, "-m", "distillery.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def assert_no_canary(text: str, where: str) -> None:
    assert CANARY not in text and CANARY[-8:] not in text, f"the key leaked into {where}"


@pytest.mark.slow
def test_the_key_reaches_the_server_and_no_log_output_file_or_spirit(tmp_path):
    (tmp_path / "needle_tools.json").write_bytes((EXAMPLES / "needle_tools.json").read_bytes())
    mode = {"fail": "every other request"}
    with echoing_server(mode) as server:
        (tmp_path / "ok.yaml").write_text(RECIPE.format(name="canary", url=server.url))
        distilled = cli("distill", "ok.yaml", cwd=tmp_path)
        mode["fail"] = "refuse"
        (tmp_path / "refused.yaml").write_text(RECIPE.format(name="refused", url=server.url))
        refused = cli("mash", "refused.yaml", cwd=tmp_path)
        hits = list(server.hits)
    assert distilled.returncode == 0, distilled.stderr[-3000:]
    assert refused.returncode == 2 and "refused the key from OPENAI_API_KEY" in " ".join(refused.stderr.split())
    assert "[redacted]" in refused.stderr and "Traceback" not in refused.stderr
    # The key was really in play: every request carried it, and half of them failed by echoing it.
    assert hits and all(hit["headers"]["Authorization"] == f"Bearer {CANARY}" for hit in hits)
    assert "500 Internal Server Error" in distilled.stderr and "attempt 1 of 6" in distilled.stderr
    # httpcore's DEBUG log prints response headers: the echoed key was caught by the log filter.
    assert "(b'X-Echo', b'Bearer [redacted]')" in distilled.stderr
    for result, name in ((distilled, "distill"), (refused, "mash")):
        assert_no_canary(result.stdout, f"{name} stdout")
        assert_no_canary(result.stderr, f"{name} stderr (the logs)")
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    spirit = tmp_path / "runs" / "canary-v1" / "canary.spirit"
    assert spirit in files and (tmp_path / "runs" / "canary-v1" / "journal" / "responses.jsonl") in files
    for path in files:
        assert_no_canary(path.read_bytes().decode("latin-1"), str(path.relative_to(tmp_path)))


def test_a_failure_message_and_debug_logs_never_carry_the_key(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    request = Request(messages=({"role": "user", "content": "x"},), temperature=0.5, max_tokens=10)

    async def ask(url: str):
        session = TeacherSession(OpenAITeacher(base_url=url), tmp_path / "journal", price=None, budget=None,
                                 concurrency=1, policy=RetryPolicy(tries=3, base=0.01))
        try:
            await session.ask(0, request)
        finally:
            await session.aclose()

    with echoing_server({"fail": "always"}) as server, caplog.at_level(logging.DEBUG):
        with pytest.raises(TeacherError) as caught:
            asyncio.run(ask(server.url))
    message = str(caught.value)
    assert "failed 3 times in a row (last: HTTP 500: {\"error\": \"upstream choked on Bearer [redacted]" in message
    assert_no_canary(message, "the error message")
    assert "attempt 1 of 3" in caplog.text
    assert_no_canary(caplog.text, "the DEBUG log")
