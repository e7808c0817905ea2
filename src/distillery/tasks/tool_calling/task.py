"""Tool calling behind the Task seam: the Mash, cuts, training pairs, decoding and tasting of calls."""

from __future__ import annotations

import json
import random
from pathlib import Path

from distillery.errors import CatalogError, DistilleryError
from distillery.mash import normalize_utterance
from distillery.tasks import base
from distillery.tasks.tool_calling import conversation, mash, tasting
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

    def __init__(self, recipe=None, catalog: list | None = None, conversation: bool = False):
        self.recipe = recipe
        self.catalog = recipe.catalog if recipe is not None else list(catalog or [])
        self.tools_by_name = {t.name: t for t in self.catalog}
        # Distilled from conversations: reads a history, and may answer in text.
        self.conversation = recipe.agent is not None if recipe is not None else conversation

    # -- the Recipe --------------------------------------------------------------------------
    @classmethod
    def recipe_problems(cls, recipe) -> list[tuple[str, str]]:
        if recipe.tools is None:
            return [("tools", "missing; a tool_calling recipe needs a tool catalog. "
                              "Fix: add e.g. `tools: tools.json` (OpenAI tools format) or an inline list.")]
        if recipe.agent is None:
            return []
        problems = []
        llm = recipe.teacher.provider not in ("offline", "replay")
        if llm and not isinstance(recipe.tools, dict):
            problems.append(("tools", f"a `{recipe.teacher.provider}` teacher running as an agent calls your tools for "
                                      "real, so they must be runnable. Fix: give them as a Python module, `tools: "
                                      "{module: tools.py}`, or use `teacher: {provider: offline}` (simulated results)."))
        if getattr(recipe, "judge", None) is not None or getattr(recipe.mash, "samples_per_request", 1) > 1:
            problems.append(("agent", "best-of-N and judges grade single requests; an agent's conversations are "
                                      "taken as the teacher ran them. Fix: remove `judge` and "
                                      "`mash.samples_per_request`, or remove `agent`."))
        if llm and recipe.teacher.concurrency != 1 and "concurrency" in recipe.teacher.model_fields_set:
            problems.append(("teacher.concurrency", "an agent teacher runs one conversation at a time (each step "
                                                    "waits for the results of the last). Fix: remove it."))
        for name in ("value_swap", "tool_drop"):
            if name in recipe.still.model_fields_set:
                problems.append((f"still.{name}", "conversations are trained as the teacher wrote them; "
                                                  f"`{name}` rewrites single requests only and would do nothing. "
                                                  "Fix: remove it."))
        return problems

    @staticmethod
    def load_context(data: dict, base_dir: Path, problems: list) -> list:
        """The Recipe's `tools`: an inline list or a file relative to the recipe's folder."""
        from distillery.recipe import file_exists

        spec = data.get("tools")
        if not spec or (isinstance(spec, str) and not file_exists("tools", spec, base_dir, problems)):
            return []
        try:
            if isinstance(spec, dict):
                from distillery.tasks.tool_calling.tool_module import load_module_tools

                catalog = load_module_tools(base_dir / Path(spec["module"]).expanduser()).catalog
            else:
                catalog = list(load_catalog(spec, base_dir))
        except CatalogError as err:
            problems.append(("tools", str(err).replace("\n", "\n    ")))
            return []
        if not catalog:
            problems.append(("tools", "the catalog has no tools. Fix: define at least one function."))
        agent = data.get("agent") if isinstance(data.get("agent"), dict) else {}
        apart = agent.get("held_out_tools") or []
        names = {t.name for t in catalog}
        unknown = [n for n in apart if n not in names] if isinstance(apart, list) else []
        if unknown:
            problems.append(("agent.held_out_tools", f"{', '.join(map(str, unknown))} not in the catalog. Fix: name "
                                                     f"tools of `tools` ({', '.join(sorted(names))})."))
        elif isinstance(apart, list) and catalog and set(apart) >= names:
            problems.append(("agent.held_out_tools", "every tool is held out, so nothing would be trained. Fix: "
                                                     "hold out a few tools only."))
        return catalog

    def estimate(self) -> dict:
        from distillery.tasks.tool_calling.estimate import estimate

        if self.agent is not None and self.recipe.teacher.provider not in ("offline", "replay"):
            raise DistilleryError("`estimate` does not size an agent teacher's conversations yet (their length "
                                  "depends on the teacher's calls). Fix: set `teacher.budget_usd` to cap the spend; "
                                  "the Mash stops there and keeps every answer for the next run.")
        return estimate(self.recipe)

    # -- a Spirit ----------------------------------------------------------------------------
    @classmethod
    def from_metadata(cls, metadata: dict, where: str) -> ToolCallingTask:
        tools = metadata.get("tools") or []
        decoding = metadata.get("decoding")
        return cls(catalog=parse_tools(tools, where=f"{where} (tools metadata)") if tools else [],
                   conversation=isinstance(decoding, dict) and bool(decoding.get("conversation")))

    def parse_heads(self, text: str, where: str) -> list[dict]:
        def check(row: dict) -> str | None:
            if not (isinstance(row.get("utterance"), str) and isinstance(row.get("tools"), list)
                    and isinstance(row.get("calls"), list)):
                return 'a heads line needs "utterance", "tools" (names) and "calls"'
            unknown = [t for t in row["tools"] if t not in self.tools_by_name]
            if unknown:
                return f"tools {unknown} are not in the Spirit's catalog"
            if "messages" in row:
                try:
                    conversation.read_messages(row["messages"])
                except conversation.ConversationError as why:
                    return f"its messages are not a conversation ({why})"
            return None

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

        return CallTurn(request, utterance, self.catalog, conversation=self.conversation, model=model)

    def spirit_context(self) -> dict[str, str]:
        return {"tools": json.dumps([t.to_openai() for t in self.catalog], ensure_ascii=False)}

    def prompt_format(self, fmt):
        return fmt  # the students' formats are written for tool calling

    def mash_inputs(self) -> str:
        text = json.dumps([t.to_openai() for t in self.catalog], sort_keys=True)
        if self.agent is not None:  # a recipe without conversations hashes as it always did
            text += json.dumps({"agent": self.agent.model_dump(mode="json")}, sort_keys=True)
        return text

    @property
    def agent(self):
        """The Recipe's `agent` section (None: single requests)."""
        return self.recipe.agent if self.recipe is not None else None

    def tool_runner(self):
        """What runs the Recipe's tools, where they are a Python module (`tools: {module: ...}`), else None."""
        spec = self.recipe.tools
        if not isinstance(spec, dict):
            return None
        from distillery.tasks.tool_calling.tool_module import load_module_tools

        return load_module_tools((self.recipe.base_dir or Path.cwd()) / Path(spec["module"]).expanduser())

    def kept_apart(self, example: dict) -> bool:
        """Whether an example calls a tool of `agent.held_out_tools` (it goes to the unseen-tools cut)."""
        apart = set(self.agent.held_out_tools) if self.agent is not None else set()
        return bool(apart) and bool(apart & set(conversation.called_tools(example)))

    # -- the Mash ----------------------------------------------------------------------------
    def offline_teacher(self):
        from distillery.tasks.tool_calling.offline import OfflineTeacher

        r = self.recipe
        if self.agent is not None:
            from distillery.tasks.tool_calling.agent_offline import OfflineAgentTeacher

            runner = self.tool_runner()
            return OfflineAgentTeacher(self.catalog, seed=r.seed, max_steps=self.agent.max_steps,
                                       no_call_ratio=r.mash.no_call_ratio, run_tool=runner and runner.call)
        return OfflineTeacher(self.catalog, seed=r.seed, no_call_ratio=r.mash.no_call_ratio,
                              parallel_ratio=r.mash.parallel_ratio)

    def replay_teacher(self, path: Path):
        if self.agent is not None:
            from distillery.tasks.tool_calling.trace_import import TraceImport

            return TraceImport(path)
        from distillery.tasks.tool_calling.replay import ReplayTeacher

        return ReplayTeacher(path, set(self.tools_by_name))

    def build_mash(self, teacher, run_dir: Path, on_progress=None):
        r = self.recipe
        if self.agent is not None:
            from distillery.tasks.tool_calling.conversation_mash import build_conversation_mash

            if hasattr(teacher, "complete"):  # an LLM: it runs the tools as an agent, every step journaled
                from distillery.tasks.tool_calling.agent_llm import LLMAgentTeacher

                teacher = LLMAgentTeacher(teacher, self.catalog, self.tool_runner().call, run_dir, teacher_cfg=r.teacher,
                                          mash_cfg=r.mash, max_steps=self.agent.max_steps, seed=r.seed,
                                          price=check_budget_is_enforceable(r.teacher, teacher.model))
            return build_conversation_mash(teacher, self.catalog, r.mash, run_dir, seed=r.seed, on_progress=on_progress)
        if hasattr(teacher, "complete"):  # an LLM: journal, retries, budget around it
            price = check_budget_is_enforceable(r.teacher, teacher.model)
            judge = None
            if r.judge is not None:  # best-of-N (best_of_n.py), its judge set up before anything is sent
                from distillery.judges import build_judge

                judge = build_judge(r, run_dir)
            return mash.build_mash_llm(teacher, self.catalog, r.mash, r.teacher, run_dir, seed=r.seed, price=price,
                                       on_progress=on_progress, judge=judge, judge_cfg=r.judge)
        return mash.build_mash(teacher, self.catalog, r.mash, run_dir, seed=r.seed, on_progress=on_progress)

    def group_key(self, example: dict) -> str:
        return normalize_utterance(example["utterance"])

    def run_agent(self, caller, tools_path: Path, request: str, *, max_steps: int | None,
                  metadata: dict, on_step=None) -> dict:
        """`distillery run`: the student calls the tools of a Python module, reads their results and
        goes on until it answers (agent.py); `max_steps` defaults to the recipe's `agent.max_steps`."""
        from distillery.tasks.tool_calling.agent import max_steps_of, run_agent
        from distillery.tasks.tool_calling.tool_module import load_module_tools

        module = load_module_tools(tools_path)
        return run_agent(caller, module.call, module.catalog, request,
                         max_steps=max_steps or max_steps_of(metadata), on_step=on_step)

    def around(self, teacher, failures: list[dict], k: int, seed: int) -> list[dict]:
        """`k` new candidates per failure (refine.py): the same tools, new values and phrasing."""
        return [c for i, ex in enumerate(failures) for c in teacher.around(ex, k, seed * 1_000_000 + i)]

    # -- the Still ---------------------------------------------------------------------------
    def texts(self, examples: list[dict]) -> list[str]:
        from distillery.students.prompt_format import PromptFormat

        found = []
        special = PromptFormat(template="special", tools="signatures", end_id=0, pad_id=0, context=0)
        for ex in examples:
            if "messages" not in ex:
                found.append(render_prompt(ex["utterance"], [self.tools_by_name[n] for n in ex["tools"]])
                             + render_completion(ex["calls"], self.tools_by_name))
                continue
            tools = [self.tools_by_name[n] for n in ex["tools"]]
            found += [conversation.prompt_text(special, turn.history, tools, self.tools_by_name)
                      + conversation.answer_text(special, turn.answer, self.tools_by_name) + special.end_text
                      for turn in conversation.turns(ex)]
        return found

    def epoch_examples(self, hearts: list[dict], seed: int):
        r = self.recipe
        # A teacher's wrong answers (against `expected`) are never taught.
        hearts = [ex for ex in hearts if mash.right_answer(ex, self.tools_by_name)]
        augment = Augmenter(hearts, self.tools_by_name, r.still.value_swap, r.still.tool_drop, seed=seed,
                            reoffer=r.still.reoffer,
                            tools_per_call=(r.mash.tools_per_call.min, r.mash.tools_per_call.max))

        def one(ex: dict, epoch: int, i: int) -> dict:
            if "messages" not in ex:
                return augment(ex, epoch, i)
            # A conversation is trained as written; only its distractors are drawn again.
            rng = random.Random(f"{seed}:{epoch}:{i}")
            called = conversation.called_tools(ex)
            if called and rng.random() < r.still.reoffer:
                ex = {**ex, "tools": mash.offer_tools([{"name": n} for n in called], [], self.catalog, rng,
                                                      r.mash.tools_per_call.min, r.mash.tools_per_call.max)}
            return ex

        return lambda epoch: [one(ex, epoch, i) for i, ex in enumerate(hearts)]

    def training_pairs(self, fmt, tok, examples: list[dict]) -> list[tuple[list[int], list[int]]]:
        """Pairs longer than the format's context are left out: the student could not see them whole.
        A conversation gives one pair per assistant turn, its oldest exchanges left out where the
        history would not fit (conversation.py's context policy)."""
        pairs = []
        for ex in examples:
            if "messages" in ex:
                pairs += self._turn_pairs(fmt, tok, ex)
                continue
            prompt = prompt_ids(fmt, tok, ex["utterance"], [self.tools_by_name[n] for n in ex["tools"]])
            completion = tok.encode(render_completion(ex["calls"], self.tools_by_name, dumps=fmt.dumps,
                                                      end=fmt.end_text), add_special_tokens=False).ids
            if len(prompt) + len(completion) <= fmt.context:
                pairs.append((prompt, completion))
        return pairs

    def _turn_pairs(self, fmt, tok, example: dict) -> list[tuple[list[int], list[int]]]:
        if not fmt.converses:
            raise DistilleryError("this student's chat template cannot write a conversation (history) into a "
                                  "prompt, so it cannot learn from conversations. Fix: use another `student.base`, "
                                  "or remove `agent`.")
        tools = [self.tools_by_name[n] for n in example["tools"]]
        pairs = []
        for turn in conversation.turns(example):
            completion = tok.encode(conversation.answer_text(fmt, turn.answer, self.tools_by_name) + fmt.end_text,
                                    add_special_tokens=False).ids
            prompt, _ = conversation.fitted_prompt_ids(fmt, tok, turn.history, tools, self.tools_by_name,
                                                       fmt.context - len(completion))
            if len(prompt) + len(completion) <= fmt.context:
                pairs.append((prompt, completion))
        return pairs

    # -- the Tasting -------------------------------------------------------------------------
    def decoding(self, hearts: list[dict]) -> dict:
        t = self.recipe.tasting
        if self.agent is not None:  # every call of every turn, with what it could be copied from
            hearts = [{"utterance": conversation.source_text(turn.history), "calls": turn.answer["calls"]}
                      for ex in hearts for turn in conversation.turns(ex) if "calls" in turn.answer]
        copied = copied_params(hearts, self.tools_by_name) if t.grammar and t.copy_values else []
        known = [tool.name for tool in self.catalog] if t.grammar and t.abstain else []
        found = {"grammar": t.grammar, "copied_params": copied, "known_tools": known}
        if self.agent is not None:
            found["conversation"] = True  # reads a history and may answer in text
        return found

    def predictor(self, model, tok, fmt, decoding: dict, grammar: bool | None = None) -> ToolCaller:
        return ToolCaller.from_decoding(model, tok, fmt, decoding, grammar=grammar)

    def taste(self, predictor: ToolCaller, heads: list[dict], *, samples: int, held_out: int | None,
              hearts: list[dict] | None = None, unseen: list[dict] | None = None) -> dict:
        """The notes; conversations (a Spirit that reads histories) are tasted turn by turn and as
        whole tasks, and with `unseen` (conversations of tools kept apart) the memorization gap."""
        if predictor.conversation:
            from distillery.tasks.tool_calling import conversation_tasting

            return conversation_tasting.taste(predictor, heads, self.catalog, samples=samples, held_out=held_out,
                                              hearts=hearts, unseen=unseen)
        return tasting.taste(predictor, heads, self.catalog, samples=samples, held_out=held_out)

    def summary(self, notes: dict) -> str:
        m = notes["metrics"]
        line = (f"proof {notes['proof'] * 100:.0f}° ({notes['proof_metric']})  tool_name {m['tool_name_accuracy']:.3f}  "
                f"arg_key_f1 {m['arg_key_f1']:.3f}  exact_call {m['exact_call_accuracy']:.3f}  "
                f"valid {m['valid_call_rate']:.3f}  p50 {notes['latency_ms']['p50']:.1f} ms")
        if "trajectory_success" in m:
            from distillery.tasks.tool_calling.conversation_tasting import summary

            line += summary(notes)
        return line + base.verdict_line(notes)
