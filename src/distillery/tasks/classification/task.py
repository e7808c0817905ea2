"""Classification behind the Task seam: one label (or a set of labels) from a fixed label set.

The proof is macro-F1 (every label counts the same, however rare). Where the heads carry
the right answer (`expected`), the notes also hold the teacher-vs-student verdict: both
accuracies, the drop, and each student error classed as inherited or compression.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from distillery import comparison
from distillery.errors import TeacherError
from distillery.mash import normalize_utterance
from distillery.tasks.base import latency_ms, wrong_first
from distillery.tasks.classification import data
from distillery.tasks.classification.metrics import confusion_png, label_scores
from distillery.tasks.classification.predictor import LabelPredictor, answer_text, label_context

INSTRUCTION = "You classify requests. Answer with the label that fits, from these:"
INSTRUCTION_MULTI = "You classify requests. Answer with every label that fits, comma-separated, from these:"


class ClassificationTask:
    kind = "classification"
    proof_metric = "macro_f1"

    def __init__(self, recipe):
        self.recipe = recipe
        self.labels: dict[str, str] = dict(recipe.task.labels)
        self.names = list(self.labels)
        self.multi_label = recipe.task.multi_label

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
        if hasattr(teacher, "complete"):  # an LLM labels `mash.inputs`, through the journal
            from distillery.tasks.classification.labeller import label_inputs
            from distillery.teachers.cost import BudgetReached, check_budget_is_enforceable

            inputs = _inputs(r.inputs_path)
            try:
                labelled = label_inputs(teacher, inputs, self.labels, self.multi_label, r.teacher, run_dir / "journal",
                                        price=check_budget_is_enforceable(r.teacher, teacher.model))
            except BudgetReached:
                raise TeacherError(f"teacher.budget_usd (${r.teacher.budget_usd:g}) reached. Fix: raise it and run "
                                   "again; every answer paid for is in the journal and not paid again.") from None
            teacher = data.Listed(labelled)
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

    def predictor(self, model, tok, fmt, decoding: dict) -> LabelPredictor:
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
        if notes.get("verdict"):
            v = notes["verdict"]
            line += (f"  teacher {v['teacher_accuracy']:.3f} vs student {v['student_accuracy']:.3f}: {v['verdict']} "
                     f"({v['errors']['inherited']} inherited, {v['errors']['compression']} compression errors)")
        return line


def _inputs(path: Path) -> list[dict]:
    """`mash.inputs`: the texts to label (and their `expected` answers where given); a `label`
    already in the file is not the teacher's, so it is not kept."""
    source = data.LabelledFile(path)
    found = (source.candidate(i) for i in range(len(source.lines)))
    return [{k: v for k, v in ex.items() if k not in ("label", "teacher")} for ex in found]
