"""What constrained decoding buys: one Spirit, its heads, three decoders, in the same run.

    free          greedy decoding, nothing constrained
    grammar       only calls the offered tools accept (tasks/tool_calling/grammar.py)
    grammar+copy  and copied parameters only take spans of the request (tasks/tool_calling/spans.py)
    +named enums  and copied enums only the members the request names (spans.py)
    +abstain      and no call when the student asks for a tool it knows that is not offered

    python benchmarks/decoding.py runs/needle-v1 [--json benchmarks/results/decoding.json]

The run directory gives the Spirit and its heads; the copied parameters are measured on its
hearts, as the Tasting does.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from distillery.jsonl import read_jsonl
from distillery.tasks.tool_calling.predictor import ToolCaller
from distillery.spirit import load_spirit
from distillery.tasks.tool_calling.spans import copied_params
from distillery.tasks.tool_calling.tasting import taste

COLUMNS = ("tool_name_accuracy", "arg_key_f1", "exact_call_accuracy", "valid_call_rate", "no_call_accuracy")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run directory, e.g. runs/needle-v1")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/decoding.json"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    spirit = load_spirit(next(args.run.glob("*.spirit")))
    heads = read_jsonl(args.run / "cuts" / "heads.jsonl")
    copied = copied_params(read_jsonl(args.run / "cuts" / "hearts.jsonl"), {t.name: t for t in spirit.tools})
    enums = {f"{t.name}.{p.name}" for t in spirit.tools for p in t.params if p.enum is not None}
    decoders = {"free": {"grammar": False}, "grammar": {"grammar": True},
                "grammar+copy": {"grammar": True, "copied": [c for c in copied if c not in enums]},
                "+named enums": {"grammar": True, "copied": copied},
                "+abstain": {"grammar": True, "copied": copied, "known_tools": [t.name for t in spirit.tools]}}
    results = {}
    for name, options in decoders.items():
        caller = ToolCaller(spirit.model, spirit.tokenizer, spirit.format, max_new_tokens=256, **options)
        notes = taste(caller, heads, spirit.tools)
        results[name] = {**{k: notes["metrics"][k] for k in COLUMNS}, "p50_ms": notes["latency_ms"]["p50"]}

    table = Table(title=f"Decoding on {len(heads)} heads of {args.run.name} ({len(copied)} copied parameters)")
    for column in ("decoder", *COLUMNS, "p50 ms"):
        table.add_column(column, justify="right")
    for name, row in results.items():
        table.add_row(name, *(f"{row[k]:.3f}" for k in COLUMNS), f"{row['p50_ms']:.1f}")
    Console().print(table)
    free, best = results["free"]["exact_call_accuracy"], results["+abstain"]["exact_call_accuracy"]
    print(f"exact_call_accuracy, grammar+copy+abstain vs free: {best:.2f} vs {free:.2f} ({best / max(free, 1e-9):.2f}x)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"run": str(args.run), "n_heads": len(heads), "copied_params": copied,
                                     "decoders": results}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
