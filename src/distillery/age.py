"""`distillery age SPIRIT RECIPE`: a Spirit trained further on a new Mash, without forgetting.

The Recipe describes what the Spirit must now also do: typically its catalog with a tool
added. Its Mash and Cuts are made as for any run (`runs/<name>-v<version>`, resumable), and
the student trains from the Spirit's weights, tokenizer and prompt format (not from scratch)
on the new hearts, which cover the old tools and the new. It is then tasted twice: on the new
heads, and on the heads the old Spirit carries, so forgetting shows as a delta.

The aged Spirit is `<run>/age/<name>.spirit`; its lineage's `parent` is the old Spirit's
sha256 (the Cellar and `cellar lineage` show the chain), and `age/notes.json` holds both
tastings, the old Spirit's proof on its own heads and the deltas.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from distillery import devices, still
from distillery.errors import DistilleryError
from distillery.jsonl import read_jsonl
from distillery.mash import remember, seen_before
from distillery.refine import headline
from distillery.spirit import load_spirit, write_child
from distillery.tasks import TASTING_JUDGED, task_for


def age(spirit_path: Path, recipe, *, runs_root: Path = Path("runs"), epochs: int | None = None,
        console: Console | None = None) -> dict:
    """Train the Spirit further on the Recipe's Mash; returns the notes (also in <run>/age/notes.json)."""
    from distillery.pipeline import Run

    console = console or Console(stderr=True)
    parent = load_spirit(spirit_path)
    kind = (parent.metadata.get("student") or {}).get("kind", "tiny")
    if kind != "tiny":
        raise DistilleryError(f"{spirit_path}: aging trains a tiny student further in this version; this one is "
                              f"{kind}. Fix: age a Spirit with `student.kind: tiny`.")
    task = task_for(recipe)
    if task.kind != parent.task.kind:
        raise DistilleryError(f"{recipe.source or 'recipe'}: a {task.kind} recipe cannot age a {parent.task.kind} "
                              f"Spirit. Fix: `task: {parent.task.kind}`.")
    if recipe.judge is not None and task.kind in TASTING_JUDGED:
        # Its proof is a judge's grade, asked through a run's journal; aging tastes without one.
        raise DistilleryError(f"{recipe.source or 'recipe'}: aging a Spirit whose proof a judge gives is not "
                              "available in this version. Fix: distill a new version of the recipe instead.")
    run = Run(recipe, runs_root=runs_root, console=console)
    run.run(until="cuts")
    hearts, heads = read_jsonl(run.dir / "cuts" / "hearts.jsonl"), read_jsonl(run.dir / "cuts" / "heads.jsonl")
    old_heads = task.parse_heads(parent.metadata.get("heads") or "", f"{spirit_path} (heads metadata)")
    # The old heads measure forgetting only while nobody trains on them: a new heart that is (or
    # nearly is) one of them is left out.
    held: set[str] = set()
    for ex in old_heads:
        remember(held, ex["utterance"])
    kept = [ex for ex in hearts if not seen_before(held, ex["utterance"])]
    if len(kept) < len(hearts):
        console.print(f"Age: {len(hearts) - len(kept)} new hearts are the old Spirit's heads; left out")
    hearts = kept
    model, tok, fmt = parent.model, parent.tokenizer, parent.format
    epochs = epochs or max(1, recipe.still.epochs // 2)
    examples_of = task.epoch_examples(hearts, recipe.seed)
    out = run.dir / "age"
    console.print(f"[bold]Age[/bold]: {spirit_path.name} trains {epochs} more epochs on {len(hearts)} hearts of "
                  f"{recipe.name}")
    result = still.run_still(model, lambda epoch: task.training_pairs(fmt, tok, examples_of(epoch)),
                             recipe.still.model_copy(update={"epochs": epochs}), out / "still", pad=fmt.pad_id,
                             seed=recipe.seed, log=console.print, device=devices.resolve(recipe.still.device))
    model.to("cpu")  # tasted and written from the CPU, wherever it trained
    decoding = task.decoding(hearts)
    predictor = task.predictor(model, tok, fmt, decoding)
    new = task.taste(predictor, heads, samples=recipe.tasting.samples, held_out=recipe.tasting.held_out)
    # The old heads are scored with the new catalog's tools, as the aged Spirit is deployed.
    old = task.taste(predictor, old_heads, samples=recipe.tasting.samples, held_out=None)
    before = parent.metadata["tasting"]
    notes = {"parent": {"path": str(spirit_path), "proof": before["proof"], "metrics": before.get("metrics", {})},
             "hearts": len(hearts),
             "proof_metric": new["proof_metric"], "epochs": epochs, "train_seconds": result.train_seconds,
             "new_heads": {k: new[k] for k in ("proof", "metrics", "n_eval", "breakdown") if k in new},
             "old_heads": {k: old[k] for k in ("proof", "metrics", "n_eval", "breakdown") if k in old},
             "old_heads_delta": round(old["proof"] - before["proof"], 6)}
    path = out / f"{recipe.name}.spirit"
    heads_text = (run.dir / "cuts" / "heads.jsonl").read_text()
    write_child(path, model, parent, tasting=headline(new, parent, result.train_seconds),
                lineage={"mash_sha256": run._hash_file("mash.jsonl"), "recipe_sha256": recipe.sha256(), "aged": True},
                decoding=decoding, context=task.spirit_context(), recipe_yaml=recipe.resolved_yaml(),
                heads=heads_text, dtype=recipe.spirit.dtype)
    notes["spirit"] = str(path)
    (out / "notes.json").write_text(json.dumps(notes, indent=2, ensure_ascii=False))
    console.print(f"[bold]Age[/bold]: new heads {new['proof']:.3f} {new['proof_metric']}; old heads "
                  f"{before['proof']:.3f} -> {old['proof']:.3f} ({notes['old_heads_delta'] * 100:+.1f} points); "
                  f"{path}")
    return notes
