"""The Cuts: hearts (train), heads (held out for the Tasting) and tails (set aside).

Examples are grouped by normalized utterance before splitting, so the same request (up to
case, punctuation and spacing) never lands on both sides: a held-out score must not be a
memory test.
"""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

from distillery.jsonl import write_jsonl
from distillery.mash import normalize_utterance

CUT_NAMES = ("hearts", "heads", "tails")


def split(examples: list[dict], hearts: float, heads: float, tails: float, seed: int) -> dict[str, list[dict]]:
    """Examples split by the ratios, whole utterance groups at a time, in a seeded order."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for ex in examples:
        groups[normalize_utterance(ex["utterance"])].append(ex)
    keys = sorted(groups)
    random.Random(f"{seed}:cuts").shuffle(keys)
    total = len(examples)
    want_heads, want_tails = round(total * heads), round(total * tails)
    cuts: dict[str, list[dict]] = {name: [] for name in CUT_NAMES}
    for key in keys:
        if len(cuts["heads"]) < want_heads:
            target = "heads"
        elif len(cuts["tails"]) < want_tails:
            target = "tails"
        else:
            target = "hearts"
        cuts[target].extend(groups[key])
    return cuts


def write_cuts(examples: list[dict], cuts_cfg, run_dir: Path, seed: int) -> dict[str, int]:
    cuts = split(examples, cuts_cfg.hearts, cuts_cfg.heads, cuts_cfg.tails, seed)
    out = run_dir / "cuts"
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in cuts.items():
        write_jsonl(out / f"{name}.jsonl", rows)
    return {name: len(rows) for name, rows in cuts.items()}
