"""Generation behind the Task seam: a short free-form text for each request, as `task.instruction`
says (a reply, a summary, a rewrite), optionally at most `task.max_words` words.

The teacher answers your requests (`mash.inputs`, mash.py); the student learns (instruction +
request -> the teacher's text) and writes free text, greedily or with the sampling settings
of `tasting:` (predictor.py); the Tasting's proof is the Recipe's llm judge's mean score, or
exact match with the teacher (tasting.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path

from distillery.errors import DistilleryError, TeacherError
from distillery.jsonl import write_jsonl
from distillery.mash import normalize_utterance
from distillery.tasks import base
from distillery.tasks.generation import mash, tasting
from distillery.tasks.generation.predictor import TextPredictor, decoding_settings
from distillery.tasks.generation.serving import TextTurn

# What a pretrained student reads before the Recipe's instruction, in its system turn.
INSTRUCTION = "You write the answer to the user's message, as this instruction says:"
LLM_TEACHERS = ("openai", "anthropic", "gemini")
JUDGE_ANSWER_TOKENS = 60  # a grade and a one-sentence reason


def context_text(instruction: str, max_words: int | None) -> str:
    """The instruction as the student's prompt carries it, with the length cap."""
    return instruction.strip() + (f" Answer in at most {max_words} words." if max_words else "")


@dataclasses.dataclass
class PairsFile:
    """`teacher: {provider: replay, traces: FILE}`: your own request and answer pairs."""

    path: Path


class GenerationTask(base.TextAnswers):
    kind = "generation"
    proof_metric = "judge_score"  # `exact_match` with `tasting.proof: exact`, and outside a run

    def __init__(self, recipe=None, instruction: str | None = None, max_words: int | None = None):
        self.recipe = recipe
        self.instruction = recipe.task.instruction if recipe is not None else instruction
        self.max_words = recipe.task.max_words if recipe is not None else max_words
        self.context = context_text(self.instruction, self.max_words)
        self.proof = (recipe.tasting.proof or "judge") if recipe is not None else "exact"
        if self.proof == "exact":
            self.proof_metric = "exact_match"

    # -- the Recipe --------------------------------------------------------------------------
    @classmethod
    def recipe_problems(cls, recipe) -> list[tuple[str, str]]:
        problems, t, m, judge = [], recipe.teacher, recipe.mash, recipe.judge
        if recipe.tools is not None:
            problems.append(("tools", "a generation task has no tool catalog. Fix: remove `tools`."))
        if _set(recipe.tasting, "grammar"):
            problems.append(("tasting.grammar", "a generation Spirit writes free text, with no grammar; the setting "
                                                "would do nothing. Fix: remove it."))
        if t.provider == "offline":
            problems.append(("teacher.provider", "no offline teacher can write your answers. Fix: an LLM teacher "
                                                 "(openai, anthropic, gemini) with `mash.inputs`, or `provider: "
                                                 "replay` with `traces:` your request and answer pairs."))
        elif t.provider == "replay":
            if m.inputs:
                problems.append(("mash.inputs", "the replay teacher reads requests and answers from "
                                                "`teacher.traces`. Fix: remove it."))
            if _set(t, "temperature"):
                problems.append(("teacher.temperature", "a replayed file is not sampled. Fix: remove it."))
        elif not m.inputs:
            problems.append(("mash.inputs", "missing; the teacher answers your requests. Fix: e.g. `inputs: "
                                            "requests.jsonl`, one {\"text\": ...} a line (docs/generation.md)."))
        if _set(m, "examples_per_call"):
            problems.append(("mash.examples_per_call", "the teacher answers one request a call. Fix: remove it."))
        if m.samples_per_request > 1:
            problems.append(("mash.samples_per_request", "best-of-N is not available for generation in this "
                                                         "version; its judge grades the student. Fix: remove it."))
        proof = recipe.tasting.proof or "judge"
        if proof == "judge" and judge is None:
            problems.append(("judge", "missing; the proof of a generation task is an llm judge's mean score "
                                      "(`tasting.proof: judge`, the default). Fix: add `judge: {kind: llm, rubric: "
                                      "the reply answers the message politely and correctly}`, or set "
                                      "`tasting.proof: exact`."))
        if proof == "exact" and judge is not None:
            problems.append(("judge", "`tasting.proof: exact` compares answers with the teacher's; the judge would "
                                      "grade nothing. Fix: remove `judge`, or set `tasting.proof: judge`."))
        if proof == "judge" and judge is not None:
            problems += _judge_problems(recipe)
        if recipe.tasting.top_p is not None and not recipe.tasting.temperature:
            problems.append(("tasting.top_p", "narrows sampling, and decoding is greedy (no `tasting.temperature`). "
                                              "Fix: remove it, or set a temperature above 0."))
        if "web" in recipe.bottling.formats:
            problems.append(("bottling.formats", "the web page answers tool calls only. Fix: remove web; hf, onnx, "
                                                 "gguf and pt carry a generation Spirit."))
        return problems

    @staticmethod
    def load_context(data: dict, base_dir: Path, problems: list) -> list:
        return []  # the instruction is the Recipe's own `task.instruction`

    def estimate(self) -> dict:
        """The teacher requests of the Mash (one per distinct request, up to the total), and the
        judge's grades of the Tasting (one per heads example)."""
        from distillery.estimate import DEFAULT_MODELS, PROMPT_CHARS_PER_TOKEN, priced, unpaid
        from distillery.judges.config import judge_teacher
        from distillery.judges.llm import judge_request
        from distillery.mash import remember, seen_before
        from distillery.teachers.cost import price_for

        r = self.recipe
        numbers = unpaid(r)
        distinct, seen = [], set()
        if r.teacher.provider in LLM_TEACHERS:
            for _, text in mash.read_inputs(r.inputs_path):
                if not seen_before(seen, text):
                    remember(seen, text)
                    distinct.append(text)
            asked = distinct[:r.mash.total_examples]
            requests = [mash.write_request(text, self.instruction, self.max_words, r.teacher, r.seed) for text in asked]
            # An answer is about max_words long (a sentence or two without a cap), at most teacher.max_tokens.
            answer = min(r.teacher.max_tokens, math.ceil((self.max_words or 40) * 1.4) + 4)
            numbers = priced(r, requests=len(requests), prompt_chars=sum(len(m["content"]) + 8 for q in requests
                                                                         for m in q.messages),
                             answer_tokens=answer, each=f"one request answered each, of {len(distinct)} distinct")
        if self.proof != "judge" or r.judge is None:
            return numbers
        settings = judge_teacher(r.judge, r.teacher)
        model = settings.model or DEFAULT_MODELS[settings.provider]
        heads = math.ceil(min(r.mash.total_examples, len(distinct) or r.mash.total_examples) * r.cuts.heads)
        grades = min(heads, r.tasting.held_out or heads)
        sample = distinct[:20] or ["a customer message of a sentence or two"]
        reference = "x " * (self.max_words or 40)
        chars = sum(sum(len(m["content"]) + 8 for m in judge_request(
            tasting.case_for(0, {"id": i, "utterance": text, "output": reference}, self.context, None),
            reference, r.judge).messages) for i, text in enumerate(sample)) / len(sample)
        input_tokens = round(chars * grades / PROMPT_CHARS_PER_TOKEN)
        output_tokens = grades * min(r.judge.max_tokens, JUDGE_ANSWER_TOKENS)
        price = price_for(settings, model)
        numbers["judge"] = {"kind": "llm", "provider": settings.provider, "model": model, "requests": grades,
                            "input_tokens": input_tokens, "output_tokens": output_tokens,
                            "usd": None if price is None else round(price.cost(input_tokens, output_tokens), 4)}
        usd = (numbers["usd"], numbers["judge"]["usd"])
        numbers["total_usd"] = None if None in usd else round(sum(usd), 4)
        return numbers

    # -- a Spirit ----------------------------------------------------------------------------
    @classmethod
    def from_metadata(cls, metadata: dict, where: str) -> GenerationTask:
        found = metadata.get("labels") or {}
        if not isinstance(found.get("instruction"), str) or not found["instruction"].strip():
            raise ValueError(f"{where}: a generation Spirit without its instruction (labels metadata)")
        return cls(instruction=found["instruction"], max_words=found.get("max_words"))

    def parse_heads(self, text: str, where: str) -> list[dict]:
        def check(row: dict) -> str | None:
            if not isinstance(row.get("utterance"), str):
                return 'a heads line needs the "utterance" it answers'
            return None if isinstance(row.get("output"), str) else 'a heads line needs the teacher\'s "output"'

        return base.parse_heads(text, where, check)

    def fixed_context(self) -> str:
        return self.context

    def card(self) -> dict:
        return {"what": "text generation: given a message, it writes the answer its instruction asks for",
                "trained_on": f"Its instruction: {self.context}",
                "tags": ["text-generation"], "example": "my parcel never arrived, can you help?",
                "fixed_context": "instruction it was distilled with",
                "constraint": "distillery decodes with the sampling settings stored as `decoding` in distillery.json "
                              "(greedy unless the\nRecipe set a temperature); plain `generate` decodes greedily."}

    def answer_schema(self) -> None:
        return None  # free text: there is no grammar to write

    def chat_turn(self, request, utterance: str, model: str) -> TextTurn:
        return TextTurn(request, utterance, model)

    def spirit_context(self) -> dict[str, str]:
        return {"labels": json.dumps({"instruction": self.instruction, "max_words": self.max_words},
                                     ensure_ascii=False)}

    def mash_inputs(self) -> str:
        # The requests file's content, not only its name: an edited file remakes the Mash.
        r, files = self.recipe, {}
        for name, path in (("inputs", r.inputs_path), ("traces", r.traces_path)):
            if path is not None:
                files[name] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
        return json.dumps({"instruction": self.instruction, "max_words": self.max_words, **files}, sort_keys=True)

    def prompt_format(self, fmt):
        return dataclasses.replace(fmt, instruction=INSTRUCTION)

    # -- the Mash ----------------------------------------------------------------------------
    def offline_teacher(self):
        raise TeacherError("a generation task has no offline teacher that could write your answers. Fix: an LLM "
                           "teacher with `mash.inputs`, or `teacher: {provider: replay, traces: FILE}` with your "
                           'pairs (JSON Lines: {"text": ..., "output": ...}).')

    def replay_teacher(self, path: Path) -> PairsFile:
        return PairsFile(Path(path))

    def build_mash(self, teacher, run_dir: Path, on_progress=None):
        r = self.recipe
        if isinstance(teacher, PairsFile):
            stats, accepted, rejected = mash.replayed_pairs(teacher.path, r.mash.total_examples, self.max_words,
                                                            on_progress)
        else:
            from distillery.teachers.cost import check_budget_is_enforceable

            price = check_budget_is_enforceable(r.teacher, teacher.model)
            stats, accepted, rejected = mash.answer_inputs(
                teacher, mash.read_inputs(r.inputs_path), r.mash.total_examples, instruction=self.instruction,
                max_words=self.max_words, teacher_cfg=r.teacher, journal=run_dir / "journal", seed=r.seed,
                price=price, on_progress=on_progress)
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

        return [f"{TOOLS}{self.context}{USER}{ex['utterance'].strip()}{CALL}{ex['output']}{END}" for ex in examples]

    def epoch_examples(self, hearts: list[dict], seed: int):
        return lambda epoch: hearts

    def training_pairs(self, fmt, tok, examples: list[dict]) -> list[tuple[list[int], list[int]]]:
        pairs = []
        for ex in examples:
            prompt = fmt.text_ids(tok, fmt.framed(ex["utterance"], self.context))
            answer = tok.encode(ex["output"] + fmt.end_text, add_special_tokens=False).ids
            if len(prompt) + len(answer) <= fmt.context:
                pairs.append((prompt, answer))
        return pairs

    # -- the Tasting -------------------------------------------------------------------------
    def decoding(self, hearts: list[dict]) -> dict:
        return decoding_settings(self.recipe.tasting, self.recipe.seed)

    def predictor(self, model, tok, fmt, decoding: dict, grammar: bool | None = None) -> TextPredictor:
        if grammar is False:
            raise DistilleryError("a generation Spirit writes free text and decodes with no grammar; --no-grammar "
                                  "would do nothing. Fix: leave it out.")
        return TextPredictor(model, tok, fmt, self.context, decoding)

    def taste(self, predictor: TextPredictor, heads: list[dict], *, samples: int, held_out: int | None,
              run_dir: Path | None = None) -> dict:
        """The notes of `heads`; graded by the Recipe's judge when the run's folder holds its journal
        (`run_dir`), else by exact match with the teacher (tasting.py says why)."""
        heads = heads[:held_out] if held_out else heads
        predictions, problems = tasting.answer_all(predictor, heads)
        scores = judge = None
        if self.proof == "judge" and run_dir is not None:
            cases = [tasting.case_for(i, ex, self.context, problem)
                     for i, (ex, problem) in enumerate(zip(heads, problems))]
            scores, judge = tasting.grade(self.recipe, Path(run_dir), cases, [p.output for p in predictions])
        return tasting.notes(heads, predictions, problems, scores, judge, samples=samples, max_words=self.max_words,
                             max_new_tokens=predictor.max_new_tokens)

    def summary(self, notes: dict) -> str:
        m, judge = notes["metrics"], notes.get("judge")
        line = f"proof {notes['proof'] * 100:.0f}° ({notes['proof_metric']})"
        if judge:
            mean = "—" if m["judge_mean"] is None else f"{m['judge_mean']:.2f}"
            line += f"  mean grade {mean} of {judge['scale']}"
        line += f"  exact_match {m['exact_match']:.3f}  p50 {notes['latency_ms']['p50']:.1f} ms"
        if judge:
            line += f"  (judge: {judge['requests_sent']} requests sent, {judge['replayed']} from its journal)"
        return line


def _set(section, name: str) -> bool:
    """Whether the recipe sets `name` to other than its default (a resolved recipe writes every
    default out, and must load again as it was)."""
    default = type(section).model_fields[name].get_default(call_default_factory=True)
    return name in section.model_fields_set and getattr(section, name) != default


def _judge_problems(recipe) -> list[tuple[str, str]]:
    """What of `judge:` a generation Tasting cannot honour: only an llm judge grades free text, and
    best-of-N's settings have no samples to act on."""
    judge, problems = recipe.judge, []
    if judge.kind != "llm":
        problems.append(("judge.kind", f"an {judge.kind} judge has nothing to compare or run in a generation "
                                       "Tasting; an llm judge grades free text. Fix: `kind: llm` with a `rubric`, "
                                       "or `tasting.proof: exact` without a judge."))
    for name, what in (("agreement", "compares the teacher's N samples"),
                       ("borderline", "sends borderline teacher answers to the tails")):
        if _set(judge, name):
            problems.append((f"judge.{name}", f"{what} in best-of-N; a generation judge grades the student at the "
                                              "Tasting. Fix: remove it."))
    if judge.provider is None and recipe.teacher.provider not in LLM_TEACHERS:
        problems.append(("judge.provider", f"missing; the judge would be the {recipe.teacher.provider} teacher, "
                                           "which is no model. Fix: e.g. `provider: openai` with `base_url` and "
                                           "`model`."))
    return problems
