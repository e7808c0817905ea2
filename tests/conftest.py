"""Fixtures shared by several test files."""

import shutil
from pathlib import Path

import pytest

from distillery.pipeline import Run
from distillery.recipe import load_recipe

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

SMALL = """\
name: small
version: 2
seed: 3
tools: needle_tools.json
mash: {total_examples: 120, tools_per_call: {min: 2, max: 4}, no_call_ratio: 0.1}
student: {d_model: 64, n_layers: 2, n_heads: 2, n_kv_heads: 1, d_ff: 128, max_seq_len: 320, vocab_size: 600}
cuts: {hearts: 0.8, heads: 0.1, tails: 0.1}
still: {epochs: 6, batch_size: 16, lr: 3.0e-3}
tasting: {samples: 8}
"""


@pytest.fixture(autouse=True)
def _private_cellar(tmp_path_factory, monkeypatch):
    # No test (nor a CLI it starts) ever writes into the user's ~/.distillery/cellar.
    monkeypatch.setenv("DISTILLERY_CELLAR", str(tmp_path_factory.mktemp("cellar")))


@pytest.fixture(scope="session")
def _session_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _private_cache(_session_cache, monkeypatch):
    # Runtime choices and exports (runtimes.py) go into a cache shared by the session, never ~/.cache.
    monkeypatch.setenv("DISTILLERY_CACHE", str(_session_cache))


@pytest.fixture(scope="session")
def small_run(tmp_path_factory) -> Run:
    root = tmp_path_factory.mktemp("pipeline")
    shutil.copy(EXAMPLES / "needle_tools.json", root / "needle_tools.json")
    (root / "small.yaml").write_text(SMALL)
    run = Run(load_recipe(root / "small.yaml"), runs_root=root / "runs")
    run.run()
    return run


# A chat template in the ChatML style SmolLM2 and Qwen use.
CHATML = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}"
          "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory) -> Path:
    """A randomly initialised Llama with its own BPE and ChatML template, saved as a Hugging Face folder:
    a stand-in for a pretrained base (SmolLM2) that loads in a second."""
    import json

    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-base")
    tools = json.loads((EXAMPLES / "needle_tools.json").read_text())
    texts = [json.dumps(tools)] * 3 + ["You call functions. Answer with a JSON list of calls. set a timer for 10 "
                                       "minutes, send a message to Sarah, what's the weather in Paris?"] * 20
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    special = ["<|pad|>", "<|im_start|>", "<|im_end|>"]
    bpe.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=700, special_tokens=special, show_progress=False,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|pad|>",
                                        additional_special_tokens=["<|im_start|>"], chat_template=CHATML)
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=bpe.get_vocab_size(), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
                         tie_word_embeddings=True, eos_token_id=bpe.token_to_id("<|im_end|>"),
                         pad_token_id=bpe.token_to_id("<|pad|>"), bos_token_id=None)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


LORA = """\
name: small-lora
seed: 3
tools: needle_tools.json
mash: {{total_examples: 80, tools_per_call: {{min: 2, max: 3}}, no_call_ratio: 0.1}}
student: {{kind: lora, base: {base}, max_seq_len: 700, lora: {{r: 4, alpha: 8}}}}
cuts: {{hearts: 0.85, heads: 0.15}}
still: {{epochs: 2, batch_size: 8, lr: 3.0e-3}}
tasting: {{samples: 8}}
spirit: {{dtype: bfloat16}}
bottling: {{formats: [hf, gguf, onnx]}}
"""


@pytest.fixture(scope="session")
def lora_run(tmp_path_factory, tiny_base) -> Run:
    """A lora student on `tiny_base`, distilled end to end, bottled as hf, gguf and onnx."""
    root = tmp_path_factory.mktemp("lora")
    shutil.copy(EXAMPLES / "needle_tools.json", root / "needle_tools.json")
    (root / "small-lora.yaml").write_text(LORA.format(base=tiny_base))
    run = Run(load_recipe(root / "small-lora.yaml"), runs_root=root / "runs")
    run.run(until="bottles")
    return run
