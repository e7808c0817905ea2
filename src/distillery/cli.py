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

from distillery.cli_cellar import cellar_app
from distillery.errors import DistilleryError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Distill what a large LLM does on one bounded task into a small model.")
app.add_typer(cellar_app, name="cellar")
err = Console(stderr=True)

RecipeArg = typer.Argument(..., help="The Recipe YAML file.", show_default=False)
RunsOpt = typer.Option(Path("runs"), "--runs", help="Folder that holds the run directories.")
DeviceOpt = typer.Option("cpu", "--device", help="auto, cpu, cuda or mps: where the student decodes (a tiny "
                         "student is fastest on the CPU; auto takes the best present).")


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
    if not run.world.is_main:
        raise typer.Exit(0)  # under a launcher rank 0 alone reports (docs/scaling.md)
    return run


@app.command()
@friendly
def distill(recipe: Path = RecipeArg, runs: Path = RunsOpt):
    """Run every stage: Mash, Cuts, tokenizer, Still, Tasting, Spirit (and the Recipe's bottles).
    Re-running skips what is done."""
    run = _run(recipe, runs, "bottles")
    notes = json.loads((run.dir / "tasting" / "notes.json").read_text())
    from distillery.cli_cellar import register

    register(run.spirit_path())  # reports a Cellar failure, never raises it: the run is kept
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
    from distillery.estimate import describe
    from distillery.recipe import load_recipe
    from distillery.tasks import task_for

    numbers = task_for(load_recipe(recipe)).estimate()
    typer.echo(json.dumps(numbers, indent=2) if as_json else describe(numbers))


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
def refine(
    run: Path = typer.Argument(..., show_default=False, help="A finished run folder, e.g. runs/needle-v3."),
    rounds: int = typer.Option(1, "--rounds", min=1, help="Rounds to add to those already done."),
    probe: int = typer.Option(500, "--probe", min=10, help="Fresh teacher requests the Spirit is tasted on a round."),
    per_failure: int = typer.Option(3, "--per-failure", min=1, help="New examples asked for around each failure."),
    epochs: int = typer.Option(None, "--epochs", min=1, help="Still epochs a round (default: a quarter of the "
                               "recipe's)."),
):
    """Taste the Spirit on fresh teacher requests, have the teacher write new examples around its
    failures, retrain from its weights, and keep the new Spirit if the heads' proof does not fall."""
    from distillery.refine import refine as run_refine

    run_refine(run, rounds=rounds, probe=probe, per_failure=per_failure, epochs=epochs, console=err)
    typer.echo(str(run / "refine" / "refine.json"))


@app.command()
@friendly
def age(
    spirit: Path = typer.Argument(..., show_default=False, help="The .spirit file to train further (a tiny student)."),
    recipe: Path = RecipeArg,
    runs: Path = RunsOpt,
    epochs: int = typer.Option(None, "--epochs", min=1, help="Still epochs (default: half the recipe's)."),
):
    """Train a Spirit further on a new Recipe's Mash (a tool added, new cases), from its weights; taste
    it on the new heads and on its old ones. The aged Spirit names the old one as its parent."""
    from distillery.age import age as run_age
    from distillery.recipe import load_recipe

    notes = run_age(spirit, load_recipe(recipe), runs_root=runs, epochs=epochs, console=err)
    typer.echo(json.dumps({k: notes[k] for k in ("spirit", "proof_metric", "old_heads_delta")}
                          | {"new_heads_proof": notes["new_heads"]["proof"],
                             "old_heads_proof": notes["old_heads"]["proof"],
                             "parent_proof": notes["parent"]["proof"]}, indent=2))


ArtifactArg = typer.Argument(..., show_default=False,
                             help="A .spirit, .onnx, .gguf or .pt file, or an hf bottle folder.")
RuntimeOpt = typer.Option(None, "--runtime", help="torch, onnx or gguf: where a .spirit decodes (default: the "
                          "fastest installed one that answers its heads as torch does, measured once); a bottle "
                          "runs in its own.")


def _open_in(artifact: Path, runtime: str | None, device: str = "cpu"):
    """The artifact opened in its runtime, and the runtime (runtimes.py); a Spirit bound for a GPU
    decodes in torch."""
    from distillery.runtimes import check_runtime, open_in

    check_runtime(runtime)
    if runtime is None and device != "cpu" and artifact.suffix.lower() == ".spirit":
        from distillery.devices import resolve

        runtime = "torch" if resolve(device, where="--device").type != "cpu" else None
    return open_in(artifact, runtime, log=lambda m: err.print(m, markup=False, highlight=False))


@app.command()
@friendly
def taste(
    target: Path = typer.Argument(..., show_default=False, help="A Recipe YAML (runs its stages up to the "
                                  "Tasting), or an artifact: a .spirit, .onnx, .gguf or .pt file, or an hf folder."),
    runs: Path = RunsOpt,
    on: Path = typer.Option(None, "--on", help="Heads JSON Lines to taste an artifact on (default: the heads "
                            "the artifact carries)."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole tasting notes as JSON."),
    runtime: str = RuntimeOpt,
):
    """Print the tasting notes' headline numbers of a Recipe's student or of any artifact; every
    artifact of one Spirit is tasted on the same heads, the ones it carries."""
    if target.suffix.lower() in (".yaml", ".yml"):
        if on is not None or runtime is not None:
            flag = "--on" if on is not None else "--runtime"
            raise DistilleryError(f"{flag} is for artifacts: a Recipe is tasted on its run's heads, in torch. Fix: "
                                  f"`distillery taste {target}`, or `distillery taste SPIRIT {flag} ...`.")
        run = _run(target, runs, "tasting")
        notes = json.loads((run.dir / "tasting" / "notes.json").read_text())
    else:
        from distillery.bottling import no_heads_error, resolve_heads, taste_bottle

        bottle, used = _open_in(target, runtime)
        found = resolve_heads(bottle.metadata, on, str(target))
        if found is None:
            raise no_heads_error(str(target))
        notes = {"artifact": str(target), "format": bottle.format, "runtime": used, "heads": found[1],
                 **taste_bottle(bottle, found[0])}
    headline = {"proof": notes["proof"], **notes["metrics"], "n_eval": notes["n_eval"]}
    typer.echo(json.dumps(notes if as_json else headline, indent=2, ensure_ascii=False))


@app.command("bottle")
@friendly
def bottle_command(
    spirit: Path = typer.Argument(..., help="The .spirit file.", show_default=False),
    fmt: str = typer.Option(..., "--format", help="hf, onnx, gguf, pt or web.", show_default=False),
    out: Path = typer.Option(..., "--out", help="The folder the bottle is written in.", show_default=False),
    quantize: str = typer.Option(None, "--quantize", help="f16 (hf, pt, gguf), q8_0 or q4_0 (gguf), int8 "
                                 "(onnx, web); left out: the Spirit's f32 weights."),
    on: Path = typer.Option(None, "--on", help="Heads JSON Lines to taste the bottle on (default: the Spirit's)."),
):
    """Export the Spirit for another runtime, taste the bottle next to the Spirit on the same heads,
    and write those tasting notes into the bottle."""
    from distillery.bottling import bottle, notes_path

    path, notes = bottle(spirit, fmt, out, quantize, on=on, log=lambda m: err.print(m, markup=False, highlight=False))
    if notes is None:
        if fmt != "web":
            err.print(f"not tasted: {spirit} carries no heads. Fix: add --on runs/<name>-v<version>/cuts/heads.jsonl.",
                      markup=False, highlight=False)
        typer.echo(json.dumps({"bottle": str(path)}, indent=2))
        return
    proof = notes["proof_metric"]  # exact_call_accuracy for tool calling
    typer.echo(json.dumps({
        "bottle": str(path), "tasting_notes": str(notes_path(path)), "format": fmt, "quantize": quantize,
        "size_bytes": notes["size_bytes"], "n_eval": notes["n_eval"],
        proof: notes["metrics"][proof], f"spirit_{proof}": notes["spirit"]["metrics"][proof],
        "difference": notes[f"{proof}_difference"], "same_calls_as_spirit": notes["same_calls_as_spirit"],
    }, indent=2))


@app.command()
@friendly
def predict(
    artifact: Path = ArtifactArg,
    utterance: str = typer.Argument(None, help="The user's request (or use --input).", show_default=False),
    tools: Path = typer.Option(None, "--tools", help="Tool catalog JSON (default: the Spirit's own catalog)."),
    runtime: str = RuntimeOpt,
    grammar: bool = typer.Option(True, "--grammar/--no-grammar",
                                 help="Constrain decoding to calls the offered tools accept."),
    input_path: Path = typer.Option(None, "--input", help='JSON Lines of {"id", "utterance" or "messages", "tools"}; for a '
                                    'classification or spans Spirit {"id", "text"}.'),
    output: Path = typer.Option(None, "--output", help="Where --input's answers go (default: standard output)."),
    device: str = DeviceOpt,
):
    """Print the calls the Spirit (or any bottle of it) makes for UTTERANCE, as JSON; or answer every
    line of --input, loading the model once. Needs nothing but the artifact."""
    from distillery.bottling import caller_for, on_device
    from distillery.jsonl import write_jsonl
    from distillery.tasks import task_of

    if (utterance is None) == (input_path is None) or (output is not None and input_path is None):
        raise DistilleryError("predict takes one request as UTTERANCE, or a file of them as --input "
                              "(with an optional --output). Fix: e.g. `distillery predict my.spirit \"set a timer\"` "
                              "or `distillery predict my.spirit --input requests.jsonl --output answers.jsonl`.")
    loaded = on_device(_open_in(artifact, runtime, device)[0], device)
    task = task_of(loaded.metadata, str(artifact))
    context = task.request_context(tools)  # the offered tools: --tools, or the Spirit's own
    caller = caller_for(loaded, grammar=grammar)
    if input_path is not None:
        rows = task.predict_rows(caller, input_path, context)
        if output is None:
            for row in rows:
                typer.echo(json.dumps(row, ensure_ascii=False))
        else:
            write_jsonl(output, rows)
            err.print(f"{len(rows)} answers written to {output}")
        return
    prediction = task.ask(caller, utterance, context)
    answer = task.answer_json(prediction)
    if answer is None:
        err.print(f"the student's output is not an answer: {prediction.text!r}")
        raise typer.Exit(1)
    typer.echo(json.dumps(answer, ensure_ascii=False))


@app.command("run")
@friendly
def run_agent_command(
    artifact: Path = ArtifactArg,
    request: str = typer.Argument(..., help="The user's request.", show_default=False),
    tools: Path = typer.Option(..., "--tools", help="The tools, run for real: a Python module of functions "
                               "(docs/agents.md).", show_default=False),
    max_steps: int = typer.Option(None, "--max-steps", min=1, help="Most assistant turns (default: the "
                                  "recipe's agent.max_steps)."),
):
    """Run a Spirit distilled from conversations as an agent on REQUEST: it calls the tools, reads
    their results and goes on until it answers. Prints the conversation as JSON; each step goes
    to standard error as it happens."""
    from distillery.bottling import caller_for, open_artifact
    from distillery.tasks import task_of

    loaded = open_artifact(artifact)
    task = task_of(loaded.metadata, str(artifact))
    if not hasattr(task, "run_agent"):
        raise DistilleryError(f"{artifact}: a {task.kind} Spirit calls no tools. Fix: run a "
                              "tool-calling Spirit distilled from conversations.")

    def show(message: dict) -> None:
        said = message.get("content") if "calls" not in message else json.dumps(message["calls"], ensure_ascii=False)
        err.print(f"{message['role']}{' ' + message['name'] if 'name' in message else ''}: {said}",
                  markup=False, highlight=False)

    result = task.run_agent(caller_for(loaded), tools, request, max_steps=max_steps, metadata=loaded.metadata,
                            on_step=show)
    typer.echo(json.dumps(result, indent=2, ensure_ascii=False))


@app.command()
@friendly
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; not loopback needs --api-key."),
    port: int = typer.Option(8000, "--port", min=0, max=65535),
    spirit: Path = typer.Option(None, "--spirit", help="Serve this one .spirit file instead of the Cellar."),
    api_key: str = typer.Option(None, "--api-key", envvar="DISTILLERY_API_KEY", show_envvar=True,
                                help="Require `Authorization: Bearer KEY` on every route but /health."),
    threads: int = typer.Option(1, "--threads", min=1, help="Threads for decoding, in any runtime (1 is fastest "
                                "for tiny students; see docs/serving.md)."),
    max_body: int = typer.Option(1 << 20, "--max-body", min=1024, help="Largest request body in bytes (413 above)."),
    timeout: float = typer.Option(30.0, "--timeout", min=0.1, help="Seconds per request, queueing included "
                                  "(504 after)."),
    device: str = DeviceOpt,
    runtime: str = typer.Option(None, "--runtime", help="torch, onnx or gguf for every Spirit (default: each "
                                "Spirit's fastest installed runtime that answers its heads as torch does)."),
):
    """Serve the Cellar's Spirits and aliases (or one --spirit) as an OpenAI-compatible
    chat-completions API that answers with tool calls."""
    from distillery.runtimes import check_runtime
    from distillery.serve import run

    check_runtime(runtime)
    run(host=host, port=port, spirit=spirit, api_key=api_key, threads=threads, max_body=max_body, timeout_s=timeout,
        device=device, runtime=runtime)


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
