"""`distillery refine RUN`: the student's failures go back to the teacher, and it trains again.

A round:
1. **Probe.** The teacher writes fresh requests (the run's Mash recipe with another seed);
   any that is, or nearly is, a heart, a head or an earlier round's example is dropped, so
   the heads stay unseen and the probe is new to the student.
2. **Taste** the current Spirit on the probe; its wrong answers are the round's failures.
3. **Around each failure** the teacher writes `per_failure` new examples: the same tools,
   new values, new phrasing (`Task.around`). They go through the Mash's own checks and
   duplicate rejection and are appended to the Mash as the round's slice
   (`refine/round-N/examples.jsonl`); they only ever train, never taste.
4. **Retrain** from the current weights on the hearts and every round's slice.
5. **Keep** the new Spirit (`<name>-rN.spirit`, its lineage's parent the sha256 of the one it
   started from) only if its proof on the unchanged heads did not fall.

`refine/refine.json` holds each round: probe size and score, failures, examples added, the
Mash size, cost, proof before and after, kept or not. A killed refine resumes: finished rounds
are read back, and a round's Still resumes from its last epoch.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from distillery import devices, still
from distillery.errors import DistilleryError
from distillery.jsonl import read_jsonl, write_jsonl
from distillery.mash import Listed, remember, seen_before
from distillery.recipe import recipe_from_dict
from distillery.spirit import load_spirit, write_child
from distillery.tasks import task_for


def load_run(run_dir: Path):
    """The run's recipe (with the catalog its Spirit carries, so no other file is needed) and Spirit."""
    run_dir = Path(run_dir)
    spirits = sorted(p for p in run_dir.glob("*.spirit"))
    recipe_file = run_dir / "recipe.yaml"
    if not recipe_file.is_file() or not spirits:
        raise DistilleryError(f"{run_dir}: not a finished run (it needs recipe.yaml and a .spirit). Fix: give a run "
                              "folder that `distillery distill` completed, e.g. runs/needle-v3.")
    data = yaml.safe_load(recipe_file.read_text(encoding="utf-8"))
    spirit = load_spirit(run_dir / f"{data['name']}.spirit")
    if spirit.tools:
        data["tools"] = [t.to_openai() for t in spirit.tools]
    return recipe_from_dict(data, base_dir=run_dir), spirit


def refine(run_dir: Path, *, rounds: int = 1, probe: int = 500, per_failure: int = 3, epochs: int | None = None,
           console: Console | None = None) -> list[dict]:
    """Run refine rounds on a finished run; returns every round's record (refine/refine.json)."""
    from distillery.pipeline import make_teacher

    console = console or Console(stderr=True)
    run_dir = Path(run_dir)
    recipe, spirit = load_run(run_dir)
    task = task_for(recipe)
    if recipe.student.kind != "tiny":
        raise DistilleryError(f"{run_dir}: refine retrains a tiny student in this version; this run's is "
                              f"{recipe.student.kind}. Fix: refine a run with `student.kind: tiny`.")
    if not hasattr(task, "around"):
        raise DistilleryError(f"{run_dir}: refine is available for tool calling in this version; this run is "
                              f"{task.kind}.")
    teacher = make_teacher(recipe, task=task)
    if not hasattr(teacher, "around"):
        raise DistilleryError(f"{run_dir}: refine asks the teacher for new examples around each failure, which the "
                              f"{recipe.teacher.provider} teacher cannot do in this version (the offline teacher "
                              "can). Fix: refine a run distilled with `teacher: {provider: offline}`.")
    epochs = epochs or max(1, recipe.still.epochs // 4)
    out = run_dir / "refine"
    out.mkdir(exist_ok=True)
    log_path = out / "refine.json"
    done = json.loads(log_path.read_text()) if log_path.is_file() else []
    hearts, heads = read_jsonl(run_dir / "cuts" / "hearts.jsonl"), read_jsonl(run_dir / "cuts" / "heads.jsonl")
    slices = [read_jsonl(out / f"round-{row['round']}" / "examples.jsonl") for row in done]
    seen: set[str] = set()
    for ex in hearts + heads + [ex for part in slices for ex in part]:
        remember(seen, ex["utterance"])
    current = run_dir / next((row["spirit"] for row in reversed(done) if row["kept"]), spirit.path.name)
    for number in range(len(done) + 1, len(done) + rounds + 1):
        parent = load_spirit(current)
        row = _round(number, recipe, task, teacher, parent, hearts, heads, slices, seen, out, probe, per_failure,
                     epochs, console)
        if row["kept"]:
            current = run_dir / row["spirit"]
        done.append(row)
        log_path.write_text(json.dumps(done, indent=2))
    _print(done, console)
    return done


def _round(number, recipe, task, teacher, parent, hearts, heads, slices, seen, out, probe, per_failure, epochs,
           console) -> dict:
    from distillery.pipeline import make_teacher

    here = out / f"round-{number}"
    # 1. Fresh requests: the run's Mash recipe, another seed; nothing the student saw, no head.
    probe_recipe = _with(recipe, seed=recipe.seed + 7919 * number, total=probe * 3)
    probe_task = task_for(probe_recipe)
    probe_task.build_mash(make_teacher(probe_recipe, task=probe_task), here / "probe")
    fresh = [ex for ex in read_jsonl(here / "probe" / "mash.jsonl") if not seen_before(seen, ex["utterance"])][:probe]
    # 2. Where the Spirit is wrong.
    predictor = task.predictor(parent.model, parent.tokenizer, parent.format, parent.decoding)
    tasted = task.taste(predictor, fresh, samples=0, held_out=None)
    failures = [ex for ex, row in zip(fresh, tasted["predictions"]) if row["verdict"] != "exact"]
    # 3. New examples around each failure, through the Mash's checks; never a known request.
    made = task.around(teacher, failures, per_failure, seed=number)
    task_for(_with(recipe, total=max(1, len(made)))).build_mash(Listed(made), here / "around")
    added = []
    for i, ex in enumerate(read_jsonl(here / "around" / "mash.jsonl")):
        if not seen_before(seen, ex["utterance"]):
            remember(seen, ex["utterance"])
            added.append({**ex, "id": f"r{number}-{i:05d}", "round": number})
    write_jsonl(here / "examples.jsonl", added)
    slices.append(added)
    # 4. Retrain from the current weights on the hearts and every round's slice.
    train = hearts + [ex for part in slices for ex in part]
    model, tok, fmt = parent.model, parent.tokenizer, parent.format
    examples_of = task.epoch_examples(train, recipe.seed + number)
    cfg = recipe.still.model_copy(update={"epochs": epochs})
    console.print(f"[bold]Refine[/bold] round {number}: {len(failures)} of {len(fresh)} fresh requests wrong "
                  f"({tasted['proof']:.3f} {tasted['proof_metric']}); {len(added)} examples added around them; "
                  f"retraining {epochs} epochs on {len(train)}")
    result = still.run_still(model, lambda epoch: task.training_pairs(fmt, tok, examples_of(epoch)), cfg,
                             here / "still", pad=fmt.pad_id, seed=recipe.seed + number, log=console.print,
                             device=devices.resolve(cfg.device))
    model.to("cpu")  # tasted and written from the CPU, wherever it trained
    # 5. The unchanged heads decide.
    decoding = task.decoding(train)
    after = task.taste(task.predictor(model, tok, fmt, decoding), heads, samples=recipe.tasting.samples,
                       held_out=recipe.tasting.held_out)
    before = parent.metadata["tasting"]["proof"]
    row = {"round": number, "parent": parent.path.name, "probe": len(fresh), "probe_proof": round(tasted["proof"], 4),
           "failures": len(failures), "added": len(added), "mash_size": len(train), "cost_usd": 0.0,
           "epochs": epochs, "train_seconds": result.train_seconds, "proof_metric": after["proof_metric"],
           "proof_before": before, "proof_after": after["proof"], "delta": round(after["proof"] - before, 6),
           "kept": after["proof"] >= before, "spirit": None}
    if row["kept"]:
        name = f"{recipe.name}-r{number}.spirit"
        write_child(out.parent / name, model, parent, tasting=headline(after, parent, result.train_seconds),
                    lineage={"refine_round": number, "refine_examples": len(added)}, decoding=decoding,
                    context=task.spirit_context(), dtype=recipe.spirit.dtype)
        row["spirit"] = name
    return row


def headline(notes: dict, parent, train_seconds: float) -> dict:
    """The Spirit's `tasting` metadata from a tasting's notes."""
    return {"proof": notes["proof"], "proof_metric": notes["proof_metric"], "metrics": notes["metrics"],
            "n_eval": notes["n_eval"], "latency_ms": notes["latency_ms"],
            "params": parent.metadata["tasting"].get("params"), "train_seconds": train_seconds}


def _with(recipe, *, seed: int | None = None, total: int | None = None):
    """A copy of the recipe with another seed or Mash size (the catalog kept)."""
    mash = recipe.mash.model_copy(update={"total_examples": total}) if total else recipe.mash
    return recipe.model_copy(update={"mash": mash, **({"seed": seed} if seed is not None else {})})


def _print(rows: list[dict], console: Console) -> None:
    table = Table(title="Refine rounds")
    for column in ("round", "failures / probe", "added", "Mash", "proof before", "after", "kept"):
        table.add_column(column)
    for row in rows:
        table.add_row(str(row["round"]), f"{row['failures']} / {row['probe']}", str(row["added"]),
                      str(row["mash_size"]), f"{row['proof_before']:.3f}", f"{row['proof_after']:.3f}",
                      row["spirit"] or "no (the heads fell)")
    console.print(table)
