"""The Recipe: defaults, validation messages and hashes."""

import json
import textwrap

import pytest
import yaml
from pydantic import BaseModel

import distillery.recipe as recipe_module
import distillery.tasks.tool_calling.task as tool_task
from distillery.errors import CatalogError, RecipeError
from distillery.recipe import Recipe, load_recipe, recipe_from_dict
from distillery.tasks.tool_calling.schema import Param, Tool

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "City name."}},
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "send_email",
            "description": "Send an email.",
            "parameters": {
                "type": "object",
                "properties": {"to": {"type": "string"}, "body": {"type": "string"}},
                "required": ["to"],
            },
        },
    },
]


def write(tmp_path, text, name="recipe.yaml", tools=True):
    """Write a recipe (and, by default, its tools.json) into tmp_path; return the recipe path."""
    if tools:
        (tmp_path / "tools.json").write_text(json.dumps(TOOLS))
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems(path):
    """The RecipeError message from loading path."""
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    # Nothing from pydantic or yaml may ride along (it would show as a chained traceback).
    assert err.value.__cause__ is None
    assert err.value.__context__ is None or err.value.__suppress_context__
    return str(err.value)


MINIMAL = """\
    name: needle
    tools: tools.json
"""


def test_minimal_recipe_fills_every_default(tmp_path):
    recipe = load_recipe(write(tmp_path, MINIMAL))
    assert (recipe.name, recipe.version, recipe.task.kind, recipe.seed) == ("needle", 1, "tool_calling", 0)
    assert recipe.tools == "tools.json"
    assert recipe.teacher.provider == "offline" and recipe.teacher.temperature == 0.9
    assert recipe.teacher.max_tokens == 4096 and recipe.teacher.budget_usd is None
    assert recipe.mash.total_examples == 1000 and recipe.mash.examples_per_call == 10
    assert (recipe.mash.tools_per_call.min, recipe.mash.tools_per_call.max) == (3, 6)
    assert recipe.student.kind == "tiny" and recipe.student.d_model == 256 and recipe.student.vocab_size == 4096
    assert (recipe.cuts.hearts, recipe.cuts.heads, recipe.cuts.tails) == (0.9, 0.1, 0.0)
    assert recipe.still.epochs == 8 and recipe.still.lr == 1.0e-3 and recipe.still.threads is None
    assert recipe.tasting.samples == 10
    assert recipe.bottling.formats == [] and recipe.bottling.quantize is None
    assert recipe.source == tmp_path / "recipe.yaml"
    assert recipe.run_dir() == recipe_module.Path("runs/needle-v1")
    assert recipe.run_dir(tmp_path) == tmp_path / "needle-v1"


def test_catalog_is_loaded_from_the_tools_file(tmp_path):
    recipe = load_recipe(write(tmp_path, MINIMAL))
    assert [tool.name for tool in recipe.catalog] == ["get_weather", "send_email"]
    assert recipe.catalog[0].required == ("city",)


def test_inline_tools_and_in_memory_recipe():
    recipe = recipe_from_dict({"name": "inline", "tools": TOOLS, "still": {"epochs": 2}})
    assert recipe.source is None
    assert [tool.name for tool in recipe.catalog] == ["get_weather", "send_email"]
    assert recipe.still.epochs == 2 and recipe.still.batch_size == 16


def test_values_given_are_kept(tmp_path):
    recipe = load_recipe(write(tmp_path, """\
        name: needle.tool-calling
        version: 3
        tools: tools.json
        teacher: {provider: openai, model: gpt-4o-mini, budget_usd: 2.5}
        mash: {tools_per_call: {min: 1, max: 2}, parallel_ratio: 0.3}
        cuts: {hearts: 0.8, heads: 0.15, tails: 0.05}
        still:
          lr: 3.0e-4
        bottling: {formats: [hf, gguf], quantize: f16}
    """))
    assert recipe.run_dir() == recipe_module.Path("runs/needle.tool-calling-v3")
    assert recipe.teacher.model == "gpt-4o-mini" and recipe.teacher.budget_usd == 2.5
    assert recipe.mash.tools_per_call.max == 2 and recipe.mash.parallel_ratio == 0.3
    assert recipe.cuts.tails == 0.05 and recipe.still.lr == 3.0e-4
    assert recipe.bottling.formats == ["hf", "gguf"] and recipe.bottling.quantize == "f16"


def test_exponent_without_a_dot_is_still_a_number(tmp_path):
    # PyYAML reads `3e-4` (no dot) as text; it must still be accepted as the number.
    recipe = load_recipe(write(tmp_path, MINIMAL + "    still: {lr: 3e-4}\n"))
    assert recipe.still.lr == 3e-4


def test_empty_section_means_all_defaults(tmp_path):
    recipe = load_recipe(write(tmp_path, MINIMAL + "    still:\n    #  epochs: 3\n"))
    assert recipe.still.epochs == 8


def test_resolved_yaml_is_complete_ordered_and_round_trips(tmp_path):
    recipe = load_recipe(write(tmp_path, MINIMAL))
    text = recipe.resolved_yaml()
    assert text.startswith("name: needle\nversion: 1\ntask: tool_calling\nseed: 0\ntools: tools.json\nteacher:\n")
    assert "  epochs: 8\n" in text and "  lr: 0.001\n" in text and "  quantize: null\n" in text
    again = recipe_from_dict(yaml.safe_load(text), base_dir=tmp_path)
    assert again.model_dump() == recipe.model_dump() and again.resolved_yaml() == text


def test_sha256_is_stable_and_tracks_changes(tmp_path):
    first = load_recipe(write(tmp_path, MINIMAL))
    assert first.sha256() == load_recipe(tmp_path / "recipe.yaml").sha256()
    assert len(first.sha256()) == 64
    # Writing a default out explicitly is the same recipe.
    explicit = load_recipe(write(tmp_path, MINIMAL + "    still: {epochs: 8, lr: 0.001}\n", name="b.yaml"))
    assert explicit.sha256() == first.sha256()
    changed = load_recipe(write(tmp_path, MINIMAL + "    still: {epochs: 9}\n", name="c.yaml"))
    assert changed.sha256() != first.sha256()


def test_section_sha256_changes_only_with_its_section(tmp_path):
    base = load_recipe(write(tmp_path, MINIMAL))
    longer = load_recipe(write(tmp_path, MINIMAL + "    still: {epochs: 9}\n", name="b.yaml"))
    hotter = load_recipe(write(tmp_path, MINIMAL + "    teacher: {temperature: 1.2}\n", name="c.yaml"))
    assert base.section_sha256("still") != longer.section_sha256("still")
    assert base.section_sha256("teacher") == longer.section_sha256("teacher")
    assert base.section_sha256("still") == hotter.section_sha256("still")
    assert base.section_sha256("teacher") != hotter.section_sha256("teacher")
    for section in ("mash", "student", "cuts", "tasting", "bottling", "tools", "seed"):
        assert base.section_sha256(section) == longer.section_sha256(section) == hotter.section_sha256(section)
    with pytest.raises(ValueError, match="unknown recipe section 'stil'"):
        base.section_sha256("stil")


def test_a_speed_setting_can_be_left_out_of_a_section_hash(tmp_path):
    base = load_recipe(write(tmp_path, MINIMAL))
    threaded = load_recipe(write(tmp_path, MINIMAL + "    still: {threads: 1}\n", name="t.yaml"))
    assert base.section_sha256("still") != threaded.section_sha256("still")
    assert base.section_sha256("still", without=frozenset({"threads"})) == \
        threaded.section_sha256("still", without=frozenset({"threads"}))


def test_tools_section_hash_follows_the_catalog_file(tmp_path):
    path = write(tmp_path, MINIMAL)
    before = load_recipe(path)
    (tmp_path / "tools.json").write_text(json.dumps(TOOLS[:1]))
    after = load_recipe(path)
    assert before.section_sha256("tools") != after.section_sha256("tools")
    assert before.section_sha256("still") == after.section_sha256("still")


def test_report_lists_every_problem_at_once(tmp_path):
    path = write(tmp_path, """\
        name: needle
        tools: tools.json
        studnet: {}
        still:
          epochs: -3
    """, name="bad.yaml")
    assert problems(path) == (
        f"{path} has 2 problems:\n"
        "  still.epochs: -3 is not allowed; it must be at least 1. Fix: set e.g. `epochs: 8`.\n"
        "  studnet: unknown key. Did you mean `student`?"
    )


@pytest.mark.parametrize(
    "extra, expected",
    [
        ("still: {epoch: 3}", "still.epoch: unknown key. Did you mean `epochs`?"),
        ("still: {epochs: many}", 'still.epochs: "many" is not a whole number. Fix: set e.g. `epochs: 8`.'),
        ("still: {epochs: 2.5}", "still.epochs: 2.5 is not a whole number."),
        ("still: {lr: 0}", "still.lr: 0 is not allowed; it must be greater than 0 and at most 1. "
                           "Fix: set e.g. `lr: 0.001`."),
        ("teacher: {temperature: 3}", "teacher.temperature: 3 is not allowed; it must be between 0 and 2."),
        ("teacher: {provider: openia}", 'teacher.provider: "openia" is not one of: offline, openai, '
                                        "anthropic, gemini, replay. Did you mean `openai`?"),
        ("teacher: {provider: replay}", "teacher.traces: missing; the replay provider reads"),
        ("mash: {tools_per_call: {min: 4, max: 2}}", "mash.tools_per_call.max: 2 is less than min (4)."),
        ("mash: {no_call_ratio: 0.6, parallel_ratio: 0.6}",
         "mash.parallel_ratio: no_call_ratio + parallel_ratio = 1.2"),
        ("mash: {total_examples: 5}", "mash.total_examples: 5 is not allowed; it must be at least 10."),
        ("student: {d_model: 250}", "student.n_heads: d_model (250) is not divisible by n_heads (4)."),
        ("student: {d_model: 36, n_heads: 4}", "student.n_heads: head width d_model / n_heads = 9 is odd"),
        ("student: {n_kv_heads: 3}", "student.n_kv_heads: n_heads (4) is not divisible by n_kv_heads (3)."),
        ("student: {kind: tiny, base: ./smol}", "student.base: only a pretrained student (lora or full) has `base`."),
        ("student: {vocab_size: 100}", "student.vocab_size: 100 is not allowed; it must be at least 512."),
        ("student: {kind: lora, d_model: 64}", "student.d_model: a lora student has its base's shape and tokenizer, "
                                               "so `d_model` would do nothing. Fix: remove it"),
        ("student: {kind: full, lora: {r: 8}}", "student.lora: a full fine-tune trains every weight and has no adapters."),
        ("student: {kind: tiny, prompt: json}", "student.prompt: a tiny student reads compact signatures only"),
        ("student: {kind: lora, base: ./missing.gguf}", "student.base: "),
        ("student: {kind: lora, base: 'not a model'}", "student.base: 'not a model' is not a folder, a .gguf file or "
                                                       "a hub id."),
        ("student: {kind: lora, lora: {rank: 8}}", "student.lora.rank: unknown key."),
        ("bottling: {formats: [onnx], quantize: q4_0}", "bottling.quantize: q4_0 is not offered by onnx (onnx: int8)."),
        ("cuts: {hearts: 0.8}", "cuts: hearts + heads + tails = 0.9; they must add up to 1."),
        ("cuts: {hearts: 1.0, heads: 0}",
         "cuts.heads: 0 is not allowed; it must be greater than 0 and at most 1."),
        ("tasting: {samples: 3}", "tasting.samples: 3 is not allowed; it must be at least 8."),
        ("still: {precision: fp8}", 'still.precision: "fp8" is not one of: auto, fp32, bf16.'),
        ("bottling: {formats: [onnx, gguff]}", 'bottling.formats[1]: "gguff" is not one of: hf, onnx, gguf, '
                                              "pt, web. Did you mean `gguf`?"),
        ("still: 5", "still: 5 is not a mapping."),
        ("still: {epochs: yes}", "still.epochs: true is not a number. Fix: set e.g. `epochs: 8`."),
        ("still: {threads: 0}", "still.threads: 0 is not allowed; it must be at least 1. "
                                "Fix: set e.g. `threads: 4`."),
        ("teacher: {model: 5}", "teacher.model: 5 is not text."),
        ("bottling: {formats: onnx}", 'bottling.formats: "onnx" is not a list. '
                                      "Fix: set e.g. `formats: [onnx, gguf]`."),
        ("task: routing", 'task.kind: "routing" is a classification task. Fix: `task: {kind: classification'),
        ("task: text_to_sql", 'task.kind: "text_to_sql" is not supported yet; supported: tool_calling, classification, spans, generation.'),
        ("task: {kind: classification, labels: {a: one}}", "task.labels: a classification task needs at least two"),
        ("task: {kind: tool_calling, multi_label: true}", "task.multi_label: only a classification task has"),
        ("task: poetry", 'task.kind: "poetry" is not a task; supported: tool_calling, classification, spans, generation.'),
        ("version: 0", "version: 0 is not allowed; it must be at least 1."),
        ("seed: -1", "seed: -1 is not allowed; it must be at least 0."),
        ("colour: red", "colour: unknown key. Allowed keys here: name, version, task, seed, tools, teacher,"),
    ],
)
def test_each_mistake_names_file_field_and_fix(tmp_path, extra, expected):
    message = problems(write(tmp_path, MINIMAL + "    " + extra + "\n", name="bad.yaml"))
    assert message.startswith(f"{tmp_path / 'bad.yaml'} has 1 problem:\n  ")
    assert expected in message


def test_name_must_be_a_slug_and_is_required(tmp_path):
    message = problems(write(tmp_path, "name: Needle Tool\ntools: tools.json\n"))
    assert 'name: "Needle Tool" is not a valid name' in message and "Fix: e.g. `name: needle-tool`." in message
    message = problems(write(tmp_path, "tools: tools.json\n"))
    assert "name: missing. Fix: add e.g. `name: needle`." in message


def test_tools_are_required_for_tool_calling(tmp_path):
    message = problems(write(tmp_path, "name: needle\n", tools=False))
    assert "recipe.yaml has 1 problem:" in message
    assert "tools: missing; a tool_calling recipe needs a tool catalog." in message


def test_missing_tools_file_names_the_resolved_path(tmp_path):
    message = problems(write(tmp_path, "name: needle\ntools: catalogs/none.json\n", tools=False))
    assert f"tools: file not found: {tmp_path / 'catalogs' / 'none.json'}." in message


def test_missing_traces_file_names_the_resolved_path(tmp_path):
    message = problems(write(tmp_path, MINIMAL + "    teacher: {provider: replay, traces: t.jsonl}\n"))
    assert f"teacher.traces: file not found: {tmp_path / 't.jsonl'}." in message


def test_traces_resolve_against_the_recipe_folder(tmp_path):
    (tmp_path / "t.jsonl").write_text("{}\n")
    recipe = load_recipe(write(tmp_path, MINIMAL + "    teacher: {provider: replay, traces: t.jsonl}\n"))
    assert recipe.teacher.traces == "t.jsonl" and recipe.traces_path == tmp_path / "t.jsonl"


def test_catalog_error_becomes_recipe_error(tmp_path, monkeypatch):
    def broken(spec, base_dir):
        raise CatalogError("tool 'x' has no name")

    monkeypatch.setattr(tool_task, "load_catalog", broken)
    message = problems(write(tmp_path, MINIMAL))
    assert message == f"{tmp_path / 'recipe.yaml'} has 1 problem:\n  tools: tool 'x' has no name"


def test_catalog_loader_gets_the_spec_and_recipe_folder(tmp_path, monkeypatch):
    seen = []

    def fake(spec, base_dir):
        seen.append((spec, base_dir))
        return [Tool("ping", params=(Param("host", "string", required=True),))]

    monkeypatch.setattr(tool_task, "load_catalog", fake)
    recipe = load_recipe(write(tmp_path, MINIMAL))
    assert seen == [("tools.json", tmp_path)]
    assert [tool.name for tool in recipe.catalog] == ["ping"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("name: needle\nstill:\n  epochs: [1\n", "not valid YAML at line 4, column 1"),
        ("name: a\nname: b\n", "not valid YAML at line 2, column 1: `name` is written twice (first on line 1)"),
        ("", "the recipe is empty."),
        ("# nothing but a comment\n", "the recipe is empty."),
        ("- name: needle\n", "a recipe must be a mapping of `key: value` lines, not a list."),
        ("just text\n", "a recipe must be a mapping of `key: value` lines, not a str."),
    ],
)
def test_unreadable_files(tmp_path, text, expected):
    path = write(tmp_path, text)
    message = problems(path)
    assert message.startswith(f"{path}: ") and expected in message and "Fix:" in message


def test_missing_recipe_file(tmp_path):
    message = problems(tmp_path / "nope.yaml")
    assert message == (f"{tmp_path / 'nope.yaml'}: recipe file not found (looked at {tmp_path / 'nope.yaml'}). "
                       "Fix: check the path.")


def test_in_memory_errors_have_a_generic_header():
    with pytest.raises(RecipeError) as err:
        recipe_from_dict({"name": "x", "tools": TOOLS, "still": {"epochs": 0}})
    assert str(err.value).startswith("recipe has 1 problem:\n  still.epochs: 0 is not allowed")


def test_every_field_is_documented():
    def walk(model):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
            if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
                assert field.annotation.__doc__
                walk(field.annotation)

    walk(Recipe)
    assert Recipe.model_fields["still"].description == "The training loop."
