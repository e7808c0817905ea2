"""Latency of a Spirit and of SmolLM2-135M + grammar on the same BFCL questions, in one run.

    python benchmarks/bfcl_latency.py SPIRIT --category simple_python [--limit 50] [--threads 2]

A latency ratio only means something when both sides ran on the same machine at the same time:
the two models answer each question in turn (Spirit, then SmolLM2 with the same grammar), so
the machine's load falls on both alike. Prints p50 / p95 per request, their ratio and the AST
accuracy of each on these questions, and writes JSON (default
benchmarks/results/bfcl_latency_<category>.json).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

import smollm2  # noqa: I001 - this folder
from bfcl_data import CATEGORIES, load_questions
from distillery.tasks.tool_calling.predictor import ToolCaller
from distillery.spirit import load_spirit
from distillery.tasks.tool_calling import bfcl
from distillery.tasks.tool_calling.catalog import parse_tools
from distillery.tasks.base import percentile


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spirit", type=Path)
    parser.add_argument("--category", required=True, choices=CATEGORIES)
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    console = Console(stderr=True)
    questions = load_questions(args.category)[: args.limit]
    spirit = load_spirit(args.spirit)
    student = ToolCaller.from_decoding(spirit.model, spirit.tokenizer, spirit.format, spirit.decoding)
    model, tokenizer = smollm2.load(smollm2.find_gguf())
    baseline = smollm2.ChatToolCaller(model, tokenizer, grammar=True)
    rows = {"spirit": {"ms": [], "right": 0}, "smollm2_grammar": {"ms": [], "right": 0}}
    for i, q in enumerate(questions):
        tools = parse_tools(q["functions"], where=q["id"]) if q["functions"] else []
        for key, caller in (("spirit", student), ("smollm2_grammar", baseline)):
            prediction = caller.predict(q["utterance"], tools)
            rows[key]["ms"].append(prediction.latency_ms)
            rows[key]["right"] += bfcl.check(args.category, q["functions"], prediction.calls, q["answers"]) is None
        if (i + 1) % 10 == 0:
            console.print(f"[dim]{i + 1}/{len(questions)}[/dim]")
    report = {"category": args.category, "n_questions": len(questions), "threads": torch.get_num_threads(),
              "spirit": str(args.spirit), "student": (spirit.metadata.get("student") or {"kind": "tiny"})}
    for key, row in rows.items():
        report[key] = {"p50_ms": round(statistics.median(row["ms"]), 1), "p95_ms": round(percentile(row["ms"], 0.95), 1),
                       "ast_accuracy": row["right"] / len(questions)}
    report["p50_ratio_smollm2_over_spirit"] = round(report["smollm2_grammar"]["p50_ms"] / report["spirit"]["p50_ms"], 2)
    table = Table(title=f"BFCL {args.category}, first {len(questions)} questions, one run, "
                        f"{torch.get_num_threads()} threads")
    for column in ("model", "AST", "p50 ms", "p95 ms"):
        table.add_column(column, justify="right")
    for key in rows:
        table.add_row(key, f"{report[key]['ast_accuracy']:.1%}", f"{report[key]['p50_ms']:.0f}",
                      f"{report[key]['p95_ms']:.0f}")
    Console().print(table)
    console.print(f"SmolLM2 + grammar / Spirit, p50: {report['p50_ratio_smollm2_over_spirit']}x")
    out = args.json or Path(f"benchmarks/results/bfcl_latency_{args.category}.json")
    out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
