"""The Cellar: names, sha256 checks, gated aliases with rollback, atomic and locked writes."""

import json
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from distillery.cellar import Cellar, CellarError
from distillery.cli import app
from distillery.cli_cellar import register
from distillery.spirit import write_spirit
from distillery.students.tiny import build_model
from distillery.tasks.tool_calling.catalog import parse_tools
from distillery.tasks.tool_calling.prompt import END, PAD, TOOLS
from distillery.tokenizer import train_tokenizer

TOOLS_JSON = [{"type": "function", "function": {"name": "set_timer", "description": "Start a timer.", "parameters": {
    "type": "object", "properties": {"minutes": {"type": "integer"}}, "required": ["minutes"]}}}]


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(["set_timer(minutes:int) set a timer for 5 minutes"] * 4, vocab_size=300)


def make_spirit(path: Path, tokenizer, *, proof: float, version: int = 1, seed: int = 0, name: str = "timer",
                parent: str | None = None, exact: float = 0.5) -> Path:
    """A real (untrained) Spirit file with the given headline numbers."""
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": tokenizer.get_vocab_size(),
              "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
              "num_key_value_heads": 1, "max_position_embeddings": 64, "tie_word_embeddings": True,
              "bos_token_id": tokenizer.token_to_id(TOOLS), "eos_token_id": tokenizer.token_to_id(END),
              "pad_token_id": tokenizer.token_to_id(PAD)}
    tasting = {"proof": proof, "metrics": {"exact_call_accuracy": exact, "tool_name_accuracy": proof},
               "n_eval": 10, "latency_ms": {"p50": 1.0, "p95": 2.0}, "params": 1234, "train_seconds": 1.0}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_spirit(path, build_model(config, seed=seed), model_config=config, tokenizer_json=tokenizer.to_str(),
                 recipe_yaml=f"name: {name}\nversion: {version}\nteacher: {{provider: openai, model: gpt-4o}}\n",
                 task="tool_calling", tools=parse_tools(TOOLS_JSON, where="test"), tasting=tasting,
                 lineage={"parent": parent, "mash_sha256": "0" * 64, "recipe_sha256": "1" * 64},
                 decoding={"grammar": True, "copied_params": []})
    return path


@pytest.fixture
def cellar(tmp_path) -> Cellar:
    return Cellar(tmp_path / "cellar")


def test_add_records_the_spirit_and_its_sha256_and_keeps_a_copy(cellar, tokenizer, tmp_path):
    source = make_spirit(tmp_path / "a.spirit", tokenizer, proof=0.8, version=3)
    entry = cellar.add(source)
    assert entry["name"] == "timer-v3" and entry["version"] == 3 and entry["proof"] == 0.8
    assert entry["teacher"] == "openai:gpt-4o" and entry["params"] == 1234 and entry["parent"] is None
    assert entry["size"] == source.stat().st_size
    source.unlink()  # the Cellar holds its own copy
    spirit = cellar.load("timer-v3")
    assert spirit.metadata["tasting"]["proof"] == 0.8
    assert cellar.add(cellar.spirit_path(entry), "timer-v3") == entry  # the same file again: nothing changes


def test_a_changed_file_fails_its_sha256_check_on_load(cellar, tokenizer, tmp_path):
    entry = cellar.add(make_spirit(tmp_path / "a.spirit", tokenizer, proof=0.8))
    stored = cellar.spirit_path(entry)
    data = bytearray(stored.read_bytes())
    data[-1] ^= 0xFF  # one bit of the weights
    stored.write_bytes(bytes(data))
    with pytest.raises(CellarError, match="sha256"):
        cellar.load("timer-v1")


def test_a_taken_name_needs_replace_and_an_aliased_name_cannot_be_replaced(cellar, tokenizer, tmp_path):
    cellar.add(make_spirit(tmp_path / "a.spirit", tokenizer, proof=0.8))
    other = make_spirit(tmp_path / "b.spirit", tokenizer, proof=0.6, seed=1)
    with pytest.raises(CellarError, match="--replace"):
        cellar.add(other, "timer-v1")
    cellar.set_alias("prod", "timer-v1")
    with pytest.raises(CellarError, match="gate"):
        cellar.add(other, "timer-v1", replace=True)
    cellar.remove_alias("prod")
    replaced = cellar.add(other, "timer-v1", replace=True)
    assert cellar.resolve("timer-v1")["proof"] == 0.6 == replaced["proof"]
    assert len(list((cellar.root / "spirits").glob("*.spirit"))) == 1  # the old file went with its name


def test_names_are_checked_and_never_become_paths(cellar, tokenizer, tmp_path):
    source = make_spirit(tmp_path / "a.spirit", tokenizer, proof=0.8)
    for bad in ("../evil", "a/b", ".hidden", "x" * 65):
        with pytest.raises(CellarError, match="not allowed"):
            cellar.add(source, bad)
    with pytest.raises(CellarError, match="no Spirit or alias"):
        cellar.resolve("../../etc/passwd")


def test_the_gate_refuses_a_weaker_spirit_and_rollback_returns_to_the_previous_target(cellar, tokenizer, tmp_path):
    cellar.add(make_spirit(tmp_path / "a.spirit", tokenizer, proof=0.82), "strong")
    cellar.add(make_spirit(tmp_path / "b.spirit", tokenizer, proof=0.70, seed=1), "weak")
    cellar.add(make_spirit(tmp_path / "c.spirit", tokenizer, proof=0.90, seed=2), "stronger")
    assert cellar.set_alias("prod", "strong", min_proof=0.8)["target"] == "strong"
    with pytest.raises(CellarError, match="under the gate"):
        cellar.set_alias("prod", "weak")  # the alias keeps its gate
    assert cellar.resolve("prod")["proof"] == 0.82
    cellar.set_alias("prod", "stronger")
    assert cellar.aliases()["prod"]["history"] == ["strong"]
    assert cellar.rollback("prod")["target"] == "strong"
    assert cellar.resolve("prod")["proof"] == 0.82
    with pytest.raises(CellarError, match="no previous target"):
        cellar.rollback("prod")
    with pytest.raises(CellarError, match="outside"):
        cellar.set_alias("prod", "strong", min_proof=80)


def test_a_gate_can_name_any_metric_of_the_notes(cellar, tokenizer, tmp_path):
    cellar.add(make_spirit(tmp_path / "a.spirit", tokenizer, proof=0.9, exact=0.5), "names-only")
    cellar.add(make_spirit(tmp_path / "b.spirit", tokenizer, proof=0.8, exact=0.7, seed=1), "exact")
    with pytest.raises(CellarError, match="exact_call_accuracy 0.5, under the gate"):
        cellar.set_alias("prod", "names-only", gates={"exact_call_accuracy": 0.6})
    assert "prod" not in cellar.aliases()
    record = cellar.set_alias("prod", "exact", gates={"exact_call_accuracy": 0.6})
    assert record["gates"] == {"exact_call_accuracy": 0.6} and record["min_proof"] is None
    record = cellar.set_alias("prod", "exact", min_proof=0.75)  # gates add up and stay
    assert record["gates"] == {"exact_call_accuracy": 0.6, "proof": 0.75}
    with pytest.raises(CellarError, match="no 'latency' in its tasting notes.*exact_call_accuracy"):
        cellar.set_alias("prod", "exact", gates={"latency": 1.0})


def test_an_alias_target_cannot_be_removed_and_a_removed_name_leaves_the_history(cellar, tokenizer, tmp_path):
    cellar.add(make_spirit(tmp_path / "a.spirit", tokenizer, proof=0.8), "one")
    cellar.add(make_spirit(tmp_path / "b.spirit", tokenizer, proof=0.8, seed=1), "two")
    cellar.set_alias("prod", "one")
    cellar.set_alias("prod", "two")
    with pytest.raises(CellarError, match="points at"):
        cellar.remove("two")
    cellar.remove("one")
    assert cellar.aliases()["prod"]["history"] == []
    assert sorted(cellar.entries()) == ["two"]
    assert len(list((cellar.root / "spirits").glob("*.spirit"))) == 1


def test_alias_file_is_replaced_whole_and_concurrent_writers_lose_nothing(cellar, tokenizer, tmp_path):
    cellar.add(make_spirit(tmp_path / "a.spirit", tokenizer, proof=0.8), "one")
    cellar.set_alias("prod", "one")
    before = cellar.aliases_path.stat().st_ino
    cellar.set_alias("staging", "one")
    assert cellar.aliases_path.stat().st_ino != before  # a new file moved into place, not a rewrite
    assert not list(cellar.root.glob(".*.tmp"))

    errors = []

    def point(i: int) -> None:
        try:
            Cellar(cellar.root).set_alias(f"a{i}", "one")  # each thread its own instance and lock handle
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=point, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert set(Cellar(cellar.root).aliases()) == {"prod", "staging", *(f"a{i}" for i in range(12))}


def test_diff_compares_headline_numbers(cellar, tokenizer, tmp_path):
    cellar.add(make_spirit(tmp_path / "a.spirit", tokenizer, proof=0.7, exact=0.4), "a")
    cellar.add(make_spirit(tmp_path / "b.spirit", tokenizer, proof=0.8, exact=0.55, seed=1), "b")
    rows = {k: (va, vb, d) for k, va, vb, d in cellar.diff("a", "b")}
    assert rows["proof"][2] == pytest.approx(0.1)
    assert rows["exact_call_accuracy"] == (0.4, 0.55, pytest.approx(0.15))


def test_cli_lists_shows_diffs_and_refuses_bad_input_with_exit_2(tokenizer, tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILLERY_CELLAR", str(tmp_path / "cli-cellar"))
    runner = CliRunner()
    a = make_spirit(tmp_path / "a.spirit", tokenizer, proof=0.81, version=1)
    b = make_spirit(tmp_path / "b.spirit", tokenizer, proof=0.64, version=2, seed=1)
    assert runner.invoke(app, ["cellar", "add", str(a)]).exit_code == 0
    assert runner.invoke(app, ["cellar", "add", str(b), "--name", "candidate"]).exit_code == 0
    listed = runner.invoke(app, ["cellar"])
    assert listed.exit_code == 0
    assert "timer-v1" in listed.output and "candidate" in listed.output and "81°" in listed.output
    assert "openai:gpt-4o" in listed.output

    assert runner.invoke(app, ["cellar", "alias", "set", "prod", "timer-v1", "--min-proof", "0.8"]).exit_code == 0
    refused = runner.invoke(app, ["cellar", "alias", "set", "prod", "candidate"])
    assert refused.exit_code == 2 and "under the gate" in refused.output and "Traceback" not in refused.output
    gated = runner.invoke(app, ["cellar", "alias", "set", "prod", "timer-v1", "--min", "exact_call_accuracy=0.3"])
    assert gated.exit_code == 0 and "exact_call_accuracy >= 0.3" in gated.output and "proof >= 0.8" in gated.output
    bad = runner.invoke(app, ["cellar", "alias", "set", "prod", "timer-v1", "--min", "exact_call_accuracy"])
    assert bad.exit_code == 2 and "METRIC=VALUE" in bad.output
    shown = runner.invoke(app, ["cellar", "show", "prod"])
    assert shown.exit_code == 0 and "81°" in shown.output and "exact_call_accuracy" in shown.output
    diff = runner.invoke(app, ["cellar", "diff", "timer-v1", "candidate", "--json"])
    rows = {r["metric"]: r for r in json.loads(diff.output)}
    assert rows["proof"]["delta"] == pytest.approx(-0.17)
    missing = runner.invoke(app, ["cellar", "show", "nope"])
    assert missing.exit_code == 2 and "nope" in missing.output
    assert runner.invoke(app, ["cellar", "add", str(tmp_path / "missing.spirit")]).exit_code == 2
    assert runner.invoke(app, ["cellar", "rm", "timer-v1"]).exit_code == 2  # prod points at it


def test_register_adds_a_distilled_spirit_and_a_cellar_failure_keeps_the_run(tokenizer, tmp_path, monkeypatch,
                                                                             capsys):
    run_dir = tmp_path / "runs" / "timer-v1"
    spirit = make_spirit(run_dir / "timer.spirit", tokenizer, proof=0.75)
    (run_dir / "tasting").mkdir()
    (run_dir / "tasting" / "notes.json").write_text(json.dumps(
        {"proof": 0.75, "recipe_sha256": "1" * 64, "strengths": ["set_timer: 5/5 calls exact"], "metrics": {}}))
    monkeypatch.setenv("DISTILLERY_CELLAR", str(tmp_path / "home-cellar"))
    register(spirit)
    assert "registered as" in capsys.readouterr().err
    notes = Cellar().notes("timer-v1")  # the full notes beside the Spirit came in with it
    assert notes["strengths"] == ["set_timer: 5/5 calls exact"]

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the Cellar should be")
    monkeypatch.setenv("DISTILLERY_CELLAR", str(blocked))
    register(spirit)  # must not raise
    assert "not registered" in capsys.readouterr().err
    assert spirit.is_file()
