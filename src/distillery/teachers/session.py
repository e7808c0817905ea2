"""The layers every provider is wrapped in: journal, concurrency, budget, retries.

`TeacherSession.ask(index, request)` answers from the journal when it can; otherwise it
waits for a free slot (`teacher.concurrency`), reserves the worst-case cost, sends with
retries and journals the answer before returning it. Failures become a TeacherError whose
message is scrubbed of the key, whatever the server echoed back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from distillery.errors import TeacherError
from distillery.teachers.base import HTTPStatusFailure, Request, redact
from distillery.teachers.cost import CostMeter, Price, batch_price
from distillery.teachers.journal import Journal, request_id
from distillery.teachers.retry import GaveUp, RetryPolicy, describe, with_retries

log = logging.getLogger("distillery.teachers")


@dataclass
class Counts:
    sent: int = 0  # requests answered by the teacher in this process
    replayed: int = 0  # answers taken from the journal
    input_tokens: int = 0
    output_tokens: int = 0


class TeacherSession:
    def __init__(self, provider, journal_dir: Path, *, price: Price | None, budget: float | None,
                 concurrency: int, policy: RetryPolicy = RetryPolicy()):
        self.provider, self.policy = provider, policy
        self.journal = Journal(journal_dir)
        spent = sum(r.get("cost_usd", 0.0) for r in self.journal.answers.values())
        self.meter = CostMeter(price, budget, spent=spent)
        self.counts = Counts()
        self._slots = asyncio.Semaphore(concurrency)

    async def ask(self, index: int, request: Request) -> dict:
        """The journal record of request `index`: {"id", "text", "finish", tokens, "cost_usd", ...}."""
        rid = request_id(self.provider.name, self.provider.model, request, index)
        record = self.journal.get(rid)
        if record is None:
            async with self._slots:
                record = await self._send(rid, index, request)
        else:
            self.counts.replayed += 1
        self.counts.input_tokens += record["input_tokens"]
        self.counts.output_tokens += record["output_tokens"]
        return record

    async def _send(self, rid: str, index: int, request: Request) -> dict:
        reserved = self.meter.reserve(request)  # raises BudgetReached before anything is sent
        started = time.monotonic()
        try:
            response = await with_retries(lambda: self.provider.complete(request), self.policy,
                                          label=f"request {index}")
        except BaseException as error:
            self.meter.release(reserved)
            if isinstance(error, (GaveUp, HTTPStatusFailure)):
                raise TeacherError(explain(self.provider, error)) from None
            raise
        cost = self.meter.settle(reserved, response.input_tokens, response.output_tokens)
        self.counts.sent += 1
        log.debug("request %d (%s): %s, %d+%d tokens, $%.5f", index, rid, response.finish,
                  response.input_tokens, response.output_tokens, cost)
        return self.journal.append(rid, {
            "index": index, "provider": self.provider.name, "model": self.provider.model,
            "text": response.text, "finish": response.finish, "raw_finish": response.raw_finish,
            "input_tokens": response.input_tokens, "output_tokens": response.output_tokens,
            "cost_usd": cost, "seconds": round(time.monotonic() - started, 3)})

    async def aclose(self) -> None:
        self.journal.close()
        await self.provider.aclose()


def open_session(provider, journal_dir: Path, teacher_cfg, *, price: Price | None,
                 policy: RetryPolicy | None = None):
    """The session `teacher_cfg` asks for: live requests, or the provider's Batch API (`teacher.batch`)."""
    from distillery.teachers.batch import BatchSession, unfinished_batches  # batch.py builds on this module

    policy = policy or RetryPolicy()
    if getattr(teacher_cfg, "batch", False):
        return BatchSession(provider, journal_dir, price=batch_price(price, provider.name),
                            budget=teacher_cfg.budget_usd, poll_seconds=teacher_cfg.batch_poll_seconds,
                            policy=policy)
    running = unfinished_batches(journal_dir)
    if running:
        raise TeacherError(
            f"{journal_dir / 'batches.jsonl'}: {len(running)} batch(es) sent with `teacher.batch: true` are not "
            f"collected yet ({', '.join(running[:3])}); asking live now would pay for their requests again. "
            "Fix: set `teacher.batch: true` again and run (it collects them and sends nothing twice), or delete "
            "that file to give them up.")
    return TeacherSession(provider, journal_dir, price=price, budget=teacher_cfg.budget_usd,
                          concurrency=teacher_cfg.concurrency, policy=policy)


def explain(provider, error: BaseException) -> str:
    """A failed request (GaveUp or an HTTP error) as a message for people, with the key blanked out."""
    where = f"the {provider.name} teacher at {getattr(provider, 'base_url', '?')} (model `{provider.model}`)"
    if isinstance(error, GaveUp):
        last = error.last
        detail = f"{describe(last)}: {last.body}" if isinstance(last, HTTPStatusFailure) else describe(last)
        times = "once" if error.attempts == 1 else f"{error.attempts} times in a row"
        text = (f"{where} failed {times} (last: {detail}). Fix: check that the "
                "server is up and reachable, then run again; answered requests are kept in the journal.")
    elif error.status in (401, 403):
        text = (f"{where} refused the key from {getattr(provider, 'key_env', 'the environment')} "
                f"(HTTP {error.status}: {error.body}). Fix: export a valid key and run again.")
    elif error.status == 404:
        text = (f"{where} answered 404 ({error.body}). Fix: check `teacher.model` and `teacher.base_url`.")
    else:
        text = (f"{where} rejected the request (HTTP {error.status}: {error.body}). Fix: check "
                "`teacher.model`, `teacher.max_tokens` and `teacher.base_url`.")
    return redact(" ".join(text.split()), *getattr(provider, "secrets", ()))
