"""`distillery age`: a Spirit trains further on a Recipe with a tool added, names its parent,
and is tasted on its old heads as well as the new ones."""

import json

from typer.testing import CliRunner

from conftest import EXAMPLES, SMALL
from distillery.cellar import Cellar
from distillery.cli import app
from distillery.spirit import file_sha256, load_spirit

NEW_TOOL = {"type": "function", "function": {
    "name": "water_plants", "description": "Water the plants in a room of the house.",
    "parameters": {"type": "object", "properties": {
        "room": {"type": "string", "description": "The room whose plants are watered"},
        "liters": {"type": "number", "description": "How much water, in liters"}}, "required": ["room"]}}}


def test_aging_adds_a_tool_names_the_parent_and_measures_the_old_heads(small_run, tmp_path):
    tools = json.loads((EXAMPLES / "needle_tools.json").read_text()) + [NEW_TOOL]
    (tmp_path / "tools.json").write_text(json.dumps(tools))
    (tmp_path / "aged.yaml").write_text(SMALL.replace("name: small", "name: aged").replace(
        "tools: needle_tools.json", "tools: tools.json"))
    parent = small_run.spirit_path()
    result = CliRunner().invoke(app, ["age", str(parent), str(tmp_path / "aged.yaml"), "--runs",
                                      str(tmp_path / "runs"), "--epochs", "2"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "aged-v2"
    notes = json.loads((run / "age" / "notes.json").read_text())
    aged = load_spirit(run / "age" / "aged.spirit")
    assert aged.metadata["lineage"]["parent"] == file_sha256(parent)
    assert "water_plants" in {t.name for t in aged.tools}
    # The new heads include the new tool; the old heads are the parent's own, scored again.
    assert "water_plants" in notes["new_heads"]["breakdown"]["per_tool"]
    assert notes["old_heads"]["n_eval"] == load_spirit(parent).metadata["tasting"]["n_eval"]
    assert notes["old_heads_delta"] == round(notes["old_heads"]["proof"] - notes["parent"]["proof"], 6)
    # The Cellar shows where the aged Spirit came from.
    cellar = Cellar(tmp_path / "cellar")
    old = cellar.add(parent)["name"]
    new = cellar.add(run / "age" / "aged.spirit")["name"]
    assert cellar.lineage(new) == [new, old]


def test_aging_refuses_a_recipe_of_another_task(small_run, tmp_path):
    (tmp_path / "r.yaml").write_text("name: router\ntask: {kind: classification, labels: {a: one, b: two}}\n"
                                     "teacher: {provider: replay, traces: t.jsonl}\n")
    (tmp_path / "t.jsonl").write_text('{"text": "x", "label": "a"}\n')
    result = CliRunner().invoke(app, ["age", str(small_run.spirit_path()), str(tmp_path / "r.yaml")])
    assert result.exit_code == 2 and "cannot age a tool_calling Spirit" in result.output
