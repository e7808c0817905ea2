"""The web page's grammar (bottling/web_page/calls.js) accepts what the Python grammar accepts.

Run with node on the page's own module, so the mirror of grammar.py and spans.py is checked
without a browser.
"""

import json
import shutil
import subprocess
from importlib import resources

import pytest

from distillery.tasks.tool_calling.grammar import calls_schema
from distillery.tasks.tool_calling.schema import Param, Tool

LIGHTS = Tool("control_lights", "", (
    Param("room", "string", required=True),
    Param("state", "string", required=True, enum=("on", "off")),
    Param("color", "string", enum=("white", "warm_white", "blue"))))
COPIED = frozenset({"control_lights.room", "control_lights.state", "control_lights.color"})


def page_accepts(tools: list[Tool], utterance: str, completions: list[str], tmp_path) -> list[bool]:
    """Whether the page's grammar takes each completion as whole, for this request."""
    if shutil.which("node") is None:
        pytest.skip("needs node")
    (tmp_path / "calls.mjs").write_text(
        resources.files("distillery.bottling").joinpath("web_page/calls.js").read_text())
    params = [{"name": t.name, "params": [
        {"name": p.name, "type": p.type, "required": p.required, "items": p.items,
         "enum": None if p.enum is None else [json.dumps(v) for v in p.enum], "copied": f"{t.name}.{p.name}" in COPIED}
        for p in t.params]} for t in tools]
    script = (f"import {{ callsLanguage }} from './calls.mjs';\n"
              f"const lang = callsLanguage({json.dumps(params)}, {json.dumps(utterance)});\n"
              f"const out = {json.dumps(completions)}.map((c) => lang(new TextEncoder().encode(c)).complete);\n"
              "console.log(JSON.stringify(out));\n")
    (tmp_path / "check.mjs").write_text(script)
    run = subprocess.run(["node", "check.mjs"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def lights(**arguments) -> str:
    return json.dumps([{"name": "control_lights", "arguments": arguments}], separators=(",", ":"))


def python_members(utterance: str) -> dict:
    args = calls_schema([LIGHTS], utterance=utterance, copied=COPIED)["items"]["anyOf"][0]["properties"]["arguments"]
    return {name: args["properties"].get(name, {}).get("enum") for name in ("state", "color")}


def test_page_offers_only_the_enum_members_the_request_names(tmp_path):
    said = "switch OFF the garage lights in Warm White"
    assert python_members(said) == {"state": ["off"], "color": ["white", "warm_white"]}
    assert page_accepts([LIGHTS], said, [
        lights(room="garage", state="off"), lights(room="garage", state="on"),
        lights(room="garage", state="off", color="warm_white"), lights(room="garage", state="off", color="blue"),
    ], tmp_path) == [True, False, True, False]

    unsaid = "lights in the garage please"  # no state named: all of them; no color named: none
    assert python_members(unsaid) == {"state": ["on", "off"], "color": None}
    assert page_accepts([LIGHTS], unsaid, [
        lights(room="garage", state="on"), lights(room="garage", state="off", color="white"),
        lights(room="the garage", state="off"),
    ], tmp_path) == [True, False, True]


def page_numbers(utterance: str, tmp_path) -> list[str]:
    """The numbers the page's grammar offers for a request, as JSON text."""
    (tmp_path / "calls.mjs").write_text(
        resources.files("distillery.bottling").joinpath("web_page/calls.js").read_text())
    (tmp_path / "numbers.mjs").write_text(
        "import { numbers } from './calls.mjs';\n"
        f"console.log(JSON.stringify(numbers({json.dumps(utterance)}).map((n) => n.json)));\n")
    run = subprocess.run(["node", "numbers.mjs"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_page_reads_the_numbers_python_reads(tmp_path):
    if shutil.which("node") is None:
        pytest.skip("needs node")
    said = "a $2,000,000 loan at 8% over 12:30, 70kg, -4 and 1.5, v2 [200,300], two of 3.5 million, someone"
    python = calls_schema([Tool("f", "", (Param("x", "number", required=True),))], utterance=said,
                          copied=frozenset({"f.x"}))["$defs"]["number"]["enum"]
    assert page_numbers(said, tmp_path) == [json.dumps(n) for n in python]
    assert python == [2, 2000000, 0, 8, 0.08, 12, 30, 70, -4, 1.5, 200, 200300, 300, 3.5, 3500000]
