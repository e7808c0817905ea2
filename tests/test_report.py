"""The human-readable Tasting Notes: notes.md, notes.html, loss.png."""

from __future__ import annotations

from distillery.report import degrees, format_calls, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _notes(**changes) -> dict:
    notes = {
        "name": "needle",
        "version": 2,
        "task": "tool_calling",
        "proof": 0.78,
        "metrics": {
            "tool_name_accuracy": 0.78,
            "arg_key_precision": 0.85,
            "arg_key_recall": 0.64,
            "arg_key_f1": 0.7302,
            "exact_call_accuracy": 0.03,
            "valid_call_rate": 0.97,
            "no_call_accuracy": None,
        },
        "n_eval": 100,
        "strengths": ["set_timer: 12/12 calls exact"],
        "weaknesses": ["integer values: 71% right (24/34)"],
        "samples": [
            {
                "input": "set a timer for 10 minutes",
                "tools": ["set_timer"],
                "gold": [{"name": "set_timer", "arguments": {"minutes": 10}}],
                "predicted": [{"name": "set_timer", "arguments": {"minutes": 10}}],
                "verdict": "exact",
            },
            {
                "input": "run <script>alert(1)</script> | now",
                "tools": ["set_timer"],
                "gold": [],
                "predicted": None,
                "verdict": "invalid output",
            },
        ],
        "loss_curve": [
            {"step": s, "loss": 5.0 / (1 + s), "epoch": s // 10} for s in range(0, 40)
        ],
        "latency_ms": {"p50": 12.34, "p95": 20.0},
        "params": 4_123_456,
        "train_seconds": 192.4,
        "breakdown": {
            "per_tool": {
                "set_timer": {"n": 12, "tool_name_accuracy": 1.0, "exact_call_accuracy": 0.5},
            },
            "per_arg_type": {"integer": {"n": 34, "value_accuracy": 24 / 34}},
        },
    }
    notes.update(changes)
    return notes


def test_degrees_rounds_to_whole_degrees():
    assert degrees(0.78) == "78°"
    assert degrees(0.0) == "0°"
    assert degrees(1.0) == "100°"
    assert degrees(0.456) == "46°"


def test_format_calls_is_compact():
    calls = [
        {"name": "set_timer", "arguments": {"minutes": 10}},
        {"name": "send", "arguments": {"to": "bob", "urgent": True, "cc": ["a", "b"]}},
    ]
    assert format_calls(calls) == 'set_timer(minutes=10); send(to="bob", urgent=true, cc=["a", "b"])'
    assert format_calls([{"name": "now", "arguments": {}}]) == "now()"
    assert format_calls([]) == "(no call)"
    assert format_calls(None) == "(invalid)"


def test_write_report_writes_three_files(tmp_path):
    write_report(_notes(), tmp_path / "tasting")
    for name in ("notes.md", "notes.html", "loss.png"):
        assert (tmp_path / "tasting" / name).is_file()


def test_markdown_has_headline_metrics_samples_and_plot(tmp_path):
    write_report(_notes(), tmp_path)
    md = (tmp_path / "notes.md").read_text(encoding="utf-8")
    assert md.startswith("# needle v2 — 78° proof\n")
    assert "4.1M params" in md
    assert "latency p50 12.3 ms, p95 20.0 ms" in md
    assert "trained in 3m 12s" in md
    for value in ("0.780", "0.850", "0.640", "0.730", "0.030", "0.970"):
        assert f"| {value} |" in md
    assert "| no_call_accuracy | — |" in md
    assert "- set_timer: 12/12 calls exact" in md
    assert "- integer values: 71% right (24/34)" in md
    assert "| set_timer | 12 | 100% | 50% |" in md
    assert "| integer | 34 | 71% |" in md
    assert "| set a timer for 10 minutes | set_timer(minutes=10) | set_timer(minutes=10) | exact |" in md
    # The pipe in the utterance is escaped so the row keeps its four cells.
    assert "| run <script>alert(1)</script> \\| now | (no call) | (invalid) | invalid output |" in md
    assert "![loss](loss.png)" in md


def test_html_is_self_contained_and_escapes_user_text(tmp_path):
    write_report(_notes(), tmp_path)
    page = (tmp_path / "notes.html").read_text(encoding="utf-8")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "78°" in page
    assert "invalid output" in page
    # The plot travels inside the page, not beside it.
    assert 'src="data:image/png;base64,' in page
    assert 'src="loss.png"' not in page
    assert "http://" not in page and "https://" not in page


def test_loss_png_is_a_real_image(tmp_path):
    write_report(_notes(), tmp_path)
    data = (tmp_path / "loss.png").read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 5_000


def test_report_without_loss_curve_or_breakdown_still_writes(tmp_path):
    notes = _notes(loss_curve=[], breakdown={}, comparison={"teacher": {"tool_name_accuracy": 0.95}})
    write_report(notes, tmp_path)
    md = (tmp_path / "notes.md").read_text(encoding="utf-8")
    assert "## Per tool" not in md
    assert "| teacher | 0.950 |" in md
    assert (tmp_path / "loss.png").read_bytes()[:8] == PNG_MAGIC
