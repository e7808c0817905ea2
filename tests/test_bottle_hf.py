"""The hf bottle: transformers loads the folder offline in a process without distillery, its chat
template writes the student's prompt, and greedy generation gives exactly the Spirit's ids."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jinja2
import pytest
import torch
from jinja2.sandbox import ImmutableSandboxedEnvironment
from safetensors import safe_open

from distillery.bottling import bottle, hf as bottle_hf, open_artifact
from distillery.bottling.hf import CHAT_TEMPLATE
from distillery.decoding import greedy_decode
from distillery.jsonl import read_jsonl
from distillery.spirit import load_spirit
from distillery.tasks.tool_calling.catalog import parse_tools
from distillery.tasks.tool_calling.prompt import END, render_prompt
from distillery.tokenizer import encode_prompt

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
N_NEW = 40

CHILD = r"""
import json, sys
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

folder, cases, n_new = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
tok = AutoTokenizer.from_pretrained(folder)
model = AutoModelForCausalLM.from_pretrained(folder)
skip = {i for i in range(len(tok)) if tok.decode([i]).isspace()}
out = []
for case in cases:
    text = tok.apply_chat_template([{"role": "user", "content": case["utterance"]}], tools=case["tools"],
                                   tokenize=False)
    ids = [i for i in tok(text)["input_ids"] if i not in skip]
    generated = model.generate(torch.tensor([ids]), max_new_tokens=n_new)[0, len(ids):].tolist()
    if generated and generated[-1] == model.generation_config.eos_token_id:
        generated = generated[:-1]
    out.append({"text": text, "ids": generated})
print(json.dumps({"cases": out, "distillery_imported": any(m.startswith("distillery") for m in sys.modules)}))
"""

UNSEEN = [
    {"type": "function", "function": {"name": "water_plants", "parameters": {"type": "object", "properties": {
        "zone": {"type": "string", "enum": ["front", "back"]}, "liters": {"type": "number"},
        "days": {"type": "array", "items": {"type": "integer"}}, "tags": {"type": "array", "items": {}},
        "strict": {"type": "boolean"}, "level": {"enum": [1, 2.5, True]}, "extra": {}},
        "required": ["zone", "liters"]}}},
    {"type": "function", "function": {"name": "ping", "parameters": {"type": "object", "properties": {}}}},
]


@pytest.mark.parametrize("env", [ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True),
                                 jinja2.Environment()], ids=["transformers", "plain"])
def test_chat_template_writes_render_prompt(env):
    needle = json.loads((EXAMPLES / "needle_tools.json").read_text())
    template = env.from_string(CHAT_TEMPLATE)
    for tools_json, utterance in [(needle, "  set a timer for 10 minutes, then\ttext Sam "), (needle[3:7], "hi"),
                                  (UNSEEN, "water the back garden with 3 liters"), ([], "nothing on offer")]:
        tools = parse_tools(tools_json, where="test") if tools_json else []
        messages = [{"role": "system", "content": "ignored"}, {"role": "user", "content": "earlier"},
                    {"role": "assistant", "content": "[]"}, {"role": "user", "content": utterance}]
        assert template.render(messages=messages, tools=tools_json) == render_prompt(utterance, tools)


@pytest.fixture(scope="module")
def folder(small_run, tmp_path_factory):
    return bottle(small_run.spirit_path(), "hf", tmp_path_factory.mktemp("hf"))


@pytest.mark.slow
def test_transformers_without_distillery_loads_the_folder_offline_and_writes_the_spirits_ids(small_run, folder):
    path, notes = folder
    assert path.name == "small-hf"
    for name in ("config.json", "model.safetensors", "generation_config.json", "tokenizer.json",
                 "tokenizer_config.json", "README.md", "distillery.json", "tasting.json"):
        assert (path / name).is_file(), name
    spirit = load_spirit(small_run.spirit_path())
    tools = {t.name: t for t in spirit.tools}
    heads = read_jsonl(small_run.dir / "cuts" / "heads.jsonl")[:4]
    cases = [{"utterance": ex["utterance"], "tools": [tools[n].to_openai() for n in ex["tools"]]} for ex in heads]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", CHILD, str(path), json.dumps(cases), str(N_NEW)],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    child = json.loads(result.stdout.strip().splitlines()[-1])
    assert child["distillery_imported"] is False
    eos = spirit.tokenizer.token_to_id(END)
    for ex, got in zip(heads, child["cases"]):
        prompt = render_prompt(ex["utterance"], [tools[n] for n in ex["tools"]])
        assert got["text"] == prompt
        assert got["ids"] == greedy_decode(spirit.model, encode_prompt(spirit.tokenizer, prompt), eos_id=eos,
                                           max_new_tokens=N_NEW)


@pytest.mark.slow
def test_card_and_tasting_notes(small_run, folder):
    path, notes = folder
    assert notes["same_calls_as_spirit"] == 1.0 and notes["exact_call_accuracy_difference"] == 0.0
    assert notes["n_eval"] == 12 and notes["heads"] == "the Spirit's heads"
    assert json.loads((path / "tasting.json").read_text())["metrics"] == notes["metrics"]
    card = (path / "README.md").read_text()
    assert "without whitespace tokens" in card and "apply_chat_template" in card
    assert "this folder (f32)" in card and f"{notes['metrics']['exact_call_accuracy']:.3f}" in card
    assert "name: small" in card and "mash_sha256" in card  # recipe and lineage
    assert open_artifact(path).metadata["heads"] == load_spirit(small_run.spirit_path()).metadata["heads"]


@pytest.mark.slow
def test_f16_folder_has_half_precision_weights(small_run, tmp_path):
    spirit = load_spirit(small_run.spirit_path())
    path = bottle_hf.export(spirit, tmp_path, "f16")
    assert path.name == "small-hf-f16"
    with safe_open(str(path / "model.safetensors"), framework="pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F16"}
    assert json.loads((path / "config.json").read_text())["dtype"] == "float16"
    # distillery computes it in f32 from the rounded weights: the Spirit's next token on a prompt.
    ids = encode_prompt(spirit.tokenizer, render_prompt("set a timer for 10 minutes", spirit.tools[:3]))
    expected = int(spirit.model(torch.tensor([ids])).logits[0, -1].argmax())
    assert int(open_artifact(path).runner.start(ids).argmax()) == expected
