"""Batch `predict` against one request at a time: calls/s on a run's heads, in every runtime, same answers.

    python benchmarks/batch_predict.py runs/needle-v3 [--threads 1] [--sizes 8 16 32]
                                       [--json benchmarks/results/batch_predict.json]

The baseline is `predict` one request at a time in PyTorch (a ToolCaller over a TorchRunner: what
`predict UTTERANCE` did before runtimes and batching). Then each installed runtime answers the same
heads one at a time and in batches (`ToolCaller.predict_many`, what `predict --input` does: a
batch of sequences decoding together, a finished one replaced by the next request). Every row
gives calls/s and its ratio to the baseline, the CPU milliseconds a call took and that ratio (the
process's CPU time, which the machine's other load does not inflate), and how many answers equal
the baseline's. The baseline runs first and last, and its mean is the reference, so a change in
the machine's load during the run shows as a difference between the two. The runtime `predict`
picks by default is marked.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
import yaml

from distillery.batching import EngineRunner
from distillery.decoding import TorchRunner
from distillery.jsonl import read_jsonl
from distillery.runtimes import choose, installed, spirit_engine
from distillery.spirit import file_sha256, load_spirit
from distillery.tasks.tool_calling.predictor import ToolCaller


def rate(caller: ToolCaller, requests: list, size: int) -> tuple[float, float, list]:
    """Answering every request one at a time (size 1) or `size` together: calls/s, CPU ms a call
    (this process's CPU time: what the machine's other load does not inflate), and the calls."""
    start, cpu = time.perf_counter(), time.process_time()
    if size == 1:
        answers = [caller.predict(utterance, tools) for utterance, tools in requests]
    else:
        answers = caller.predict_many(requests, batch_size=size)
    return (len(requests) / (time.perf_counter() - start), (time.process_time() - cpu) * 1000 / len(requests),
            [a.calls for a in answers])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run directory, e.g. runs/needle-v3")
    parser.add_argument("--threads", type=int, default=1, help="torch, onnxruntime and llama.cpp threads")
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32], help="batch sizes")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/batch_predict.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    name = yaml.safe_load((args.run / "recipe.yaml").read_text())["name"]
    path = args.run / f"{name}.spirit"
    spirit, sha = load_spirit(path), file_sha256(path)
    by_name = {t.name: t for t in spirit.tools}
    heads = read_jsonl(args.run / "cuts" / "heads.jsonl")
    requests = [(h["utterance"], [by_name[n] for n in h["tools"]]) for h in heads]
    default = choose(spirit, sha, threads=args.threads, log=print)

    def caller(runner) -> ToolCaller:
        return ToolCaller.from_decoding(runner, spirit.tokenizer, spirit.format, spirit.decoding)

    baseline = caller(TorchRunner(spirit.model, spirit.format.context))
    rate(baseline, requests[:8], 1)  # warm-up: first calls allocate
    first, first_cpu, expected = rate(baseline, requests, 1)
    rows = []
    for runtime in installed():
        engine = spirit_engine(spirit, sha, runtime, threads=args.threads, width=max(args.sizes))
        runtime_caller = caller(EngineRunner(engine))
        rate(runtime_caller, requests[:8], 8)  # warm-up
        for size in [1, *args.sizes]:
            found, cpu, answers = rate(runtime_caller, requests, size)
            rows.append({"runtime": runtime, "batch": size, "calls_per_s": round(found, 2), "cpu_ms": round(cpu, 1),
                         "same_answers": sum(a == b for a, b in zip(answers, expected)),
                         "default": runtime == default})
    last, last_cpu, _ = rate(baseline, requests, 1)
    reference, reference_cpu = (first + last) / 2, (first_cpu + last_cpu) / 2
    for row in rows:
        row["ratio"] = round(row["calls_per_s"] / reference, 2)
        row["cpu_ratio"] = round(reference_cpu / row["cpu_ms"], 2)

    print(f"{args.run.name}, {len(requests)} heads, {args.threads} thread(s), {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}")
    print(f"baseline, torch one at a time: {first:.1f} calls/s ({first_cpu:.1f} CPU ms a call) first, "
          f"{last:.1f} ({last_cpu:.1f}) last")
    print(f"{'runtime':10}{'batch':>6}{'calls/s':>10}{'ratio':>8}{'CPU ms':>9}{'ratio':>8}{'same':>8}")
    for row in rows:
        mark = "  <- default" if row["default"] and row["batch"] == max(args.sizes) else ""
        print(f"{row['runtime']:10}{row['batch']:>6}{row['calls_per_s']:>10.1f}{row['ratio']:>8.2f}{row['cpu_ms']:>9.1f}"
              f"{row['cpu_ratio']:>8.2f}{row['same_answers']:>8}{mark}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "run": args.run.name, "spirit_sha256": sha, "n": len(requests), "threads": args.threads,
        "cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()], "default_runtime": default,
        "baseline_torch_one_at_a_time": {"calls_per_s_first": round(first, 2), "calls_per_s_last": round(last, 2),
                                         "cpu_ms_first": round(first_cpu, 1), "cpu_ms_last": round(last_cpu, 1)},
        "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
