"""Classification examples: the user's labelled file as a teacher, and the Mash built from it.

An example is `{"id", "utterance", "context"?, "label", "expected"?, "teacher"}`: `label` is
the teacher's answer (a label, or a list of labels when multi-label), `expected` the right
answer where the user knows it. The Still trains only on examples where the teacher agreed
with `expected` (the "filter correct" step: a teacher's mistakes are not taught); the heads
keep every example, so the Tasting can tell the student's own errors from inherited ones.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from distillery.errors import TeacherError
from distillery.jsonl import write_jsonl
from distillery.mash import MashStats, collect

INPUT_KEYS = ("utterance", "input", "question", "text")  # where a line's input may be
CONTEXT_KEYS = ("context", "conversation_context")


@dataclass
class LabelledFile:
    """A JSON Lines file as the teacher: each line's `label` (else its `expected`) is the answer.

    A line is {"question" | "input" | "utterance" | "text": str, "label"?: ..., "expected"?: ...,
    "conversation_context"?: str}. With both `label` and `expected`, `label` is what a teacher
    said and `expected` the truth; with `expected` alone, your labels are the teacher.
    """

    path: Path
    lines: list[dict] = field(default_factory=list)

    def __post_init__(self):
        try:
            text = Path(self.path).read_text(encoding="utf-8")
        except OSError as err:
            raise TeacherError(f"{self.path}: cannot read the labelled file ({err}). Fix: check `teacher.traces`.")
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                raise TeacherError(f"{self.path}:{number}: not a JSON object. Fix: one JSON object per line, "
                                   'e.g. {"question": "...", "expected": "docs"}.') from None
            self.lines.append({"line": number, **row} if isinstance(row, dict) else {"line": number, "bad": row})

    def candidate(self, index: int) -> dict | None:
        if index >= len(self.lines):
            return None
        row = self.lines[index]
        text = next((row[k] for k in INPUT_KEYS if isinstance(row.get(k), str)), None)
        answer = row.get("label", row.get("expected"))
        candidate = {"utterance": text, "label": answer,
                     "teacher": {"provider": "replay", "line": row["line"]}}
        context = next((row[k] for k in CONTEXT_KEYS if isinstance(row.get(k), str) and row[k].strip()), None)
        if context:
            candidate["context"] = context
        if "expected" in row:
            candidate["expected"] = row["expected"]
        return candidate


def request_text(example: dict) -> str:
    """The text the student reads: the conversation so far, then the request."""
    context = example.get("context")
    return f"{context.strip()}\n---\n{example['utterance'].strip()}" if context else example["utterance"]


def check_answer(answer: object, labels: list[str], multi_label: bool) -> str | None:
    """Why `answer` is not a label (or a list of labels) of the set; None when it is."""
    if multi_label:
        if not isinstance(answer, list) or not all(isinstance(a, str) for a in answer):
            return "bad_structure: a multi-label answer is a list of labels"
        unknown = [a for a in answer if a not in labels]
        return f"unknown_label: {unknown[0]!r} is not a label" if unknown else None
    if not isinstance(answer, str):
        return "bad_structure: the answer is not a label"
    return None if answer in labels else f"unknown_label: {answer!r} is not a label"


def build_mash(teacher, labels: list[str], multi_label: bool, mash_cfg, run_dir: Path, *, seed: int,
               on_progress=None) -> MashStats:
    """Take the teacher's labelled examples until `mash_cfg.total_examples`; write both JSONL files."""

    def judge(candidate: dict) -> tuple[str | None, dict | None]:
        text = candidate.get("utterance")
        if not isinstance(text, str) or not text.strip():
            return "bad_structure: no input text", None
        reason = check_answer(candidate.get("label"), labels, multi_label)
        if reason is None and "expected" in candidate:
            reason = check_answer(candidate["expected"], labels, multi_label)
            reason = reason and reason.replace(":", ": expected", 1)
        return reason, None if reason else {k: v for k, v in candidate.items() if k != "said"}

    # Two examples are the same request when their context and input are (`request_text`).
    stats, accepted, rejected = collect(teacher, mash_cfg.total_examples, judge, request=request_text,
                                        on_progress=on_progress)
    graded = [same(ex["label"], ex["expected"]) for ex in accepted if "expected" in ex]
    stats.teacher_accuracy = sum(graded) / len(graded) if graded else None
    random.Random(f"{seed}:order").shuffle(accepted)  # a file sorted by label must not cut by label
    run_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(run_dir / "mash.rejects.jsonl", rejected)
    write_jsonl(run_dir / "mash.jsonl", accepted)
    return stats


def same(a: object, b: object) -> bool:
    """Two answers agree: equal labels, or equal label sets."""
    return set(a) == set(b) if isinstance(a, list) and isinstance(b, list) else a == b


def trainable(hearts: list[dict]) -> list[dict]:
    """The hearts the Still may learn from: where the teacher was right, or nobody knows."""
    return [ex for ex in hearts if "expected" not in ex or same(ex["label"], ex["expected"])]
