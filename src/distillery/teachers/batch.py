"""Teacher requests through a provider's Batch API (`teacher.batch: true`): about half the price.

`BatchSession.ask(index, request)` keeps `TeacherSession`'s contract, so a Mash builder does
not know which one it holds. An answer already in the journal is replayed. Otherwise the
request waits with the others asked in the same turn of the event loop (a builder starts a
wave of asks together), and they go out as one batch (several when they pass the provider's
size limits). Then the session polls, and writes every answer into the same journal as live
answers, before the builder sees it.

`journal/batches.jsonl` (appended and fsynced, like the journal) is what makes a kill -9 safe:

- `submitting`: a batch's label and its request ids, written before the batch is created;
- `submitted`: the provider's batch id, written as soon as it is known;
- `ended`: written after every answer of the batch is in the journal;
- `abandoned`: a `submitting` batch that the provider never made.

A re-run asks for the same request ids. Those in the journal are replayed; those of a
submitted batch that has not ended are polled for, never sent again; a `submitting` batch is
looked up by its label (OpenAI's batch `metadata`, Gemini's `displayName`) before anything is
sent. Anthropic's Message Batches carry no label, so a kill in the instant between Anthropic
creating a batch and its id reaching the disk would send that batch again on the re-run.

A request the batch could not answer (expired, cancelled, a passing server error) goes into
the next batch, up to the retry policy's tries; one the provider refused is a TeacherError,
as it would be live.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from distillery.errors import TeacherError
from distillery.teachers.base import HTTPStatusFailure, Request, Response, redact
from distillery.teachers.batch_wire import ItemError
from distillery.teachers.cost import CostMeter, Price
from distillery.teachers.journal import Journal, request_id
from distillery.teachers.retry import GaveUp, RetryPolicy, with_retries
from distillery.teachers.session import Counts, explain

log = logging.getLogger("distillery.teachers")
LOG = "batches.jsonl"
SETTLE_TURNS = 3  # event loop turns without a new ask before a batch goes out


def batch_api(provider):
    """The Batch API of a live provider; a provider without one is the user's to fix."""
    from distillery.teachers.batch_anthropic import AnthropicBatch
    from distillery.teachers.batch_gemini import GeminiBatch
    from distillery.teachers.batch_openai import OpenAIBatch

    apis = {"openai": OpenAIBatch, "anthropic": AnthropicBatch, "gemini": GeminiBatch}
    if provider.name not in apis:
        raise TeacherError(f"teacher.batch is true but the {provider.name} teacher has no Batch API. Fix: remove "
                           "`batch` or use provider openai, anthropic or gemini.")
    return apis[provider.name](provider)


def unfinished_batches(journal_dir: Path) -> list[str]:
    """The batches a run with `teacher.batch: true` sent and has not collected (ids, or labels if unknown)."""
    if not (journal_dir / LOG).exists():
        return []
    log = BatchLog(journal_dir / LOG)
    log.close()
    return [entry["batch"] or label for label, entry in log.batches.items()
            if entry["state"] in ("submitting", "submitted")]


class BatchLog:
    """`journal/batches.jsonl`: every batch by its label, and the open one of each request id."""

    def __init__(self, path: Path):
        self.path = path
        self.batches: dict[str, dict] = {}  # label -> {"requests", "at", "batch", "state"}
        self._open: dict[str, str] = {}  # request id -> label of its submitted, not yet ended batch
        for event in _read_lines(path):
            self._apply(event)
        self._file = path.open("a", encoding="utf-8")

    def _apply(self, event: dict) -> None:
        label, kind = event.get("label"), event.get("event")
        if kind == "submitting":
            self.batches[label] = {"requests": event["requests"], "at": event.get("at", 0.0), "batch": None,
                                   "state": "submitting"}
        elif label in self.batches and kind in ("submitted", "ended", "abandoned"):
            entry = self.batches[label]
            entry["batch"] = event.get("batch") or entry["batch"]
            entry["state"] = kind
            for rid, _ in entry["requests"]:
                if kind == "submitted":
                    self._open[rid] = label
                elif self._open.get(rid) == label:
                    del self._open[rid]

    def write(self, event: dict) -> None:
        """Durable before it returns: the next step (creating, polling, resending) relies on it."""
        self._file.write(json.dumps(event) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._apply(event)

    def open_batches(self, state: str) -> dict[str, dict]:
        return {label: entry for label, entry in self.batches.items() if entry["state"] == state}

    def open_label(self, rid: str) -> str | None:
        """The submitted, not yet ended batch that holds `rid`, if any."""
        return self._open.get(rid)

    def close(self) -> None:
        self._file.close()


def _read_lines(path: Path) -> list[dict]:
    """The complete lines of a JSONL file; a last line that a kill cut short is cut off the file."""
    if not path.exists():
        return []
    data = path.read_bytes()
    good = data.rfind(b"\n") + 1
    if good < len(data):
        log.warning("%s: dropping a torn last line (%d bytes)", path, len(data) - good)
        with path.open("r+b") as f:
            f.truncate(good)
            os.fsync(f.fileno())
    out = []
    for number, line in enumerate(data[:good].splitlines(), 1):
        try:
            out.append(json.loads(line))
        except ValueError:
            log.warning("%s: line %d is damaged and skipped", path, number)
    return out


@dataclass
class _Ask:
    index: int
    request: Request
    future: asyncio.Future
    reserved: float  # the worst-case cost held for it on the meter
    tries: int = 0  # batches it was sent in by this run


class BatchSession:
    def __init__(self, provider, journal_dir: Path, *, price: Price | None, budget: float | None,
                 poll_seconds: float = 60.0, policy: RetryPolicy = RetryPolicy()):
        self.provider, self.policy, self.poll_seconds = provider, policy, poll_seconds
        self.api = batch_api(provider)
        self.journal = Journal(journal_dir)  # its lock also guards the batch log
        self.batches = BatchLog(journal_dir / LOG)
        spent = sum(r.get("cost_usd", 0.0) for r in self.journal.answers.values())
        self.meter = CostMeter(price, budget, spent=spent)
        self.counts = Counts()
        self._asks: dict[str, _Ask] = {}  # every unanswered request of this run, by id
        self._queue: dict[str, _Ask] = {}  # those waiting for the next batch
        self._flusher: asyncio.Task | None = None
        self._pollers: dict[str, asyncio.Task] = {}  # by batch label
        self._recovery: asyncio.Task | None = None

    async def ask(self, index: int, request: Request) -> dict:
        """The journal record of request `index`, once its batch has ended (see the module's doc)."""
        rid = request_id(self.provider.name, self.provider.model, request, index)
        record = self.journal.get(rid)
        if record is None:
            if self._recovery is None:
                self._recovery = asyncio.ensure_future(self._recover())
            await self._recovery
            record = self.journal.get(rid)
        if record is not None:
            self.counts.replayed += 1
        else:
            ask = self._asks.get(rid) or self._enlist(rid, index, request)
            record = await ask.future
        self.counts.input_tokens += record["input_tokens"]
        self.counts.output_tokens += record["output_tokens"]
        return record

    def _enlist(self, rid: str, index: int, request: Request) -> _Ask:
        label = self.batches.open_label(rid)
        # An earlier run's batch is paid for already: counted on the meter, never refused by it.
        reserved = self.meter.reserve(request, committed=label is not None)  # BudgetReached: nothing sent
        ask = self._asks[rid] = _Ask(index, request, asyncio.get_running_loop().create_future(), reserved)
        if label is not None:
            self._watch(label)
        else:
            self._queue[rid] = ask
            if self._flusher is None:
                self._flusher = asyncio.ensure_future(self._flush())
        return ask

    # -- submitting ----------------------------------------------------------------------------
    async def _flush(self) -> None:
        try:
            while self._queue:
                size = -1
                while size != len(self._queue):  # until the builder's wave has all arrived
                    size = len(self._queue)
                    for _ in range(SETTLE_TURNS):
                        await asyncio.sleep(0)
                await self._submit(self._take())
        except Exception as error:  # noqa: BLE001 - every waiting ask learns why
            for rid in list(self._queue):
                self._fail(rid, error)
        finally:
            self._flusher = None

    def _take(self) -> dict[str, dict]:
        """The next batch's lines by request id, in request order, within the provider's limits."""
        lines, size = {}, 0
        for rid, ask in sorted(self._queue.items(), key=lambda item: item[1].index):
            line = self.api.line(rid, ask.request)
            size += len(json.dumps(line, ensure_ascii=False).encode()) + 1
            if lines and (len(lines) == self.api.max_requests or size > self.api.max_bytes):
                break
            lines[rid] = line
        return lines

    async def _submit(self, lines: dict[str, dict]) -> None:
        label = uuid.uuid4().hex
        self.batches.write({"event": "submitting", "label": label, "at": time.time(),
                            "requests": [[rid, self._queue[rid].index] for rid in lines]})
        for rid in lines:
            self._queue[rid].tries += 1
        made = False

        async def create() -> str:
            nonlocal made
            if made:  # the last try may have reached the provider before it failed
                found = await self.api.find(label)
                if found:
                    return found
            made = True
            return await self.api.create(label, list(lines.values()))

        try:
            batch_id = await self._call(create, "batch submission")
        except Exception as error:  # noqa: BLE001 - the next run looks the label up before sending again
            for rid in lines:
                self._fail(rid, error)
            raise
        self.batches.write({"event": "submitted", "label": label, "batch": batch_id})
        log.info("submitted batch %s: %d requests to %s `%s`", batch_id, len(lines), self.provider.name,
                 self.provider.model)
        for rid in lines:
            self._queue.pop(rid, None)
        self._watch(label)

    async def _recover(self) -> None:
        """Settle what a killed run was submitting: the provider made it (poll it) or not (send anew)."""
        for label in self.batches.open_batches("submitting"):
            found = await self._call(lambda label=label: self.api.find(label), "batch lookup")
            if found:
                log.info("found batch %s, submitted by an earlier run", found)
                self.batches.write({"event": "submitted", "label": label, "batch": found})
            else:
                self.batches.write({"event": "abandoned", "label": label})

    # -- polling -------------------------------------------------------------------------------
    def _watch(self, label: str) -> None:
        if label not in self._pollers:
            self._pollers[label] = asyncio.ensure_future(self._poll(label))

    async def _poll(self, label: str) -> None:
        entry = self.batches.batches[label]
        wait = self.poll_seconds / 8  # sooner at first: a small batch can be done in a minute
        try:
            while True:
                try:
                    status = await with_retries(lambda: self.api.status(entry["batch"]), self.policy,
                                                label=f"batch {entry['batch']}")
                except GaveUp as error:
                    # A network outage stops nothing: the batch goes on without us; look again later.
                    log.warning("%s; polling again in %.0fs", explain(self.provider, error), wait)
                    status = None
                except HTTPStatusFailure as error:
                    raise TeacherError(explain(self.provider, error)) from None
                if status is not None and status.done:
                    break
                await asyncio.sleep(wait)
                wait = min(2 * wait, self.poll_seconds)
            if status.failed:
                # Ended for good: a re-run sends these requests anew (and is told the same, if nothing changed).
                self.batches.write({"event": "ended", "label": label, "batch": entry["batch"],
                                    "state": status.state})
                raise TeacherError(redact(
                    f"the {self.provider.name} Batch API refused batch {status.batch_id} ({status.failed}). Fix: "
                    "check `teacher.model` and `teacher.max_tokens`, then run again.", *self._secrets()))
            results = await self._call(lambda: self.api.results(status), f"batch {status.batch_id} results")
            self._land(label, entry, status.state, results)
        except Exception as error:  # noqa: BLE001 - the asks waiting on this batch learn why
            for rid, _ in entry["requests"]:
                self._fail(rid, error)
        finally:
            self._pollers.pop(label, None)

    def _land(self, label: str, entry: dict, state: str, results: dict[str, Response | ItemError]) -> None:
        """Journal every answer of an ended batch (asked in this run or not: all are paid for)."""
        answered = 0
        for rid, index in entry["requests"]:
            result, ask = results.get(rid), self._asks.get(rid)
            if self.journal.get(rid) is not None:  # landed by a run killed before `ended`
                continue
            if isinstance(result, Response):
                cost = self.meter.settle(ask.reserved if ask else 0.0, result.input_tokens, result.output_tokens)
                record = self.journal.append(rid, {
                    "index": index, "provider": self.provider.name, "model": self.provider.model,
                    "text": result.text, "finish": result.finish, "raw_finish": result.raw_finish,
                    "input_tokens": result.input_tokens, "output_tokens": result.output_tokens,
                    "cost_usd": cost, "seconds": round(time.time() - entry["at"], 3), "batch": entry["batch"]})
                answered += 1
                if ask is not None:
                    self.counts.sent += 1
                    self._resolve(rid, record)
            elif ask is not None:
                error = result or ItemError("the batch ended without a result for it", retriable=True)
                if error.retriable and ask.tries < self.policy.tries:
                    self._queue[rid] = ask  # into the next batch
                    if self._flusher is None:
                        self._flusher = asyncio.ensure_future(self._flush())
                else:
                    self._fail(rid, TeacherError(self._explain_item(entry["batch"], index, error)))
        self.batches.write({"event": "ended", "label": label, "batch": entry["batch"], "state": state})
        log.info("batch %s %s: %d of %d answered", entry["batch"], state, answered, len(entry["requests"]))

    # -- answers and failures -----------------------------------------------------------------
    def _resolve(self, rid: str, record: dict) -> None:
        ask = self._asks.pop(rid, None)
        if ask is not None and not ask.future.done():
            ask.future.set_result(record)

    def _fail(self, rid: str, error: BaseException) -> None:
        self._queue.pop(rid, None)
        ask = self._asks.pop(rid, None)
        if ask is None:
            return
        self.meter.release(ask.reserved)
        if not ask.future.done():
            if not isinstance(error, TeacherError):
                error = TeacherError(redact(f"the {self.provider.name} Batch API answered in a form distillery "
                                            f"cannot read ({type(error).__name__}: {error}). Fix: check "
                                            "`teacher.base_url`, then run again; answered requests are kept in "
                                            "the journal.", *self._secrets()))
            ask.future.set_exception(error)

    def _secrets(self) -> tuple[str, ...]:
        return tuple(getattr(self.provider, "secrets", ()))

    def _explain_item(self, batch_id: str, index: int, error: ItemError) -> str:
        where = f"the {self.provider.name} Batch API (model `{self.provider.model}`, batch {batch_id})"
        if error.retriable:
            text = (f"{where} could not answer request {index} in {self.policy.tries} batches (last: "
                    f"{error.message}). Fix: run again; answered requests are kept in the journal.")
        else:
            text = (f"{where} rejected request {index} ({error.message}). Fix: check `teacher.model`, "
                    "`teacher.max_tokens` and `teacher.base_url`.")
        return redact(" ".join(text.split()), *self._secrets())

    async def _call(self, call, label: str):
        """`call()` with retries; what still fails is a TeacherError with the key blanked out."""
        try:
            return await with_retries(call, self.policy, label=label)
        except (GaveUp, HTTPStatusFailure) as error:
            raise TeacherError(explain(self.provider, error)) from None

    async def aclose(self) -> None:
        # A batch still running is left to the provider: the next run polls it (batches.jsonl).
        tasks = [t for t in (self._flusher, self._recovery, *self._pollers.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.batches.close()
        self.journal.close()
        await self.provider.aclose()
