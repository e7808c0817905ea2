"""Tool calling behind the Task seam: the Mash, cuts, training pairs, decoding and tasting of calls."""

from __future__ import annotations

import json
from pathlib import Path

from distillery.errors import CatalogError
from distillery.mash import normalize_utterance
from distillery.tasks import base
from distillery.tasks.tool_calling import mash, tasting
from distillery.tasks.tool_calling.augment import Augmenter
from distillery.tasks.tool_calling.catalog import load_catalog, parse_tools
from distillery.tasks.tool_calling.metrics import PROOF_METRIC
from distillery.tasks.tool_calling.predictor import ToolCaller
from distillery.tasks.tool_calling.prompt import prompt_ids, render_completion, render_prompt
from distillery.tasks.tool_calling.spans import copied_params
from distillery.teachers.cost import check_budget_is_enforceable


class ToolCallingTask:
    kind = "tool_calling"
    proof_metric = PROOF_METRIC

    def __init__(self, recipe=None, catalog: list | None = None):
        self.recipe = recipe
        self.catalog = recipe.catalog if recipe is not None else list(catalog or [])
        self.tools_by_name = {t.name: t for t in self.catalog}

    # -- the Recipe --------------------------------------------------------------------------
    @classmethod
    def recipe_problems(cls, recipe) -> list[tuple[str, str]]:
        if recipe.tools is None:
            return [("tools", "missing; a tool_calling recipe needs a tool catalog. "
                              "Fix: add e.g. `tools: tools.json` (OpenAI tools format) or an inline list.")]
        return []

    @staticmethod
    def load_context(data: dict, base_dir: Path, problems: list) -> list:
        """The Recipe's `tools`: an inline list or a file relative to the recipe's folder."""
        from distillery.recipe import file_exists

        spec = data.get("tools")
        if not spec or (isinstance(spec, str) and not file_exists("tools", spec, base_dir, problems)):
            return []
        try:
            catalog = list(load_catalog(spec, base_dir))
        except CatalogError as err:
            problems.append(("tools", str(err).replace("\n", "\n    ")))
            return []
        if not catalog:
            problems.append(("tools", "the catalog has no tools. Fix: define at least one function."))
        return catalog

    def estimate(self) -> dict:
        from distillery.tasks.tool_calling.estimate import estimate

        return estimate(self.recipe)

    # -- a Spirit ----------------------------------------------------------------------------
    @classmethod
    def from_metadata(cls, metadata: dict, where: str) -> ToolCallingTask:
        tools = metadata.get("tools") or []
        return cls(catalog=parse_tools(tools, where=f"{where} (tools metadata)") if tools else [])

    def parse_heads(self, text: str, where: str) -> list[dict]:
        def check(row: dict) -> str | None:
            if not (isinstance(row.get("utterance"), str) and isinstance(row.get("tools"), list)
                    and isinstance(row.get("calls"), list)):
                return 'a heads line needs "utterance", "tools" (names) and "calls"'
            unknown = [t for t in row["tools"] if t not in self.tools_by_name]
            return f"tools {unknown} are not in the Spirit's catalog" if unknown else None

        return base.parse_heads(text, where, check)

    def request_context(self, path: Path | None) -> list:
        return load_catalog(str(path), Path.cwd()) if path is not None else self.catalog

    def ask(self, predictor: ToolCaller, text: str, context: list):
        return predictor.predict(text, context)

    def answer_json(self, prediction):
        return prediction.calls

    def predict_rows(self, predictor: ToolCaller, path: Path, context: list, on_progress=None) -> list[dict]:
        from distillery.tasks.tool_calling.batch import predict_all, read_requests

        return predict_all(predictor, read_requests(path), context, on_progress=on_progress)

    def fixed_context(self) -> None:
        return None  # the offered tools change with every request

    def card(self) -> dict:
        """What an hf bottle's model card says about the task."""
        names = [t.name for t in self.catalog]
        return {"what": "tool calling: given a request and the tools on offer, it writes the calls as JSON, "
                        '`[{"name": ..., "arguments": {...}}]`',
                "trained_on": f"It was trained on {len(names)} tools: {', '.join(f'`{n}`' for n in names)}.",
                "tags": ["tool-calling", "function-calling"], "example": "set a timer for 10 minutes",
                "fixed_context": None,
                "constraint": "distillery decodes under a grammar of the offered tools (only their names, argument "
                              "keys and types),\nso an invalid call cannot come out; plain `generate` has no such "
                              "constraint."}

    def answer_schema(self) -> dict:
        """The JSON schema of an answer: calls of the catalog's tools (a gguf bottle's .gbnf)."""
        from distillery.tasks.tool_calling.grammar import calls_schema

        return calls_schema(self.catalog)

    def page_tools(self, decoding: dict) -> list[dict]:
        """The catalog as the web page's prompt and grammar read it (bottle.json's `tools`)."""
        from distillery.tasks.tool_calling.prompt import render_tool

        copied = set(decoding.get("copied_params") or ())
        return [{"name": t.name, "description": t.description, "signature": render_tool(t),
                 "params": [{"name": p.name, "type": p.type, "required": p.required, "items": p.items,
                             "enum": None if p.enum is None else [json.dumps(v, ensure_ascii=False) for v in p.enum],
                             "copied": f"{t.name}.{p.name}" in copied} for p in t.params]}
                for t in self.catalog]

    def chat_turn(self, request, utterance: str, model: str):
        from distillery.tasks.tool_calling.serving import CallTurn

        return CallTurn(request, utterance, self.catalog)

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

    def around(self, teacher, failures: list[dict], k: int, seed: int) -> list[dict]:
        """`k` new candidates per failure (refine.py): the same tools, new values and phrasing."""
        return [c for i, ex in enumerate(failures) for c in teacher.around(ex, k, seed * 1_000_000 + i)]

    # -- the Still ---------------------------------------------------------------------------
    def texts(self, examples: list[dict]) -> list[str]:
        return [render_prompt(ex["utterance"], [self.tools_by_name[n] for n in ex["tools"]])
                + render_completion(ex["calls"], self.tools_by_name) for ex in examples]

    def epoch_examples(self, hearts: list[dict], seed: int):
        r = self.recipe
        # A teacher's wrong answers (against `expected`) are never taught.
        hearts = [ex for ex in hearts if mash.right_answer(ex, self.tools_by_name)]
        augment = Augmenter(hearts, self.tools_by_name, r.still.value_swap, r.still.tool_drop, seed=seed,
                            reoffer=r.still.reoffer,
                            tools_per_call=(r.mash.tools_per_call.min, r.mash.tools_per_call.max))
        return lambda epoch: [augment(ex, epoch, i) for i, ex in enumerate(hearts)]

    def training_pairs(self, fmt, tok, examples: list[dict]) -> list[tuple[list[int], list[int]]]:
        """Pairs longer than the format's context are left out: the student could not see them whole."""
        pairs = []
        for ex in examples:
            prompt = prompt_ids(fmt, tok, ex["utterance"], [self.tools_by_name[n] for n in ex["tools"]])
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

    def predictor(self, model, tok, fmt, decoding: dict, grammar: bool | None = None) -> ToolCaller:
        return ToolCaller.from_decoding(model, tok, fmt, decoding, grammar=grammar)

    def taste(self, predictor: ToolCaller, heads: list[dict], *, samples: int, held_out: int | None) -> dict:
        return tasting.taste(predictor, heads, self.catalog, samples=samples, held_out=held_out)

    def summary(self, notes: dict) -> str:
        m = notes["metrics"]
        line = (f"proof {notes['proof'] * 100:.0f}° ({notes['proof_metric']})  tool_name {m['tool_name_accuracy']:.3f}  "
                f"arg_key_f1 {m['arg_key_f1']:.3f}  exact_call {m['exact_call_accuracy']:.3f}  "
                f"valid {m['valid_call_rate']:.3f}  p50 {notes['latency_ms']['p50']:.1f} ms")
        return line + base.verdict_line(notes)
