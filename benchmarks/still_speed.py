"""Training speed of the Still, by attention implementation and optimizer, in the same run.

    python benchmarks/still_speed.py runs/needle-v3 [--steps 40] [--json benchmarks/results/still_speed.json]

Real batches (the run's hearts, tokenized and batched as the Still does) go through full
training steps (forward, loss, backward, AdamW) of the run's student: with PyTorch's `sdpa`
attention, with plain matmul (`eager`) attention, and eager with a fused AdamW (what the Still
uses), alternating step by step so that all see the same machine load. Tokens per second and the ratio are printed and written as JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import yaml
from rich.console import Console
from rich.table import Table

from distillery import still
from distillery.jsonl import read_jsonl
from distillery.pipeline import training_pairs
from distillery.spirit import load_spirit
from distillery.students.tiny import build_model
from distillery.tasks.tool_calling.prompt import PAD, render_completion, render_prompt

# (attention, fused AdamW): PyTorch's defaults, then what the Still uses, one change at a time.
SETUPS = {"sdpa": ("sdpa", False), "eager": ("eager", False), "eager + fused AdamW": ("eager", True)}


def batches(run: Path, spirit, batch_size: int, max_len: int) -> list[dict[str, torch.Tensor]]:
    tok, tools = spirit.tokenizer, {t.name: t for t in spirit.tools}
    texts = [(render_prompt(ex["utterance"], [tools[n] for n in ex["tools"]]), render_completion(ex["calls"], tools))
             for ex in read_jsonl(run / "cuts" / "hearts.jsonl")]
    pairs = training_pairs(tok, texts, max_len)
    order = still.make_batches(pairs, batch_size, seed=0)
    return [still.collate([pairs[i] for i in idx], tok.token_to_id(PAD)) for idx in order]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a finished run directory, e.g. runs/needle-v3")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per implementation")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/still_speed.json"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    spirit = load_spirit(next(args.run.glob("*.spirit")))
    recipe = yaml.safe_load(spirit.metadata["recipe"])
    student, still_cfg = recipe["student"], recipe["still"]
    data = batches(args.run, spirit, still_cfg["batch_size"], student["max_seq_len"])
    bf16 = still.use_bf16(still_cfg["precision"])
    models = {}
    for name, (attention, fused) in SETUPS.items():
        model = build_model(spirit.metadata["model_config"])
        model.set_attn_implementation(attention)
        model.train()
        models[name] = (model, torch.optim.AdamW(model.parameters(), lr=1e-4, fused=fused))
    seconds = dict.fromkeys(SETUPS, 0.0)
    tokens = dict.fromkeys(SETUPS, 0)
    for step in range(args.steps + 2):
        batch = data[step % len(data)]
        for name, (model, optimizer) in models.items():
            t0 = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = still.completion_loss(model, batch, still_cfg["prompt_loss"])
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if step >= 2:  # the first steps warm up allocators and kernels
                seconds[name] += time.perf_counter() - t0
                tokens[name] += int(batch["attention_mask"].sum())
    rates = {name: tokens[name] / seconds[name] for name in SETUPS}
    table = Table(title=f"Still training speed on {args.run.name} (batch {still_cfg['batch_size']}, "
                        f"{'bf16' if bf16 else 'fp32'}, {torch.get_num_threads()} threads, {args.steps} steps)")
    for column in ("setup", "tokens/s", "vs sdpa"):
        table.add_column(column, justify="right")
    for name in SETUPS:
        table.add_row(name, f"{rates[name]:.0f}", f"{rates[name] / rates['sdpa']:.2f}x")
    Console().print(table)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "run": args.run.name, "batch_size": still_cfg["batch_size"], "bf16": bf16, "threads": torch.get_num_threads(),
        "steps": args.steps, "tokens_per_s": {k: round(v) for k, v in rates.items()},
        "eager_vs_sdpa": round(rates["eager"] / rates["sdpa"], 3),
        "eager_fused_vs_sdpa": round(rates["eager + fused AdamW"] / rates["sdpa"], 3)}, indent=2) + "\n")


if __name__ == "__main__":
    main()
