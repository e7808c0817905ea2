"""The gguf bottle: llama.cpp loads it in a process without distillery and, fed the student's prompt
ids, writes exactly the Spirit's greedy ids; its GBNF grammar holds llama.cpp to valid calls."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from distillery.bottling import bottle, gguf as bottle_gguf, open_artifact
from distillery.decoding import greedy_decode
from distillery.jsonl import read_jsonl
from distillery.spirit import load_spirit
from distillery.tasks.tool_calling.prompt import END, render_prompt
from distillery.tasks.tool_calling.validate import check_calls
from distillery.tokenizer import encode_prompt

gguf = pytest.importorskip("gguf")
pytest.importorskip("llama_cpp")

N_NEW = 40

# Runs with llama-cpp-python, gguf, tokenizers and jinja2 only: the prompt comes from the chat
# template and the tokenizer stored in the file, the grammar from the .gbnf beside it.
CHILD = r"""
import json, sys
import jinja2
from gguf import GGUFReader
from llama_cpp import Llama, LlamaGrammar
from tokenizers import Tokenizer

path, gbnf, cases, n_new = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4])
fields = GGUFReader(path).fields
value = lambda key: fields[key].parts[fields[key].data[0]]
tok = Tokenizer.from_str(bytes(value("distillery.tokenizer")).decode())
template = jinja2.Environment().from_string(bytes(value("tokenizer.chat_template")).decode())
eos = int(value("tokenizer.ggml.eos_token_id")[0])
skip = {i for i in range(tok.get_vocab_size()) if tok.decode([i]).isspace()}
llm = Llama(path, n_ctx=int(value("llama.context_length")[0]), verbose=False)
grammar = LlamaGrammar.from_string(open(gbnf).read(), verbose=False)
out = []
for case in cases:
    text = template.render(messages=[{"role": "user", "content": case["utterance"]}], tools=case["tools"])
    ids = [i for i in tok.encode(text).ids if i not in skip]
    generated = []
    for token in llm.generate(ids, temp=0.0, repeat_penalty=1.0, reset=True):
        if token == eos or len(generated) == n_new:
            break
        generated.append(token)
    constrained = llm.create_completion(ids, grammar=grammar, temperature=0.0, repeat_penalty=1.0, max_tokens=200)
    choice = constrained["choices"][0]
    out.append({"text": text, "ids": generated, "constrained": choice["text"], "finish": choice["finish_reason"]})
print(json.dumps({"cases": out, "distillery_imported": any(m.startswith("distillery") for m in sys.modules)}))
"""


@pytest.fixture(scope="module")
def f32(small_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("gguf")
    path, notes = bottle(small_run.spirit_path(), "gguf", out)
    return path, notes


@pytest.mark.slow
def test_llama_cpp_without_distillery_writes_the_spirits_ids_and_obeys_the_gbnf(small_run, f32):
    path, notes = f32
    assert path.name == "small-f32.gguf" and (path.parent / "small.gbnf").is_file()
    spirit = load_spirit(small_run.spirit_path())
    tools = {t.name: t for t in spirit.tools}
    heads = read_jsonl(small_run.dir / "cuts" / "heads.jsonl")[:4]
    cases = [{"utterance": ex["utterance"], "tools": [tools[n].to_openai() for n in ex["tools"]]} for ex in heads]
    result = subprocess.run([sys.executable, "-c", CHILD, str(path), str(path.parent / "small.gbnf"),
                             json.dumps(cases), str(N_NEW)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    child = json.loads(result.stdout.strip().splitlines()[-1])
    assert child["distillery_imported"] is False
    eos = spirit.tokenizer.token_to_id(END)
    for ex, got in zip(heads, child["cases"]):
        prompt = render_prompt(ex["utterance"], [tools[n] for n in ex["tools"]])
        assert got["text"] == prompt
        expected = greedy_decode(spirit.model, encode_prompt(spirit.tokenizer, prompt), eos_id=eos,
                                 max_new_tokens=N_NEW)
        assert got["ids"] == expected
        # The .gbnf is the Spirit's whole catalog: llama.cpp can only write valid calls of it. An
        # untrained student may ramble inside a free string until max_tokens: then what it wrote
        # is still the start of a call of a catalog tool.
        if got["finish"] == "stop":
            assert check_calls(json.loads(got["constrained"]), spirit.tools) is None, got["constrained"]
        else:
            assert re.fullmatch(r'\[\]|\[\{"name":"(%s)","arguments":\{.*' % "|".join(tools), got["constrained"],
                                re.S), got["constrained"]
    assert any(got["finish"] == "stop" for got in child["cases"])


@pytest.mark.slow
def test_f32_bottle_tastes_like_the_spirit_and_carries_its_metadata(small_run, f32):
    path, notes = f32
    assert notes["same_calls_as_spirit"] == 1.0 and notes["exact_call_accuracy_difference"] == 0.0
    assert json.loads((path.parent / "small-f32.gguf.tasting.json").read_text())["n_eval"] == notes["n_eval"] == 12
    opened = open_artifact(path)
    spirit = load_spirit(small_run.spirit_path())
    assert opened.format == "gguf"
    assert opened.metadata["tools"] == spirit.metadata["tools"]  # parameter order kept: it is the prompt
    assert opened.metadata["heads"] == spirit.metadata["heads"]
    assert opened.tokenizer.to_str() == spirit.tokenizer.to_str()


@pytest.mark.slow
@pytest.mark.parametrize("quantize", ["q8_0", "q4_0"])
def test_quantized_tensor_types(small_run, tmp_path, quantize):
    spirit = load_spirit(small_run.spirit_path())
    path = bottle_gguf.export(spirit, tmp_path, quantize)
    types = {t.name: t.tensor_type.name for t in gguf.GGUFReader(path).tensors}
    assert types["blk.0.attn_norm.weight"] == "F32"
    assert types["blk.0.ffn_down.weight"] == quantize.upper()
    assert types["token_embd.weight"] == "Q8_0"  # also the output layer: 8 bits even in q4_0
    assert "output.weight" not in types  # tied: llama.cpp reads token_embd
    assert path.stat().st_size < 0.5 * small_run.spirit_path().stat().st_size  # the Spirit is f32
    runner = open_artifact(path).runner
    logits = runner.start(encode_prompt(spirit.tokenizer, render_prompt("set a timer for 5 minutes", spirit.tools[:4])))
    assert logits.shape == (spirit.metadata["model_config"]["vocab_size"],) and bool(logits.isfinite().all())


def test_rows_that_are_not_whole_quant_blocks_stay_f16():
    f16 = gguf.GGMLQuantizationType.F16
    assert bottle_gguf._tensor_type(gguf, "blk.0.ffn_up.weight", np.zeros((64, 48), np.float32), "q8_0") == f16
    assert bottle_gguf._tensor_type(gguf, "blk.0.ffn_up.weight", np.zeros((64, 64), np.float32), "q4_0") \
        == gguf.GGMLQuantizationType.Q4_0
    assert bottle_gguf._tensor_type(gguf, "blk.0.attn_norm.weight", np.zeros(48, np.float32), "q4_0") \
        == gguf.GGMLQuantizationType.F32


def test_permute_matches_llama_cpp_rotary_layout():
    # Per head, rows [first half | second half] become interleaved pairs (0, h, 1, h+1, ...).
    w = np.arange(8, dtype=np.float32).reshape(8, 1)
    assert bottle_gguf._permute(w, 2)[:, 0].tolist() == [0, 2, 1, 3, 4, 6, 5, 7]
