"""Classification end to end: the Recipe's `task:` section, the Mash from a labelled file,
label-constrained decoding, macro-F1 as the proof and the teacher-vs-student verdict."""

import json
import random

import pytest
from typer.testing import CliRunner

from distillery.cli import app
from distillery.errors import RecipeError
from distillery.pipeline import Run
from distillery.recipe import recipe_from_dict

LABELS = {"weather": "asks about the weather", "music": "asks to play music", "timer": "asks for a timer"}
WORDS = {
    "weather": ["will it rain in {c}", "forecast for {c} tomorrow", "is it sunny in {c}", "how cold is {c} today",
                "temperature in {c} this weekend", "do I need an umbrella in {c}"],
    "music": ["play some {g}", "put on {g} music", "I want to hear {g}", "start a {g} playlist",
              "queue up {g} songs", "music please, {g}"],
    "timer": ["set a timer for {n} minutes", "timer {n} minutes", "count down {n} minutes",
              "remind me in {n} minutes", "start a {n} minute timer", "wake me in {n} minutes"],
}
CITIES = ["Paris", "Oslo", "Lima", "Tokyo", "Cairo", "Quito", "Perth", "Dublin", "Seoul", "Austin", "Rome", "Lagos"]
GENRES = ["jazz", "rock", "techno", "folk", "opera", "blues", "reggae", "punk", "salsa", "grunge", "soul", "disco"]


def labelled_file(path, n=240, wrong_every=25):
    """Lines with the truth in `expected`; every `wrong_every`-th line the teacher's `label` is wrong."""
    rng = random.Random(0)
    lines = []
    for i in range(n):
        label = list(LABELS)[i % 3]
        text = rng.choice(WORDS[label]).format(c=rng.choice(CITIES), g=rng.choice(GENRES), n=rng.randint(1, 99))
        row = {"question": f"{text} #{i}", "expected": label}
        if i % wrong_every == 0:
            row["label"] = list(LABELS)[(i + 1) % 3]  # a teacher's mistake
        lines.append(json.dumps(row))
    path.write_text("\n".join(lines) + "\n")
    return path


def recipe(tmp_path, **task):
    labelled_file(tmp_path / "labelled.jsonl")
    return {"name": "router", "task": {"kind": "classification", "labels": LABELS, **task},
            "teacher": {"provider": "replay", "traces": "labelled.jsonl"}, "mash": {"total_examples": 240},
            "cuts": {"hearts": 0.75, "heads": 0.25},
            "student": {"kind": "tiny", "d_model": 64, "n_layers": 1, "n_heads": 2, "n_kv_heads": 1, "d_ff": 128,
                        "max_seq_len": 128, "vocab_size": 512},
            "still": {"epochs": 12, "batch_size": 16, "lr": 3e-3}}


def test_tool_settings_and_a_catalog_are_refused_for_classification(tmp_path):
    data = recipe(tmp_path)
    assert recipe_from_dict(data, base_dir=tmp_path).task.labels == LABELS
    data["mash"]["no_call_ratio"] = 0.2
    data["tools"] = [{"name": "f", "description": "", "parameters": {"type": "object", "properties": {}}}]
    with pytest.raises(RecipeError) as err:
        recipe_from_dict(data, base_dir=tmp_path)
    assert "mash.no_call_ratio: only a tool_calling task reads it" in str(err.value)
    assert "tools: a classification task has no tool catalog" in str(err.value)
    data = recipe(tmp_path)
    data["tasting"] = {"grammar": False}
    data["teacher"]["temperature"] = 0.5
    with pytest.raises(RecipeError) as err:
        recipe_from_dict(data, base_dir=tmp_path)
    assert "tasting.grammar: a classification Spirit always decodes" in str(err.value)
    assert "teacher.temperature: a replayed file is not sampled" in str(err.value)


@pytest.fixture(scope="module")
def router(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("router")
    run = Run(recipe_from_dict(recipe(tmp_path), base_dir=tmp_path), runs_root=tmp_path / "runs")
    run.run()
    return run


def test_a_label_file_distills_into_a_classifier_that_beats_chance(router, tmp_path):
    run = router
    notes = json.loads((run.dir / "tasting" / "notes.json").read_text())
    assert notes["proof_metric"] == "macro_f1" and notes["proof"] == notes["metrics"]["macro_f1"]
    assert notes["proof"] >= 0.8  # chance is 1/3: a student that learned nothing fails here
    assert set(notes["confusion"]["labels"]) == set(LABELS)
    assert (run.dir / "tasting" / "confusion.png").read_bytes().startswith(b"\x89PNG")
    assert "Teacher vs student" in (run.dir / "tasting" / "notes.md").read_text()
    # Teacher mistakes are kept in the heads (the verdict needs them) but never trained on.
    heads = [json.loads(line) for line in (run.dir / "cuts" / "heads.jsonl").read_text().splitlines()]
    wrong = [h for h in heads if h["label"] != h["expected"]]
    verdict = notes["verdict"]
    assert verdict["n"] == len(heads) and verdict["teacher_accuracy"] == pytest.approx(1 - len(wrong) / len(heads))
    assert verdict["errors"]["inherited"] + verdict["student_fixes"] == len(wrong)
    assert verdict["verdict"] in ("viable", "marginal", "not ready")

    spirit = run.spirit_path()
    runner = CliRunner()
    said = runner.invoke(app, ["predict", str(spirit), "will it rain in Oslo tomorrow"])
    assert said.exit_code == 0 and json.loads(said.stdout) == {"label": "weather"}
    requests = tmp_path / "requests.jsonl"
    requests.write_text('{"id": 1, "text": "play some jazz"}\n{"id": "b", "messages": [{"role": "user", '
                        '"content": "set a timer for 5 minutes"}]}\n')
    rows = runner.invoke(app, ["predict", str(spirit), "--input", str(requests)])
    assert rows.exit_code == 0, rows.output
    assert [{k: v for k, v in json.loads(line).items() if k != "latency_ms"} for line in rows.stdout.splitlines()] \
        == [{"id": 1, "label": "music"}, {"id": "b", "label": "timer"}]
    refused = runner.invoke(app, ["predict", str(spirit), "play jazz", "--no-grammar"])
    assert refused.exit_code == 2 and "always decodes within its answers" in refused.output


@pytest.mark.parametrize("fmt", ["hf", "onnx", "gguf", "pt"])
def test_every_bottle_of_the_classifier_answers_as_the_spirit(router, tmp_path, fmt):
    runner = CliRunner()
    made = runner.invoke(app, ["bottle", str(router.spirit_path()), "--format", fmt, "--out", str(tmp_path)])
    assert made.exit_code == 0, made.output
    out = json.loads(made.stdout)
    assert out["same_calls_as_spirit"] == 1.0 and out["difference"] == 0.0 and "macro_f1" in out
    said = runner.invoke(app, ["predict", out["bottle"], "will it rain in Oslo tomorrow"])
    assert said.exit_code == 0 and json.loads(said.stdout) == {"label": "weather"}
    tasted = runner.invoke(app, ["taste", out["bottle"]])  # on the heads the bottle carries
    assert tasted.exit_code == 0, tasted.output
    assert json.loads(tasted.stdout)["macro_f1"] == out["macro_f1"]
    if fmt == "hf":  # the label set is in the chat template: transformers alone writes the Spirit's prompt
        from transformers import AutoTokenizer

        from distillery.spirit import load_spirit

        spirit = load_spirit(router.spirit_path())
        text = AutoTokenizer.from_pretrained(out["bottle"]).apply_chat_template(
            [{"role": "user", "content": "play jazz"}], tokenize=False)
        assert text == spirit.format.framed("play jazz", spirit.task.fixed_context())
        assert "text-classification" in (tmp_path / "router-hf" / "README.md").read_text()


def test_a_classifier_has_no_web_page(router, tmp_path):
    refused = CliRunner().invoke(app, ["bottle", str(router.spirit_path()), "--format", "web", "--out",
                                       str(tmp_path)])
    assert refused.exit_code == 2 and "answers tool calls only" in refused.output


def test_an_offline_teacher_cannot_label_and_says_what_to_do(tmp_path):
    data = recipe(tmp_path)
    data["teacher"] = {"provider": "offline"}
    result = CliRunner().invoke(app, ["distill", str(_write(tmp_path, data))])
    assert result.exit_code == 2 and "provider: replay" in result.output and "Traceback" not in result.output


def _write(tmp_path, data):
    import yaml

    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_classifier_answers_the_openai_client_with_its_label_as_json(router):
    import openai

    from distillery.cellar import Cellar
    from distillery.serve import create_app
    from test_serve import Server

    cellar = Cellar(router.dir / "served-cellar")
    name = cellar.add(router.spirit_path())["name"]
    server = Server(create_app(cellar))
    try:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
        reply = client.chat.completions.create(model=name, messages=[{"role": "user", "content": "play some jazz"}],
                                               response_format={"type": "json_object"})
        assert json.loads(reply.choices[0].message.content) == {"label": "music"}
        assert reply.choices[0].finish_reason == "stop" and not reply.choices[0].message.tool_calls
        streamed = client.chat.completions.create(model=name, messages=[{"role": "user", "content": "play some jazz"}],
                                                  stream=True)
        assert json.loads("".join(c.choices[0].delta.content or "" for c in streamed if c.choices)) == \
            {"label": "music"}
        with pytest.raises(openai.BadRequestError, match="calls no tools"):
            client.chat.completions.create(model=name, messages=[{"role": "user", "content": "hi"}], tools=[
                {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}])
    finally:
        server.stop()


class FakeLabeller:
    """An OpenAI-compatible teacher that labels by keyword, and gets every tenth input wrong."""

    def __init__(self):
        self.bodies = []

    def handler(self, request):
        import httpx

        body = json.loads(request.content)
        self.bodies.append(body)
        text = body["messages"][-1]["content"]
        label = next(name for name, words in (("weather", ("rain", "forecast", "sunny", "cold", "temperature",
                                                            "umbrella")), ("music", ("play", "music", "hear",
                                                            "playlist", "songs")), ("timer", ("")))
                     if any(w and w in text for w in words) or name == "timer")
        if int(text.rsplit("#", 1)[1]) % 10 == 3:
            label = "timer" if label != "timer" else "music"  # the teacher's mistake
        content = json.dumps({"label": label})
        return httpx.Response(200, json={"id": "x", "object": "chat.completion", "model": body["model"],
                                         "choices": [{"index": 0, "finish_reason": "stop",
                                                      "message": {"role": "assistant", "content": content}}],
                                         "usage": {"prompt_tokens": 60, "completion_tokens": 6, "total_tokens": 66}})


def test_an_llm_teacher_labels_the_inputs_and_its_mistakes_show_as_inherited(tmp_path, monkeypatch):
    import httpx

    from distillery import pipeline

    fake = FakeLabeller()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
    monkeypatch.setattr(pipeline, "make_teacher", lambda r, **kw: pipeline.OpenAITeacher(
        model=r.teacher.model, base_url=r.teacher.base_url, key_env=None, transport=httpx.MockTransport(fake.handler)))
    data = recipe(tmp_path)
    (tmp_path / "inputs.jsonl").write_text("\n".join(
        json.dumps({k: v for k, v in json.loads(line).items() if k != "label"})  # the truth only
        for line in (tmp_path / "labelled.jsonl").read_text().splitlines()) + "\n")
    data["teacher"] = {"provider": "openai", "model": "gpt-4o-mini"}
    data["mash"]["inputs"] = "inputs.jsonl"
    run = Run(recipe_from_dict(data, base_dir=tmp_path), runs_root=tmp_path / "runs")
    run.run()
    assert len(fake.bodies) == 240 and fake.bodies[0]["temperature"] == 0.0
    assert "response_format" in fake.bodies[0] and "weather: asks about the weather" in \
        fake.bodies[0]["messages"][0]["content"]
    mash = [json.loads(line) for line in (run.dir / "mash.jsonl").read_text().splitlines()]
    wrong = [ex for ex in mash if ex["label"] != ex["expected"]]
    assert len(wrong) == 24 and all(ex["teacher"]["model"] == "gpt-4o-mini" for ex in mash)
    verdict = json.loads((run.dir / "tasting" / "notes.json").read_text())["verdict"]
    assert 0.8 < verdict["teacher_accuracy"] < 1.0
    assert verdict["errors"]["inherited"] + verdict["student_fixes"] == round((1 - verdict["teacher_accuracy"]) *
                                                                              verdict["n"])
    # A second run asks nothing: every answer is in the journal.
    fake.bodies.clear()
    shutil_run = Run(recipe_from_dict({**data, "version": 2}, base_dir=tmp_path), runs_root=tmp_path / "runs")
    (tmp_path / "runs" / "router-v2").mkdir(parents=True)
    import shutil

    shutil.copytree(run.dir / "journal", tmp_path / "runs" / "router-v2" / "journal")
    shutil_run.run(until="mash")
    assert fake.bodies == []


class FakeWriter:
    """An OpenAI-compatible teacher that writes the examples it is asked for: `n` messages of the
    label the request names, one in ten given the wrong label (a teacher's mistake)."""

    def __init__(self):
        self.bodies = []

    def handler(self, request):
        import httpx

        body = json.loads(request.content)
        self.bodies.append(body)
        ask = body["messages"][-1]["content"]
        label = next(name for name in LABELS if f"clearly `{name}`" in ask)
        n = body["response_format"]["json_schema"]["schema"]["properties"]["examples"]["maxItems"]
        rng = random.Random(len(self.bodies))
        examples = []
        for i in range(n):
            text = rng.choice(WORDS[label]).format(c=rng.choice(CITIES), g=rng.choice(GENRES), n=rng.randint(1, 99))
            said = label if (len(self.bodies) + i) % 10 else list(LABELS)[(list(LABELS).index(label) + 1) % 3]
            examples.append({"text": f"{text} ({len(self.bodies)}.{i})", "label": said})
        content = json.dumps({"examples": examples})
        return httpx.Response(200, json={"id": "x", "object": "chat.completion", "model": body["model"],
                                         "choices": [{"index": 0, "finish_reason": "stop",
                                                      "message": {"role": "assistant", "content": content}}],
                                         "usage": {"prompt_tokens": 200, "completion_tokens": 300,
                                                   "total_tokens": 500}})


def test_an_llm_teacher_writes_examples_per_label_and_estimate_counts_its_requests(tmp_path, monkeypatch):
    import httpx

    from distillery import pipeline
    from distillery.tasks import task_for

    fake = FakeWriter()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
    monkeypatch.setattr(pipeline, "make_teacher", lambda r, **kw: pipeline.OpenAITeacher(
        model=r.teacher.model, base_url=r.teacher.base_url, key_env=None, transport=httpx.MockTransport(fake.handler)))
    data = recipe(tmp_path)
    data["teacher"] = {"provider": "openai", "model": "gpt-4o-mini"}
    data["mash"] = {"total_examples": 60, "examples_per_call": 10}
    r = recipe_from_dict(data, base_dir=tmp_path)
    guess = task_for(r).estimate()
    run = Run(r, runs_root=tmp_path / "runs")
    run.run(until="mash")
    assert guess["requests"] == len(fake.bodies) == 6  # two rounds of the three labels, ten examples each
    assert guess["usd"] > 0 and fake.bodies[0]["temperature"] == r.teacher.temperature
    mash = [json.loads(line) for line in (run.dir / "mash.jsonl").read_text().splitlines()]
    assert len(mash) == 60
    # The label is what the teacher said, not what it was asked for; every label has its share.
    said = {name: sum(ex["label"] == name for ex in mash) for name in LABELS}
    assert all(15 <= count <= 25 for count in said.values()), said
    assert sum(ex["label"] != ex["asked_for"] for ex in mash) == 6
    assert all(ex["teacher"]["model"] == "gpt-4o-mini" and ex["utterance"] for ex in mash)


def test_generation_and_labelling_each_refuse_what_the_other_reads(tmp_path):
    data = recipe(tmp_path)
    # An LLM without inputs writes examples: it samples, examples_per_call a request.
    data["teacher"] = {"provider": "openai", "temperature": 0.8}
    data["mash"]["examples_per_call"] = 5
    assert recipe_from_dict(data, base_dir=tmp_path).mash.examples_per_call == 5
    # An LLM with inputs labels them, one a request, greedily.
    (tmp_path / "inputs.jsonl").write_text('{"question": "is it sunny"}\n')
    data["mash"]["inputs"] = "inputs.jsonl"
    with pytest.raises(RecipeError) as err:
        recipe_from_dict(data, base_dir=tmp_path)
    assert "mash.examples_per_call: only an LLM teacher that writes examples reads it" in str(err.value)
    assert "teacher.temperature: labels are asked for greedily" in str(err.value)
    del data["mash"]["examples_per_call"]
    data["teacher"] = {"provider": "replay", "traces": "labelled.jsonl"}
    data["mash"]["inputs"] = "labelled.jsonl"
    with pytest.raises(RecipeError, match="mash.inputs: only an LLM teacher"):
        recipe_from_dict(data, base_dir=tmp_path)
