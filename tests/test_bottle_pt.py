"""The pt bottle: a weights-only state dict plus plain metadata that plain PyTorch loads, never a pickle
of objects."""

import json
import subprocess
import sys

import pytest
import torch

from distillery.bottling import open_artifact, pt as bottle_pt
from distillery.decoding import greedy_decode
from distillery.errors import DistilleryError
from distillery.spirit import load_spirit
from distillery.tasks.tool_calling.prompt import END, render_prompt
from distillery.tokenizer import encode_prompt

CHILD = r"""
import json, sys
import torch
from transformers import LlamaConfig, LlamaForCausalLM

path, ids, n_new = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
obj = torch.load(path, weights_only=True)
config = obj["metadata"]["model_config"]
model = LlamaForCausalLM(LlamaConfig(**config)).eval()
model.load_state_dict(obj["state_dict"])
state = obj["state_dict"]
generated = model.generate(torch.tensor([ids]), max_new_tokens=n_new, do_sample=False,
                           eos_token_id=config["eos_token_id"], pad_token_id=config["pad_token_id"])
print(json.dumps({"ids": generated[0, len(ids):].tolist(), "format": obj["format"],
                  "tied": state["lm_head.weight"].data_ptr() == state["model.embed_tokens.weight"].data_ptr(),
                  "tools": [t["function"]["name"] for t in obj["metadata"]["tools"]],
                  "distillery_imported": any(m.startswith("distillery") for m in sys.modules)}))
"""


@pytest.mark.slow
def test_plain_pytorch_loads_it_weights_only_and_continues_exactly(small_run, tmp_path):
    spirit = load_spirit(small_run.spirit_path())
    path = bottle_pt.export(spirit, tmp_path)  # its tasting: tests/test_taste_artifact.py
    assert path.name == "small.pt"
    ids = encode_prompt(spirit.tokenizer, render_prompt("set a timer for 10 minutes", spirit.tools[:3]))
    result = subprocess.run([sys.executable, "-c", CHILD, str(path), json.dumps(ids), "30"], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    child = json.loads(result.stdout.strip().splitlines()[-1])
    assert child["distillery_imported"] is False and child["format"] == "distillery.pt/1"
    assert child["tied"] is True  # the embedding and the output layer stay one tensor
    assert child["tools"] == [t.name for t in spirit.tools]
    expected = greedy_decode(spirit.model, ids, eos_id=spirit.tokenizer.token_to_id(END), max_new_tokens=30)
    assert child["ids"][:len(expected)] == expected


@pytest.mark.slow
def test_f16_state_dict(small_run, tmp_path):
    spirit = load_spirit(small_run.spirit_path())
    path = bottle_pt.export(spirit, tmp_path, "f16")
    obj = torch.load(path, weights_only=True)
    assert path.name == "small-f16.pt"
    assert {t.dtype for t in obj["state_dict"].values()} == {torch.float16}
    opened = open_artifact(path)
    assert opened.format == "pt" and opened.metadata["heads"] == spirit.metadata["heads"]
    # Computed in f32 from the rounded weights: the same next token as the Spirit on a prompt.
    ids = encode_prompt(spirit.tokenizer, render_prompt("set a timer for 10 minutes", spirit.tools[:3]))
    assert int(opened.runner.start(ids).argmax()) == int(spirit.model(torch.tensor([ids])).logits[0, -1].argmax())


class Payload:
    pass


def test_a_pickle_of_objects_or_another_dict_is_refused(tmp_path):
    torch.save({"format": "distillery.pt/1", "state_dict": {}, "metadata": Payload()}, tmp_path / "objects.pt")
    with pytest.raises(DistilleryError, match="weights-only"):
        open_artifact(tmp_path / "objects.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(DistilleryError, match="not a pt bottle"):
        open_artifact(tmp_path / "other.pt")
    json.dump({}, (tmp_path / "text.pt").open("w"))
    with pytest.raises(DistilleryError, match="text.pt"):
        open_artifact(tmp_path / "text.pt")
