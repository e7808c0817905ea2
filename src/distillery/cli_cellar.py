"""`distillery cellar ...`: list, show, compare, add and remove Spirits; point aliases at them."""

from __future__ import annotations

import json
import sys
from functools import wraps
from pathlib import Path

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from distillery.errors import DistilleryError

cellar_app = typer.Typer(no_args_is_help=False, invoke_without_command=True,
                         help="The Cellar of Spirits (DISTILLERY_CELLAR, default ~/.distillery/cellar) and its aliases.")
alias_app = typer.Typer(no_args_is_help=False, invoke_without_command=True,
                        help="Aliases (e.g. prod) that serve whichever Spirit they point at; gated by proof or any metric.")
cellar_app.add_typer(alias_app, name="alias")
# Piped output is not cut to 80 columns: a table row stays one line for grep and friends.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)

NameArg = typer.Argument(..., help="A Spirit name in the Cellar (or an alias).", show_default=False)
JsonOpt = typer.Option(False, "--json", help="Print JSON instead of a table.")


def friendly(fn):
    """cli.friendly, looked up when the command runs: cli.py imports this module."""

    @wraps(fn)
    def run(*args, **kwargs):
        from distillery import cli

        return cli.friendly(fn)(*args, **kwargs)

    return run


def _cellar():
    from distillery.cellar import Cellar

    return Cellar()


def _mb(size: int | None) -> str:
    return "?" if size is None else f"{size / 1e6:.1f}MB"


def _params(params: int | None) -> str:
    return "?" if params is None else f"{params / 1e6:.2f}M"


def _proof(proof: float | None) -> str:
    return "?" if proof is None else f"{proof * 100:.0f}°"


def _parent(parent: str | None, entries: dict) -> str:
    if not parent:
        return "-"
    named = [n for n, e in entries.items() if e["sha256"] == parent]
    return named[0] if named else parent[:12]


@cellar_app.callback()
@friendly
def cellar(ctx: typer.Context, as_json: bool = JsonOpt):
    """List the Spirits: name, version, proof, params, size, date, teacher, parent, aliases."""
    if ctx.invoked_subcommand is not None:
        return
    c = _cellar()
    entries, aliases = c.entries(), c.aliases()
    if as_json:
        typer.echo(json.dumps({"root": str(c.root), "spirits": entries, "aliases": aliases}, indent=2))
        return
    if not entries:
        err.print(f"the Cellar ({c.root}) is empty: `distillery distill` registers each Spirit it makes, "
                  "`distillery cellar add FILE` adds one.")
        return
    table = Table(title=f"Cellar {c.root}", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("name", "version", "proof", "params", "size", "date", "teacher", "parent", "aliases"):
        table.add_column(column, justify="right" if column in ("proof", "params", "size") else "left",
                         no_wrap=column in ("name", "date"))
    for name, e in sorted(entries.items()):
        pointing = ", ".join(sorted(a for a, rec in aliases.items() if rec["target"] == name)) or "-"
        params = _params(e.get("params"))
        table.add_row(name, str(e.get("version", "?")), _proof(e.get("proof")), params, _mb(e.get("size")),
                      e["added"][:10], str(e.get("teacher") or "-"),
                      _parent(e.get("parent"), entries), pointing)
    out.print(table)


@cellar_app.command()
@friendly
def show(name: str = NameArg, as_json: bool = JsonOpt):
    """Print a Spirit's tasting notes."""
    from distillery.report import degrees

    c = _cellar()
    entry, notes = c.resolve(name), c.notes(name)
    if as_json:
        typer.echo(json.dumps(notes, indent=2, ensure_ascii=False))
        return
    out.print(f"[bold]{entry['name']}[/bold]  proof {degrees(notes['proof'])}  ({notes.get('n_eval', '?')} held-out "
              f"cases, {_params(entry.get('params'))} params, sha256 {entry['sha256'][:12]}...)")
    table = Table(show_header=False, box=None)
    for key, value in (notes.get("metrics") or {}).items():
        if isinstance(value, (int, float)):
            table.add_row(key, f"{value:.3f}")
    latency = notes.get("latency_ms")
    if latency:
        table.add_row("latency p50 / p95", f"{latency['p50']:.1f} / {latency['p95']:.1f} ms")
    out.print(table)
    for title in ("strengths", "weaknesses"):
        if notes.get(title):
            out.print(f"[bold]{title}[/bold]")
            for line in notes[title]:
                out.print(f"  - {line}", highlight=False)
    if "strengths" not in notes:
        out.print("[dim](only the headline: the full notes were not beside the Spirit when it was added)[/dim]")


@cellar_app.command()
@friendly
def diff(a: str = typer.Argument(..., help="The first Spirit (name or alias).", show_default=False),
         b: str = typer.Argument(..., help="The second Spirit (name or alias).", show_default=False),
         as_json: bool = JsonOpt):
    """Compare two Spirits' tasting numbers: A, B and B - A."""
    rows = _cellar().diff(a, b)
    if as_json:
        typer.echo(json.dumps([{"metric": k, "a": va, "b": vb, "delta": d} for k, va, vb, d in rows], indent=2))
        return
    table = Table(title=f"{a} vs {b}")
    for column in ("metric", a, b, "B - A"):
        table.add_column(column, justify="left" if column == "metric" else "right")

    def cell(v):
        return "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    for key, va, vb, delta in rows:
        sign = "" if delta is None or delta <= 0 else "+"
        table.add_row(key, cell(va), cell(vb), sign + cell(delta))
    out.print(table)
    cellar = _cellar()
    for label in (a, b):  # where each came from: refined or aged Spirits name their parent
        chain = cellar.lineage(label)
        if len(chain) > 1:
            out.print(f"lineage of {label}: " + " <- ".join(chain), highlight=False)


@cellar_app.command()
@friendly
def add(file: Path = typer.Argument(..., help="A .spirit file.", show_default=False),
        name: str = typer.Option(None, "--name", help="The name in the Cellar (default: <recipe name>-v<version>)."),
        replace: bool = typer.Option(False, "--replace", help="Put this file in place of another with the same name.")):
    """Add a Spirit file to the Cellar (copied, with its sha256)."""
    entry = _cellar().add(file, name, replace=replace)
    typer.echo(f"{entry['name']}  proof {_proof(entry.get('proof'))}  sha256 {entry['sha256'][:12]}...")


@cellar_app.command("rm")
@friendly
def remove(name: str = typer.Argument(..., help="A Spirit name in the Cellar.", show_default=False)):
    """Remove a Spirit from the Cellar (refused while an alias points at it)."""
    entry = _cellar().remove(name)
    typer.echo(f"removed {name} (sha256 {entry['sha256'][:12]}...)")


@alias_app.callback()
@friendly
def aliases(ctx: typer.Context, as_json: bool = JsonOpt):
    """List the aliases: target, gate, previous targets."""
    if ctx.invoked_subcommand is not None:
        return
    records = _cellar().aliases()
    if as_json:
        typer.echo(json.dumps(records, indent=2))
        return
    table = Table()
    for column in ("alias", "target", "gates", "previous", "updated"):
        table.add_column(column)
    for alias, rec in sorted(records.items()):
        gates = rec.get("gates") or ({"proof": rec["min_proof"]} if rec.get("min_proof") is not None else {})
        table.add_row(alias, rec["target"], ", ".join(f"{m} >= {v:g}" for m, v in gates.items()) or "-",
                      " < ".join(reversed(rec["history"])) or "-", rec["updated"][:16].replace("T", " "))
    out.print(table)


@alias_app.command("set")
@friendly
def alias_set(alias: str = typer.Argument(..., help="The alias, e.g. prod.", show_default=False),
              name: str = typer.Argument(..., help="The Spirit it should point at.", show_default=False),
              min_proof: float = typer.Option(None, "--min-proof",
                                              help="The gate on the proof: refuse a Spirit whose proof is lower "
                                                   "(0-1). Kept on the alias for later promotions."),
              minimum: list[str] = typer.Option(None, "--min", help=(
                  "A gate on any metric of the tasting notes, METRIC=VALUE (e.g. exact_call_accuracy=0.9); "
                  "repeat for several. Kept on the alias for later promotions."))):
    """Point ALIAS at Spirit NAME, if NAME's tasting passes the alias's gates."""
    rec = _cellar().set_alias(alias, name, min_proof, _gates(minimum or []))
    shown = ", ".join(f"{m} >= {v:g}" for m, v in (rec.get("gates") or {}).items())
    typer.echo(f"{alias} -> {rec['target']}" + (f" (gates: {shown})" if shown else ""))


def _gates(specs: list[str]) -> dict[str, float]:
    gates = {}
    for spec in specs:
        metric, _, value = spec.partition("=")
        try:
            gates[metric.strip()] = float(value)
        except ValueError:
            raise DistilleryError(f"--min {spec!r} is not METRIC=VALUE. Fix: e.g. `--min exact_call_accuracy=0.9`.") \
                from None
        if not metric.strip():
            raise DistilleryError(f"--min {spec!r} names no metric. Fix: e.g. `--min exact_call_accuracy=0.9`.")
    return gates


@alias_app.command("rollback")
@friendly
def alias_rollback(alias: str = typer.Argument(..., help="The alias.", show_default=False)):
    """Point ALIAS back at its previous target."""
    rec = _cellar().rollback(alias)
    typer.echo(f"{alias} -> {rec['target']}")


@alias_app.command("rm")
@friendly
def alias_remove(alias: str = typer.Argument(..., help="The alias.", show_default=False)):
    """Remove an alias (its Spirits stay)."""
    rec = _cellar().remove_alias(alias)
    typer.echo(f"removed alias {alias} (it pointed at {rec['target']})")


def register(spirit_path: Path) -> None:
    """Add a freshly distilled Spirit to the Cellar; a failure is reported, never raised (the run is kept)."""
    try:
        c = _cellar()
        entry = c.add(spirit_path, replace=True)
        err.print(f"[bold]Cellar[/bold]: {spirit_path} registered as [bold]{entry['name']}[/bold] in {c.root}")
    except (DistilleryError, OSError) as exc:
        err.print(f"[yellow]Cellar: not registered ({escape(str(exc))}); the Spirit is kept at "
                  f"{escape(str(spirit_path))}[/yellow]", highlight=False)
