"""The hf bottle has what vLLM's offline `LLM(model=folder)` reads, for both student families.

vLLM itself needs a GPU build and is not installed here (docs/bottling.md says how to run it),
so this checks the folder against what vLLM reads when it loads one: an architecture from its
registry, the dtype, the context length, weights in safetensors that a tied output layer may
leave out, a tokenizer that `AutoTokenizer` loads with its chat template, and the stop token
in generation_config.json (vLLM's default sampling comes from there).
"""

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from transformers import AutoConfig, AutoTokenizer

from distillery.bottling import bottle
from distillery.spirit import load_spirit

pytestmark = pytest.mark.slow  # distills the students it bottles

# vLLM's text-generation architectures for the families a student comes from: `tiny` is always
# LlamaForCausalLM, `lora`/`full` keep their base's (vllm/model_executor/models/registry.py,
# _TEXT_GENERATION_MODELS; SmolLM2 is a Llama).
VLLM_ARCHITECTURES = {
    "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM", "GemmaForCausalLM",
    "Gemma2ForCausalLM", "Gemma3ForCausalLM", "Phi3ForCausalLM", "PhiForCausalLM", "GPT2LMHeadModel",
    "GPTNeoXForCausalLM", "OPTForCausalLM", "GraniteForCausalLM", "OlmoForCausalLM", "Olmo2ForCausalLM",
    "StableLmForCausalLM", "Starcoder2ForCausalLM", "FalconForCausalLM", "InternLM2ForCausalLM",
}

# Head sizes of vLLM's general attention kernels (TritonAttentionBackend.get_supported_head_sizes; FlashAttention's
# are a superset): a model with another head size does not load.
VLLM_HEAD_SIZES = {32, 64, 96, 128, 160, 192, 224, 256}


@pytest.fixture(scope="module", params=["tiny", "lora"])
def folder(request, tmp_path_factory) -> tuple[Path, object]:
    run = request.getfixturevalue("small_run" if request.param == "tiny" else "lora_run")
    path, _ = bottle(run.spirit_path(), "hf", tmp_path_factory.mktemp("vllm"))
    return path, load_spirit(run.spirit_path())


def test_config_names_an_architecture_vllm_runs_with_its_dtype_and_context(folder):
    path, spirit = folder
    raw = json.loads((path / "config.json").read_text())
    assert len(raw["architectures"]) == 1 and raw["architectures"][0] in VLLM_ARCHITECTURES
    assert "auto_map" not in raw  # no trust_remote_code: vLLM's own implementation runs it
    config = AutoConfig.from_pretrained(path)
    # vLLM reads `torch_dtype` (transformers >= 4.56 also writes it as `dtype`): `dtype="auto"` uses it.
    assert (raw.get("torch_dtype") or raw.get("dtype")) == "float32" and config.torch_dtype == torch.float32
    # max_model_len defaults to max_position_embeddings: it must hold the student's whole prompt and answer.
    assert config.max_position_embeddings >= spirit.format.context
    assert config.vocab_size >= len(AutoTokenizer.from_pretrained(path))
    head_size = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    if spirit.metadata.get("student", {}).get("kind", "tiny") == "tiny":
        assert head_size in VLLM_HEAD_SIZES  # d_model / n_heads: 64 / 2 here, 256 / 4 by default
    else:  # a fine-tune keeps its base's heads (SmolLM2-135M: 64); the test's stand-in base has 16
        base = AutoConfig.from_pretrained(spirit.metadata["student"]["base"])
        assert head_size == base.hidden_size // base.num_attention_heads


def test_weights_are_safetensors_with_every_tensor_vllm_loads(folder):
    path, spirit = folder
    config = json.loads((path / "config.json").read_text())
    with safe_open(str(path / "model.safetensors"), framework="pt") as f:
        names = set(f.keys())
        embedding = f.get_slice("model.embed_tokens.weight").get_shape()
    assert embedding == [config["vocab_size"], config["hidden_size"]]
    layers = {int(name.split(".")[2]) for name in names if name.startswith("model.layers.")}
    assert layers == set(range(config["num_hidden_layers"]))
    # A tied output layer may be left out only when the config says it is tied (vLLM then reuses the embedding).
    assert "lm_head.weight" in names or config.get("tie_word_embeddings") is True


def test_tokenizer_loads_in_autotokenizer_with_the_chat_template_and_the_stop_token(folder):
    path, spirit = folder
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert tokenizer.chat_template
    tools = [t.to_openai() for t in spirit.tools[:3]] if spirit.tools else None
    text = tokenizer.apply_chat_template([{"role": "user", "content": "set a timer for 10 minutes"}], tools=tools,
                                         tokenize=False, add_generation_prompt=True)
    assert "set a timer for 10 minutes" in text
    generation = json.loads((path / "generation_config.json").read_text())
    # vLLM stops at generation_config's eos (generation_config="auto"); it must be the student's end.
    assert generation["eos_token_id"] == spirit.format.end_id == tokenizer.convert_tokens_to_ids(tokenizer.eos_token)
    assert generation.get("do_sample") is False  # greedy, as the student was tasted
