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

import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from distillery.errors import DistilleryError
from distillery.openai_api import ApiError, ChatRequest, last_user_message


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


def verdict_line(notes: dict) -> str:
    """The teacher-vs-student verdict for the console line, when the notes have one."""
    v = notes.get("verdict")
    if not v:
        return ""
    return (f"  teacher {v['teacher_accuracy']:.3f} vs student {v['student_accuracy']:.3f}: {v['verdict']} "
            f"({v['errors']['inherited']} inherited, {v['errors']['compression']} compression errors)")


def parse_heads(text: str, where: str, check: Callable[[dict], str | None]) -> list[dict]:
    """Held-out examples from JSON Lines text (a run's cuts/heads.jsonl); `check(row)` says what a
    row lacks for this task (None: usable). The first bad line is a DistilleryError at file:line."""
    heads = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DistilleryError(f"{where}:{number}: invalid JSON ({exc.msg}). Fix: one heads example a line, "
                                  "as in runs/<name>-v<version>/cuts/heads.jsonl.") from None
        problem = "not a JSON object" if not isinstance(row, dict) else check(row)
        if problem:
            raise DistilleryError(f"{where}:{number}: {problem}. Fix: use the heads of a run of the same recipe "
                                  "(runs/<name>-v<version>/cuts/heads.jsonl).")
        row.setdefault("id", number)
        heads.append(row)
    if not heads:
        raise DistilleryError(f"{where}: no examples. Fix: give a non-empty heads file.")
    return heads


_TEXT_KEYS = ("utterance", "text", "input", "question")
_TEXT_EXAMPLE = '{"id": "q1", "text": "where is the retry logic?"}'


def read_texts(path: Path) -> list[tuple[str | int, str]]:
    """`predict --input` for a task that reads one text: (id, text) per line of
    `{"id", "text" (or "utterance", "input", "question", or OpenAI "messages")}`. Every line is
    checked before the model runs, so a bad line costs no compute."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DistilleryError(f"{path}: cannot be read ({exc}). Fix: give a UTF-8 JSON Lines file, one request a "
                              f"line, e.g. {_TEXT_EXAMPLE}.") from None
    found, seen = [], set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DistilleryError(f"{where}: invalid JSON ({exc.msg} at column {exc.colno}). Fix: one complete "
                                  f"JSON object a line, e.g. {_TEXT_EXAMPLE}.") from None
        if not isinstance(row, dict) or not isinstance(row.get("id"), (str, int)) or isinstance(row.get("id"), bool):
            raise DistilleryError(f'{where}: a line is a JSON object with an "id" (string or number). '
                                  f"Fix: e.g. {_TEXT_EXAMPLE}.")
        if "messages" in row:
            text = last_user_message(row["messages"], where)
        else:
            text = next((row[k] for k in _TEXT_KEYS if isinstance(row.get(k), str) and row[k].strip()), None)
        if text is None:
            raise DistilleryError(f'{where}: no text to answer. Fix: add it as "text": "..." (or OpenAI chat '
                                  '"messages").')
        if "tools" in row:
            raise DistilleryError(f'{where}: "tools" would do nothing: this Spirit calls no tools. Fix: remove it.')
        if row["id"] in seen:
            raise DistilleryError(f"{where}: id {row['id']!r} is used twice. Fix: give every request its own id.")
        seen.add(row["id"])
        found.append((row["id"], text.strip()))
    if not found:
        raise DistilleryError(f"{path}: no requests in the file. Fix: one request a line, e.g. {_TEXT_EXAMPLE}.")
    return found


def untooled_problems(recipe) -> list[tuple[str, str]]:
    """Recipe settings that a task with no tools and always-constrained decoding cannot honour."""
    kind, problems = recipe.task.kind, []
    if recipe.tools is not None:
        problems.append(("tools", f"a {kind} task has no tool catalog. Fix: remove `tools`."))
    if "grammar" in recipe.tasting.model_fields_set:
        problems.append(("tasting.grammar", f"a {kind} Spirit always decodes within its answers (labels, spans of "
                                            "the input); the setting would do nothing. Fix: remove it."))
    return problems


def always_constrained(grammar: bool | None, kind: str) -> None:
    """Refuse `--no-grammar` where decoding has no unconstrained mode."""
    if grammar is False:
        raise DistilleryError(f"a {kind} Spirit always decodes within its answers; --no-grammar would do nothing. "
                              "Fix: leave it out.")


def no_tools(path: Path | None, kind: str) -> None:
    """A task that reads one text offers no tools: `--tools` is refused."""
    if path is not None:
        raise DistilleryError(f"a {kind} Spirit answers a text and offers no tools; --tools would do nothing. "
                              "Fix: leave it out.")


def predict_texts(predictor, path: Path, on_progress=None) -> list[dict]:
    """`predict --input` for a task that reads one text: `{"id", <the answer's keys>, "latency_ms"}` a row."""
    requests, rows = read_texts(path), []
    for i, (id_, text) in enumerate(requests):
        prediction = predictor.predict(text)
        rows.append({"id": id_, **prediction.answer, "latency_ms": round(prediction.latency_ms, 2)})
        if on_progress:
            on_progress(i + 1, len(requests))
    return rows


class TextAnswers:
    """`predict` for a task whose request is one text and whose answer is a JSON object (a label,
    spans): no tools offered, `--input` lines of `{"id", "text"}`."""

    kind: str

    def request_context(self, path: Path | None) -> None:
        return no_tools(path, self.kind)

    def ask(self, predictor, text: str, context: None):
        return predictor.predict(text)

    def answer_json(self, prediction):
        return prediction.answer

    def predict_rows(self, predictor, path: Path, context: None, on_progress=None) -> list[dict]:
        return predict_texts(predictor, path, on_progress)


@dataclass
class Reply:
    """What a Spirit answers a chat request: tool calls, or JSON text as the message content."""

    calls: list[dict]
    content: str | None
    finish_reason: str  # "tool_calls", "stop" or "length"
    prompt_tokens: int


class JsonTurn:
    """One chat request to a Spirit whose answer is a JSON object in the message content (a label,
    spans): what `response_format: {"type": "json_object"}` asks for. Tools and a json_schema
    response format would do nothing, so they are refused."""

    reply = None  # always decoded

    def __init__(self, request: ChatRequest, utterance: str, kind: str, model: str, shape: str):
        if request.tools:
            raise ApiError(400, f"{model} is a {kind} Spirit and calls no tools. Fix: leave out tools.",
                           param="tools")
        wanted = (request.model_extra or {}).get("response_format")
        given = wanted.get("type") if isinstance(wanted, dict) else None
        if wanted is not None and given not in ("text", "json_object"):
            raise ApiError(400, f"{model} always answers {shape}; response_format {given!r} cannot change that. "
                                "Fix: `response_format: {\"type\": \"json_object\"}` or leave it out.",
                           param="response_format")
        self.utterance = utterance

    def run(self, caller) -> Reply:
        prediction = caller.predict(self.utterance)
        return Reply([], json.dumps(prediction.answer, ensure_ascii=False), "stop", prediction.prompt_tokens)


class Predictor(Protocol):
    """Answers one request with a trained student. `predict` returns an object with the
    task's structured answer, the raw text, `latency_ms` and `unfinished`."""

    def predict(self, utterance: str, *args: Any) -> Any: ...


class Task(Protocol):
    """Built from a Recipe (`Task(recipe)`, to distill) or from a Spirit's metadata
    (`from_metadata`, to answer, taste and serve); the second kind has no recipe."""

    kind: str  # the Recipe's `task.kind`
    proof_metric: str  # the metric of the notes that is the proof (the headline, in degrees)

    # -- the Recipe --------------------------------------------------------------------------
    @classmethod
    def recipe_problems(cls, recipe) -> list[tuple[str, str]]:
        """(field, message) for each setting of `recipe` this kind cannot honour."""

    @staticmethod
    def load_context(data: dict, base_dir: Path, problems: list) -> list:
        """What the kind loads from outside the Recipe (a tool catalog file); problems appended."""

    def estimate(self) -> dict:
        """`distillery estimate`: the Mash's teacher requests, tokens, USD and seconds (estimate.py)."""

    # -- a Spirit ----------------------------------------------------------------------------
    @classmethod
    def from_metadata(cls, metadata: dict, where: str) -> Task:
        """The task of a Spirit or bottle, from what it carries (`spirit_context`'s keys)."""

    def parse_heads(self, text: str, where: str) -> list[dict]:
        """Held-out examples of this task from JSON Lines text, checked."""

    def request_context(self, path: Path | None) -> Any:
        """What `predict` offers with each request (a tool catalog file, or the Spirit's own)."""

    def ask(self, predictor: Predictor, text: str, context: Any) -> Any:
        """One prediction for `text`."""

    def answer_json(self, prediction: Any) -> Any:
        """The JSON answer `predict` prints (None: the output is not an answer)."""

    def predict_rows(self, predictor: Predictor, path: Path, context: Any) -> list[dict]:
        """`predict --input`: one answer row per request line of `path`, in order."""

    def fixed_context(self) -> str | None:
        """The prompt's context text when it never changes (a label set), else None (offered tools)."""

    def card(self) -> dict:
        """What an hf bottle's model card says: what, trained_on, tags, example, fixed_context, constraint."""

    def answer_schema(self) -> dict | None:
        """The JSON schema of an answer, where the answer is JSON (a gguf bottle's .gbnf)."""

    def chat_turn(self, request: ChatRequest, utterance: str, model: str) -> Any:
        """One `/v1/chat/completions` request: an object with `reply` (a Reply when no decoding
        is needed, else None) and `run(caller) -> Reply`; ApiError for a request it cannot answer."""

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

    def predictor(self, model, tokenizer, fmt, decoding: dict, grammar: bool | None = None) -> Predictor:
        """What answers a request with the trained student (`model`: a module or a runner);
        `grammar` overrides the Spirit's decoding constraint where the kind has a choice."""

    def taste(self, predictor: Predictor, heads: list[dict], *, samples: int, held_out: int | None) -> dict:
        """Tasting-notes fields: `proof`, `proof_metric`, `metrics`, `n_eval`, strengths,
        weaknesses, samples, latency and the task's own tables."""

    def summary(self, notes: dict) -> str:
        """The one console line after the Tasting."""
