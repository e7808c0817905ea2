"""A Spirit on fresh offline-teacher examples: a second Mash of its catalog that it never trained on.

    python benchmarks/fresh_examples.py runs/needle-v3 [--seed 7] [--n 500] [--spirits needle.spirit needle-r1.spirit]
        [--json benchmarks/results/fresh_examples.json]

The 100 heads of a run move by about +-0.05 from one change to the next; a few hundred more
examples tell real gains from noise. The run's own recipe makes a Mash with another seed
(three times `--n` examples, in a temporary folder); every example whose normalized request
is also one of the run's hearts is dropped, and the first `--n` that are left are tasted,
decoded as the Spirit says it is deployed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import yaml
from rich.console import Console

from distillery.jsonl import read_jsonl
from distillery.mash import normalize_utterance
from distillery.pipeline import Run
from distillery.tasks.tool_calling.predictor import ToolCaller
from distillery.recipe import recipe_from_dict
from distillery.spirit import load_spirit
from distillery.tasks.tool_calling.tasting import taste

COLUMNS = ("tool_name_accuracy", "arg_key_f1", "exact_call_accuracy", "valid_call_rate", "no_call_accuracy")


def fresh_examples(spirit, run: Path, seed: int, n: int, console: Console) -> list[dict]:
    data = yaml.safe_load(spirit.metadata["recipe"])
    data["tools"] = [t.to_openai() for t in spirit.tools]
    data.update(name="fresh", version=1, seed=seed)
    data["mash"]["total_examples"] = 3 * n
    with tempfile.TemporaryDirectory(prefix="fresh-") as tmp:
        mash = Run(recipe_from_dict(data, base_dir=Path(tmp)), runs_root=Path(tmp), console=console)
        examples = read_jsonl(mash.run(until="mash") / "mash.jsonl")
    # Every example a student of this run trained on: the hearts and any refine round's slice.
    rounds = sorted((run / "refine").glob("round-*/examples.jsonl"))
    trained = {normalize_utterance(ex["utterance"]) for path in [run / "cuts" / "hearts.jsonl", *rounds]
               for ex in read_jsonl(path)}
    return [ex for ex in examples if normalize_utterance(ex["utterance"]) not in trained][:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a finished run directory, e.g. runs/needle-v3")
    parser.add_argument("--seed", type=int, default=7, help="the fresh Mash's seed (not the run's)")
    parser.add_argument("--n", type=int, default=500, help="fresh examples to taste")
    parser.add_argument("--spirits", nargs="+", default=None,
                        help="Spirit files of the run to taste side by side on the same examples (default: the "
                             "run's own, <name>.spirit), e.g. needle.spirit needle-r1.spirit")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/fresh_examples.json"))
    args = parser.parse_args()
    console = Console(stderr=True)
    name = yaml.safe_load((args.run / "recipe.yaml").read_text())["name"]
    names = args.spirits or [f"{name}.spirit"]
    spirits = [load_spirit(args.run / n) for n in names]
    examples = fresh_examples(spirits[0], args.run, args.seed, args.n, console)
    rows = {}
    for file, spirit in zip(names, spirits):
        caller = ToolCaller.from_decoding(spirit.model, spirit.tokenizer, spirit.format, spirit.decoding)
        metrics = taste(caller, examples, spirit.tools)["metrics"]
        rows[file] = {k: round(metrics[k], 4) for k in COLUMNS}
        print(f"{file} on {len(examples)} fresh examples (seed {args.seed}): "
              + "  ".join(f"{k} {v:.3f}" for k, v in rows[file].items()))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    report = {"run": args.run.name, "seed": args.seed, "n": len(examples), **rows[names[0]]}
    if len(names) > 1:
        report["spirits"] = rows
    args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
