"""The Still: train the student on the hearts.

AdamW with linear warmup and a cosine decay, gradient clipping, loss on the completion
only. A checkpoint is written after every epoch (weights, optimizer, position), so a killed
Still resumes from its last finished epoch instead of starting over.

Under a launcher (torchrun, `accelerate launch`) every process trains on its share of each
batch of the same global order, and DistributedDataParallel sums their gradients: the
Recipe's `batch_size` stays the global batch whatever the process count, and a share larger
than `micro_batch` is taken in several passes (gradient accumulation). Rank 0 alone writes.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from rich.progress import (
    BarColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from safetensors.torch import load_file, save_file
from torch.nn.parallel import DistributedDataParallel

from distillery.devices import use_bf16
from distillery.distributed import World
from distillery.students.base import load_training_state, trainable, training_state

IGNORE = -100  # label value the loss skips (prompt and padding tokens)


@dataclass
class StillResult:
    steps: int
    epochs: int
    train_seconds: float
    loss_curve: list[dict] = field(default_factory=list)


def lr_at(step: int, total: int, lr: float, warmup_ratio: float, min_lr_ratio: float) -> float:
    """Linear warmup to `lr`, then cosine decay to `lr * min_lr_ratio` at the last step."""
    warmup = max(1, int(total * warmup_ratio))
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    floor = lr * min_lr_ratio
    return floor + (lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def make_batches(pairs: list[tuple[list[int], list[int]]], batch_size: int, seed: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (less padding), in a seeded random order."""
    rng = random.Random(seed)
    order = list(range(len(pairs)))
    rng.shuffle(order)
    # Sort within windows of 50 batches: similar lengths together, yet a fresh mix each epoch.
    window = batch_size * 50
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start:start + window], key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(pairs: list[tuple[list[int], list[int]]], pad: int) -> dict[str, torch.Tensor]:
    """Right-padded input ids, attention mask, labels of the completion, and labels of the prompt."""
    width = max(len(p) + len(c) for p, c in pairs)
    ids = torch.full((len(pairs), width), pad, dtype=torch.long)
    labels = torch.full((len(pairs), width), IGNORE, dtype=torch.long)
    prompt_labels = torch.full((len(pairs), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(pairs), width), dtype=torch.long)
    for row, (prompt, completion) in enumerate(pairs):
        seq = prompt + completion
        ids[row, :len(seq)] = torch.tensor(seq)
        labels[row, len(prompt):len(seq)] = torch.tensor(completion)
        prompt_labels[row, 1:len(prompt)] = torch.tensor(prompt[1:])
        mask[row, :len(seq)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels, "prompt_labels": prompt_labels}


def label_counts(pairs: list[tuple[list[int], list[int]]]) -> tuple[int, int]:
    """How many completion and prompt tokens of `collate(pairs)` carry a next-token label."""
    return (sum(len(c) - (not p) for p, c in pairs), sum(max(0, len(p) - 1) for p, _ in pairs))


def completion_loss(model, batch: dict[str, torch.Tensor], prompt_weight: float = 0.0,
                    per_token: tuple[int, int] | None = None) -> torch.Tensor:
    """Next-token cross-entropy over the completion tokens, plus `prompt_weight` times the prompt's.

    The output layer is applied only where a label exists: most tokens are prompt, and
    projecting them onto the vocabulary would be wasted work when their loss is not wanted.
    With `per_token` (the `label_counts` of a whole batch that `batch` is one part of), the
    losses are summed and divided by those counts, so the parts add up to the whole batch's.
    """
    hidden = model.get_decoder()(input_ids=batch["input_ids"],
                                 attention_mask=batch["attention_mask"]).last_hidden_state
    head = model.get_output_embeddings()

    def loss_on(labels: torch.Tensor, count: int | None) -> torch.Tensor:
        targets = labels[:, 1:]
        keep = targets != IGNORE
        logits = head(hidden[:, :-1][keep]).float()
        if count is None:
            return torch.nn.functional.cross_entropy(logits, targets[keep])
        return torch.nn.functional.cross_entropy(logits, targets[keep], reduction="sum") / max(1, count)

    completions, prompts = per_token or (None, None)
    loss = loss_on(batch["labels"], completions)
    return loss + prompt_weight * loss_on(batch["prompt_labels"], prompts) if prompt_weight else loss


class _Loss(torch.nn.Module):
    """The loss as a module's forward: DistributedDataParallel syncs what runs through a forward."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, batch, prompt_weight, per_token):
        return completion_loss(self.model, batch, prompt_weight, per_token)


def shares(batch: list[int], world: World, micro_batch: int) -> list[list[int]]:
    """This process's part of a global batch, in passes of at most `micro_batch` examples.

    Every process gets the same number of passes (the largest share decides); a pass may be
    empty where a share is smaller, and still runs, since every process must join each sync.
    """
    mine = batch[world.rank::world.size]
    passes = max(1, math.ceil(math.ceil(len(batch) / world.size) / micro_batch))
    return [mine[i * micro_batch:(i + 1) * micro_batch] for i in range(passes)]


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return batch if device.type == "cpu" else {k: v.to(device) for k, v in batch.items()}


def _last_checkpoint(still_dir: Path) -> Path | None:
    # state.json is written last, so its presence means the checkpoint is whole.
    done = sorted(still_dir.glob("epoch-*/state.json"), key=lambda p: int(p.parent.name.split("-")[1]))
    return done[-1].parent if done else None


def _open_metrics(path: Path, resumed_step: int):
    """metrics.csv for appending from `resumed_step` (0: a new file). Rows a killed run wrote after
    its last checkpoint are dropped: those steps are trained again."""
    if resumed_step and path.exists():
        rows = path.read_text().splitlines(keepends=True)
        kept = rows[:1] + [r for r in rows[1:] if r.split(",")[0].isdigit() and int(r.split(",")[0]) <= resumed_step]
        if kept != rows:
            path.write_text("".join(kept))
        return path.open("a", newline=""), False
    return path.open("w", newline=""), True


def _save_checkpoint(still_dir: Path, epoch: int, step: int, model, optimizer, curve: list[dict],
                     seconds: float) -> None:
    ckpt = still_dir / f"epoch-{epoch}"
    ckpt.mkdir(parents=True, exist_ok=True)
    # Only what trains: the whole student for tiny and full, the adapters for lora.
    save_file(training_state(model), str(ckpt / "trainable.safetensors"))
    torch.save(optimizer.state_dict(), ckpt / "optimizer.pt")
    state = {"epoch": epoch, "step": step, "loss_curve": curve, "train_seconds": seconds}
    tmp = ckpt / "state.json.tmp"
    tmp.write_text(json.dumps(state))
    os.replace(tmp, ckpt / "state.json")
    # Only the last checkpoint is needed to resume; older ones are dead weight.
    for old in still_dir.glob("epoch-*"):
        if old != ckpt and old.is_dir():
            for f in old.iterdir():
                f.unlink()
            old.rmdir()


Pairs = list[tuple[list[int], list[int]]]


@torch.no_grad()
def heads_loss(model, pairs: Pairs, pad: int, batch_size: int = 32) -> float:
    """Mean completion loss on held-out pairs: beside the training loss it shows memorization.

    Forward passes only, in batches of similar length (little padding), so a tiny student's
    36 measurements cost seconds.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    ordered = sorted(pairs, key=lambda pair: len(pair[0]) + len(pair[1]))
    total, count = 0.0, 0
    for start in range(0, len(ordered), batch_size):
        batch = _to(collate(ordered[start:start + batch_size], pad), device)
        n = int((batch["labels"][:, 1:] != IGNORE).sum())
        total += float(completion_loss(model, batch)) * n
        count += n
    model.train(was_training)
    return total / max(1, count)


def _data_parallel(model, world: World, device: torch.device):
    """The loss module wrapped in DistributedDataParallel, or None for one process."""
    if world.size == 1:
        return None
    # Buffers (RoPE's frequencies) never change: synced once at the start, not before every step.
    return DistributedDataParallel(_Loss(model), device_ids=[device.index] if device.type == "cuda" else None,
                                   forward_sync_buffers=False)


def run_still(model, data: Pairs | Callable[[int], Pairs], still_cfg, still_dir: Path, *, pad: int,
              seed: int, log=print, heads: Pairs | None = None, world: World = World(),
              device: torch.device | str = "cpu") -> StillResult:
    """Train `model` in place on (prompt ids, completion ids) pairs; resume if `still_dir` has a checkpoint.

    `data` is the pairs, or a function of the epoch that returns them (augmentation redrawn per epoch).
    Only parameters that require gradients train (a lora student's adapters). With `heads`, the
    loss on those held-out pairs is measured after every epoch and kept in the loss curve.
    `device` is where it trains; `world` is this process's place under a launcher (every process
    calls run_still with the same data; only rank 0 logs and writes to `still_dir`).
    """
    device = torch.device(device)
    epoch_pairs = data if callable(data) else (lambda epoch: data)
    pairs = epoch_pairs(0)
    if world.is_main:
        still_dir.mkdir(parents=True, exist_ok=True)
    if still_cfg.threads:
        torch.set_num_threads(still_cfg.threads)
    model.to(device)
    params = trainable(model)
    decay = [p for n, p in params if p.dim() >= 2]
    no_decay = [p for n, p in params if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": still_cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=still_cfg.lr, betas=(0.9, 0.95),
        fused=True,  # one kernel for all parameters: 1.12x the tokens/s (benchmarks/still_speed.py)
    )
    steps_per_epoch = math.ceil(len(pairs) / still_cfg.batch_size)
    total_steps = steps_per_epoch * still_cfg.epochs
    # Examples per forward pass: the process's whole share of a batch unless the Recipe says less.
    micro_batch = still_cfg.micro_batch or math.ceil(still_cfg.batch_size / world.size)
    start_epoch, step, curve, spent = 0, 0, [], 0.0

    ckpt = _last_checkpoint(still_dir)
    if ckpt is not None:
        state = json.loads((ckpt / "state.json").read_text())
        load_training_state(model, load_file(str(ckpt / "trainable.safetensors")))
        optimizer.load_state_dict(torch.load(ckpt / "optimizer.pt", weights_only=True, map_location=device))
        start_epoch, step, curve, spent = state["epoch"], state["step"], state["loss_curve"], state["train_seconds"]
        if world.is_main:
            log(f"Resuming the Still after epoch {start_epoch} (step {step}).")

    metrics = None
    if world.is_main:
        metrics, new_file = _open_metrics(still_dir / "metrics.csv", step)
        writer = csv.writer(metrics)
        if new_file:
            writer.writerow(["step", "epoch", "loss", "lr", "grad_norm", "tokens_per_s"])

    bf16 = use_bf16(still_cfg.precision, device)
    # At a student's sequence lengths (100-400 tokens, 32-wide heads) the CPU kernel behind
    # sdpa takes a third of a training step; plain matmul attention trains the Needle 1.3x
    # faster (benchmarks/still_speed.py). Only training changes: a loaded Spirit uses the default.
    default_attention = model.config._attn_implementation
    model.set_attn_implementation("eager")
    model.train()
    ddp = _data_parallel(model, world, device)
    loss_module = ddp if ddp is not None else _Loss(model)

    def forward_backward(batch_idx: list[int], pairs: Pairs) -> float:
        """Gradients of one global batch summed into the parameters; returns the batch's loss."""
        parts = shares(batch_idx, world, micro_batch)
        if ddp is None and len(parts) == 1:  # one process, the whole batch in one pass
            batch = _to(collate([pairs[i] for i in batch_idx], pad), device)
            # Autocast keeps fp32 master weights; only the matmuls run in bf16.
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                loss = completion_loss(model, batch, still_cfg.prompt_loss)
            loss.backward()
            return loss.item()
        per_token = label_counts([pairs[i] for i in batch_idx])
        total = 0.0
        for n, part in enumerate(parts):
            # An empty part (a share smaller than the others) runs the batch's first example with
            # weight 0: this process still joins the gradient sum, adding nothing to it.
            batch = _to(collate([pairs[i] for i in part or batch_idx[:1]], pad), device)
            # DDP averages the processes' gradients; scaled by their count, the average is the sum.
            weight = world.size if part else 0.0
            last = n == len(parts) - 1
            with ddp.no_sync() if ddp is not None and not last else nullcontext():
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    loss = loss_module(batch, still_cfg.prompt_loss, per_token) * weight
                loss.backward()
            total += loss.item() / world.size
        return world.sum([total], device)[0]

    columns = [TextColumn("[bold]Still[/bold] epoch {task.fields[epoch]}"), BarColumn(),
               TextColumn("{task.completed}/{task.total} steps"), TextColumn("loss {task.fields[loss]}"),
               TextColumn("{task.fields[tps]} tok/s"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
    with Progress(*columns, transient=False, disable=not world.is_main) as progress:
        bar = progress.add_task("still", total=total_steps, completed=step, epoch=start_epoch + 1, loss="-", tps="-")
        for epoch in range(start_epoch, still_cfg.epochs):
            t_epoch = time.perf_counter()
            pairs = epoch_pairs(epoch)
            if world.size > 1:
                world.check_same(json.dumps(pairs).encode(), f"the training pairs of epoch {epoch + 1}", device)
            for batch_idx in make_batches(pairs, still_cfg.batch_size, seed=seed * 1000 + epoch):
                t0 = time.perf_counter()
                lr = lr_at(step, total_steps, still_cfg.lr, still_cfg.warmup_ratio, still_cfg.min_lr_ratio)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                loss = forward_backward(batch_idx, pairs)
                grad_norm = torch.nn.utils.clip_grad_norm_([p for _, p in params], still_cfg.grad_clip).item()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                tokens = sum(len(pairs[i][0]) + len(pairs[i][1]) for i in batch_idx)  # of every process
                tps = tokens / max(1e-9, time.perf_counter() - t0)
                step += 1
                if step % 5 == 0 or step == total_steps:
                    curve.append({"step": step, "epoch": epoch + 1, "loss": round(loss, 5)})
                if world.is_main:
                    writer.writerow([step, epoch + 1, f"{loss:.5f}", f"{lr:.3e}", f"{grad_norm:.4f}", f"{tps:.0f}"])
                progress.update(bar, advance=1, epoch=epoch + 1, loss=f"{loss:.3f}", tps=f"{tps:.0f}")
            spent += time.perf_counter() - t_epoch
            if not world.is_main:
                continue
            metrics.flush()
            if heads:
                held = heads_loss(model, heads, pad)
                curve.append({"step": step, "epoch": epoch + 1, "heads_loss": round(held, 5)})
                log(f"Still: epoch {epoch + 1}, loss on the heads {held:.4f}")
            _save_checkpoint(still_dir, epoch + 1, step, model, optimizer, curve, spent)
    if metrics is not None:
        metrics.close()
    model.set_attn_implementation(default_attention)
    model.eval()
    return StillResult(steps=step, epochs=still_cfg.epochs, train_seconds=round(spent, 2), loss_curve=curve)
