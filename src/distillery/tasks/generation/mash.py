"""The generation Mash: the teacher writes the answer to each of your requests.

`mash.inputs` is a JSON Lines file of requests, one `{"text": ...}` a line (or `input`,
`utterance`, `question`). Each distinct request is one teacher request: the instruction
(and the length cap) as the system message, the request as the user message, free text back
at `teacher.temperature`. Requests go through the teacher session (journal, retries,
concurrency, budget) in waves of as many as the Mash still needs, so an unusable answer costs
one more request and a resumed run asks for nothing it has. A near-duplicate request is
dropped before it is sent.

An answer is rejected, with the reason, when the teacher was cut off (`teacher.max_tokens`),
wrote nothing, or wrote more than `task.max_words` words: the student learns only answers
that keep to the cap. A replayed file (`teacher: {provider: replay, traces: FILE}`) gives
the pairs itself, one `{"text": ..., "output": ...}` a line.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from pathlib import Path

from distillery.errors import DistilleryError, TeacherError
from distillery.mash import MashStats, remember, seen_before
from distillery.teachers.base import Request
from distillery.teachers.cost import BudgetReached
from distillery.teachers.retry import RetryPolicy
from distillery.teachers.session import open_session

INPUT_KEYS = ("text", "input", "utterance", "question")
OUTPUT_KEYS = ("output", "answer", "reply")
_EXAMPLE = '{"text": "my order arrived broken, what now?"}'


def read_lines(path: Path, what: str) -> list[tuple[int, dict]]:
    """(line number, object) for every non-empty line; a line that is not a JSON object is a
    DistilleryError at file:line, raised before anything is sent."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DistilleryError(f"{path}: cannot be read ({exc}). Fix: give a UTF-8 JSON Lines file of {what}, "
                              f"e.g. {_EXAMPLE}.") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            row = exc
        if not isinstance(row, dict):
            raise DistilleryError(f"{path}:{number}: not a JSON object. Fix: one object a line, e.g. {_EXAMPLE}.")
        rows.append((number, row))
    if not rows:
        raise DistilleryError(f"{path}: no {what} in the file. Fix: one a line, e.g. {_EXAMPLE}.")
    return rows


def first_text(row: dict, keys: tuple[str, ...]) -> str | None:
    return next((row[k].strip() for k in keys if isinstance(row.get(k), str) and row[k].strip()), None)


def read_inputs(path: Path) -> list[tuple[int, str]]:
    """`mash.inputs`: (line number, request text) per line, checked before anything is sent."""
    found = []
    for number, row in read_lines(path, "requests"):
        text = first_text(row, INPUT_KEYS)
        if text is None:
            raise DistilleryError(f'{path}:{number}: no request text. Fix: put it under "text", e.g. {_EXAMPLE}.')
        found.append((number, text))
    return found


def system_prompt(instruction: str, max_words: int | None) -> str:
    cap = f" Answer in at most {max_words} words." if max_words else ""
    return f"{instruction.strip()}{cap}\nWrite only the answer itself: no preamble, no quotes, no notes."


def write_request(text: str, instruction: str, max_words: int | None, teacher_cfg, seed: int) -> Request:
    """The teacher request that answers `text`: the same in every run."""
    digest = hashlib.sha256(f"{seed}\x1fgeneration\x1f{text}".encode()).digest()
    return Request(messages=({"role": "system", "content": system_prompt(instruction, max_words)},
                             {"role": "user", "content": text}),
                   temperature=teacher_cfg.temperature, max_tokens=teacher_cfg.max_tokens,
                   seed=int.from_bytes(digest[:4], "big") % 2**31)


def words(text: str) -> int:
    return len(text.split())


def clean(text: str) -> str:
    """The answer without a code fence or quotes around the whole of it."""
    text = re.sub(r"^\s*```\w*\s*|\s*```\s*$", "", text.strip())
    if len(text) > 1 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text


def output_problem(output: str, max_words: int | None) -> str | None:
    """Why an answer cannot be taught (None: it can)."""
    if not output:
        return "empty: the answer has no text"
    if max_words and words(output) > max_words:
        return f"too_long: {words(output)} words, task.max_words is {max_words}"
    return None


def answer_inputs(provider, inputs: list[tuple[int, str]], total: int, *, instruction: str, max_words: int | None,
                  teacher_cfg, journal: Path, seed: int, price=None, policy=None, on_progress=None):
    """The teacher answers requests in order until `total` answers are usable or the inputs run
    out: (stats, accepted examples, rejects). Raises TeacherError when `teacher.budget_usd` is reached."""
    return asyncio.run(_answer(provider, inputs, total, instruction, max_words, teacher_cfg, journal, seed, price,
                               policy, on_progress))


async def _answer(provider, inputs, total, instruction, max_words, teacher_cfg, journal, seed, price, policy,
                  on_progress):
    stats, accepted, rejected = MashStats(), [], []
    pending, seen = [], set()
    for number, text in inputs:
        if seen_before(seen, text):  # dropped before it costs a request
            rejected.append({"line": number, "reason": "duplicate: the same request is already in the Mash",
                             "candidate": {"utterance": text}})
            stats.rejected += 1
            stats.reasons["duplicate"] += 1
        else:
            remember(seen, text)
            pending.append((number, text))
    stats.candidates = len(inputs)
    session = open_session(provider, journal, teacher_cfg, price=price, policy=policy or RetryPolicy())
    try:
        while pending and stats.accepted < total:
            wave, pending = pending[:total - stats.accepted], pending[total - stats.accepted:]
            requests = [write_request(text, instruction, max_words, teacher_cfg, seed) for _, text in wave]
            # Every request settles before a failure is raised, so all that was paid for is journaled.
            records = await asyncio.gather(*(session.ask(number, r) for (number, _), r in zip(wave, requests)),
                                           return_exceptions=True)
            failed = next((r for r in records if isinstance(r, BaseException)), None)
            if isinstance(failed, BudgetReached):
                raise TeacherError(f"teacher.budget_usd (${teacher_cfg.budget_usd:g}) reached. Fix: raise it and run "
                                   "again; every answer paid for is in the journal and not paid again.")
            if failed is not None:
                raise failed
            for (number, text), record in zip(wave, records):
                output = clean(record["text"])
                reason = (f"truncated: the answer ended with `{record.get('raw_finish') or record['finish']}` "
                          f"(teacher.max_tokens {teacher_cfg.max_tokens})" if record["finish"] != "stop"
                          else output_problem(output, max_words))
                teacher = {"provider": record["provider"], "model": record["model"], "journal_id": record["id"]}
                if reason:
                    rejected.append({"line": number, "reason": reason,
                                     "candidate": {"utterance": text, "output": record["text"], "teacher": teacher}})
                    stats.rejected += 1
                    stats.reasons[reason.split(":", 1)[0]] += 1
                else:
                    accepted.append({"id": f"m{number:06d}", "utterance": text, "output": output, "teacher": teacher})
                    stats.accepted += 1
                if on_progress:
                    on_progress(stats)
    finally:
        stats.requests, stats.replayed = session.counts.sent, session.counts.replayed
        stats.cost_usd = session.meter.spent
        await session.aclose()
    stats.exhausted = stats.accepted < total
    return stats, accepted, rejected


def replayed_pairs(path: Path, total: int, max_words: int | None, on_progress=None):
    """The user's own pairs as the Mash: (stats, accepted, rejects), like `answer_inputs`."""
    stats, accepted, rejected, seen = MashStats(), [], [], set()
    for number, row in read_lines(path, "request and answer pairs"):
        if stats.accepted >= total:
            break
        stats.candidates += 1
        text, output = first_text(row, INPUT_KEYS), clean(first_text(row, OUTPUT_KEYS) or "")
        reason = ("bad_structure: no request text" if text is None else output_problem(output, max_words)
                  or ("duplicate: the same request is already in the Mash" if seen_before(seen, text) else None))
        if reason:
            rejected.append({"line": number, "reason": reason, "candidate": row})
            stats.rejected += 1
            stats.reasons[reason.split(":", 1)[0]] += 1
        else:
            remember(seen, text)
            accepted.append({"id": f"m{number:06d}", "utterance": text, "output": output,
                             "teacher": {"provider": "replay", "line": number}})
            stats.accepted += 1
        if on_progress:
            on_progress(stats)
    stats.exhausted = stats.accepted < total
    return stats, accepted, rejected
