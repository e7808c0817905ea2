"""Span extraction behind the Task seam: the answer is a list of {type, text} whose texts are
spans of the input (names, emails, phone numbers... in the order they appear).

Decoding is constrained by a JSON schema: each item's `type` is a declared type and its
`text` one of the input's word-aligned spans, so the student can only point into the input,
never write a value that is not there. The proof is span-F1 (exact type and text).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from distillery.decoding import as_runner, greedy_decode
from distillery.errors import TeacherError
from distillery.jsonl import write_jsonl
from distillery.mash import collect, normalize_utterance
from distillery.tasks import base
from distillery.tasks.base import latency_ms, wrong_first
from distillery.tasks.spans.metrics import span_scores
from distillery.tasks.spans.offline import OfflineSpanTeacher, SpanType
from distillery.tasks.tool_calling.grammar import CallGrammar
from distillery.tasks.tool_calling.spans import spans as word_spans

INSTRUCTION = ('You extract spans. Answer with a JSON list [{"type": ..., "text": ...}] of every span of these '
               "types in the text, in order, or [] when there is none:")
TEXT_KEYS = ("utterance", "text", "input")


@dataclass
class SpanPrediction:
    spans: list[dict] | None
    text: str
    latency_ms: float
    unfinished: bool = False
    prompt_tokens: int = 0

    @property
    def answer(self) -> dict:
        return {"spans": self.spans}


def types_context(types: dict[str, str]) -> str:
    return "\n".join(f"{name}: {meaning}" for name, meaning in types.items())


def answer_schema(types: list[str], utterance: str) -> dict:
    found = word_spans(utterance)
    item = {"type": "object", "properties": {"type": {"enum": types}, "text": {"enum": found}},
            "required": ["type", "text"], "additionalProperties": False}
    return {"type": "array", "items": item if found else False}


def check_spans(spans: object, text: str, types: dict[str, str]) -> str | None:
    """Why an answer is not a list of declared-type spans of `text`; None when it is."""
    if not isinstance(spans, list) or not all(isinstance(s, dict) and set(s) == {"type", "text"} for s in spans):
        return 'bad_structure: the answer is not a list of {"type", "text"}'
    for span in spans:
        if span["type"] not in types:
            return f"unknown_type: {span['type']!r} is not a declared type"
        if not isinstance(span["text"], str) or span["text"] not in text:
            return f"not_a_span: {span['text']!r} is not in the text"
    return None


class SpanPredictor:
    def __init__(self, model, tokenizer, fmt, types: dict[str, str]):
        self.model = as_runner(model, fmt.context)
        self.tokenizer, self.format, self.types = tokenizer, fmt, types
        self.grammar = CallGrammar(tokenizer, fmt)
        self.context = types_context(types)

    def predict(self, utterance: str) -> SpanPrediction:
        start = time.perf_counter()
        prompt = self.format.text_ids(self.tokenizer, self.format.framed(utterance, self.context))
        matcher = self.grammar.schema_matcher(answer_schema(list(self.types), utterance))
        ids = greedy_decode(self.model, prompt, eos_id=self.format.end_id, max_new_tokens=self.format.context,
                            logits_filter=matcher)
        text = self.tokenizer.decode(ids)
        try:
            found = json.loads(text)
        except ValueError:
            found = None
        return SpanPrediction(spans=found if check_spans(found, utterance, self.types) is None else None, text=text,
                              latency_ms=(time.perf_counter() - start) * 1000, prompt_tokens=len(prompt))


class SpansTask(base.TextAnswers):
    kind = "spans"
    proof_metric = "span_f1"

    def __init__(self, recipe=None, types: dict[str, str] | None = None):
        self.recipe = recipe
        self.types: dict[str, str] = dict(recipe.task.types if recipe is not None else types)

    # -- the Recipe --------------------------------------------------------------------------
    @classmethod
    def recipe_problems(cls, recipe) -> list[tuple[str, str]]:
        problems = base.untooled_problems(recipe)
        if recipe.teacher.provider not in ("offline", "replay"):
            problems.append(("teacher.provider", f"an LLM teacher ({recipe.teacher.provider}) for span extraction "
                                                 "is not available in this version. Fix: `provider: offline`, or "
                                                 "`provider: replay` with `traces:` your annotated texts."))
        for section, name in (("mash", "examples_per_call"), ("teacher", "temperature")):
            if name in getattr(recipe, section).model_fields_set:
                problems.append((f"{section}.{name}", "only an LLM teacher reads it, and spans have none yet. "
                                                      "Fix: remove it."))
        return problems

    @staticmethod
    def load_context(data: dict, base_dir: Path, problems: list) -> list:
        return []  # the span types are the Recipe's own `task.types`

    def estimate(self) -> dict:
        from distillery.estimate import unpaid

        return unpaid(self.recipe)  # offline or replay: nothing is sent

    # -- a Spirit ----------------------------------------------------------------------------
    @classmethod
    def from_metadata(cls, metadata: dict, where: str) -> SpansTask:
        found = metadata.get("labels") or {}
        if not isinstance(found.get("types"), dict) or not found["types"]:
            raise ValueError(f"{where}: a spans Spirit without its span types (labels metadata)")
        return cls(types=found["types"])

    def parse_heads(self, text: str, where: str) -> list[dict]:
        def check(row: dict) -> str | None:
            if not isinstance(row.get("utterance"), str):
                return 'a heads line needs the "utterance" its spans are in'
            return check_spans(row.get("spans"), row["utterance"], self.types)

        return base.parse_heads(text, where, check)

    def fixed_context(self) -> str:
        return types_context(self.types)

    def card(self) -> dict:
        return {"what": "span extraction: given a text, it writes the spans of its types that the text holds, as "
                        'JSON `[{"type": ..., "text": ...}]`',
                "trained_on": f"Its span types: {', '.join(f'`{t}`' for t in self.types)}.",
                "tags": ["token-classification", "ner"], "example": "Mail anna.berg@example.com before Friday.",
                "fixed_context": "span types, one `type: what it is` a line",
                "constraint": "distillery decodes under a schema whose texts are spans of the input, so it can only "
                              "point into\nthe text; plain `generate` has no such constraint."}

    def answer_schema(self) -> dict:
        """An answer's JSON schema without a request: spans of the declared types (a gguf bottle's
        .gbnf; distillery's own decoding also keeps each text to a span of the request)."""
        item = {"type": "object", "properties": {"type": {"enum": list(self.types)}, "text": {"type": "string"}},
                "required": ["type", "text"], "additionalProperties": False}
        return {"type": "array", "items": item}

    def chat_turn(self, request, utterance: str, model: str):
        return base.JsonTurn(request, utterance, self.kind, model, '{"spans": [{"type", "text"}]}')

    def spirit_context(self) -> dict[str, str]:
        return {"labels": json.dumps({"types": self.types}, ensure_ascii=False)}

    def mash_inputs(self) -> str:
        return json.dumps({"types": self.types}, sort_keys=True)

    def prompt_format(self, fmt):
        import dataclasses

        return dataclasses.replace(fmt, instruction=INSTRUCTION)

    # -- the Mash ----------------------------------------------------------------------------
    def offline_teacher(self):
        try:
            return OfflineSpanTeacher([SpanType(n, d) for n, d in self.types.items()], seed=self.recipe.seed)
        except ValueError as err:
            raise TeacherError(f"task.types: {err}") from None

    def replay_teacher(self, path: Path):
        return _SpanFile(path)

    def build_mash(self, teacher, run_dir: Path, on_progress=None):
        types = self.types

        def judge(candidate: dict) -> tuple[str | None, dict | None]:
            text = next((candidate[k] for k in TEXT_KEYS if isinstance(candidate.get(k), str)), None)
            if not text or not text.strip():
                return "bad_structure: no text", None
            reason = check_spans(candidate.get("spans"), text, types)
            return reason, None if reason else {"utterance": text, "spans": candidate["spans"],
                                                "teacher": candidate.get("teacher", {})}

        total = self.recipe.mash.total_examples
        stats, accepted, rejected = collect(teacher, total, judge, limit=20 * total, on_progress=on_progress)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_jsonl(run_dir / "mash.rejects.jsonl", rejected)
        write_jsonl(run_dir / "mash.jsonl", accepted)
        return stats

    def group_key(self, example: dict) -> str:
        return normalize_utterance(example["utterance"])

    # -- the Still ---------------------------------------------------------------------------
    def texts(self, examples: list[dict]) -> list[str]:
        # A tiny student's tokenizer is fitted to its prompts, written with its special tokens.
        from distillery.tokenizer import CALL, END, TOOLS, USER

        context = types_context(self.types)
        return [f"{TOOLS}{context}{USER}{ex['utterance'].strip()}{CALL}"
                f"{json.dumps(ex['spans'], ensure_ascii=False, separators=(',', ':'))}{END}" for ex in examples]

    def epoch_examples(self, hearts: list[dict], seed: int):
        return lambda epoch: hearts

    def training_pairs(self, fmt, tok, examples: list[dict]) -> list[tuple[list[int], list[int]]]:
        context, pairs = types_context(self.types), []
        for ex in examples:
            prompt = fmt.text_ids(tok, fmt.framed(ex["utterance"], context))
            spans = [{"type": s["type"], "text": s["text"]} for s in ex["spans"]]
            answer = tok.encode(fmt.dumps(spans) + fmt.end_text, add_special_tokens=False).ids
            if len(prompt) + len(answer) <= fmt.context:
                pairs.append((prompt, answer))
        return pairs

    # -- the Tasting -------------------------------------------------------------------------
    def decoding(self, hearts: list[dict]) -> dict:
        return {"grammar": True, "types": list(self.types)}

    def predictor(self, model, tok, fmt, decoding: dict, grammar: bool | None = None) -> SpanPredictor:
        base.always_constrained(grammar, self.kind)
        return SpanPredictor(model, tok, fmt, self.types)

    def taste(self, predictor: SpanPredictor, heads: list[dict], *, samples: int, held_out: int | None) -> dict:
        heads = heads[:held_out] if held_out else heads
        predictions = [predictor.predict(ex["utterance"]) for ex in heads]
        gold = [ex["spans"] for ex in heads]
        said = [p.spans for p in predictions]
        scores = span_scores(gold, said, [ex["utterance"] for ex in heads])
        per_type = scores.pop("per_type")
        metrics = {k: v for k, v in scores.items() if k != "n_examples"}
        rows = [{"id": ex["id"], "input": ex["utterance"], "gold": _shown(g), "predicted": _shown(s),
                 "verdict": "exact" if s is not None and sorted(map(json.dumps, g)) == sorted(map(json.dumps, s))
                 else "invalid output" if s is None else "wrong spans"}
                for ex, g, s in zip(heads, gold, said)]
        latencies = [p.latency_ms for p in predictions]
        ranked = sorted(per_type.items(), key=lambda kv: (-kv[1]["f1"], kv[0]))
        return {
            "proof": metrics[self.proof_metric],
            "proof_metric": self.proof_metric,
            "metrics": metrics,
            "n_eval": len(heads),
            "strengths": [f"{t}: F1 {row['f1']:.2f} on {row['support']} spans" for t, row in ranked[:3]
                          if row["f1"] >= 0.8],
            "weaknesses": [f"{t}: F1 {row['f1']:.2f} on {row['support']} spans" for t, row in ranked[::-1][:3]
                           if row["f1"] < 0.8],
            "samples": wrong_first(rows, samples),
            "per_type": per_type,
            "tables": [{"title": "Per type", "header": ["type", "spans", "precision", "recall", "F1", "partial F1"],
                        "rows": [[t, row["support"], f"{row['precision']:.2f}", f"{row['recall']:.2f}",
                                  f"{row['f1']:.2f}", f"{row['partial_f1']:.2f}"] for t, row in per_type.items()]}],
            "latency_ms": latency_ms(latencies),
            "unfinished": 0,
            "predictions": rows,
        }

    def summary(self, notes: dict) -> str:
        m = notes["metrics"]
        return (f"proof {notes['proof'] * 100:.0f}° ({notes['proof_metric']})  partial_f1 {m['partial_f1']:.3f}  "
                f"exact_match {m['exact_match']:.3f}  p50 {notes['latency_ms']['p50']:.1f} ms")


def _shown(spans: list[dict] | None) -> str:
    if spans is None:
        return "(invalid)"
    return "; ".join(f"{s['type']}: {s['text']}" for s in spans) or "(none)"


class _SpanFile:
    """The user's own annotated texts as the teacher: {"text": ..., "spans": [{"type", "text"}]} a line."""

    def __init__(self, path: Path):
        try:
            self.rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()
                         if line.strip()]
        except (OSError, ValueError) as err:
            raise TeacherError(f"{path}: cannot read the span file ({err}). Fix: one JSON object a line, "
                               '{"text": ..., "spans": [{"type": ..., "text": ...}]}.') from None

    def candidate(self, index: int) -> dict | None:
        if index >= len(self.rows):
            return None
        row = self.rows[index]
        return {**row, "teacher": {"provider": "replay", "line": index + 1}} if isinstance(row, dict) else {}
