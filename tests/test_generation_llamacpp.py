"""examples/reply.yaml scaled down, against a real OpenAI-compatible server on loopback:
llama.cpp's server serving SmolLM2-135M-Instruct (the fixture of test_teachers_llamacpp.py) as
both the teacher that writes the replies and the llm judge that grades the student's. A tiny
student, sixteen requests: what is tested is the wire, the judge's reasons in the notes, and
that a re-tasting asks the server for nothing (every grade is in the judge's journal)."""

from __future__ import annotations

import json

import pytest
import yaml
from test_teachers_llamacpp import EXAMPLES, CountingProxy, llama_server  # noqa: F401 (a fixture)

from distillery.jsonl import read_jsonl
from distillery.pipeline import Run
from distillery.recipe import load_recipe

pytestmark = pytest.mark.integration


def scaled_down(url: str, samples: int = 8) -> dict:
    data = yaml.safe_load((EXAMPLES / "reply.yaml").read_text())
    data["task"]["max_words"] = 30  # short replies: fewer tokens for a 135M model on one thread to write
    data["teacher"] = {**data["teacher"], "base_url": url, "max_tokens": 80}
    data["judge"] = {**data["judge"], "max_tokens": 100}
    data["mash"] = {"inputs": "requests.jsonl", "total_examples": 16}
    data["cuts"] = {"hearts": 0.75, "heads": 0.25}
    data["student"] = {"kind": "tiny", "d_model": 64, "n_layers": 1, "n_heads": 2, "n_kv_heads": 1, "d_ff": 128,
                       "max_seq_len": 192, "vocab_size": 512}
    # Enough steps that the student writes words (an untrained one writes nothing, and nothing is not graded).
    data["still"] = {"epochs": 8, "batch_size": 2, "lr": 5e-3}
    # Sampled: a student this small, greedy, repeats its most frequent token (a space) and says nothing.
    data["tasting"] = {"proof": "judge", "max_new_tokens": 24, "samples": samples, "temperature": 1.0, "top_p": 0.95}
    return data


def test_smollm2_writes_the_replies_and_grades_the_students_with_reasons(llama_server, tmp_path):  # noqa: F811
    lines = (EXAMPLES / "reply_inputs.jsonl").read_text().splitlines()[:16]
    (tmp_path / "requests.jsonl").write_text("\n".join(lines) + "\n")
    recipe = tmp_path / "reply.yaml"
    with CountingProxy(llama_server) as proxy:
        recipe.write_text(yaml.safe_dump(scaled_down(proxy.url)))
        run = Run(load_recipe(recipe), runs_root=tmp_path / "runs")
        run.run()
        notes = json.loads((run.dir / "tasting" / "notes.json").read_text())
        heads = read_jsonl(run.dir / "cuts" / "heads.jsonl")
        mash = read_jsonl(run.dir / "mash.jsonl")
        assert mash and all(ex["teacher"]["model"] == "smollm2-135m" and ex["output"] for ex in mash)

        assert notes["proof_metric"] == "judge_score" and notes["n_eval"] == len(heads) > 0
        samples = notes["samples"]
        assert [s["score"] for s in samples] == sorted(s["score"] for s in samples)  # the worst first
        assert all(s["reason"] for s in samples)
        # Every answer is graded, with the judge's own reason (llama.cpp keeps its answer to the JSON schema).
        assert all(s["score"] > 0 for s in samples), samples
        md = (run.dir / "tasting" / "notes.md").read_text()
        assert "Worst samples: the judge's reasons" in md and samples[0]["reason"][:40] in md
        graded = [r for r in notes["predictions"] if r["predicted"].strip()]
        journal = read_jsonl(run.dir / "journal" / "judge" / "responses.jsonl")
        assert len(journal) == len(graded) == notes["judge"]["requests_sent"]
        assert all(record["model"] == "smollm2-135m" for record in journal)

        # Another look at the same student: the Tasting is redone and every grade comes from the journal.
        answered = len(proxy.answered)
        recipe.write_text(yaml.safe_dump(scaled_down(proxy.url, samples=9)))
        Run(load_recipe(recipe), runs_root=tmp_path / "runs").run()
        again = json.loads((run.dir / "tasting" / "notes.json").read_text())
        assert len(proxy.answered) == answered, "a re-tasting sent requests the journal holds"
        assert again["judge"]["requests_sent"] == 0 and again["judge"]["replayed"] == len(graded)
        assert [r["score"] for r in again["predictions"]] == [r["score"] for r in notes["predictions"]]
