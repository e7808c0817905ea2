"""Tool calling behind the Task seam: the Mash, cuts, training pairs, decoding and tasting of calls."""

from __future__ import annotations

import json
from pathlib import Path

from distillery.mash import normalize_utterance
from distillery.tasks.tool_calling import mash, tasting
from distillery.tasks.tool_calling.augment import Augmenter
from distillery.tasks.tool_calling.metrics import PROOF_METRIC
from distillery.tasks.tool_calling.predictor import ToolCaller
from distillery.tasks.tool_calling.prompt import render_completion, render_prompt
from distillery.tasks.tool_calling.spans import copied_params
from distillery.teachers.cost import check_budget_is_enforceable


class ToolCallingTask:
    kind = "tool_calling"
    proof_metric = PROOF_METRIC

    def __init__(self, recipe):
        self.recipe = recipe
        self.catalog = recipe.catalog
        self.tools_by_name = {t.name: t for t in self.catalog}

    def spirit_context(self) -> dict[str, str]:
        return {"tools": json.dumps([t.to_openai() for t in self.catalog], ensure_ascii=False)}

    def prompt_format(self, fmt):
        return fmt  # the students' formats are written for tool calling

    def mash_inputs(self) -> str:
        return json.dumps([t.to_openai() for t in self.catalog], sort_keys=True)

    # -- the Mash ----------------------------------------------------------------------------
    def offline_teacher(self):
        from distillery.tasks.tool_calling.offline import OfflineTeacher

        r = self.recipe
        return OfflineTeacher(self.catalog, seed=r.seed, no_call_ratio=r.mash.no_call_ratio,
                              parallel_ratio=r.mash.parallel_ratio)

    def replay_teacher(self, path: Path):
        from distillery.tasks.tool_calling.replay import ReplayTeacher

        return ReplayTeacher(path, set(self.tools_by_name))

    def build_mash(self, teacher, run_dir: Path, on_progress=None):
        r = self.recipe
        if hasattr(teacher, "complete"):  # an LLM: journal, retries, budget around it
            return mash.build_mash_llm(teacher, self.catalog, r.mash, r.teacher, run_dir, seed=r.seed,
                                       price=check_budget_is_enforceable(r.teacher, teacher.model),
                                       on_progress=on_progress)
        return mash.build_mash(teacher, self.catalog, r.mash, run_dir, seed=r.seed, on_progress=on_progress)

    def group_key(self, example: dict) -> str:
        return normalize_utterance(example["utterance"])

    # -- the Still ---------------------------------------------------------------------------
    def texts(self, examples: list[dict]) -> list[str]:
        return [render_prompt(ex["utterance"], [self.tools_by_name[n] for n in ex["tools"]])
                + render_completion(ex["calls"], self.tools_by_name) for ex in examples]

    def epoch_examples(self, hearts: list[dict], seed: int):
        r = self.recipe
        augment = Augmenter(hearts, self.tools_by_name, r.still.value_swap, r.still.tool_drop, seed=seed,
                            reoffer=r.still.reoffer,
                            tools_per_call=(r.mash.tools_per_call.min, r.mash.tools_per_call.max))
        return lambda epoch: [augment(ex, epoch, i) for i, ex in enumerate(hearts)]

    def training_pairs(self, fmt, tok, examples: list[dict]) -> list[tuple[list[int], list[int]]]:
        """Pairs longer than the format's context are left out: the student could not see them whole."""
        pairs = []
        for ex in examples:
            prompt = fmt.prompt_ids(tok, ex["utterance"], [self.tools_by_name[n] for n in ex["tools"]])
            completion = tok.encode(render_completion(ex["calls"], self.tools_by_name, dumps=fmt.dumps,
                                                      end=fmt.end_text), add_special_tokens=False).ids
            if len(prompt) + len(completion) <= fmt.context:
                pairs.append((prompt, completion))
        return pairs

    # -- the Tasting -------------------------------------------------------------------------
    def decoding(self, hearts: list[dict]) -> dict:
        t = self.recipe.tasting
        copied = copied_params(hearts, self.tools_by_name) if t.grammar and t.copy_values else []
        known = [tool.name for tool in self.catalog] if t.grammar and t.abstain else []
        return {"grammar": t.grammar, "copied_params": copied, "known_tools": known}

    def predictor(self, model, tok, fmt, decoding: dict) -> ToolCaller:
        return ToolCaller.from_decoding(model, tok, fmt, decoding)

    def taste(self, predictor: ToolCaller, heads: list[dict], *, samples: int, held_out: int | None) -> dict:
        return tasting.taste(predictor, heads, self.catalog, samples=samples, held_out=held_out)

    def summary(self, notes: dict) -> str:
        m = notes["metrics"]
        return (f"proof {notes['proof'] * 100:.0f}° ({notes['proof_metric']})  tool_name {m['tool_name_accuracy']:.3f}  "
                f"arg_key_f1 {m['arg_key_f1']:.3f}  exact_call {m['exact_call_accuracy']:.3f}  "
                f"valid {m['valid_call_rate']:.3f}  p50 {notes['latency_ms']['p50']:.1f} ms")
