"""Why the student's prompt has no space tokens: how fast a tiny student learns to copy.

A tool call is mostly values copied from the request. This trains the Needle's student shape
(a 4-layer Llama, d_model 256) on a pure copy task — random words, then the same words again
at a varying distance — twice in the same run: once with the words as they are, once with a
space token between every two words, as a tokenizer with isolated spaces writes them. It
prints the copy accuracy (on the words, spaces not counted) at each checkpoint and writes JSON.

    python benchmarks/copying.py [--steps 600] [--json benchmarks/results/copying.json]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from distillery.students.tiny import build_model

VOCAB, SPACE, BOS, SEP, EOS, PAD = 600, 5, 1, 3, 2, 0


def make_batch(rng: random.Random, size: int, spaced: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Input ids, labels (the copy only) and a mask of the label positions that are words."""
    rows = []
    for _ in range(size):
        words = [rng.randrange(10, VOCAB) for _ in range(rng.randint(4, 16))]
        seq = [t for w in words for t in (w, SPACE)][:-1] if spaced else words
        rows.append(([BOS, *seq, SEP], [*seq, EOS]))
    width = max(len(p) + len(c) for p, c in rows)
    ids = torch.full((size, width), PAD)
    labels = torch.full((size, width), -100)
    for i, (prompt, copy) in enumerate(rows):
        ids[i, :len(prompt) + len(copy)] = torch.tensor(prompt + copy)
        labels[i, len(prompt):len(prompt) + len(copy)] = torch.tensor(copy)
    return ids, labels, (labels != -100) & (labels != SPACE)


def train(spaced: bool, steps: int, every: int, seed: int) -> list[dict]:
    torch.manual_seed(seed)
    config = {"vocab_size": VOCAB, "hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 8,
              "num_key_value_heads": 4, "intermediate_size": 768, "max_position_embeddings": 128,
              "bos_token_id": BOS, "eos_token_id": EOS, "pad_token_id": PAD, "tie_word_embeddings": True}
    model = build_model(config, seed=seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    rng, held_out = random.Random(seed), random.Random(seed + 1)
    curve, start = [], time.perf_counter()
    for step in range(1, steps + 1):
        ids, labels, _ = make_batch(rng, 16, spaced)
        loss = model(input_ids=ids, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % every == 0:
            ids, labels, words = make_batch(held_out, 128, spaced)
            with torch.no_grad():
                predicted = model(input_ids=ids).logits[:, :-1].argmax(-1)
            target, mask = labels[:, 1:], words[:, 1:]
            accuracy = (predicted[mask] == target[mask]).float().mean().item()
            curve.append({"step": step, "word_copy_accuracy": round(accuracy, 4),
                          "seconds": round(time.perf_counter() - start, 1)})
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/copying.json"))
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    words = train(False, args.steps, args.every, args.seed)
    spaced = train(True, args.steps, args.every, args.seed)

    table = Table(title="Word copy accuracy of a 4-layer student, by training step")
    for column in ("step", "words only", "words + space tokens", "ratio"):
        table.add_column(column, justify="right")
    for a, b in zip(words, spaced):
        ratio = a["word_copy_accuracy"] / max(b["word_copy_accuracy"], 1e-9)
        table.add_row(str(a["step"]), f"{a['word_copy_accuracy']:.3f}", f"{b['word_copy_accuracy']:.3f}",
                      f"{ratio:.2f}x")
    Console().print(table)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"steps": args.steps, "words_only": words, "with_space_tokens": spaced},
                                    indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
