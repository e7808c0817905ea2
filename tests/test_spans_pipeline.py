"""Span extraction end to end: the Mash, constrained decoding, span-F1 as the proof."""

import json
import random

import pytest

from typer.testing import CliRunner

from distillery.cli import app
from distillery.pipeline import Run, make_teacher
from distillery.recipe import recipe_from_dict
from distillery.tasks import task_for
from distillery.tasks.spans.task import answer_schema, check_spans

TYPES = {"email": "an email address", "phone": "a phone number"}
FRAMES = ["write to {e} please", "my number is {p}", "call {p} or mail {e}", "reach me at {e}",
          "text me on {p} tonight", "nothing to share today", "send it to {e}, thanks", "ring {p} after six"]
NAMES = ["dana", "li.wei", "omar", "sofia.r", "ken", "maria_g", "tom", "aisha", "jo.kim", "pablo"]
HOSTS = ["example.com", "mail.org", "acme.io", "work.net"]


def span_file(path, n=300):
    rng, lines = random.Random(0), []
    for i in range(n):
        e = f"{rng.choice(NAMES)}{rng.randint(1, 99)}@{rng.choice(HOSTS)}"
        p = f"{rng.randint(200, 999)}-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}"
        frame = FRAMES[i % len(FRAMES)]
        text = frame.format(e=e, p=p)
        spans = sorted([(text.index(v), {"type": t, "text": v}) for t, v in (("email", e), ("phone", p))
                        if "{" + t[0] + "}" in frame], key=lambda pair: pair[0])
        lines.append(json.dumps({"text": text, "spans": [s for _, s in spans]}))
    path.write_text("\n".join(lines) + "\n")


def recipe(tmp_path, teacher):
    return recipe_from_dict({
        "name": "contacts", "task": {"kind": "spans", "types": TYPES}, "teacher": teacher,
        "mash": {"total_examples": 300}, "cuts": {"hearts": 0.9, "heads": 0.1},
        "student": {"kind": "tiny", "d_model": 64, "n_layers": 2, "n_heads": 2, "n_kv_heads": 1, "d_ff": 128,
                    "max_seq_len": 128, "vocab_size": 512},
        "still": {"epochs": 10, "batch_size": 16, "lr": 3e-3}}, base_dir=tmp_path)


def test_the_answer_grammar_only_points_into_the_text():
    schema = answer_schema(["email"], "mail bob@x.io now")
    assert "bob@x.io" in schema["items"]["properties"]["text"]["enum"]
    assert "alice@y.io" not in schema["items"]["properties"]["text"]["enum"]
    assert check_spans([{"type": "email", "text": "alice@y.io"}], "mail bob@x.io", TYPES).startswith("not_a_span")
    assert check_spans([{"type": "name", "text": "bob"}], "mail bob", TYPES).startswith("unknown_type")


def test_the_offline_teacher_fills_a_mash_of_valid_spans(tmp_path):
    r = recipe(tmp_path, {"provider": "offline"})
    task = task_for(r)
    stats = task.build_mash(make_teacher(r, task=task), tmp_path / "run")
    rows = [json.loads(line) for line in (tmp_path / "run" / "mash.jsonl").read_text().splitlines()]
    assert stats.accepted == len(rows) == 300
    assert all(check_spans(row["spans"], row["utterance"], TYPES) is None for row in rows)
    assert 0.05 < sum(not row["spans"] for row in rows) / len(rows) < 0.3  # some messages carry none


@pytest.fixture(scope="module")
def extractor(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("extractor")
    span_file(tmp_path / "spans.jsonl")
    run = Run(recipe(tmp_path, {"provider": "replay", "traces": "spans.jsonl"}), runs_root=tmp_path / "runs")
    run.run()
    return run


def test_labelled_spans_distill_into_an_extractor_that_finds_them(extractor):
    run = extractor
    notes = json.loads((run.dir / "tasting" / "notes.json").read_text())
    assert notes["proof_metric"] == "span_f1" and notes["proof"] == notes["metrics"]["span_f1"]
    # A student that learned nothing answers [] or junk: ~0 on both. This one finds the spans but
    # often starts a phone number late ("931-4858"), so exact F1 trails the overlap F1.
    assert notes["metrics"]["partial_f1"] >= 0.6 and notes["proof"] >= 0.3, notes["metrics"]
    assert set(notes["per_type"]) == set(TYPES)
    said = CliRunner().invoke(app, ["predict", str(run.spirit_path()), "write to dana7@acme.io please"])
    assert said.exit_code == 0
    spans = json.loads(said.stdout)["spans"]
    assert spans and all(s["text"] in "write to dana7@acme.io please" for s in spans)


def test_the_extractor_answers_the_openai_client_with_spans_as_json(extractor):
    import openai

    from distillery.cellar import Cellar
    from distillery.serve import create_app
    from test_serve import Server

    cellar = Cellar(extractor.dir / "served-cellar")
    name = cellar.add(extractor.spirit_path())["name"]
    server = Server(create_app(cellar))
    try:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
        text = "write to dana7@acme.io please"
        reply = client.chat.completions.create(model=name, messages=[{"role": "user", "content": text}])
        spans = json.loads(reply.choices[0].message.content)["spans"]
        assert spans and all(s["type"] in TYPES and s["text"] in text for s in spans)
        with pytest.raises(openai.BadRequestError, match="response_format"):
            client.chat.completions.create(model=name, messages=[{"role": "user", "content": text}],
                                           response_format={"type": "json_schema", "json_schema": {"name": "x"}})
    finally:
        server.stop()


@pytest.mark.parametrize("fmt", ["hf", "onnx", "gguf"])
def test_every_bottle_of_the_extractor_finds_the_spirits_spans(extractor, tmp_path, fmt):
    runner = CliRunner()
    made = runner.invoke(app, ["bottle", str(extractor.spirit_path()), "--format", fmt, "--out", str(tmp_path)])
    assert made.exit_code == 0, made.output
    out = json.loads(made.stdout)
    assert out["same_calls_as_spirit"] == 1.0 and out["difference"] == 0.0 and "span_f1" in out
    requests = tmp_path / "requests.jsonl"
    requests.write_text('{"id": 1, "text": "write to dana7@acme.io please"}\n{"id": 2, "text": "nothing today"}\n')
    rows = runner.invoke(app, ["predict", out["bottle"], "--input", str(requests)])
    assert rows.exit_code == 0, rows.output
    answers = [json.loads(line) for line in rows.stdout.splitlines()]
    assert [a["id"] for a in answers] == [1, 2] and all(s["text"] in "write to dana7@acme.io please"
                                                        for s in answers[0]["spans"])
    if fmt == "gguf":  # llama.cpp's grammar of the answer: the declared types only
        gbnf = (tmp_path / "contacts.gbnf").read_text()
        assert '"\\"email\\""' in gbnf and '"\\"phone\\""' in gbnf
