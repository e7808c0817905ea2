"""Batch `predict` against one request at a time: calls/s on a run's heads, same answers.

    python benchmarks/batch_predict.py runs/needle-v3 [--threads 2] [--json benchmarks/results/batch_predict.json]

The same ToolCaller answers every head one by one (`predict`, what `predict UTTERANCE` and
serve do) and then in batches (`predict_many`, what `predict --input` does), in the same
process, in turn; the table gives calls/s of each, the ratio, and how many answers are equal.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import yaml

from distillery.jsonl import read_jsonl
from distillery.spirit import load_spirit
from distillery.tasks.tool_calling.predictor import ToolCaller


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/batch_predict.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    name = yaml.safe_load((args.run / "recipe.yaml").read_text())["name"]
    spirit = load_spirit(args.run / f"{name}.spirit")
    by_name = {t.name: t for t in spirit.tools}
    requests = [(h["utterance"], [by_name[n] for n in h["tools"]]) for h in read_jsonl(args.run / "cuts" / "heads.jsonl")]
    caller = ToolCaller.from_decoding(spirit.model, spirit.tokenizer, spirit.format, spirit.decoding)
    caller.predict_many(requests[:8], batch_size=8)  # warm-up: first calls allocate
    start = time.perf_counter()
    alone = [caller.predict(u, tools) for u, tools in requests]
    one_rate = len(requests) / (time.perf_counter() - start)
    rows = {"one_at_a_time": {"calls_per_s": round(one_rate, 2)}}
    for size in args.sizes:
        start = time.perf_counter()
        together = caller.predict_many(requests, batch_size=size)
        rate = len(requests) / (time.perf_counter() - start)
        rows[f"batch_{size}"] = {"calls_per_s": round(rate, 2), "ratio": round(rate / one_rate, 2),
                                 "same_answers": sum(a.calls == b.calls for a, b in zip(alone, together))}
    print(f"{args.run.name}, {len(requests)} heads, {args.threads} threads")
    print(f"{'':16}{'calls/s':>10}{'ratio':>8}{'same':>8}")
    for label, row in rows.items():
        print(f"{label:16}{row['calls_per_s']:>10.1f}{row.get('ratio', 1.0):>8.2f}"
              f"{row.get('same_answers', len(requests)):>8}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"run": args.run.name, "n": len(requests), "threads": args.threads, **rows},
                                    indent=2) + "\n")


if __name__ == "__main__":
    main()
