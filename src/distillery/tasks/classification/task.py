"""Classification behind the Task seam: one label (or a set of labels) from a fixed label set.

The proof is macro-F1 (every label counts the same, however rare). Where the heads carry
the right answer (`expected`), the notes also hold the teacher-vs-student verdict: both
accuracies, the drop, and each student error classed as inherited or compression.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from distillery import comparison
from distillery.errors import TeacherError
from distillery.mash import Listed, normalize_utterance
from distillery.tasks import base
from distillery.tasks.base import latency_ms, wrong_first
from distillery.tasks.classification import data
from distillery.tasks.classification.metrics import confusion_png, label_scores
from distillery.tasks.classification.predictor import LabelPredictor, answer_text, label_context

EXAMPLE_CHARS = 110  # a generated example's JSON without its label: a sentence or two and the keys
INSTRUCTION = "You classify requests. Answer with the label that fits, from these:"
INSTRUCTION_MULTI = "You classify requests. Answer with every label that fits, comma-separated, from these:"


class ClassificationTask(base.TextAnswers):
    kind = "classification"
    proof_metric = "macro_f1"

    def __init__(self, recipe=None, labels: dict[str, str] | None = None, multi_label: bool = False):
        self.recipe = recipe
        self.labels: dict[str, str] = dict(recipe.task.labels if recipe is not None else labels)
        self.names = list(self.labels)
        self.multi_label = recipe.task.multi_label if recipe is not None else multi_label

    # -- the Recipe --------------------------------------------------------------------------
    @classmethod
    def recipe_problems(cls, recipe) -> list[tuple[str, str]]:
        problems = base.untooled_problems(recipe)
        llm = recipe.teacher.provider not in ("offline", "replay")
        if recipe.mash.inputs and not llm:
            problems.append(("mash.inputs", "only an LLM teacher labels inputs (replay reads `teacher.traces`). "
                                            "Fix: remove it."))
        # An LLM writes examples per label (examples_per_call a request, sampled at the recipe's
        # temperature) unless it labels `mash.inputs`, one input a request, greedily.
        generating = llm and not recipe.mash.inputs
        if "examples_per_call" in recipe.mash.model_fields_set and not generating:
            problems.append(("mash.examples_per_call", "only an LLM teacher that writes examples reads it; this one "
                                                       + ("labels one input a request" if llm else "is a file")
                                                       + ". Fix: remove it."))
        if "temperature" in recipe.teacher.model_fields_set and not generating:
            why = ("labels are asked for greedily (temperature 0), so the same input gets the same label" if llm
                   else "a replayed file is not sampled")
            problems.append(("teacher.temperature", f"{why}. Fix: remove it."))
        return problems

    def estimate(self) -> dict:
        """The teacher requests of the Mash: one per input (labelling), or the generator's rounds."""
        from distillery.estimate import ANSWER_CHARS_PER_TOKEN, priced, unpaid
        from distillery.tasks.classification import generator
        from distillery.tasks.classification.labeller import label_request

        r = self.recipe
        if r.teacher.provider in ("offline", "replay"):
            return unpaid(r)
        longest = max(len(name) for name in self.names) * (len(self.names) if self.multi_label else 1)
        if r.mash.inputs:
            requests = [label_request(ex, self.labels, self.multi_label, r.teacher.max_tokens)
                        for ex in _inputs(r.inputs_path)]
            answer = math.ceil((len('{"label": ""}') + longest) / ANSWER_CHARS_PER_TOKEN)
            each = "one input labelled each"
        else:
            n, rounds = generator.plan(len(self.names), r.mash.total_examples, r.mash.examples_per_call)
            requests = [generator.generate_request(name, self.labels, self.multi_label, n, k, r.seed,
                                                   r.teacher.temperature, r.teacher.max_tokens)
                        for k in range(rounds) for name in self.names]
            answer = min(r.teacher.max_tokens, math.ceil(n * (EXAMPLE_CHARS + longest) / ANSWER_CHARS_PER_TOKEN))
            each = f"{n} examples each, every label in turn"
        prompt_chars = sum(len(m["content"]) + 8 for q in requests for m in q.messages)
        return priced(r, requests=len(requests), prompt_chars=prompt_chars, answer_tokens=answer, each=each)

    @staticmethod
    def load_context(data: dict, base_dir: Path, problems: list) -> list:
        return []  # the labels are the Recipe's own `task.labels`

    # -- a Spirit ----------------------------------------------------------------------------
    @classmethod
    def from_metadata(cls, metadata: dict, where: str) -> ClassificationTask:
        found = metadata.get("labels") or {}
        if not isinstance(found.get("labels"), dict) or len(found["labels"]) < 2:
            raise ValueError(f"{where}: a classification Spirit without its label set (labels metadata)")
        return cls(labels=found["labels"], multi_label=bool(found.get("multi_label")))

    def parse_heads(self, text: str, where: str) -> list[dict]:
        def check(row: dict) -> str | None:
            if not isinstance(row.get("utterance"), str):
                return 'a heads line needs the "utterance" it classifies'
            for key in ("label", "expected"):
                if key in row and data.check_answer(row[key], self.names, self.multi_label):
                    return f'"{key}": {data.check_answer(row[key], self.names, self.multi_label)} of this Spirit'
            return None if "label" in row or "expected" in row else 'a heads line needs its "label" (or "expected")'

        heads = base.parse_heads(text, where, check)
        for row in heads:
            row.setdefault("label", row.get("expected"))
        return heads

    def fixed_context(self) -> str:
        return label_context(self.labels)

    def card(self) -> dict:
        shape = "every label that fits, comma-separated" if self.multi_label else "the one label that fits"
        return {"what": f"classification: given a text, it writes {shape}",
                "trained_on": f"Its labels: {', '.join(f'`{n}`' for n in self.names)}.",
                "tags": ["text-classification"], "example": "how do I configure the retry policy?",
                "fixed_context": "label set, one `label: what it means` a line",
                "constraint": "distillery decodes within the label set, so it can only answer one of its labels; "
                              "plain\n`generate` has no such constraint."}

    def answer_schema(self) -> None:
        return None  # the answer is a label's text, not JSON: decoding keeps to the label set itself

    def chat_turn(self, request, utterance: str, model: str):
        return base.JsonTurn(request, utterance, self.kind, model, '{"label": ...}')

    def spirit_context(self) -> dict[str, str]:
        return {"labels": json.dumps({"labels": self.labels, "multi_label": self.multi_label}, ensure_ascii=False)}

    def mash_inputs(self) -> str:
        return json.dumps({"labels": self.labels, "multi_label": self.multi_label}, sort_keys=True)

    def prompt_format(self, fmt):
        return dataclasses.replace(fmt, instruction=INSTRUCTION_MULTI if self.multi_label else INSTRUCTION)

    # -- the Mash ----------------------------------------------------------------------------
    def offline_teacher(self):
        raise TeacherError("a classification task has no offline teacher that could know your labels. Fix: "
                           "`teacher: {provider: replay, traces: FILE}` with your labelled inputs (JSON Lines: "
                           '{"question": ..., "expected": LABEL}), or an LLM teacher.')

    def replay_teacher(self, path: Path):
        return data.LabelledFile(path)

    def build_mash(self, teacher, run_dir: Path, on_progress=None):
        r = self.recipe
        if hasattr(teacher, "complete"):  # an LLM, through the journal: it labels inputs or writes examples
            from distillery.tasks.classification.generator import generate_examples
            from distillery.tasks.classification.labeller import label_inputs
            from distillery.teachers.cost import BudgetReached, check_budget_is_enforceable

            price = check_budget_is_enforceable(r.teacher, teacher.model)
            try:
                if r.mash.inputs:
                    found = label_inputs(teacher, _inputs(r.inputs_path), self.labels, self.multi_label, r.teacher,
                                         run_dir / "journal", price=price)
                else:
                    written = generate_examples(teacher, self.labels, self.multi_label, r.mash.total_examples,
                                                r.mash.examples_per_call, r.teacher, run_dir / "journal",
                                                seed=r.seed, price=price)
                    found = [{"utterance": ex["text"], **{k: v for k, v in ex.items() if k != "text"}}
                             for ex in written]
            except BudgetReached:
                raise TeacherError(f"teacher.budget_usd (${r.teacher.budget_usd:g}) reached. Fix: raise it and run "
                                   "again; every answer paid for is in the journal and not paid again.") from None
            teacher = Listed(found)
        return data.build_mash(teacher, self.names, self.multi_label, r.mash, run_dir, seed=r.seed,
                               on_progress=on_progress)

    def group_key(self, example: dict) -> str:
        return normalize_utterance(data.request_text(example))

    # -- the Still ---------------------------------------------------------------------------
    def _prompt(self, fmt, example: dict) -> str:
        return fmt.framed(data.request_text(example), label_context(self.labels))

    def texts(self, examples: list[dict]) -> list[str]:
        # A tiny student's tokenizer is fitted to its prompts, written with its special tokens.
        from distillery.tokenizer import CALL, END, TOOLS, USER

        context = label_context(self.labels)
        return [f"{TOOLS}{context}{USER}{data.request_text(ex).strip()}{CALL}"
                f"{answer_text(ex['label'], self.names)}{END}" for ex in examples]

    def epoch_examples(self, hearts: list[dict], seed: int):
        kept = data.trainable(hearts)  # the teacher's mistakes are not taught
        return lambda epoch: kept

    def training_pairs(self, fmt, tok, examples: list[dict]) -> list[tuple[list[int], list[int]]]:
        pairs = []
        for ex in examples:
            prompt = fmt.text_ids(tok, self._prompt(fmt, ex))
            answer = tok.encode(answer_text(ex["label"], self.names) + fmt.end_text, add_special_tokens=False).ids
            if len(prompt) + len(answer) <= fmt.context:
                pairs.append((prompt, answer))
        return pairs

    # -- the Tasting -------------------------------------------------------------------------
    def decoding(self, hearts: list[dict]) -> dict:
        return {"grammar": True, "labels": self.names}

    def predictor(self, model, tok, fmt, decoding: dict, grammar: bool | None = None) -> LabelPredictor:
        base.always_constrained(grammar, self.kind)
        return LabelPredictor(model, tok, fmt, self.labels, self.multi_label)

    def taste(self, predictor: LabelPredictor, heads: list[dict], *, samples: int, held_out: int | None) -> dict:
        heads = heads[:held_out] if held_out else heads
        predictions = [predictor.predict(ex["utterance"], ex.get("context")) for ex in heads]
        # The right answer is `expected` where the user gave one, else the teacher's label.
        gold = [ex.get("expected", ex["label"]) for ex in heads]
        said = [p.label for p in predictions]
        scores = label_scores(gold, said, self.names, multi_label=self.multi_label)
        confusion = scores.pop("confusion")
        per_label = scores.pop("per_label")
        metrics = {k: v for k, v in scores.items() if k != "n"}
        latencies = [p.latency_ms for p in predictions]
        rows = [{"id": ex["id"], "input": data.request_text(ex), "gold": answer_text(g, self.names),
                 "predicted": answer_text(s, self.names), "verdict": "exact" if data.same(g, s) else "wrong label"}
                for ex, g, s in zip(heads, gold, said)]
        ranked = sorted(per_label.items(), key=lambda kv: (-kv[1]["f1"], kv[0]))
        found = {
            "proof": metrics[self.proof_metric],
            "proof_metric": self.proof_metric,
            "metrics": metrics,
            "n_eval": len(heads),
            "strengths": [f"{label}: F1 {row['f1']:.2f} on {row['support']} cases" for label, row in ranked[:3]
                          if row["f1"] >= 0.8],
            "weaknesses": [f"{label}: F1 {row['f1']:.2f} on {row['support']} cases" for label, row in ranked[::-1][:3]
                           if row["f1"] < 0.8],
            "samples": wrong_first(rows, samples),
            "per_label": per_label,
            "confusion": confusion,
            "tables": [{"title": "Per label", "header": ["label", "n", "precision", "recall", "F1"],
                        "rows": [[label, row["support"], f"{row['precision']:.2f}", f"{row['recall']:.2f}",
                                  f"{row['f1']:.2f}"] for label, row in per_label.items()]}],
            "pictures": {"confusion.png": confusion_png(confusion)},
            "latency_ms": latency_ms(latencies),
            "unfinished": 0,
            "predictions": rows,
        }
        checked = [(ex, s) for ex, s in zip(heads, said) if "expected" in ex]
        if checked:
            records = [{"id": ex["id"], "teacher_right": data.same(ex["label"], ex["expected"]),
                        "student_right": data.same(s, ex["expected"])} for ex, s in checked]
            verdict = comparison.compare(records, teacher_ms_per_request=None,
                                         student_ms_per_request=found["latency_ms"]["p50"],
                                         teacher_cost_per_request=None)
            found["verdict"] = verdict
            found["verdict_markdown"] = comparison.verdict_table(verdict)
        return found

    def summary(self, notes: dict) -> str:
        m = notes["metrics"]
        line = (f"proof {notes['proof'] * 100:.0f}° ({notes['proof_metric']})  accuracy {m['accuracy']:.3f}  "
                f"micro_f1 {m['micro_f1']:.3f}  p50 {notes['latency_ms']['p50']:.1f} ms")
        return line + base.verdict_line(notes)


def _inputs(path: Path) -> list[dict]:
    """`mash.inputs`: the texts to label (and their `expected` answers where given); a `label`
    already in the file is not the teacher's, so it is not kept."""
    source = data.LabelledFile(path)
    found = (source.candidate(i) for i in range(len(source.lines)))
    return [{k: v for k, v in ex.items() if k not in ("label", "teacher")} for ex in found]
