"""The Cuts: hearts (train), heads (held out for the Tasting) and tails (set aside).

Examples are grouped by normalized utterance before splitting, so the same request (up to
case, punctuation and spacing) never lands on both sides: a held-out score must not be a
memory test.

A group's cut depends only on a hash of (seed, its key), never on the other examples: adding
examples to a Mash (a bigger run, a refine round, a re-mash) never moves a head into the
hearts, so a later run is never scored on what an earlier one trained on. The shares are
then met on average rather than to the example (±1-2 points on a few hundred examples).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from distillery.jsonl import write_jsonl
from distillery.mash import normalize_utterance

CUT_NAMES = ("hearts", "heads", "tails")


def split(examples: list[dict], hearts: float, heads: float, tails: float, seed: int,
          key: Callable[[dict], str] | None = None,
          apart: Callable[[dict], bool] | None = None) -> dict[str, list[dict]]:
    """Examples split by the ratios, whole groups at a time (`key`, the task's group key; by
    default the normalized utterance), each group by its own hash. With `apart`, the examples it
    picks (those of tools held out) are never trained on: they form a fourth cut, `unseen`."""
    key = key or (lambda ex: normalize_utterance(ex["utterance"]))
    groups: dict[str, list[dict]] = defaultdict(list)
    cuts: dict[str, list[dict]] = {name: [] for name in CUT_NAMES}
    if apart is not None:
        cuts["unseen"] = [ex for ex in examples if apart(ex)]
        examples = [ex for ex in examples if not apart(ex)]
    for ex in examples:
        groups[key(ex)].append(ex)
    for name, rows in groups.items():
        share = position(seed, name)
        target = "heads" if share < heads else "tails" if share < heads + tails else "hearts"
        if any(ex.get("tail") for ex in rows):
            target = "tails"  # a judge set it aside for review (judges/): never trained on nor tasted
        cuts[target].extend(rows)
    return cuts


def position(seed: int, key: str) -> float:
    """Where a group falls in [0, 1): a hash of (seed, key), the same in every run and Mash size."""
    digest = hashlib.sha256(f"{seed}:cuts:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def write_cuts(examples: list[dict], cuts_cfg, run_dir: Path, seed: int,
               key: Callable[[dict], str] | None = None, apart: Callable[[dict], bool] | None = None) -> dict[str, int]:
    cuts = split(examples, cuts_cfg.hearts, cuts_cfg.heads, cuts_cfg.tails, seed, key, apart)
    out = run_dir / "cuts"
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in cuts.items():
        write_jsonl(out / f"{name}.jsonl", rows)
    return {name: len(rows) for name, rows in cuts.items()}
