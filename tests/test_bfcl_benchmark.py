"""The BFCL benchmark's parts: reading BFCL's files, the recipe it builds, and the chat-model
baseline (its output parser and the student's grammar on a Hugging Face tokenizer)."""

import json
import sys
from pathlib import Path

import pytest
import torch
from transformers import PreTrainedTokenizerFast

from distillery.recipe import recipe_from_dict
from distillery.students.tiny import build_model
from distillery.tasks.tool_calling.schema import Param, Tool
from distillery.tokenizer import train_tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bfcl_data  # noqa: E402
import smollm2  # noqa: E402
from bfcl import student_recipe  # noqa: E402

AREA = {"name": "geometry.area", "description": "Area of a triangle.", "parameters": {
    "type": "dict", "properties": {"base": {"type": "integer"}, "unit": {"type": "string"}}, "required": ["base"]}}
AREA_V2 = {**AREA, "description": "Another version."}
HYPOT = {"name": "math.hypot", "description": "Hypotenuse.", "parameters": {
    "type": "dict", "properties": {"x": {"type": "float"}}, "required": ["x"]}}
TIMER = Tool("set_timer", "", (Param("minutes", "integer", required=True),))


def write_bfcl(root: Path, category: str, questions: list[dict], answers: list[dict] | None) -> Path:
    (root / "possible_answer").mkdir(parents=True, exist_ok=True)
    (root / f"BFCL_v4_{category}.json").write_text("\n".join(json.dumps(q) for q in questions) + "\n")
    if answers is not None:
        (root / "possible_answer" / f"BFCL_v4_{category}.json").write_text(
            "\n".join(json.dumps(a) for a in answers) + "\n")
    return root


def question(qid: str, text: str, *functions) -> dict:
    return {"id": qid, "question": [[{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]],
            "function": list(functions)}


def test_questions_carry_their_functions_and_possible_answers(tmp_path: Path):
    root = write_bfcl(tmp_path, "multiple",
                      [question("multiple_0", "area with base 3", AREA, HYPOT),
                       question("multiple_1", "hypotenuse of 4", HYPOT, AREA_V2)],
                      [{"id": "multiple_0", "ground_truth": [{"geometry.area": {"base": [3]}}]},
                       {"id": "multiple_1", "ground_truth": [{"math.hypot": {"x": [4.0]}}]}])
    first, second = bfcl_data.load_questions("multiple", root)
    assert first["utterance"] == "area with base 3" and first["answers"] == [{"geometry.area": {"base": [3]}}]
    docs, clashes = bfcl_data.catalog_docs([first, second])
    assert [d["name"] for d in docs] == ["geometry.area", "math.hypot"] and clashes == 1
    assert docs[0]["description"] == "Area of a triangle."  # the first version is kept
    assert bfcl_data.shape([first, second], "multiple") == {"tools_per_call": {"min": 2, "max": 2},
                                                            "parallel_ratio": 0.0}
    assert bfcl_data.shape([first], "parallel_multiple")["parallel_ratio"] == 0.5


def test_a_category_reads_its_own_file_only(tmp_path: Path):
    write_bfcl(tmp_path, "parallel_multiple", [question("parallel_multiple_0", "wrong file", AREA)], [])
    write_bfcl(tmp_path, "live_multiple", [question("live_multiple_0", "wrong file", AREA)], [])
    (tmp_path / "BFCL_v3_multiple.json").write_text(json.dumps(question("multiple_0", "old release", AREA)))
    write_bfcl(tmp_path, "multiple", [question("multiple_0", "right file", AREA)],
               [{"id": "multiple_0", "ground_truth": [{"geometry.area": {"base": [3]}}]}])
    assert [q["utterance"] for q in bfcl_data.load_questions("multiple", tmp_path)] == ["right file"]


def test_irrelevance_has_no_answers_and_other_categories_need_them(tmp_path: Path):
    root = write_bfcl(tmp_path, "irrelevance", [question("irrelevance_0", "tell me a joke", AREA)], None)
    assert bfcl_data.load_questions("irrelevance", root)[0]["answers"] == []
    with pytest.raises(Exception, match="no BFCL file"):
        bfcl_data.load_questions("parallel", root)


def test_the_recipe_holds_function_docs_only_and_validates(tmp_path: Path):
    (tmp_path / "tools.json").write_text(json.dumps([AREA, HYPOT]))
    data = student_recipe("simple_python", 20, 3, 2, {"tools_per_call": {"min": 1, "max": 1}, "parallel_ratio": 0.0},
                          0.1, threads=1)
    recipe = recipe_from_dict(data, base_dir=tmp_path)
    assert recipe.name == "bfcl-simple-python" and recipe.mash.total_examples == 40
    assert [t.name for t in recipe.catalog] == ["geometry.area", "math.hypot"]
    assert recipe.catalog[1].params[0].type == "number" and recipe.still.epochs == 3
    assert "question" not in json.dumps(data) and "ground_truth" not in json.dumps(data)


@pytest.mark.parametrize("text, calls", [
    ('<tool_call>[{"name": "f", "arguments": {"a": 1}}]</tool_call>', [{"name": "f", "arguments": {"a": 1}}]),
    ('<tool_call>[\n{"name": "f", "arguments": {"a": 1}},\n{"name": "g", "arguments": {}}\n]</tool_call>',
     [{"name": "f", "arguments": {"a": 1}}, {"name": "g", "arguments": {}}]),
    ('<tool_call>{"name": "f", "arguments": "{\\"a\\": 2}"}</tool_call>', [{"name": "f", "arguments": {"a": 2}}]),
    ("<tool_call>[]</tool_call>", []),
    ('[{"name": "f", "arguments": {}}]', [{"name": "f", "arguments": {}}]),
    ("The factorial of 5 is 120.", []),
    ('<tool_call>[{"name": "f", "arguments": {"a": </tool_call>', None),
    ('<tool_call>[{"arguments": {}}]</tool_call>', None),
    ('[{"name": "f", "arg', None),
])
def test_chat_answers_are_read_as_calls_no_call_or_broken(text: str, calls):
    assert smollm2.parse_calls(text) == calls


@pytest.fixture(scope="module")
def chat_tokenizer() -> PreTrainedTokenizerFast:
    texts = ['<tool_call>[{"name": "set_timer", "arguments": {"minutes": 5}}]</tool_call> set a timer'] * 20
    tok = train_tokenizer(texts, 400)
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|end|>")
    hf.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    hf.chat_template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                        "{% endfor %}{{ '<|im_start|>assistant\\n' }}")
    return hf


def test_the_student_grammar_runs_on_a_chat_tokenizer_with_json_dumps_spacing(chat_tokenizer):
    end = chat_tokenizer.convert_tokens_to_ids("<|im_end|>")
    grammar = smollm2.CallGrammar.from_hf(chat_tokenizer, end)
    spaced = '[{"name": "set_timer", "arguments": {"minutes": 5}}]'
    ids = chat_tokenizer(spaced, add_special_tokens=False).input_ids
    matcher = grammar.matcher([TIMER])
    for i, token in enumerate(ids + [end]):
        assert matcher(ids[:i], torch.zeros(len(chat_tokenizer)))[token] == 0, chat_tokenizer.decode(ids[:i + 1])
    compact = chat_tokenizer('[{"name":"set_timer","arguments":{"minutes":5}}]', add_special_tokens=False).input_ids
    blocked = grammar.matcher([TIMER])
    assert any(blocked(compact[:i], torch.zeros(len(chat_tokenizer)))[t] != 0 for i, t in enumerate(compact))


def test_the_chat_caller_prompts_with_the_tools_and_opens_the_call_under_the_grammar(chat_tokenizer):
    config = {"vocab_size": len(chat_tokenizer), "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
              "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 1024,
              "tie_word_embeddings": True}
    model = build_model(config).eval()
    with torch.no_grad():
        model.model.norm.weight.zero_()  # equal logits: the grammar alone decides
    caller = smollm2.ChatToolCaller(model, chat_tokenizer, grammar=True, max_new_tokens=64)
    prompt = caller.prompt("set a timer for 5 minutes", [TIMER])
    assert '"name": "set_timer"' in prompt and prompt.endswith("<|im_start|>assistant\n<tool_call>")
    prediction = caller.predict("set a timer for 5 minutes", [TIMER])
    assert prediction.calls is not None and prediction.text.startswith("[")
    plain = smollm2.ChatToolCaller(model, chat_tokenizer, grammar=False, max_new_tokens=200)
    assert not plain.prompt("hi", [TIMER]).endswith("<tool_call>")
    # Without the grammar an answer that never begins a call is cut short and read as no call.
    answer = plain.predict("hi", [TIMER])
    assert answer.calls == [] and len(chat_tokenizer(answer.text, add_special_tokens=False).input_ids) <= 49
