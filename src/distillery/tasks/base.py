"""The Task seam: what the pipeline asks of a task kind, and nothing more.

The pipeline, the Still and the Spirit never look inside an example: a task writes its
Mash, says what must stay together in one cut, turns an example into prompt and answer
ids for the student, makes the predictor that answers a request, and scores the heads.
Each kind lives in its own package under `tasks/` and is found by `tasks.task_for`.

Examples are plain dicts written to JSONL. Every task's example has an `id`, the request
text in `utterance` and its teacher provenance in `teacher`; the answer's shape is the
task's own (`calls` for tool calling, `label` for classification).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def latency_ms(latencies: list[float]) -> dict:
    """The notes' `latency_ms`: p50 and p95 of the per-request times."""
    return {"p50": round(statistics.median(latencies), 2) if latencies else 0.0,
            "p95": round(percentile(latencies, 0.95), 2)}


def wrong_first(rows: list[dict], n: int) -> list[dict]:
    """Samples for the notes: the wrong answers first, then right ones, in the heads' order."""
    return ([r for r in rows if r["verdict"] != "exact"] + [r for r in rows if r["verdict"] == "exact"])[:n]


class Predictor(Protocol):
    """Answers one request with a trained student. `predict` returns an object with the
    task's structured answer, the raw text, `latency_ms` and `unfinished`."""

    def predict(self, utterance: str, *args: Any) -> Any: ...


class Task(Protocol):
    kind: str  # the Recipe's `task.kind`
    proof_metric: str  # the metric of the notes that is the proof (the headline, in degrees)

    def spirit_context(self) -> dict[str, str]:
        """What a Spirit must carry to answer on its own (the tool catalog, the label set), as
        metadata strings."""

    def mash_inputs(self) -> str:
        """Text whose change must remake the Mash (the catalog, the labels), beside the teacher
        and mash sections."""

    def build_mash(self, teacher, run_dir: Path, on_progress: Callable | None) -> Any:
        """Ask `teacher` until the Mash is complete; write mash.jsonl and mash.rejects.jsonl;
        return the stats (accepted, rejected, reasons, requests, cost)."""

    def offline_teacher(self) -> Any:
        """The embedded teacher that needs no network and no key."""

    def replay_teacher(self, path: Path) -> Any:
        """A teacher reading the user's own labelled file."""

    def group_key(self, example: dict) -> str:
        """What must never straddle two cuts (the normalized request)."""

    def texts(self, examples: list[dict]) -> list[str]:
        """Prompt and answer text of each example: what a tiny student's tokenizer is fitted to."""

    def epoch_examples(self, hearts: list[dict], seed: int) -> Callable[[int], list[dict]]:
        """The hearts as trained in epoch `e` (augmentation redrawn every epoch)."""

    def training_pairs(self, fmt, tokenizer, examples: list[dict]) -> list[tuple[list[int], list[int]]]:
        """(prompt ids, answer ids) per example; pairs longer than the context are left out."""

    def decoding(self, hearts: list[dict]) -> dict:
        """How the Spirit decodes (grammar, copied values...): measured on the hearts, stored in
        the Spirit."""

    def predictor(self, model, tokenizer, fmt, decoding: dict) -> Predictor:
        """What answers a request with the trained student."""

    def taste(self, predictor: Predictor, heads: list[dict], *, samples: int, held_out: int | None) -> dict:
        """Tasting-notes fields: `proof`, `proof_metric`, `metrics`, `n_eval`, strengths,
        weaknesses, samples, latency and the task's own tables."""

    def summary(self, notes: dict) -> str:
        """The one console line after the Tasting."""
