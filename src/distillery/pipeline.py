"""Stage order, input hashing, skip and resume.

Each stage is a function from files to files inside the run directory. Before a stage runs,
the hash of its inputs (its Recipe sections plus the hashes of the files it reads) is written
to `stages.json` with `done: false`; after it finishes, `done: true`. So a re-run skips every
stage whose inputs did not change, redoes exactly the ones downstream of a change, and a
crashed stage resumes (the Still from its last epoch) or restarts cleanly.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from safetensors import safe_open
from safetensors.torch import load_model, save_model
from tokenizers import Tokenizer

from distillery import cuts, devices, distributed, still, tokenizer
from distillery.errors import TeacherError
from distillery.judges import mash_inputs as judge_inputs
from distillery.jsonl import read_jsonl
from distillery.recipe import Recipe
from distillery.report import write_report
from distillery.spirit import file_sha256, write_spirit
from distillery.students import student_for
from distillery.students.base import count_params
from distillery.students.prompt_format import PromptFormat
from distillery.tasks import TASTING_JUDGED, task_for
from distillery.teachers.anthropic import AnthropicTeacher
from distillery.teachers.gemini import GeminiTeacher
from distillery.teachers.openai import OpenAITeacher

STAGES = ("mash", "cuts", "tokenizer", "still", "tasting", "spirit", "bottles")


HEADS_FOR_LOSS = 64  # heads whose loss the Still measures after every epoch

# Still fields that change how fast it trains, not what it trains: a different thread count,
# device or pass size must not retrain a finished Still (a checkpoint resumes on any of them).
_SPEED_ONLY = frozenset({"threads", "device", "micro_batch"})

_SKIP, _FRESH, _RESUME = 0, 1, 2  # what a stage does, as rank 0 decides it


def _sha(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


class Run:
    """One run directory: its recipe, its stage records, and the stages themselves."""

    def __init__(self, recipe: Recipe, runs_root: Path = Path("runs"), console: Console | None = None):
        self.recipe = recipe
        self.dir = Path(runs_root) / f"{recipe.name}-v{recipe.version}"
        # Under a launcher (torchrun, accelerate launch) this is one of several processes: rank 0
        # runs every stage and reports; the others only join the Still, silently.
        self.world = distributed.from_env()
        self.console = console or Console(stderr=True)
        if not self.world.is_main:
            self.console = Console(stderr=True, quiet=True)
        self.state_path = self.dir / "stages.json"
        self.state = json.loads(self.state_path.read_text()) if self.state_path.exists() else {}
        self.task = task_for(recipe)

    # -- bookkeeping -------------------------------------------------------------------------
    def _save_state(self) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=2))
        os.replace(tmp, self.state_path)

    def _stage(self, name: str, inputs: str, outputs: list[Path], work: Callable[[bool], None],
               clear: list[Path] = (), every_rank: bool = False) -> bool:
        """Run `work(resume)` unless the stage is done with the same inputs; True if it ran.

        Under a launcher rank 0 decides and keeps the records. A stage `every_rank` (the Still)
        then runs in every process; any other runs on rank 0 while the rest wait for its files.
        """
        if not self.world.is_main and not every_rank:
            self.world.barrier()  # rank 0 is making this stage's files
            return False
        plan = _SKIP
        if self.world.is_main:
            plan = self._plan(name, inputs, outputs, clear)
        if every_rank:
            plan = self.world.broadcast_int(plan, self.device if self.device.type == "cuda" else "cpu")
        if plan != _SKIP:
            work(plan == _RESUME)
            if self.world.is_main:
                self.state[name]["done"] = True
                self._save_state()
        if not every_rank:
            self.world.barrier()
        return plan != _SKIP

    def _plan(self, name: str, inputs: str, outputs: list[Path], clear: list[Path]) -> int:
        """Skip, start afresh (clearing the stage's old files) or resume; recorded before the work starts."""
        record = self.state.get(name)
        if record and record["inputs"] == inputs and record["done"] and all(p.exists() for p in outputs):
            self.console.print(f"[dim]{name}: unchanged, skipped[/dim]")
            return _SKIP
        resume = bool(record and record["inputs"] == inputs)
        if not resume:
            for path in clear:
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        self.state[name] = {"inputs": inputs, "done": False}
        # Everything downstream must be redone after this stage runs.
        for later in STAGES[STAGES.index(name) + 1:]:
            self.state.pop(later, None)
        self._save_state()
        return _RESUME if resume else _FRESH

    def _hash_file(self, relative: str) -> str:
        return file_sha256(self.dir / relative)

    @property
    def tasting_judged(self) -> bool:
        """Whether the Recipe's judge grades the Tasting (generation) rather than the Mash."""
        return self.recipe.judge is not None and self.recipe.task.kind in TASTING_JUDGED

    # -- stages ------------------------------------------------------------------------------
    @cached_property
    def device(self) -> torch.device:
        """Where the Still trains and the Tasting decodes (`still.device`; one GPU per process)."""
        return devices.resolve(self.recipe.still.device, self.world.local_rank)

    def run(self, until: str = "spirit") -> Path:
        """Run every stage up to and including `until`; returns the run directory.

        Under a launcher the processes other than rank 0 return after the Still.
        """
        stages = STAGES[:STAGES.index(until) + 1]
        if "still" in stages or self.world.size > 1:
            self.device  # a device that is not present is refused before anything is paid for
        if self.world.is_main:
            self.dir.mkdir(parents=True, exist_ok=True)
            (self.dir / "recipe.yaml").write_text(self.recipe.resolved_yaml())
        steps = {"mash": self.stage_mash, "cuts": self.stage_cuts, "tokenizer": self.stage_tokenizer,
                 "still": self.stage_still, "tasting": self.stage_tasting, "spirit": self.stage_spirit,
                 "bottles": self.stage_bottles}
        distributed.start(self.world, self.device if self.world.size > 1 else None)
        try:
            for name in stages:
                steps[name]()
                if name == "still" and not self.world.is_main:
                    break
        finally:
            distributed.stop()
        return self.dir

    def stage_mash(self) -> None:
        r = self.recipe
        inputs = _sha(self.task.kind, str(r.seed), self.task.mash_inputs(), r.section_sha256("teacher"),
                      r.section_sha256("mash"), *([] if self.tasting_judged else judge_inputs(r)))

        def work(resume: bool) -> None:
            teacher = make_teacher(r, task=self.task)
            t0 = time.perf_counter()
            with mash_progress(self.console, r.mash.total_examples) as on_progress:
                stats = self.task.build_mash(teacher, self.dir, on_progress)
            reasons = ", ".join(f"{k} {v}" for k, v in stats.reasons.most_common()) or "none"
            calls = f"; {stats.requests} requests sent, {stats.replayed} from the journal, " \
                    f"${stats.cost_usd:.4f}" if hasattr(teacher, "complete") else ""
            graded = "" if stats.teacher_accuracy is None else \
                f"; the teacher agrees with `expected` on {stats.teacher_accuracy:.1%}"
            if r.judge is not None and not self.tasting_judged:
                graded += f"; {stats.tails} to the tails ({r.judge.kind} judge" + (
                    f", {stats.judge_requests} requests sent, {stats.judge_replayed} from its journal)"
                    if r.judge.kind == "llm" else ")")
            self.console.print(f"[bold]Mash[/bold]: {stats.accepted} accepted, {stats.rejected} rejected "
                               f"({reasons}){calls}{graded} in {time.perf_counter() - t0:.1f}s")
            if stats.exhausted and stats.accepted < r.mash.total_examples:
                self.console.print(f"[yellow]Mash: the traces ran out at {stats.accepted} of "
                                   f"{r.mash.total_examples} examples[/yellow]")

        self._stage("mash", inputs, [self.dir / "mash.jsonl"], work)

    def stage_cuts(self) -> None:
        r = self.recipe
        held_apart = r.agent.held_out_tools if r.agent is not None else []
        inputs = _sha(self._hash_file("mash.jsonl"), r.section_sha256("cuts"), str(r.seed), *held_apart)

        def work(resume: bool) -> None:
            # Conversations of tools held out (`agent.held_out_tools`) go to cuts/unseen.jsonl.
            sizes = cuts.write_cuts(read_jsonl(self.dir / "mash.jsonl"), r.cuts, self.dir, r.seed,
                                    key=self.task.group_key, apart=self.task.kept_apart if held_apart else None)
            if not held_apart:
                (self.dir / "cuts" / "unseen.jsonl").unlink(missing_ok=True)  # from an earlier recipe
            self.console.print("[bold]Cuts[/bold]: " + ", ".join(f"{k} {v}" for k, v in sizes.items()))

        self._stage("cuts", inputs, [self.dir / "cuts" / f"{c}.jsonl" for c in cuts.CUT_NAMES], work)

    @property
    def student(self):
        return student_for(self.recipe.student.kind)

    def stage_tokenizer(self) -> None:
        r = self.recipe
        if not self.student.needs_tokenizer_stage:
            self.console.print(f"[dim]tokenizer: the {r.student.kind} student keeps its base's tokenizer[/dim]")
            return
        inputs = _sha(self._hash_file("cuts/hearts.jsonl"), str(r.student.vocab_size))

        def work(resume: bool) -> None:
            texts = self.task.texts(read_jsonl(self.dir / "cuts" / "hearts.jsonl"))
            tok = tokenizer.train_tokenizer(texts, r.student.vocab_size)
            (self.dir / "tokenizer.json").write_text(tok.to_str())
            self.console.print(f"[bold]Tokenizer[/bold]: byte-level BPE, {tok.get_vocab_size()} tokens")

        self._stage("tokenizer", inputs, [self.dir / "tokenizer.json"], work)

    def stage_still(self) -> None:
        r = self.recipe
        upstream = [self._hash_file("cuts/hearts.jsonl"), self._hash_file("cuts/heads.jsonl")]
        if self.student.needs_tokenizer_stage:
            upstream.append(self._hash_file("tokenizer.json"))
        inputs = _sha(*upstream, r.section_sha256("student"), r.section_sha256("still", without=_SPEED_ONLY),
                      str(r.seed))
        still_dir = self.dir / "still"

        def work(resume: bool) -> None:
            student = self.student
            built = student.build(r, self.dir)
            fmt, tok = self.task.prompt_format(built.format), built.tokenizer
            hearts = read_jsonl(self.dir / "cuts" / "hearts.jsonl")
            examples_of = self.task.epoch_examples(hearts, r.seed)

            def epoch_pairs(epoch: int) -> list[tuple[list[int], list[int]]]:
                return self.task.training_pairs(fmt, tok, examples_of(epoch))

            pairs = epoch_pairs(0)
            if len(pairs) < len(hearts):
                self.console.print(f"[yellow]Still: {len(hearts) - len(pairs)} hearts longer than the student's "
                                   f"context ({fmt.context} tokens) are left out[/yellow]")
            # The held-out loss is a gauge of memorization, measured every epoch: a fixed sample of
            # the heads is enough, and keeps its cost to a few seconds of a tiny student's Still.
            heads = self.task.training_pairs(fmt, tok, read_jsonl(self.dir / "cuts" / "heads.jsonl")[:HEADS_FOR_LOSS])
            n_tokens = sum(len(p) + len(c) for p, c in pairs)
            n_train = sum(p.numel() for p in {id(p): p for p in built.model.parameters() if p.requires_grad}.values())
            self.console.print(f"[bold]Still[/bold]: {r.student.kind} student, {count_params(built.model) / 1e6:.2f}M "
                               f"params ({n_train / 1e6:.2f}M trained), {len(pairs)} hearts ({n_tokens} tokens) "
                               f"x {r.still.epochs} epochs")
            result = still.run_still(built.model, epoch_pairs, r.still, still_dir, pad=fmt.pad_id, seed=r.seed,
                                     log=self.console.print, heads=heads, world=self.world, device=self.device)
            if not self.world.is_main:
                return
            model = student.export(built.model.to("cpu"))
            # The trained student as one file (plain weights, tokenizer, format): what the Tasting,
            # the Spirit and a later stage read, whatever the kind.
            student_meta = {"model_config": json.dumps(built.model_config, sort_keys=True),
                            "tokenizer": tok.to_str(), "prompt_format": fmt.to_json(),
                            "student": json.dumps(built.identity, sort_keys=True)}
            if built.chat_template:
                student_meta["chat_template"] = built.chat_template
            save_model(model, str(still_dir / "student.safetensors"), metadata=student_meta)
            (still_dir / "result.json").write_text(json.dumps(
                {"steps": result.steps, "epochs": result.epochs, "train_seconds": result.train_seconds,
                 "loss_curve": result.loss_curve, "params": count_params(model), "device": self.device.type,
                 "precision": "bf16" if devices.use_bf16(r.still.precision, self.device) else "fp32",
                 "processes": self.world.size}))

        self._stage("still", inputs, [still_dir / "result.json", still_dir / "student.safetensors"], work,
                    clear=[still_dir], every_rank=True)

    def _student_meta(self) -> dict[str, str]:
        with safe_open(str(self.dir / "still" / "student.safetensors"), framework="pt") as f:
            return f.metadata()

    def _trained(self) -> tuple[object, Tokenizer, PromptFormat, dict]:
        """The trained student: (model in eval mode, tokenizer, PromptFormat, its metadata as stored)."""
        raw = self._student_meta()
        meta = {"model_config": json.loads(raw["model_config"]), "student": json.loads(raw["student"])}
        model = self.student.load(meta)
        load_model(model, str(self.dir / "still" / "student.safetensors"))
        model.eval()
        return model, Tokenizer.from_str(raw["tokenizer"]), PromptFormat.from_dict(json.loads(raw["prompt_format"])), raw

    def stage_tasting(self) -> None:
        r = self.recipe
        unseen = self.dir / "cuts" / "unseen.jsonl"
        inputs = _sha(self._hash_file("still/result.json"), self._hash_file("cuts/heads.jsonl"),
                      r.section_sha256("tasting"), *([self._hash_file("cuts/unseen.jsonl")] if unseen.exists() else []),
                      *(judge_inputs(r) if self.tasting_judged else []))

        def work(resume: bool) -> None:
            torch.set_num_threads(r.still.threads or torch.get_num_threads())
            model, tok, fmt, _ = self._trained()
            model.to(self.device)  # no-op on the CPU
            decoding = self.task.decoding(read_jsonl(self.dir / "cuts" / "hearts.jsonl"))
            predictor = self.task.predictor(model, tok, fmt, decoding)
            heads = read_jsonl(self.dir / "cuts" / "heads.jsonl")
            # With tools held out, the notes set them against trained-on hearts: the memorization gap.
            apart = {"hearts": read_jsonl(self.dir / "cuts" / "hearts.jsonl"), "unseen": read_jsonl(unseen)} \
                if unseen.exists() else {}
            # A judged Tasting keeps the judge's journal in the run, so a re-run pays for no grade twice.
            judged = {"run_dir": self.dir} if self.tasting_judged else {}
            found = self.task.taste(predictor, heads, samples=r.tasting.samples, held_out=r.tasting.held_out, **apart,
                                    **judged)
            result = json.loads((self.dir / "still" / "result.json").read_text())
            notes = {"name": r.name, "version": r.version, "task": self.task.kind, **found,
                     "params": result["params"], "train_seconds": result["train_seconds"],
                     "loss_curve": result["loss_curve"], "grammar": found.get("grammar", r.tasting.grammar),
                     "decoding": decoding,
                     "recipe_sha256": r.sha256()}
            out = self.dir / "tasting"
            out.mkdir(parents=True, exist_ok=True)
            pictures = notes.pop("pictures", {})  # PNGs beside the notes (the confusion matrix...)
            for name, png in pictures.items():
                (out / name).write_bytes(png)
            notes["pictures"] = sorted(pictures)
            (out / "notes.json").write_text(json.dumps(notes, indent=2, ensure_ascii=False))
            write_report(notes, out)
            self.console.print(f"[bold]Tasting[/bold] on {notes['n_eval']} heads: {self.task.summary(notes)}")

        self._stage("tasting", inputs, [self.dir / "tasting" / "notes.json"], work)

    def _tasted_heads(self) -> str:
        # The Spirit carries the heads its tasting used, so every bottle of it is tasted on them.
        lines = [line for line in (self.dir / "cuts" / "heads.jsonl").read_text().splitlines() if line.strip()]
        return "".join(line + "\n" for line in lines[:self.recipe.tasting.held_out or None])

    def spirit_path(self) -> Path:
        return self.dir / f"{self.recipe.name}.spirit"

    def stage_spirit(self) -> None:
        r = self.recipe
        inputs = _sha(self._hash_file("tasting/notes.json"), r.sha256())

        def work(resume: bool) -> None:
            notes = json.loads((self.dir / "tasting" / "notes.json").read_text())
            headline = {k: notes[k] for k in ("proof", "proof_metric", "metrics", "n_eval", "latency_ms", "params",
                                              "train_seconds")}
            model, tok, fmt, raw = self._trained()
            identity = json.loads(raw["student"])
            lineage = {"parent": None, "mash_sha256": self._hash_file("mash.jsonl"), "recipe_sha256": r.sha256(),
                       **{k: identity[k] for k in ("base", "base_sha256") if k in identity}}
            write_spirit(self.spirit_path(), model, model_config=json.loads(raw["model_config"]),
                         tokenizer_json=raw["tokenizer"], recipe_yaml=r.resolved_yaml(), task=self.task.kind,
                         context=self.task.spirit_context(), tasting=headline, lineage=lineage, decoding=notes["decoding"],
                         student=identity, prompt_format=fmt, chat_template=raw.get("chat_template"),
                         heads=self._tasted_heads(), dtype=r.spirit.dtype)
            size = self.spirit_path().stat().st_size / 1e6
            self.console.print(f"[bold]Spirit[/bold]: {self.spirit_path()} ({size:.1f} MB)")

        self._stage("spirit", inputs, [self.spirit_path()], work)


    def stage_bottles(self) -> None:
        """The Recipe's `bottling.formats`, each written under <run>/bottles/ and tasted beside the Spirit."""
        r = self.recipe
        if not r.bottling.formats:
            return
        inputs = _sha(self._hash_file(self.spirit_path().name), r.section_sha256("bottling"))
        out = self.dir / "bottles"

        def work(resume: bool) -> None:
            from distillery.bottling import bottle

            written = {}
            for fmt in r.bottling.formats:
                path, notes = bottle(self.spirit_path(), fmt, out, r.bottling.quantize, log=self.console.print)
                written[fmt] = {"path": str(path.relative_to(self.dir)),
                                "same_calls_as_spirit": notes and notes["same_calls_as_spirit"]}
                if notes:
                    self.console.print(f"[bold]Bottle[/bold] {fmt}: {path.name}, same calls as the Spirit on "
                                       f"{notes['same_calls_as_spirit']:.0%} of {notes['n_eval']} heads")
            (out / "bottles.json").write_text(json.dumps(written, indent=2))

        self._stage("bottles", inputs, [out / "bottles.json"], work, clear=[out])


def make_teacher(recipe: Recipe, transport=None, task=None):
    """The recipe's teacher: the task's offline or replay teacher, or an LLM provider.

    `transport` (an httpx transport) lets tests answer an LLM provider's requests in-process.
    """
    t = recipe.teacher
    task = task or task_for(recipe)
    if t.provider == "offline":
        return task.offline_teacher()
    if t.provider == "replay":
        return task.replay_teacher(recipe.traces_path)
    providers = {"openai": OpenAITeacher, "anthropic": AnthropicTeacher, "gemini": GeminiTeacher}
    if t.provider not in providers:
        raise TeacherError(f"teacher.provider `{t.provider}` is not available in this version of distillery. "
                           f"Fix: use one of offline, replay, {', '.join(providers)}.")
    return providers[t.provider](model=t.model, base_url=t.base_url, key_env=t.api_key_env, transport=transport)


@contextmanager
def mash_progress(console: Console, total: int):
    """A live bar: accepted of total, and for LLM teachers rejects, requests and dollars."""
    columns = (TextColumn("[bold]Mash[/bold]"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[info]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("mash", total=total, info="")

        def update(stats) -> None:
            info = f"rejected {stats.rejected}"
            if stats.requests or stats.replayed:
                info += f" · requests {stats.requests} (+{stats.replayed} journal) · ${stats.cost_usd:.4f}"
            progress.update(task, completed=stats.accepted, info=info)

        yield update
