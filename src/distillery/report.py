"""The Tasting Notes for people: notes.md, notes.html and loss.png from notes.json.

Five parts, as the glossary promises: the headline proof, strengths, weaknesses, the
loss curve and sample predictions, plus the metrics and per-tool tables behind them.
The HTML page is one self-contained file (inline CSS, the plot embedded, no JS), so it
can be mailed or attached to a Spirit's page as is.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

# Figure (not pyplot) draws with Agg and touches no global backend state.
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter


def degrees(proof: float) -> str:
    """The proof as spirits-people say it: 0.78 -> "78°"."""
    return f"{proof * 100:.0f}°"


def format_calls(calls: list[dict] | None) -> str:
    """Calls written compactly: `set_timer(minutes=10); send(to="bob")`.

    An empty list is "(no call)" and None (unparseable output) is "(invalid)".
    """
    if calls is None:
        return "(invalid)"
    if not calls:
        return "(no call)"
    return "; ".join(_format_call(call) for call in calls)


def write_report(notes: dict, out_dir: Path) -> None:
    """Write notes.md, notes.html and loss.png into `out_dir` from a notes.json-shaped dict."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _plot_loss(notes, out_dir / "loss.png")
    (out_dir / "notes.md").write_text(_markdown(notes), encoding="utf-8")
    png = (out_dir / "loss.png").read_bytes()
    # The task's own pictures (a confusion matrix...) were written beside the notes by the Tasting.
    pictures = {name: (out_dir / name).read_bytes() for name in notes.get("pictures", [])
                if (out_dir / name).is_file()}
    (out_dir / "notes.html").write_text(_html(notes, png, pictures), encoding="utf-8")


# ---------------------------------------------------------------- shared pieces


def _format_call(call: dict) -> str:
    args = call.get("arguments")
    if not isinstance(args, dict):
        args = {}
    inner = ", ".join(f"{key}={_format_value(value)}" for key, value in args.items())
    return f"{call.get('name', '?')}({inner})"


def _format_value(value: object) -> str:
    # JSON spelling (strings quoted, numbers bare, true/null) reads the same as the calls do.
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _format_metric(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _params(n: int) -> str:
    """A parameter count the way model cards say it: 4_100_000 -> "4.1M"."""
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= scale:
            value = n / scale
            return f"{value:.0f}{suffix}" if value >= 100 else f"{value:.1f}{suffix}"
    return str(n)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def _headline_facts(notes: dict) -> list[str]:
    """The short facts under the title, shared by both renderings (plain text)."""
    facts = [f"task {notes.get('task', '?')}", f"{notes.get('n_eval', '?')} held-out cases"]
    if notes.get("params") is not None:
        facts.append(f"{_params(notes['params'])} params")
    latency = notes.get("latency_ms")
    if latency:
        facts.append(f"latency p50 {latency['p50']:.1f} ms, p95 {latency['p95']:.1f} ms")
    if notes.get("train_seconds") is not None:
        facts.append(f"trained in {_duration(notes['train_seconds'])}")
    if "grammar" in notes:
        facts.append("grammar-constrained decoding " + ("on" if notes["grammar"] else "off"))
    return facts


def _metric_rows(notes: dict) -> list[tuple[str, str]]:
    # Only scalars: a per-example list (verdicts) has no place in a metrics table.
    return [
        (name, _format_metric(value))
        for name, value in (notes.get("metrics") or {}).items()
        if value is None or isinstance(value, (int, float, str))
    ]


def _tool_rows(notes: dict) -> list[tuple[str, str, str, str]]:
    per_tool = (notes.get("breakdown") or {}).get("per_tool", {})
    return [
        (
            tool,
            str(row["n"]),
            f"{row['tool_name_accuracy']:.0%}",
            f"{row['exact_call_accuracy']:.0%}",
        )
        for tool, row in per_tool.items()
    ]


def _arg_type_rows(notes: dict) -> list[tuple[str, str, str]]:
    per_type = (notes.get("breakdown") or {}).get("per_arg_type", {})
    return [(t, str(row["n"]), f"{row['value_accuracy']:.0%}") for t, row in per_type.items()]


def _sample_rows(notes: dict) -> list[tuple[str, str, str, str]]:
    return [(s["input"], _answer(s["gold"]), _answer(s["predicted"]), s["verdict"]) for s in notes.get("samples", [])]


def _answer(answer: object) -> str:
    """Calls as calls; any other task's answer (a label) as it is."""
    return format_calls(answer) if answer is None or isinstance(answer, list) else str(answer)


def _task_tables(notes: dict) -> list[tuple[str, list[str], list]]:
    """(title, header, rows) of the task's own tables (per label...)."""
    return [(t["title"], t["header"], t["rows"]) for t in notes.get("tables", [])]


def _verdict_rows(verdict: dict) -> list[list[str]]:
    per = verdict["per_1000"]
    seconds = lambda v: "—" if v is None else f"{v:,.1f} s"  # noqa: E731
    return [["accuracy", f"{verdict['teacher_accuracy']:.1%}", f"{verdict['student_accuracy']:.1%}"],
            ["drop", "", f"{verdict['drop'] * 100:.1f} points"],
            ["time per 1,000 requests", seconds(per["teacher_seconds"]), seconds(per["student_seconds"])],
            ["verdict", "", verdict["verdict"]],
            ["student errors", "", f"{verdict['errors']['inherited']} inherited, "
                                   f"{verdict['errors']['compression']} compression"]]


def _comparison_table(comparison: dict) -> tuple[list[str], list[list[str]]]:
    """Header and rows for `comparison`, whatever its shape: flat, or one dict per contender."""
    if all(isinstance(v, dict) for v in comparison.values()):
        columns: list[str] = []
        for row in comparison.values():
            columns += [key for key in row if key not in columns]
        rows = [
            [name] + [_format_metric(row.get(c)) for c in columns]
            for name, row in comparison.items()
        ]
        return [""] + columns, rows
    return ["", "value"], [[name, _format_metric(value)] for name, value in comparison.items()]


# ---------------------------------------------------------------- markdown


def _markdown(notes: dict) -> str:
    title = f"{notes['name']} v{notes['version']}"
    lines = [
        f"# {title} — {degrees(notes['proof'])} proof",
        "",
        " · ".join(_headline_facts(notes)),
        "",
        "## Metrics",
        "",
        *_md_table(["metric", "value"], _metric_rows(notes)),
        "",
        "## Strengths",
        "",
        *_md_list(notes.get("strengths", [])),
        "",
        "## Weaknesses",
        "",
        *_md_list(notes.get("weaknesses", [])),
    ]
    if notes.get("verdict_markdown"):
        lines += ["", "## Teacher vs student", "", notes["verdict_markdown"].rstrip()]
    for title, header, rows in _task_tables(notes):
        lines += ["", f"## {title}", "", *_md_table(header, rows)]
    for name in notes.get("pictures", []):
        lines += ["", f"![{name}]({name})"]
    if _tool_rows(notes):
        lines += ["", "## Per tool", ""]
        lines += _md_table(["tool", "n", "tool name", "exact"], _tool_rows(notes))
    if _arg_type_rows(notes):
        lines += ["", "## Per argument type", ""]
        lines += _md_table(["type", "n", "value right"], _arg_type_rows(notes))
    lines += ["", "## Samples", ""]
    lines += _md_table(["utterance", "gold", "predicted", "verdict"], _sample_rows(notes))
    if notes.get("comparison"):
        header, rows = _comparison_table(notes["comparison"])
        lines += ["", "## Comparison", "", *_md_table(header, rows)]
    lines += ["", "## Loss curve", "", "![loss](loss.png)", ""]
    return "\n".join(lines)


def _md_table(header: list[str], rows: list) -> list[str]:
    if not rows:
        return ["(none)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_cell(cell) for cell in row) + " |" for row in rows]
    return lines


def _md_cell(text: str) -> str:
    # A pipe or newline in an utterance would break the table row.
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_list(items: list[str]) -> list[str]:
    return [f"- {item}" for item in items] or ["(none)"]


# ---------------------------------------------------------------- html

_CSS = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       color: #2b2118; background: #fdfaf5; }
h1 { margin-bottom: .2rem; } .proof { color: #a4550f; font-size: 2.6rem; }
.facts { color: #6b5b4b; margin-top: 0; }
h2 { border-bottom: 1px solid #e3d6c4; padding-bottom: .2rem; margin-top: 2rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; }
th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #eee3d4;
         vertical-align: top; }
th { background: #f4ebdd; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font: 13px ui-monospace, monospace; }
.cols { display: flex; gap: 2rem; } .cols > div { flex: 1; }
.verdict { white-space: nowrap; font-weight: 600; }
.ok { color: #23703a; } .near { color: #a06a00; } .bad { color: #b3261e; }
img { max-width: 100%; }
"""


def _html(notes: dict, loss_png: bytes, pictures: dict[str, bytes] | None = None) -> str:
    e = html.escape
    title = f"{notes['name']} v{notes['version']}"
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)} — Tasting Notes</title>",
        f"<style>{_CSS}</style></head><body>",
        f'<h1>{e(title)} <span class="proof">{e(degrees(notes["proof"]))}</span></h1>',
        f'<p class="facts">{e(" · ".join(_headline_facts(notes)))}</p>',
        "<h2>Metrics</h2>",
        _html_table(["metric", "value"], _metric_rows(notes), numeric=(1,)),
        '<div class="cols"><div><h2>Strengths</h2>',
        _html_list(notes.get("strengths", [])),
        "</div><div><h2>Weaknesses</h2>",
        _html_list(notes.get("weaknesses", [])),
        "</div></div>",
    ]
    if notes.get("verdict"):
        parts += ["<h2>Teacher vs student</h2>",
                  _html_table(["", "teacher", "student"], _verdict_rows(notes["verdict"]), (1, 2))]
    for title, header, rows in _task_tables(notes):
        parts += [f"<h2>{e(title)}</h2>", _html_table(header, rows, tuple(range(1, len(header))))]
    for name, png in (pictures or {}).items():
        data = base64.b64encode(png).decode("ascii")
        parts += [f'<h2>{e(name.removesuffix(".png").replace("_", " ").capitalize())}</h2>',
                  f'<img alt="{e(name)}" src="data:image/png;base64,{data}">']
    if _tool_rows(notes):
        header = ["tool", "n", "tool name", "exact"]
        parts += ["<h2>Per tool</h2>", _html_table(header, _tool_rows(notes), (1, 2, 3))]
    if _arg_type_rows(notes):
        header = ["type", "n", "value right"]
        parts += ["<h2>Per argument type</h2>", _html_table(header, _arg_type_rows(notes), (1, 2))]
    parts += ["<h2>Samples</h2>", _html_samples(_sample_rows(notes))]
    if notes.get("comparison"):
        header, rows = _comparison_table(notes["comparison"])
        parts += ["<h2>Comparison</h2>", _html_table(header, rows, tuple(range(1, len(header))))]
    image = base64.b64encode(loss_png).decode("ascii")
    parts += [
        "<h2>Loss curve</h2>",
        f'<img alt="training loss" src="data:image/png;base64,{image}">',
    ]
    parts += ["</body></html>", ""]
    return "\n".join(parts)


def _html_table(header: list[str], rows: list, numeric: tuple[int, ...] = ()) -> str:
    """A table; cells in the `numeric` columns are right-aligned."""
    if not rows:
        return "<p>(none)</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(_html_cell(cell, i in numeric) for i, cell in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html_cell(value: object, numeric: bool) -> str:
    css = ' class="num"' if numeric else ""
    return f"<td{css}>{html.escape(str(value))}</td>"


def _html_samples(rows: list[tuple[str, str, str, str]]) -> str:
    if not rows:
        return "<p>(none)</p>"
    e = html.escape
    body = "".join(
        f"<tr><td>{e(text)}</td><td><code>{e(gold)}</code></td><td><code>{e(pred)}</code></td>"
        f'<td class="verdict {_verdict_class(verdict)}">{e(verdict)}</td></tr>'
        for text, gold, pred, verdict in rows
    )
    head = "<tr><th>utterance</th><th>gold</th><th>predicted</th><th>verdict</th></tr>"
    return f"<table><thead>{head}</thead><tbody>{body}</tbody></table>"


def _verdict_class(verdict: str) -> str:
    if verdict == "exact":
        return "ok"
    return "near" if verdict == "right tool, wrong arguments" else "bad"


def _html_list(items: list[str]) -> str:
    if not items:
        return "<p>(none)</p>"
    return "<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in items) + "</ul>"


# ---------------------------------------------------------------- loss plot


def _plot_loss(notes: dict, path: Path) -> None:
    curve = notes.get("loss_curve") or []
    points = [p for p in curve if "loss" in p]
    held = [p for p in curve if "heads_loss" in p]  # once per epoch, on examples never trained on
    fig = Figure(figsize=(7, 3.6), dpi=110)
    ax = fig.subplots()
    ax.set_title(f"{notes['name']} v{notes['version']} — training loss" + (" and heads loss" if held else ""))
    if points:
        steps = [p["step"] for p in points]
        losses = [p["loss"] for p in points]
        ax.plot(steps, losses, color="#a4550f", linewidth=1.4, label="training (hearts)")
        if held:
            ax.plot([p["step"] for p in held], [p["heads_loss"] for p in held], color="#1f5fa4", linewidth=1.4,
                    marker="o", markersize=3, label="held out (heads)")
            losses += [p["heads_loss"] for p in held]
            ax.legend(loc="upper right", fontsize=8)
        low, high = min(losses), max(losses)
        # A curve falling from 8 to 0.05 is a flat line on a linear axis after the first epoch.
        if low > 0 and high / low > 10:
            ax.set_yscale("log")
            _plain_log_labels(ax, high / low)
        _mark_epochs(ax, points)
    else:
        ax.text(0.5, 0.5, "no training steps recorded", ha="center", va="center",
                transform=ax.transAxes)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")


def _plain_log_labels(ax, span: float) -> None:
    """Label a log loss axis 0.2, 0.5, 1, 2 rather than 2×10⁻¹ (2s and 5s on short spans)."""
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
    if span > 100:  # more than two decades: the 2s and 5s would crowd the axis
        ax.yaxis.set_minor_formatter(NullFormatter())
        return

    def minor(y: float, _) -> str:
        mantissa = y / 10 ** math.floor(math.log10(y))
        return f"{y:g}" if round(mantissa, 6) in (2, 5) else ""

    ax.yaxis.set_minor_formatter(FuncFormatter(minor))


def _mark_epochs(ax, points: list[dict]) -> None:
    """A faint line where each new epoch starts, when the curve records epochs."""
    previous = None
    for point in points:
        epoch = point.get("epoch")
        if epoch is None:
            continue
        if previous is not None and int(epoch) != int(previous):
            ax.axvline(point["step"], color="#c8b8a4", linewidth=0.8, linestyle="--")
        previous = epoch
