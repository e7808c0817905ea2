"""Conversations as examples: how a history becomes the student's prompt, one training pair per
assistant turn, the context policy, OpenAI messages in and out, tools from a Python module, the
offline teacher as an agent, and the Recipe's `agent` section. All fast: no training."""

from __future__ import annotations

import json
import random
import textwrap
from pathlib import Path

import pytest
import torch

from distillery.errors import CatalogError, RecipeError
from distillery.recipe import load_recipe
from distillery.students.prompt_format import PromptFormat
from distillery.tasks import task_for
from distillery.tasks.tool_calling import conversation as C
from distillery.tasks.tool_calling.agent_offline import OfflineAgentTeacher, report
from distillery.tasks.tool_calling.catalog import load_catalog
from distillery.tasks.tool_calling.grammar import CallGrammar
from distillery.tasks.tool_calling.offline import OfflineTeacher
from distillery.tasks.tool_calling.prompt import prompt_ids, render_completion
from distillery.tasks.tool_calling.prompt import prompt_text as one_turn_prompt
from distillery.tasks.tool_calling.tool_module import load_module_tools
from distillery.tokenizer import END, train_tokenizer

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CATALOG = load_catalog(str(EXAMPLES / "needle_tools.json"), EXAMPLES)
BY_NAME = {t.name: t for t in CATALOG}
SPECIAL = PromptFormat(template="special", tools="signatures", end_id=4, pad_id=0, context=256)


def _call(cid: str, name: str, arguments: dict) -> dict:
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}


# The weather in Oslo, then a message about it, then the final answer: three assistant turns.
TRACE = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "check the weather in Oslo and text it to Sam"},
    {"role": "assistant", "content": None, "tool_calls": [_call("w1", "get_weather", {"location": "Oslo"})]},
    {"role": "tool", "tool_call_id": "w1", "content": '{"temperature_c": 4, "conditions": "snowy"}'},
    {"role": "assistant", "content": None,
     "tool_calls": [_call("m1", "send_message", {"recipient": "Sam", "message": "4 degrees and snowy in Oslo"})]},
    {"role": "tool", "tool_call_id": "m1", "content": "sent"},
    {"role": "assistant", "content": "Sent Sam the weather: 4°C and snowy in Oslo."},
]
EXAMPLE = {"id": "c1", "utterance": TRACE[1]["content"], "tools": ["get_weather", "set_timer", "send_message"],
           "calls": [{"name": "get_weather", "arguments": {"location": "Oslo"}}], "messages": TRACE}


@pytest.fixture(scope="module")
def tokenizer():
    teacher = OfflineTeacher(CATALOG, seed=1)
    texts = [teacher.candidate(i)["utterance"] for i in range(200)]
    texts += [C.prompt_text(SPECIAL, t.history, CATALOG, BY_NAME) + C.answer_text(SPECIAL, t.answer, BY_NAME)
              for t in C.turns(EXAMPLE)] * 3
    return train_tokenizer(texts, 700)


def test_a_single_request_renders_byte_for_byte_as_before():
    teacher = OfflineTeacher(CATALOG, seed=3, no_call_ratio=0.2, parallel_ratio=0.2)
    for i in range(40):
        candidate = teacher.candidate(i)
        example = {"utterance": candidate["utterance"], "calls": candidate["calls"]}
        (turn,) = C.turns(example)
        tools = random.Random(i).sample(CATALOG, 4)
        assert C.prompt_text(SPECIAL, turn.history, tools, BY_NAME) == one_turn_prompt(SPECIAL, example["utterance"], tools)
        assert C.answer_text(SPECIAL, turn.answer, BY_NAME) + END == render_completion(example["calls"], BY_NAME)


def test_a_single_request_trains_the_same_pairs_as_before(tokenizer):
    """The tool-calling task's pairs for single requests: the old formula, token for token."""
    from distillery.recipe import recipe_from_dict

    recipe = recipe_from_dict({"name": "n", "tools": "needle_tools.json"}, base_dir=EXAMPLES)
    teacher = OfflineTeacher(CATALOG, seed=0)
    examples = [{**teacher.candidate(i), "tools": [t.name for t in random.Random(i).sample(CATALOG, 4)]}
                for i in range(30)]
    examples = [{**ex, "tools": list(dict.fromkeys([c["name"] for c in ex["calls"]] + ex["tools"]))} for ex in examples]
    expected = [(prompt_ids(SPECIAL, tokenizer, ex["utterance"], [BY_NAME[n] for n in ex["tools"]]),
                 tokenizer.encode(render_completion(ex["calls"], BY_NAME), add_special_tokens=False).ids)
                for ex in examples]
    assert task_for(recipe).training_pairs(SPECIAL, tokenizer, examples) == expected


def test_a_conversation_trains_every_assistant_turn_on_its_history(tokenizer):
    from distillery.recipe import recipe_from_dict

    recipe = recipe_from_dict({"name": "n", "tools": "needle_tools.json", "agent": {}}, base_dir=EXAMPLES)
    pairs = task_for(recipe).training_pairs(SPECIAL, tokenizer, [EXAMPLE])
    assert len(pairs) == 3
    texts = [(tokenizer.decode(p, skip_special_tokens=False), tokenizer.decode(c, skip_special_tokens=False))
             for p, c in pairs]
    first, second, third = texts
    assert first[0].endswith("<|user|>check the weather in Oslo and text it to Sam<|call|>")
    assert json.loads(first[1].removesuffix(END)) == [{"name": "get_weather", "arguments": {"location": "Oslo"}}]
    # The second turn sees the first call and its result, and answers with the next call.
    assert '<|call|>[{"name":"get_weather","arguments":{"location":"Oslo"}}]<|end|><|user|>get_weather:' in second[0]
    assert second[0].endswith('"conditions": "snowy"}<|call|>')
    assert json.loads(second[1].removesuffix(END))[0]["name"] == "send_message"
    # The last turn is the final answer, a JSON string; the system message is not in any prompt.
    assert "send_message: sent<|call|>" in third[0] and "helpful" not in third[0]
    assert json.loads(third[1].removesuffix(END)) == "Sent Sam the weather: 4°C and snowy in Oslo."


def test_the_context_policy_keeps_the_first_request_and_the_latest_turns(tokenizer):
    history = [{"role": "user", "content": "do the five errands on my list"}]
    for i in range(5):
        history += [{"role": "assistant", "calls": [{"name": "set_timer", "arguments": {"duration_minutes": i + 1}}]},
                    {"role": "tool", "name": "set_timer", "content": json.dumps({"timer": f"t{i}", "note": "x " * 20})}]
    tools = [BY_NAME["set_timer"]]
    whole, dropped = C.fitted_prompt_ids(SPECIAL, tokenizer, history, tools, BY_NAME, 10_000)
    assert dropped == 0
    fitted, dropped = C.fitted_prompt_ids(SPECIAL, tokenizer, history, tools, BY_NAME, len(whole) - 1)
    assert dropped == 1 and len(fitted) < len(whole)
    short, dropped = C.fitted_prompt_ids(SPECIAL, tokenizer, history, tools, BY_NAME, 80)
    text = tokenizer.decode(short, skip_special_tokens=False)
    assert 0 < dropped <= 4 and "errands" in text and '"t4"' in text and '"t0"' not in text
    # Never more than every exchange but the last: the result being answered always stays.
    assert C.trimmed(history, 99)[-2:] == history[-2:] and C.trimmed(history, 99)[0] == history[0]


def test_openai_messages_round_trip_and_a_broken_one_says_which_and_why():
    messages = C.read_messages(TRACE)
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    assert messages[2] == {"role": "tool", "name": "get_weather", "content": TRACE[3]["content"]}
    assert C.read_messages(C.to_openai(messages)) == messages
    broken = {
        "a tool result that answers no tool call": [TRACE[1], TRACE[3]],
        "matches no call": [TRACE[1], TRACE[2], {**TRACE[3], "tool_call_id": "nope"}, TRACE[4]],
        "are not JSON": [TRACE[1], {"role": "assistant", "tool_calls": [
            {"id": "x", "function": {"name": "set_timer", "arguments": "{oops"}}]}],
        "starts with the assistant": [TRACE[2], TRACE[1]],
        "is not user, assistant, tool or system": [TRACE[1], {"role": "robot", "content": "hi"}],
    }
    for why, raw in broken.items():
        with pytest.raises(C.ConversationError, match=why):
            C.read_messages(raw)
    with pytest.raises(C.ConversationError, match=r"messages\[1\]"):
        C.read_messages([TRACE[1], {"role": "robot", "content": "hi"}])
    # A request to answer ends with the user or a tool result, never with the assistant.
    assert C.read_messages(TRACE[:4], final=False)[-1]["role"] == "tool"
    with pytest.raises(C.ConversationError, match="nothing to answer"):
        C.read_messages(TRACE[:3], final=False)


def test_a_chat_student_writes_the_conversation_with_its_own_template(tiny_base):
    from transformers import AutoTokenizer

    from distillery.students.pretrained import chat_format
    from distillery.tasks.tool_calling.prompt import tools_text

    hf = AutoTokenizer.from_pretrained(tiny_base)
    fmt = chat_format(hf, 512, "signatures")
    assert fmt.turns == ("<|im_end|>\n<|im_start|>assistant\n", "<|im_end|>\n<|im_start|>user\n")
    turn = C.turns(EXAMPLE)[1]
    answer = C.answer_text(fmt, turn.history[1], BY_NAME)
    expected = hf.apply_chat_template(
        [{"role": "system", "content": fmt.instruction + "\n" + tools_text(fmt, CATALOG[:2])},
         {"role": "user", "content": TRACE[1]["content"]}, {"role": "assistant", "content": answer},
         {"role": "user", "content": C.side_text(turn.history[2:])}], add_generation_prompt=True, tokenize=False)
    assert C.prompt_text(fmt, turn.history, CATALOG[:2], BY_NAME) == expected
    assert json.loads(fmt.to_json())["turns"] == list(fmt.turns)
    assert "turns" not in json.loads(SPECIAL.to_json())  # a tiny student's format is stored as before


def test_a_conversation_student_may_answer_in_text_and_a_single_request_one_may_not(tokenizer):
    grammar = CallGrammar(tokenizer)
    quote = tokenizer.token_to_id('"')
    logits = torch.zeros(tokenizer.get_vocab_size())
    tools = [BY_NAME["set_timer"]]
    assert torch.isinf(grammar.matcher(tools)([], logits)[quote])
    assert not torch.isinf(grammar.matcher(tools, allow_text=True)([], logits)[quote])
    # A call is still allowed, and tool_choice "required" (no answer without a call) forbids text.
    assert not torch.isinf(grammar.matcher(tools, allow_text=True)([], logits)[tokenizer.token_to_id("[")])
    assert torch.isinf(grammar.matcher(tools, allow_text=True, allow_none=False)([], logits)[quote])
    assert C.parse_answer('"All done."') == ("text", "All done.")
    assert C.parse_answer("[]") == ("calls", []) and C.parse_answer("42") is None


MODULE = '''
from typing import Annotated, Literal, Optional


def book_table(restaurant: str, people: int, time: Literal["lunch", "dinner"] = "dinner",
               note: Optional[str] = None) -> dict:
    """Book a table at a restaurant.

    More words that are not the description.

    Args:
        restaurant: Where to eat.
        people (int): How many people.
    """
    return {"booking": f"{restaurant}-{people}", "time": time}


def weather(city: Annotated[str, "The city"]) -> str:
    """Get the weather."""
    raise RuntimeError("the weather service is down")


def _helper():
    return 1
'''


def test_a_python_module_is_a_catalog_and_runs_its_calls(tmp_path):
    (tmp_path / "tools.py").write_text(MODULE)
    tools = load_module_tools(tmp_path / "tools.py")
    assert [t.name for t in tools.catalog] == ["book_table", "weather"]
    book = tools.catalog[0]
    assert book.description == "Book a table at a restaurant."
    assert [(p.name, p.type, p.required) for p in book.params] == [
        ("restaurant", "string", True), ("people", "integer", True), ("time", "string", False),
        ("note", "string", False)]
    assert book.param("time").enum == ("lunch", "dinner") and book.param("people").description == "How many people."
    assert tools.catalog[1].param("city").description == "The city"
    assert json.loads(tools.call("book_table", {"restaurant": "Noma", "people": 2})) == {"booking": "Noma-2",
                                                                                           "time": "dinner"}
    assert tools.call("weather", {"city": "Oslo"}) == "error: RuntimeError: the weather service is down"
    assert tools.call("nope", {}).startswith("error: no tool named")
    (tmp_path / "bad.py").write_text("def f(x):\n    return x\n")
    with pytest.raises(CatalogError, match=r"f\(x\) has no type annotation"):
        load_module_tools(tmp_path / "bad.py")
    (tmp_path / "broken.py").write_text("import not_a_module_anywhere\n")
    with pytest.raises(CatalogError, match="importing the tools module failed"):
        load_module_tools(tmp_path / "broken.py")


def test_the_offline_agent_chains_steps_through_their_results():
    tools = load_module_tools(EXAMPLES / "agent_tools.py")
    teacher = OfflineAgentTeacher(tools.catalog, seed=0, max_steps=4, run_tool=tools.call)
    assert {"send_message", "book_flight", "track_package"} <= teacher.dependent  # they need an id first
    assert {t.name for t in teacher.first_steps}.isdisjoint(teacher.dependent)
    candidates = [teacher.candidate(i) for i in range(60)]
    assert candidates[7] == teacher.candidate(7)  # a candidate depends on (seed, index) only
    linked = 0
    for c in candidates:
        messages = c["messages"]
        assert messages[0] == {"role": "user", "content": c["utterance"]}
        steps = [m for m in messages if m["role"] == "assistant" and m.get("calls")]
        assert len(steps) <= 3
        for m, result in zip(messages[1::2], messages[2::2]):
            if m["role"] == "assistant" and m.get("calls"):
                call = m["calls"][0]
                assert result == {"role": "tool", "name": call["name"],
                                  "content": tools.call(call["name"], call["arguments"])}  # the tool's own result
        for before, after in zip(steps, steps[1:]):
            earlier = json.loads(tools.call(before["calls"][0]["name"], before["calls"][0]["arguments"]))
            taken = {k: v for k, v in after["calls"][0]["arguments"].items() if earlier.get(k) == v}
            if taken:  # an id from the result, never said in the request
                linked += 1
                assert all(str(v) not in c["utterance"] for v in taken.values())
        if steps:
            done = [(tools.catalog[[t.name for t in tools.catalog].index(s["calls"][0]["name"])],
                     tools.call(s["calls"][0]["name"], s["calls"][0]["arguments"])) for s in steps]
            assert messages[-1] == {"role": "assistant", "content": report(done, c["utterance"])}
    assert linked >= 10


def _recipe(tmp_path, text: str):
    (tmp_path / "r.yaml").write_text(textwrap.dedent(text))
    return load_recipe(tmp_path / "r.yaml")


def test_the_agent_section_is_checked_and_a_recipe_without_it_hashes_as_before(tmp_path):
    needle = load_recipe(EXAMPLES / "needle.yaml")
    assert "agent" not in needle.resolved_yaml() and needle.agent is None
    agent = load_recipe(EXAMPLES / "agent.yaml")
    assert agent.agent.held_out_tools == ["convert_currency"] and len(agent.catalog) == 9
    assert "agent:" in agent.resolved_yaml() and "module: agent_tools.py" in agent.resolved_yaml()
    (tmp_path / "needle_tools.json").write_text((EXAMPLES / "needle_tools.json").read_text())
    problems = {
        "tools: {mcp: my-server}": "MCP servers are not supported yet",
        "tools: needle_tools.json\nagent: {held_out_tools: [fly_to_mars]}": "fly_to_mars not in the catalog",
        "tools: needle_tools.json\nagent: {}\nteacher: {provider: openai}": "must be runnable",
        "tools: needle_tools.json\nagent: {}\nstill: {value_swap: 0.5}": "still.value_swap",
        "tools: needle_tools.json\nagent: {max_steps: 1}": "agent.max_steps",
        "task: {kind: spans, types: {email: an email}}\nagent: {}": "a spans task has none",
    }
    for text, message in problems.items():
        with pytest.raises(RecipeError, match=message):
            _recipe(tmp_path, "name: r\n" + text + "\n")
