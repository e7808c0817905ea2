"""Retries against real sockets on loopback: a 429's Retry-After is waited out, dropped
connections and 5xx are tried again, a 400 or a refused key is not, and the tries run out."""

from __future__ import annotations

import asyncio
import random
import time

import pytest
from teacher_fakes import FakeLLM, LoopbackServer, send_json

from distillery.errors import TeacherError
from distillery.teachers.base import HTTPStatusFailure, Request
from distillery.teachers.openai import OpenAITeacher
from distillery.teachers.retry import GaveUp, RetryPolicy, delay, with_retries
from distillery.teachers.session import TeacherSession

FAST = RetryPolicy(tries=4, base=0.01, cap=0.05)
SCHEMA_TOOL = {"type": "object", "properties": {"name": {"type": "string", "enum": ["ping"]},
                                                "arguments": {"type": "object", "properties": {}, "required": []}}}
REQUEST = Request(messages=({"role": "user", "content": "go"},), temperature=0.5, max_tokens=64, json_schema={
    "type": "object", "properties": {"examples": {"type": "array", "maxItems": 1, "items": {
        "type": "object", "properties": {"utterance": {"type": "string"},
                                         "calls": {"type": "array", "items": SCHEMA_TOOL}}}}}})


def ask(url: str, tmp_path, policy=FAST) -> tuple[dict, TeacherSession]:
    async def go():
        session = TeacherSession(OpenAITeacher(model="m", base_url=url), tmp_path / "journal", price=None,
                                 budget=None, concurrency=2, policy=policy)
        try:
            return await session.ask(0, REQUEST), session
        finally:
            await session.aclose()

    return asyncio.run(go())


def test_429_with_retry_after_is_waited_out(tmp_path):
    fake = FakeLLM("openai")

    def respond(handler, body, count):
        if count == 1:
            send_json(handler, 429, {"error": {"message": "slow down"}}, {"Retry-After": "1"})
        else:
            send_json(handler, 200, fake.answer(body))

    with LoopbackServer(respond) as server:
        started = time.monotonic()
        record, session = ask(server.url, tmp_path)
        arrivals = list(server.hits)
    assert len(arrivals) == 2 and session.counts.sent == 1
    # The backoff alone would have waited at most 0.05 s; the server asked for a whole second.
    assert 1.0 <= time.monotonic() - started < 5.0
    assert record["finish"] == "stop" and "ping" in record["text"]


def test_dropped_connections_and_5xx_are_retried(tmp_path):
    fake = FakeLLM("openai")

    def respond(handler, body, count):
        if count <= 2:
            handler.close_connection = True
            handler.connection.shutdown(2)  # hang up without a word: a RemoteProtocolError
        elif count == 3:
            send_json(handler, 503, {"error": "overloaded"})
        else:
            send_json(handler, 200, fake.answer(body))

    with LoopbackServer(respond) as server:
        record, session = ask(server.url, tmp_path)
        assert len(server.hits) == 4
    assert record["text"] and session.counts.sent == 1


def test_tries_are_bounded_and_the_error_says_what_to_do(tmp_path):
    def respond(handler, body, count):
        send_json(handler, 502, {"error": "bad gateway"})

    with LoopbackServer(respond) as server:
        with pytest.raises(TeacherError, match=r"failed 4 times in a row \(last: HTTP 502"):
            ask(server.url, tmp_path)
        assert len(server.hits) == 4


@pytest.mark.parametrize("status, message", [(400, "rejected the request"), (401, "refused the key"),
                                             (404, "answered 404")])
def test_client_errors_are_not_retried(tmp_path, status, message):
    def respond(handler, body, count):
        send_json(handler, status, {"error": {"message": "nope"}})

    with LoopbackServer(respond) as server:
        with pytest.raises(TeacherError, match=message):
            ask(server.url, tmp_path)
        assert len(server.hits) == 1


def test_backoff_grows_exponentially_with_jitter_and_retry_after_wins():
    policy = RetryPolicy(base=1.0, cap=8.0)
    rng = random.Random(0)
    error = HTTPStatusFailure(503, "", None)
    for attempt, ceiling in enumerate([1, 2, 4, 8, 8]):
        waits = [delay(policy, attempt, error, rng) for _ in range(200)]
        assert 0 <= min(waits) and max(waits) <= ceiling and max(waits) > ceiling * 0.8
        assert len(set(waits)) > 150  # jitter: requests that failed together do not return together
    assert delay(policy, 0, HTTPStatusFailure(429, "", 30.0), rng) == 30.0
    assert delay(RetryPolicy(max_retry_after=10), 0, HTTPStatusFailure(429, "", 3600.0), rng) == 10.0


def test_with_retries_sleeps_the_retry_after_then_gives_up():
    slept: list[float] = []

    async def sleep(seconds):
        slept.append(seconds)

    async def call():
        raise HTTPStatusFailure(429, "", 2.5)

    with pytest.raises(GaveUp) as caught:
        asyncio.run(with_retries(call, RetryPolicy(tries=3), sleep=sleep))
    assert slept == [2.5, 2.5] and caught.value.attempts == 3
