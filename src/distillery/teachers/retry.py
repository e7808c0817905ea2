"""Retries: a dropped connection or a busy server costs time, never a run.

Connection errors, timeouts and HTTP 408/409/429/5xx are tried again, with exponential
backoff and full jitter (so parallel requests do not come back in lockstep); a
`Retry-After` from the server is obeyed as given. Anything else (a 400, a refused key) will
not get better by asking again and is raised at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from distillery.teachers.base import HTTPStatusFailure

log = logging.getLogger("distillery.teachers")
RETRY_STATUS = frozenset({408, 409, 429}) | frozenset(range(500, 600))


@dataclass(frozen=True)
class RetryPolicy:
    tries: int = 6  # attempts in all, the first included
    base: float = 1.0  # seconds before the second attempt, doubled after each
    cap: float = 60.0  # longest backoff between two attempts
    max_retry_after: float = 600.0  # a Retry-After longer than this is not worth waiting for


class GaveUp(Exception):
    """Every attempt failed with a retriable error; `last` is the final one."""

    def __init__(self, attempts: int, last: BaseException):
        super().__init__(f"gave up after {attempts} attempts")
        self.attempts, self.last = attempts, last


def retriable(error: BaseException) -> bool:
    if isinstance(error, HTTPStatusFailure):
        return error.status in RETRY_STATUS
    return isinstance(error, httpx.TransportError)


def delay(policy: RetryPolicy, attempt: int, error: BaseException, rng: random.Random) -> float:
    """Seconds to wait after failed attempt `attempt` (0-based)."""
    after = getattr(error, "retry_after", None)
    if after is not None:
        return min(after, policy.max_retry_after)
    return rng.uniform(0, min(policy.cap, policy.base * 2 ** attempt))


async def with_retries(call: Callable[[], Awaitable], policy: RetryPolicy = RetryPolicy(), *,
                       sleep: Callable[[float], Awaitable] = asyncio.sleep, rng: random.Random | None = None,
                       label: str = "request"):
    """`await call()`, tried again on retriable errors; raises GaveUp when the tries run out."""
    rng = rng or random.Random()
    for attempt in range(policy.tries):
        try:
            return await call()
        except Exception as error:  # noqa: BLE001 - sorted into retriable or not right here
            if not retriable(error):
                raise
            if attempt + 1 == policy.tries:
                raise GaveUp(policy.tries, error) from None
            wait = delay(policy, attempt, error, rng)
            log.debug("%s: %s, attempt %d of %d, waiting %.2fs", label, describe(error), attempt + 1,
                      policy.tries, wait)
            await sleep(wait)
    raise AssertionError("unreachable")


def describe(error: BaseException) -> str:
    """A short account of a failure, without headers or bodies (they may carry secrets)."""
    if isinstance(error, HTTPStatusFailure):
        return f"HTTP {error.status}"
    return type(error).__name__
