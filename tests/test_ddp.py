"""Data-parallel training under torchrun: the same losses as one process, rank 0 alone writes,
a killed rank resumes from the last checkpoint; and the Still's device and micro-batches."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from distillery import devices, distributed, still
from distillery.bottling import Bottle, on_device
from distillery.decoding import TorchRunner
from distillery.errors import DistilleryError
from distillery.pipeline import Run
from distillery.recipe import load_recipe
from distillery.recipe_sections import StillConfig
from distillery.students.tiny import build_model, model_config

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
AUDITED = Path(__file__).resolve().parent / "fixtures" / "distillery_audited.py"
TORCHRUN = Path(sys.executable).parent / "torchrun"
HAS_GPU = torch.cuda.is_available() or torch.backends.mps.is_available()

# 99 hearts, 7 steps of 16 an epoch: each process takes 8 examples a step.
RECIPE = """\
name: small
version: 2
seed: 3
tools: needle_tools.json
mash: {total_examples: 120, tools_per_call: {min: 2, max: 4}, no_call_ratio: 0.1}
student: {d_model: 64, n_layers: 2, n_heads: 2, n_kv_heads: 1, d_ff: 128, max_seq_len: 320, vocab_size: 600}
cuts: {hearts: 0.8, heads: 0.1, tails: 0.1}
still: {epochs: 3, batch_size: 16, lr: 3.0e-3, precision: fp32, threads: 1}
tasting: {samples: 8}
"""
STEPS = 3 * 7


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """A folder with the recipe and its run made up to the tokenizer (what every Still reads)."""
    root = tmp_path_factory.mktemp("ddp")
    shutil.copy(EXAMPLES / "needle_tools.json", root / "needle_tools.json")
    (root / "small.yaml").write_text(RECIPE)
    Run(load_recipe(root / "small.yaml"), runs_root=root / "prepared").run(until="tokenizer")
    return root


def copy_run(prepared: Path, name: str) -> Path:
    shutil.copytree(prepared / "prepared", prepared / name)
    return prepared / name


def launch(prepared: Path, runs: Path, **popen) -> subprocess.Popen:
    """`torchrun --nproc-per-node 2 distillery still small.yaml` (audited), as a user would start it."""
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")}
    env.update(AUDIT_ROOT=str(runs), AUDIT_LOG=str(runs.parent / f"{runs.name}.audit"), PYTHONHASHSEED="random")
    return subprocess.Popen([str(TORCHRUN), "--standalone", "--nproc-per-node", "2", str(AUDITED), "still",
                             "small.yaml", "--runs", str(runs)], cwd=prepared, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, **popen)


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=300)
    return process.returncode, out, err


def epoch_losses(run: Path, epoch: int) -> list[float]:
    rows = (run / "small-v2" / "still" / "metrics.csv").read_text().splitlines()[1:]
    return [float(r.split(",")[2]) for r in rows if r.split(",")[1] == str(epoch)]


def heads_loss_after(run: Path, epoch: int) -> float:
    curve = json.loads((run / "small-v2" / "still" / "result.json").read_text())["loss_curve"]
    return next(p["heads_loss"] for p in curve if p["epoch"] == epoch and "heads_loss" in p)


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "small-v2" / "still" / "student.safetensors"))


@pytest.fixture(scope="module")
def single(prepared: Path) -> Path:
    runs = copy_run(prepared, "single")
    Run(load_recipe(prepared / "small.yaml"), runs_root=runs).run(until="still")
    return runs


@pytest.fixture(scope="module")
def double(prepared: Path) -> tuple[Path, str, str]:
    runs = copy_run(prepared, "double")
    code, out, err = finish(launch(prepared, runs))
    assert code == 0, err[-3000:]
    return runs, out, err


@pytest.mark.slow
def test_two_processes_train_like_one_on_the_same_global_batches(single: Path, double):
    runs, _, _ = double
    one, two = epoch_losses(single, 1), epoch_losses(runs, 1)
    assert len(one) == len(two) == 7
    first_epoch_one, first_epoch_two = sum(one) / 7, sum(two) / 7
    assert abs(first_epoch_two - first_epoch_one) / first_epoch_one < 0.02
    # Each step sees the same global batch in both runs: the losses agree step by step, not only on average.
    assert two == pytest.approx(one, rel=1e-4)
    assert heads_loss_after(runs, 1) == pytest.approx(heads_loss_after(single, 1), rel=1e-4)
    a, b = weights(single), weights(runs)
    assert all(torch.allclose(a[k], b[k], atol=1e-4) for k in a)
    result = json.loads((runs / "small-v2" / "still" / "result.json").read_text())
    assert (result["processes"], result["device"], result["precision"], result["steps"]) == (2, "cpu", "fp32", STEPS)


@pytest.mark.slow
def test_only_rank_0_writes_files_and_reports(double):
    runs, out, err = double
    audit = (runs.parent / f"{runs.name}.audit.1").read_text().splitlines()
    assert audit == ["audited"]  # rank 1 ran under the audit hook and changed nothing in the run folder
    assert err.count("loss on the heads") == 3 and err.count("Still: tiny student") == 1
    assert out.count("Still epoch") == 1  # one progress bar
    assert out.strip().splitlines()[-1] == str(runs / "small-v2" / "still")
    assert sorted(p.name for p in (runs / "small-v2" / "still").iterdir()) == \
        ["epoch-3", "metrics.csv", "result.json", "student.safetensors"]


def rank_pid(launcher: int, rank: int) -> int | None:
    """The pid of the worker of `rank` that torchrun (`launcher`) started, from /proc."""
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            ppid = int(next(line for line in status.read_text().splitlines() if line.startswith("PPid:")).split()[1])
            environ = (status.parent / "environ").read_bytes().split(b"\0")
        except (OSError, StopIteration, ValueError):
            continue
        if ppid == launcher and f"RANK={rank}".encode() in environ:
            return int(status.parent.name)
    return None


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the rank's process in /proc")
def test_killing_one_rank_mid_epoch_then_rerunning_resumes_from_the_last_checkpoint(prepared: Path, double):
    runs = copy_run(prepared, "killed")
    still_dir = runs / "small-v2" / "still"
    process = launch(prepared, runs)
    deadline = time.monotonic() + 240
    while not (still_dir / "epoch-1" / "state.json").exists():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()[1][-3000:]
        time.sleep(0.02)
    time.sleep(0.2)  # into the second epoch
    victim = rank_pid(process.pid, 1)
    assert victim is not None
    os.kill(victim, signal.SIGKILL)
    code, _, _ = finish(process)
    assert code != 0  # torchrun stops the other rank and fails
    assert not (still_dir / "epoch-3").exists() and not (still_dir / "student.safetensors").exists()
    resumed_after = json.loads((still_dir / sorted(p.parent.name for p in still_dir.glob("epoch-*/state.json"))[-1]
                                / "state.json").read_text())

    code, out, err = finish(launch(prepared, runs))
    assert code == 0, err[-3000:]
    assert f"Resuming the Still after epoch {resumed_after['epoch']} (step {resumed_after['step']})." in err
    steps = [int(r.split(",")[0]) for r in (still_dir / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == list(range(1, STEPS + 1))  # the steps trained again are logged once
    unbroken, again = weights(double[0]), weights(runs)
    assert all(torch.allclose(unbroken[k], again[k], atol=1e-6) for k in unbroken)


TINY = SimpleNamespace(d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, d_ff=64, max_seq_len=64)


def tiny_model():
    return build_model(model_config(TINY, 50, {"bos": 1, "eos": 2, "pad": 0}), seed=0)


def pairs(n=30):
    rng = random.Random(0)
    return [([rng.randrange(3, 50) for _ in range(rng.randint(0 if i == 3 else 3, 8))], [rng.randrange(3, 50), 2])
            for i in range(n)]


def test_micro_batches_accumulate_to_the_whole_batch(tmp_path):
    cfg = dict(epochs=2, batch_size=8, lr=1e-2, precision="fp32", prompt_loss=0.5)
    whole, parts = tiny_model(), tiny_model()
    a = still.run_still(whole, pairs(), StillConfig(**cfg), tmp_path / "a", pad=0, seed=0, log=lambda *_: None)
    b = still.run_still(parts, pairs(), StillConfig(**cfg, micro_batch=3), tmp_path / "b", pad=0, seed=0,
                        log=lambda *_: None)
    assert [p["loss"] for p in b.loss_curve] == pytest.approx([p["loss"] for p in a.loss_curve], rel=1e-5)
    for (name, x), (_, y) in zip(whole.state_dict().items(), parts.state_dict().items()):
        assert torch.allclose(x, y, atol=1e-5), name


def test_label_counts_match_what_collate_labels():
    data = pairs(12)  # one pair has an empty prompt
    batch = still.collate(data, pad=0)
    completions = int((batch["labels"][:, 1:] != still.IGNORE).sum())
    prompts = int((batch["prompt_labels"][:, 1:] != still.IGNORE).sum())
    assert still.label_counts(data) == (completions, prompts)


def test_every_rank_takes_a_distinct_share_in_the_same_number_of_passes():
    batch = list(range(100, 111))  # 11 examples over 3 processes, passes of at most 2
    parts = [still.shares(batch, distributed.World(rank, 3), 2) for rank in range(3)]
    assert [len(p) for p in parts] == [2, 2, 2]
    assert parts[2] == [[102, 105], [108]]
    assert sorted(i for p in parts for part in p for i in part) == batch
    # A batch smaller than the world: the rank without an example still takes its (empty) pass.
    assert still.shares([7], distributed.World(1, 2), 8) == [[]]
    assert still.shares(batch, distributed.World(), 16) == [batch]  # one process: the whole batch at once


def test_launcher_environment_gives_the_world():
    assert distributed.from_env({}) == distributed.World()
    assert distributed.from_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "x"}) == \
        distributed.World(rank=1, size=2, local_rank=1)
    refused = {
        "FSDP": {"RANK": "0", "WORLD_SIZE": "2", "ACCELERATE_USE_FSDP": "true"},
        "torchrun": {"RANK": "2", "WORLD_SIZE": "2"},
        "mpirun": {"ACCELERATE_USE_CPU": "True", "MASTER_ADDR": "127.0.0.1"},
    }
    for what, env in refused.items():
        with pytest.raises(DistilleryError, match=what):
            distributed.from_env(env)


@pytest.mark.skipif(HAS_GPU, reason="checks the refusal on a machine without a GPU")
def test_a_device_that_is_not_present_is_refused_and_auto_is_the_cpu():
    assert devices.resolve("auto") == torch.device("cpu")
    with pytest.raises(DistilleryError, match=r"still.device: cuda is not present .*Fix: set it to auto"):
        devices.resolve("cuda")
    assert not devices.use_bf16("fp32", "cpu") and devices.use_bf16("bf16", "cpu")
    assert devices.use_bf16("auto", "cpu") == devices.cpu_has_bf16() and not devices.use_bf16("auto", "mps")


@pytest.mark.skipif(HAS_GPU, reason="checks the refusal on a machine without a GPU")
def test_still_on_a_missing_gpu_exits_2_before_the_mash(tmp_path):
    shutil.copy(EXAMPLES / "needle_tools.json", tmp_path / "needle_tools.json")
    (tmp_path / "r.yaml").write_text(RECIPE.replace("precision: fp32", "device: cuda"))
    done = subprocess.run([sys.executable, "-m", "distillery.cli", "still", "r.yaml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "still.device: cuda is not present" in " ".join(done.stderr.split())
    assert not (tmp_path / "runs" / "small-v2" / "mash.jsonl").exists()  # nothing paid for


@pytest.mark.skipif(HAS_GPU, reason="checks the refusal on a machine without a GPU")
def test_predict_and_serve_take_a_device():
    runner = TorchRunner(tiny_model())
    bottle = Bottle(runner=runner, tokenizer=None, metadata={}, format="spirit")
    assert on_device(bottle, "auto") is bottle and runner.device == torch.device("cpu")
    with pytest.raises(DistilleryError, match="--device: cuda is not present"):
        on_device(bottle, "cuda")
    gguf = Bottle(runner=object(), tokenizer=None, metadata={}, format="gguf")
    assert on_device(gguf, "auto") is gguf
    with pytest.raises(DistilleryError, match="a gguf bottle decodes on the CPU"):
        on_device(gguf, "mps")
    served = subprocess.run([sys.executable, "-m", "distillery.cli", "serve", "--device", "cuda", "--port", "0"],
                            capture_output=True, text=True, timeout=120)
    assert served.returncode == 2 and "--device: cuda is not present" in " ".join(served.stderr.split())
