"""The onnx bottle: onnxruntime loads it in a process without distillery and, fed the student's
prompt ids, decodes exactly the Spirit's greedy ids with the KV cache; distillery's own onnx
runner tastes exactly like the Spirit; int8 is a real, smaller quantization."""

import json
import subprocess
import sys

import onnx
import pytest
from onnx import numpy_helper

from distillery.bottling import bottle, caller_for, onnx as bottle_onnx, open_artifact
from distillery.decoding import greedy_decode
from distillery.errors import DistilleryError
from distillery.jsonl import read_jsonl
from distillery.spirit import load_spirit
from distillery.tasks.tool_calling.prompt import END, render_prompt
from distillery.tokenizer import encode_prompt

N_NEW = 40

# onnxruntime, tokenizers and numpy only: the tokenizer and the model's shape come from the
# file's own metadata; the prompt text comes from the parent (it is plain text).
CHILD = r"""
import json, sys
import numpy as np
import onnxruntime
from tokenizers import Tokenizer

path, prompts, n_new = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
meta = session.get_modelmeta().custom_metadata_map
tok = Tokenizer.from_str(meta["tokenizer"])
end = tok.token_to_id("<|end|>")
specials = {"<|pad|>", "<|tools|>", "<|user|>", "<|call|>", "<|end|>"}
skip = {i for t, i in tok.get_vocab().items() if t not in specials and tok.decode([i]).isspace()}
past_names = [i.name for i in session.get_inputs() if i.name.startswith("past_key_values.")]
_, kv_heads, _, head_dim = session.get_inputs()[2].shape
out = []
for text in prompts:
    ids = [i for i in tok.encode(text).ids if i not in skip]
    past = [np.zeros((1, kv_heads, 0, head_dim), np.float32)] * len(past_names)
    position, feed_ids, generated = 0, ids, []
    while len(generated) < n_new:
        feed = {"input_ids": np.array([feed_ids], np.int64),
                "position_ids": np.arange(position, position + len(feed_ids), dtype=np.int64)[None]}
        feed.update(zip(past_names, past))
        logits, *past = session.run(None, feed)
        position += len(feed_ids)
        token = int(logits[0, -1].argmax())
        if token == end:
            break
        generated.append(token)
        feed_ids = [token]
    out.append({"prompt_ids": ids, "ids": generated})
print(json.dumps({"cases": out, "distillery_imported": any(m.startswith("distillery") for m in sys.modules)}))
"""


def spirit_layers(run) -> int:
    return load_spirit(run.spirit_path()).metadata["model_config"]["num_hidden_layers"]


@pytest.fixture(scope="module")
def f32(small_run, tmp_path_factory):
    return bottle(small_run.spirit_path(), "onnx", tmp_path_factory.mktemp("onnx"),
                  on=small_run.dir / "cuts" / "heads.jsonl")


@pytest.mark.slow
def test_onnxruntime_without_distillery_writes_the_spirits_ids(small_run, f32):
    path, _ = f32
    spirit = load_spirit(small_run.spirit_path())
    tools = {t.name: t for t in spirit.tools}
    heads = read_jsonl(small_run.dir / "cuts" / "heads.jsonl")[:4]
    prompts = [render_prompt(ex["utterance"], [tools[n] for n in ex["tools"]]) for ex in heads]
    result = subprocess.run([sys.executable, "-c", CHILD, str(path), json.dumps(prompts), str(N_NEW)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    child = json.loads(result.stdout.strip().splitlines()[-1])
    assert child["distillery_imported"] is False
    eos = spirit.tokenizer.token_to_id(END)
    for prompt, got in zip(prompts, child["cases"]):
        prompt_ids = encode_prompt(spirit.tokenizer, prompt)
        assert got["prompt_ids"] == prompt_ids
        assert got["ids"] == greedy_decode(spirit.model, prompt_ids, eos_id=eos, max_new_tokens=N_NEW)
        assert len(got["ids"]) > 5  # decoding went on through the KV cache, not one step


@pytest.mark.slow
def test_f32_bottle_tastes_like_the_spirit_and_carries_its_metadata(small_run, f32):
    path, notes = f32
    assert path.name == "small.onnx"
    assert notes["same_calls_as_spirit"] == 1.0 and notes["exact_call_accuracy_difference"] == 0.0
    assert notes["n_eval"] == 12 and notes["metrics"]["valid_call_rate"] == 1.0
    opened = open_artifact(path)
    spirit = load_spirit(small_run.spirit_path())
    assert opened.format == "onnx"
    for key in ("tools", "decoding", "model_config", "tasting", "lineage", "recipe"):
        assert opened.metadata[key] == spirit.metadata[key], key
    assert opened.tokenizer.to_str() == spirit.tokenizer.to_str()
    # The bottle's own tasting headline rides in the file too.
    recorded = json.loads(opened.metadata[bottle_onnx.BOTTLE_KEY])
    assert recorded["format"] == "onnx" and recorded["quantize"] is None
    assert recorded["tasting"]["metrics"] == notes["metrics"]
    assert recorded["tasting"]["exact_call_accuracy_difference"] == 0.0
    # Incremental: one step after the prompt costs one token, and gives the same logits as a full pass.
    runner, ids = opened.runner, encode_prompt(spirit.tokenizer, render_prompt("set a timer", spirit.tools[:3]))
    runner.start(ids[:-1])
    stepped = runner.step(ids[-1])
    assert runner.length == len(ids) and runner.past[0].shape[2] == len(ids)
    assert (stepped - runner.start(ids)).abs().max() < 1e-4


@pytest.mark.slow
def test_int8_is_smaller_and_still_decodes_valid_calls(small_run, f32, tmp_path):
    path, notes = f32
    int8 = bottle_onnx.quantize_int8(path, tmp_path / "small.int8.onnx")
    # Every layer's weight matrices are int8; the tied embedding (also the output layer) stays f32.
    tensors = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(int8)).graph.initializer}
    int8_matrices = [a for a in tensors.values() if a.dtype.name == "int8" and a.ndim == 2]
    assert len(int8_matrices) == 7 * spirit_layers(small_run)  # q, k, v, o, gate, up, down
    assert tensors["model.lm_head.weight"].dtype.name == "float32"
    f32_bytes = sum(numpy_helper.to_array(t).nbytes for t in onnx.load(str(path)).graph.initializer)
    assert sum(a.nbytes for a in tensors.values()) < 0.6 * f32_bytes
    ops = {node.op_type for node in onnx.load(str(int8)).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops
    opened = bottle_onnx.open_bottle(int8, threads=1)
    assert json.loads(opened.metadata[bottle_onnx.BOTTLE_KEY])["quantize"] == "int8"
    spirit = load_spirit(small_run.spirit_path())
    tools = {t.name: t for t in spirit.tools}
    caller = caller_for(opened)
    for ex in read_jsonl(small_run.dir / "cuts" / "heads.jsonl")[:4]:
        prediction = caller.predict(ex["utterance"], [tools[n] for n in ex["tools"]])
        assert prediction.calls is not None  # the grammar holds for int8 weights too


def test_open_refuses_what_is_not_a_distillery_onnx_bottle(tmp_path):
    with pytest.raises(DistilleryError, match="no such file"):
        bottle_onnx.open_bottle(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(DistilleryError, match="onnxruntime cannot load it"):
        bottle_onnx.open_bottle(junk)
    plain = tmp_path / "plain.onnx"
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["y"])], "g",
                                   [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
                                   [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    onnx.save(onnx.helper.make_model(graph), str(plain))
    with pytest.raises(DistilleryError, match="without distillery's metadata"):
        bottle_onnx.open_bottle(plain)


def test_export_refuses_an_unknown_quantization(tmp_path):
    with pytest.raises(DistilleryError, match="use int8"):
        bottle_onnx.export(object(), tmp_path, "q4_0")
