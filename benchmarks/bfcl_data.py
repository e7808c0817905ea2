"""BFCL's questions, possible answers and function docs, read from the `bfcl-eval` wheel.

Only the function docs go into a Recipe; questions and answers are read for scoring alone.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

from distillery.errors import DistilleryError

CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance")


def data_dir() -> Path:
    """bfcl_eval/data inside the installed wheel."""
    spec = importlib.util.find_spec("bfcl_eval")
    if spec is None or spec.origin is None:
        raise DistilleryError("the BFCL data is not installed. Fix: `.venv/bin/pip install bfcl-eval` "
                              "(its data files are all this benchmark reads from it).")
    return Path(spec.origin).parent / "data"


def _data_file(folder: Path, category: str) -> Path | None:
    # The file name carries BFCL's release (BFCL_v4_...); take the newest one present. The
    # pattern is exact: "multiple" must not find live_multiple or parallel_multiple.
    pattern = re.compile(rf"BFCL_v(\d+)_{re.escape(category)}\.json")
    found = [(int(m.group(1)), p) for p in folder.glob("BFCL_v*.json") if (m := pattern.fullmatch(p.name))]
    return max(found)[1] if found else None


def load_questions(category: str, root: Path | None = None) -> list[dict]:
    """Every question of `category`: {"id", "utterance", "functions", "answers"}; `answers` is
    BFCL's possible answer (empty for irrelevance, where the right answer is no call)."""
    root = root or data_dir()
    path = _data_file(root, category)
    if path is None:
        raise DistilleryError(f"{root}: no BFCL file for category {category!r}. "
                              f"Fix: use one of {', '.join(CATEGORIES)}.")
    answers = {}
    answer_path = _data_file(root / "possible_answer", category)
    if answer_path is not None:
        for line in answer_path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                answers[row["id"]] = row["ground_truth"]
    questions = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if row["id"] not in answers and "irrelevance" not in category:
            raise DistilleryError(f"{answer_path}: no possible answer for {row['id']}. Fix: reinstall bfcl-eval.")
        questions.append({"id": row["id"], "utterance": user_turn(row["question"]),
                          "functions": row["function"], "answers": answers.get(row["id"], [])})
    return questions


def user_turn(question: list) -> str:
    """The request: the last user message of the first turn (the categories here are single-turn)."""
    messages = question[0] if question and isinstance(question[0], list) else question
    return next(m["content"] for m in reversed(messages) if m.get("role") == "user")


def catalog_docs(questions: list[dict]) -> tuple[list[dict], int]:
    """The distinct function docs the questions offer (first one kept when a name has two
    versions) and how many names had another version."""
    docs: dict[str, dict] = {}
    clashes = set()
    for question in questions:
        for doc in question["functions"]:
            if doc["name"] in docs and docs[doc["name"]] != doc:
                clashes.add(doc["name"])
            docs.setdefault(doc["name"], doc)
    return list(docs.values()), len(clashes)


def shape(questions: list[dict], category: str) -> dict:
    """The deployment's shape, which a Recipe states anyway: how many tools a request offers, and
    whether requests need several calls. Read from the docs' grouping and the category's name."""
    counts = [len(q["functions"]) for q in questions]
    return {"tools_per_call": {"min": min(counts), "max": max(counts)},
            "parallel_ratio": 0.5 if "parallel" in category else 0.0}
