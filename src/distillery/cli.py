"""The `distillery` command: parse, call the library, print. Nothing else lives here."""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from functools import wraps
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from distillery.errors import DistilleryError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Distill what a large LLM does on one bounded task into a small model.")
err = Console(stderr=True)

RecipeArg = typer.Argument(..., help="The Recipe YAML file.", show_default=False)
RunsOpt = typer.Option(Path("runs"), "--runs", help="Folder that holds the run directories.")


def friendly(fn):
    """Bad input -> its message and exit 2; an internal failure -> a short message and exit 1."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except DistilleryError as exc:
            # Escaped: a message may hold brackets ("[redacted]", "tools[0]") that are not markup.
            err.print(f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False, markup=True,
                      soft_wrap=True)
            raise typer.Exit(2)
        except KeyboardInterrupt:
            err.print("interrupted; everything finished so far is kept, run the same command again to resume")
            raise typer.Exit(130)
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:  # noqa: BLE001 - the one place internal failures are reported
            if os.environ.get("DISTILLERY_DEBUG"):
                traceback.print_exc()
            err.print(f"[bold red]internal error:[/bold red] {type(exc).__name__}: {exc}\n"
                      "Set DISTILLERY_DEBUG=1 for the traceback; your run directory is kept.", markup=True)
            raise typer.Exit(1)

    return wrapper


def _run(recipe_path: Path, runs: Path, until: str):
    from distillery.recipe import load_recipe

    recipe = load_recipe(recipe_path)  # first: a broken recipe is reported without loading torch
    from distillery.pipeline import Run

    run = Run(recipe, runs_root=runs, console=err)
    run.run(until=until)
    return run


@app.command()
@friendly
def distill(recipe: Path = RecipeArg, runs: Path = RunsOpt):
    """Run every stage: Mash, Cuts, tokenizer, Still, Tasting, Spirit. Re-running skips what is done."""
    run = _run(recipe, runs, "spirit")
    notes = json.loads((run.dir / "tasting" / "notes.json").read_text())
    typer.echo(json.dumps({"spirit": str(run.spirit_path()), "proof": notes["proof"], **notes["metrics"]}, indent=2))


@app.command()
@friendly
def mash(recipe: Path = RecipeArg, runs: Path = RunsOpt):
    """Make the Mash (teacher examples) and stop."""
    run = _run(recipe, runs, "mash")
    typer.echo(str(run.dir / "mash.jsonl"))


@app.command()
@friendly
def estimate(recipe: Path = RecipeArg,
             as_json: bool = typer.Option(False, "--json", help="Print the numbers as JSON.")):
    """Print the Mash's teacher requests, tokens, dollars and time, before anything is sent."""
    from distillery.recipe import load_recipe
    from distillery.teachers import estimate as estimates

    numbers = estimates.estimate(load_recipe(recipe))
    typer.echo(json.dumps(numbers, indent=2) if as_json else estimates.describe(numbers))


@app.command()
@friendly
def cut(recipe: Path = RecipeArg, runs: Path = RunsOpt):
    """Make the Mash and the Cuts (hearts, heads, tails) and stop."""
    run = _run(recipe, runs, "cuts")
    typer.echo(str(run.dir / "cuts"))


@app.command()
@friendly
def still(recipe: Path = RecipeArg, runs: Path = RunsOpt):
    """Run up to the Still (training); a killed Still resumes from its last epoch."""
    run = _run(recipe, runs, "still")
    typer.echo(str(run.dir / "still"))


@app.command()
@friendly
def taste(recipe: Path = RecipeArg, runs: Path = RunsOpt):
    """Run up to the Tasting and print the tasting notes' headline numbers."""
    run = _run(recipe, runs, "tasting")
    notes = json.loads((run.dir / "tasting" / "notes.json").read_text())
    typer.echo(json.dumps({"proof": notes["proof"], **notes["metrics"], "n_eval": notes["n_eval"]}, indent=2))


@app.command()
@friendly
def predict(
    spirit: Path = typer.Argument(..., help="A .spirit file.", show_default=False),
    utterance: str = typer.Argument(None, help="The user's request (or use --input).", show_default=False),
    tools: Path = typer.Option(None, "--tools", help="Tool catalog JSON (default: the Spirit's own catalog)."),
    grammar: bool = typer.Option(True, "--grammar/--no-grammar",
                                 help="Constrain decoding to calls the offered tools accept."),
    input_path: Path = typer.Option(None, "--input", help='JSON Lines of {"id", "utterance" or "messages", "tools"}.'),
    output: Path = typer.Option(None, "--output", help="Where --input's answers go (default: standard output)."),
):
    """Print the calls the Spirit makes for UTTERANCE, as JSON; or answer every line of --input,
    loading the model once. Needs nothing but the Spirit file."""
    from distillery.batch import predict_all, read_requests
    from distillery.jsonl import write_jsonl
    from distillery.predictor import ToolCaller
    from distillery.spirit import load_spirit
    from distillery.tasks.tool_calling.catalog import load_catalog

    if (utterance is None) == (input_path is None) or (output is not None and input_path is None):
        raise DistilleryError("predict takes one request as UTTERANCE, or a file of them as --input "
                              "(with an optional --output). Fix: e.g. `distillery predict my.spirit \"set a timer\"` "
                              "or `distillery predict my.spirit --input requests.jsonl --output answers.jsonl`.")
    requests = read_requests(input_path) if input_path else None
    loaded = load_spirit(spirit)
    catalog = load_catalog(str(tools), Path.cwd()) if tools else loaded.tools
    caller = ToolCaller(loaded.model, loaded.tokenizer,
                        max_new_tokens=loaded.metadata["model_config"]["max_position_embeddings"], grammar=grammar,
                        copied=loaded.decoding.get("copied_params"))
    if requests is not None:
        rows = predict_all(caller, requests, catalog)
        if output is None:
            for row in rows:
                typer.echo(json.dumps(row, ensure_ascii=False))
        else:
            write_jsonl(output, rows)
            err.print(f"{len(rows)} answers written to {output}")
        return
    prediction = caller.predict(utterance, catalog)
    if prediction.calls is None:
        err.print(f"the student's output is not a list of calls: {prediction.text!r}")
        raise typer.Exit(1)
    typer.echo(json.dumps(prediction.calls, ensure_ascii=False))


@app.callback()
def _logging():
    # DISTILLERY_LOG=debug shows every teacher request, retry and wait (never a key).
    level = os.environ.get("DISTILLERY_LOG")
    if level:
        from distillery.teachers.base import RedactSecrets

        if not isinstance(logging.getLevelName(level.upper()), int):
            err.print(f"[bold red]error:[/bold red] DISTILLERY_LOG={level!r} is not a log level. "
                      "Fix: use debug, info, warning or error.")
            raise typer.Exit(2)
        logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        for handler in logging.getLogger().handlers:
            handler.addFilter(RedactSecrets())


def main() -> None:  # pragma: no cover - `python -m distillery`
    app(prog_name="distillery")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
