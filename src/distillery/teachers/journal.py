"""The request journal: every paid teacher answer, on disk before it is used.

`runs/<run>/journal/responses.jsonl` holds one line per answered request, keyed by a
deterministic id (provider, model, messages, sampling params, sample index). The line is
appended and fsynced before the answer is judged, so a crash can lose only answers still in
flight; a restart asks only for ids with no line, and a finished Mash replays from here
without a single request. A kill mid-write leaves a torn last line, which is dropped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from distillery.errors import DistilleryError
from distillery.teachers.base import Request

log = logging.getLogger("distillery.teachers")
FILE = "responses.jsonl"


def request_id(provider: str, model: str, request: Request, index: int) -> str:
    """The identity of a request: the same inputs give the same id in every run."""
    key = {"provider": provider, "model": model, "messages": list(request.messages),
           "params": request.params(), "index": index}
    return hashlib.sha256(json.dumps(key, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:32]


class Journal:
    """Answers by request id, loaded from disk; `append` makes one durable before returning."""

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / FILE
        self._lock = _lock(directory / "lock")
        self.answers: dict[str, dict] = {}
        self._load()
        self._file = self.path.open("a", encoding="utf-8")

    def _load(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        good = 0  # byte offset just past the last complete line
        for number, line in enumerate(data.split(b"\n"), 1):
            end = good + len(line) + 1
            if end > len(data):  # no newline: a write that a kill cut short
                if line.strip():
                    log.warning("%s: dropping a torn last line (%d bytes)", self.path, len(line))
                break
            try:
                record = json.loads(line)
                self.answers[record["id"]] = record
            except (ValueError, KeyError, TypeError):
                if line.strip():
                    log.warning("%s: line %d is damaged and skipped", self.path, number)
            good = end
        if good < len(data):
            with self.path.open("r+b") as f:
                f.truncate(good)
                os.fsync(f.fileno())

    def get(self, rid: str) -> dict | None:
        return self.answers.get(rid)

    def append(self, rid: str, record: dict) -> dict:
        """Write the answer to disk (fsync) and only then hand it back for use."""
        record = {"id": rid, **record}
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.answers[rid] = record
        return record

    def close(self) -> None:
        self._file.close()
        if self._lock is not None:
            self._lock.close()


def _lock(path: Path):
    """An exclusive lock on the journal: two processes appending to one would not corrupt it,
    but both would pay for the same requests."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; run one mash per run directory
        return None
    handle = path.open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise DistilleryError(f"{path.parent}: another distillery process is writing this journal. "
                              "Fix: wait for it to finish, or stop it, then run again.") from None
    return handle
