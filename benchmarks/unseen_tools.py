"""Valid calls on tools a Spirit never saw: BFCL's function docs, offered to a Spirit trained on others.

    .venv/bin/python benchmarks/unseen_tools.py runs/needle-v3/needle.spirit --category multiple \
        --json benchmarks/results/unseen_tools.json

Every question of the category whose functions are all outside the Spirit's catalog is asked
with those functions offered, decoded with the grammar (as deployed) and without it, in the same
run. Printed and written: how many answers are valid calls of the offered tools (right name,
known argument keys, declared types, every required argument: tasks/tool_calling/validate.py),
and how many answers are a call at all. Needs `pip install --no-deps bfcl-eval` for the questions.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from bfcl_data import CATEGORIES, load_questions  # noqa: I001 - this folder
from distillery.errors import DistilleryError
from distillery.tasks.tool_calling.predictor import PromptTooLong, ToolCaller
from distillery.spirit import load_spirit
from distillery.tasks.tool_calling.catalog import parse_tools
from distillery.tasks.tool_calling.validate import check_calls


def measure(caller: ToolCaller, questions: list[dict]) -> dict:
    valid, called, asked, too_long, invalid = 0, 0, 0, 0, []
    for q in questions:
        tools = parse_tools(q["functions"], where=q["id"])
        try:
            prediction = caller.predict(q["utterance"], tools)
        except PromptTooLong:
            too_long += 1  # refused before decoding: no output to judge
            continue
        asked += 1
        problem = "not a list of calls" if prediction.calls is None else check_calls(prediction.calls, tools)
        valid += problem is None
        called += bool(prediction.calls)
        if problem and len(invalid) < 5:
            invalid.append({"id": q["id"], "output": prediction.text, "why": problem})
    return {"valid_call_rate": valid / asked if asked else None, "answered_with_a_call": called / asked if asked else None,
            "n": asked, "prompt_too_long": too_long, "invalid_examples": invalid}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spirit", type=Path)
    parser.add_argument("--category", default="multiple", choices=CATEGORIES)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/unseen_tools.json"))
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    console = Console(stderr=True)
    try:
        spirit = load_spirit(args.spirit)
        known = {t.name for t in spirit.tools}
        questions = [q for q in load_questions(args.category)
                     if q["functions"] and not {f["name"] for f in q["functions"]} & known]
    except DistilleryError as exc:
        console.print(f"[bold red]error:[/bold red] {exc}")
        return 2
    report = {"spirit": args.spirit.name, "category": args.category, "questions": len(questions)}
    for key, grammar in (("grammar", True), ("free", False)):
        caller = ToolCaller.from_decoding(spirit.model, spirit.tokenizer, spirit.format, spirit.decoding,
                                          grammar=grammar)
        report[key] = measure(caller, questions)
    table = Table(title=f"{args.spirit.name} on {len(questions)} BFCL {args.category} questions, tools it never saw")
    for column in ("decoder", "valid calls", "answered with a call", "asked", "prompt too long"):
        table.add_column(column, justify="right")
    for key in ("grammar", "free"):
        row = report[key]
        table.add_row(key, f"{row['valid_call_rate']:.3f}", f"{row['answered_with_a_call']:.3f}", str(row["n"]),
                      str(row["prompt_too_long"]))
    Console().print(table)
    args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    console.print(f"report written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
