"""Latency per call and calls/s of one Spirit in every CPU runtime, on the same heads, in one run.

    python benchmarks/latency.py runs/needle-v1/needle.spirit [--heads FILE] [--json benchmarks/results/latency.json]

    torch eager   the Spirit itself (transformers, KV cache)
    onnx f32      onnxruntime, the onnx bottle (bottling/onnx.py)
    onnx int8     onnxruntime, dynamic int8 quantization
    gguf f16      llama.cpp (llama-cpp-python), the gguf bottle (bottling/gguf.py)
    gguf q8_0     llama.cpp, 8-bit blocks

Every format is bottled into a temporary folder, then answers every head with the same caller
(prompt, grammar, copied values: `bottling.caller_for`) on 1 and on 2 threads. A call is the
whole request: prompt encoding, grammar, prefill and decoding. Reported per format and thread
count: p50/p95 ms per call, calls/s over the run, exact_call_accuracy on the same heads, and the
bottle's size on disk; then the fastest format's p50 against torch eager's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from distillery.bottling import Bottle, caller_for, gguf, onnx, resolve_heads
from distillery.decoding import TorchRunner
from distillery.jsonl import read_jsonl
from distillery.spirit import load_spirit
from distillery.tasks.tool_calling.catalog import parse_tools
from distillery.tasks.tool_calling.tasting import taste

THREADS = (1, 2)
WARMUP = 3


def bottles(spirit, folder: Path) -> dict[str, tuple[Path, object]]:
    """Format name -> (file on disk, opener(threads) -> Bottle)."""
    eager = lambda threads: Bottle(TorchRunner(spirit.model), spirit.tokenizer, spirit.metadata, "spirit")  # noqa: E731
    made = {"torch eager": (Path(spirit.path), eager)}
    for name, module, quantize in (("onnx f32", onnx, None), ("onnx int8", onnx, "int8"),
                                   ("gguf f16", gguf, "f16"), ("gguf q8_0", gguf, "q8_0")):
        path = module.export(spirit, folder / name.replace(" ", "-"), quantize)
        made[name] = (path, lambda threads, module=module, path=path: module.open_bottle(path, threads=threads))
    return made


def measure(open_bottle, threads: int, heads: list[dict], catalog) -> dict:
    torch.set_num_threads(threads)  # the grammar's masks and torch eager run on these
    caller = caller_for(open_bottle(threads))
    by_name = {t.name: t for t in catalog}
    for ex in heads[:WARMUP]:
        caller.predict(ex["utterance"], [by_name[n] for n in ex["tools"]])
    start = time.perf_counter()
    notes = taste(caller, heads, catalog)
    seconds = time.perf_counter() - start
    return {"threads": threads, "p50_ms": notes["latency_ms"]["p50"], "p95_ms": notes["latency_ms"]["p95"],
            "calls_per_s": round(len(heads) / seconds, 2),
            "exact_call_accuracy": notes["metrics"]["exact_call_accuracy"],
            "predictions": [row["predicted"] for row in notes["predictions"]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spirit", type=Path, help="a .spirit file, e.g. runs/needle-v1/needle.spirit")
    parser.add_argument("--heads", type=Path, default=None,
                        help="heads JSON Lines (default: the Spirit's own heads, else cuts/heads.jsonl beside it)")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/latency.json"))
    args = parser.parse_args()

    spirit = load_spirit(args.spirit)
    found = resolve_heads(spirit.metadata, args.heads, str(args.spirit))
    if found is None:
        found = read_jsonl(args.spirit.parent / "cuts" / "heads.jsonl"), str(args.spirit.parent / "cuts" / "heads.jsonl")
    heads, source = found
    catalog = parse_tools(spirit.metadata["tools"], where=f"{args.spirit} (tools metadata)")
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        made = bottles(spirit, Path(tmp))
        for name, (path, opener) in made.items():
            for threads in THREADS:
                row = {"format": name, "size_bytes": path.stat().st_size, **measure(opener, threads, heads, catalog)}
                rows.append(row)
                Console(stderr=True).print(f"{name} x{threads}: p50 {row['p50_ms']} ms, {row['calls_per_s']} calls/s")
    load_after = os.getloadavg()

    eager = {r["threads"]: r for r in rows if r["format"] == "torch eager"}
    answers = {id(r): r["predictions"] for r in rows}
    for row in rows:  # how often a format answers a head exactly as the Spirit does
        same = sum(a == b for a, b in zip(answers[id(row)], answers[id(eager[row["threads"]])]))
        row["same_calls_as_eager"] = round(same / len(heads), 3)
        del row["predictions"]
    fastest = min(rows, key=lambda r: r["p50_ms"])
    ratio = round(fastest["p50_ms"] / eager[fastest["threads"]]["p50_ms"], 3)
    result = {
        "spirit": str(args.spirit), "heads": source, "n": len(heads),
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in load_after]},
        "rows": rows,
        "fastest": {"format": fastest["format"], "threads": fastest["threads"], "p50_ms": fastest["p50_ms"],
                    "p50_vs_torch_eager": ratio},
    }

    table = Table(title=f"Latency per call on {len(heads)} heads ({args.spirit.name})")
    for column in ("format", "threads", "p50 ms", "p95 ms", "calls/s", "exact_call", "same as eager", "size MB"):
        table.add_column(column, justify="left" if column == "format" else "right")
    for r in rows:
        table.add_row(r["format"], str(r["threads"]), f"{r['p50_ms']:.1f}", f"{r['p95_ms']:.1f}",
                      f"{r['calls_per_s']:.1f}", f"{r['exact_call_accuracy']:.3f}", f"{r['same_calls_as_eager']:.2f}",
                      f"{r['size_bytes'] / 1e6:.1f}")
    Console(width=120).print(table)
    Console().print(f"fastest: {fastest['format']} on {fastest['threads']} thread(s), p50 {fastest['p50_ms']} ms "
                    f"= {ratio} x torch eager's p50 ({eager[fastest['threads']]['p50_ms']} ms); "
                    f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
