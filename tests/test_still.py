"""The Still: the lr schedule, completion-only loss, and resuming a killed run exactly."""

import random
from types import SimpleNamespace

import pytest
import torch

from distillery import still
from distillery.recipe_sections import StillConfig
from distillery.students.base import count_params
from distillery.students.tiny import build_model, model_config

TINY = SimpleNamespace(d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, d_ff=64, max_seq_len=64)


def tiny_model():
    return build_model(model_config(TINY, 50, {"bos": 1, "eos": 2, "pad": 0}), seed=0)


def cfg(**kw):
    base = dict(epochs=2, batch_size=4, lr=1e-2, warmup_ratio=0.1, min_lr_ratio=0.1, weight_decay=0.0,
                grad_clip=1.0, threads=None, precision="fp32")
    return StillConfig(**{**base, **kw})


def pairs(n=16):
    rng = random.Random(0)
    return [([rng.randrange(3, 50) for _ in range(rng.randint(3, 8))], [rng.randrange(3, 50), 2]) for _ in range(n)]


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    assert still.lr_at(0, 100, 1.0, 0.1, 0.1) == pytest.approx(0.1)
    assert still.lr_at(9, 100, 1.0, 0.1, 0.1) == pytest.approx(1.0)
    assert still.lr_at(100, 100, 1.0, 0.1, 0.1) == pytest.approx(0.1)
    mid = still.lr_at(55, 100, 1.0, 0.1, 0.1)
    assert 0.5 < mid < 0.6  # halfway through the cosine: (1 + 0.1) / 2


def test_collate_masks_prompt_and_padding():
    batch = still.collate([([5, 6, 7], [8, 2]), ([9], [10, 11, 2])], pad=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 2], [9, 10, 11, 2, 0]]
    assert batch["labels"].tolist() == [[-100, -100, -100, 8, 2], [-100, 10, 11, 2, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]
    # The prompt's own next tokens, for the optional prompt loss (the first token has no context).
    assert batch["prompt_labels"].tolist() == [[-100, 6, 7, -100, -100], [-100] * 5]


def test_prompt_loss_is_added_only_when_weighted():
    model = tiny_model()
    batch = still.collate([([5, 6, 7, 9], [8, 2]), ([9, 4], [10, 11, 2])], pad=0)
    with torch.no_grad():
        base = still.completion_loss(model, batch).item()
        prompt_only = still.completion_loss(model, {**batch, "labels": batch["prompt_labels"]}).item()
        weighted = still.completion_loss(model, batch, prompt_weight=0.5).item()
    assert base == pytest.approx(still.completion_loss(model, batch, prompt_weight=0.0).item())
    assert weighted == pytest.approx(base + 0.5 * prompt_only, rel=1e-5)


def test_batches_cover_every_example_once_and_depend_on_the_seed():
    data = pairs(30)
    batches = still.make_batches(data, 4, seed=1)
    assert sorted(i for b in batches for i in b) == list(range(30))
    assert batches == still.make_batches(data, 4, seed=1)
    assert batches != still.make_batches(data, 4, seed=2)


def test_tied_embeddings_are_counted_once():
    model = tiny_model()
    emb = model.model.embed_tokens.weight
    assert model.lm_head.weight is emb
    assert count_params(model) == sum(p.numel() for p in model.parameters())


def test_eager_attention_computes_the_same_loss_as_sdpa():
    # The Still trains with plain matmul attention for speed; only the speed may change.
    model = tiny_model()
    batch = still.collate([([5, 6, 7, 9], [8, 2]), ([9, 4], [10, 11, 2])], pad=0)
    with torch.no_grad():
        sdpa = still.completion_loss(model, batch, prompt_weight=0.5).item()
        model.set_attn_implementation("eager")
        eager = still.completion_loss(model, batch, prompt_weight=0.5).item()
    assert eager == pytest.approx(sdpa, rel=1e-5)


def test_training_lowers_the_loss_and_writes_metrics(tmp_path):
    model = tiny_model()
    result = still.run_still(model, pairs(), cfg(epochs=6), tmp_path, pad=0, seed=0, log=lambda *_: None)
    assert result.steps == 6 * 4
    assert model.config._attn_implementation == "sdpa"  # trained eager, handed back as it came
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert rows[0] == "step,epoch,loss,lr,grad_norm,tokens_per_s"
    losses = [float(r.split(",")[2]) for r in rows[1:]]
    assert len(losses) == 24 and losses[-1] < losses[0] * 0.8
    assert sorted(p.name for p in tmp_path.glob("epoch-*")) == ["epoch-6"]  # only the last checkpoint kept


def test_killed_still_resumes_from_its_last_epoch_and_ends_where_an_unbroken_run_ends(tmp_path, monkeypatch):
    unbroken = tiny_model()
    still.run_still(unbroken, pairs(), cfg(epochs=3), tmp_path / "a", pad=0, seed=0, log=lambda *_: None)

    real_save = still._save_checkpoint

    def save_then_die(still_dir, epoch, *args, **kwargs):
        real_save(still_dir, epoch, *args, **kwargs)
        if epoch == 2:
            raise KeyboardInterrupt  # killed right after the epoch-2 checkpoint

    monkeypatch.setattr(still, "_save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        still.run_still(tiny_model(), pairs(), cfg(epochs=3), tmp_path / "b", pad=0, seed=0, log=lambda *_: None)
    monkeypatch.setattr(still, "_save_checkpoint", real_save)

    messages = []
    resumed = tiny_model()
    result = still.run_still(resumed, pairs(), cfg(epochs=3), tmp_path / "b", pad=0, seed=0, log=messages.append)
    assert messages == ["Resuming the Still after epoch 2 (step 8)."]
    assert result.steps == 12
    for (name, a), (_, b) in zip(unbroken.state_dict().items(), resumed.state_dict().items()):
        assert torch.allclose(a, b, atol=1e-6), name
    assert len((tmp_path / "b" / "metrics.csv").read_text().splitlines()) == 1 + 12
