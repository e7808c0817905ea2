"""The tool grammar: what it lets a student write, token by token."""

import torch

from distillery.tasks.tool_calling.grammar import CallGrammar, calls_schema
from distillery.tasks.tool_calling.prompt import END, render_completion, render_prompt
from distillery.tasks.tool_calling.schema import Param, Tool
from distillery.tokenizer import train_tokenizer

TIMER = Tool("set_timer", "", (Param("minutes", "integer", required=True), Param("label", "string")))
LIGHTS = Tool("control_lights", "", (Param("room", "string", required=True),
                                     Param("state", "string", required=True, enum=("on", "off")),
                                     Param("brightness", "number")))
UNSEEN = Tool("delete_files", "", (Param("pattern", "string", required=True),))
BY_NAME = {t.name: t for t in (TIMER, LIGHTS, UNSEEN)}

CALLS = [
    [{"name": "set_timer", "arguments": {"minutes": 5, "label": "tea"}}],
    [{"name": "control_lights", "arguments": {"room": "kitchen", "state": "off", "brightness": 0.5}}],
    [{"name": "set_timer", "arguments": {"minutes": 12}},
     {"name": "control_lights", "arguments": {"room": "hall", "state": "on"}}],
    [],
]


def tokenizer():
    texts = [render_prompt("set a timer", [TIMER, LIGHTS, UNSEEN]) + render_completion(c, BY_NAME) for c in CALLS]
    return train_tokenizer(texts * 5, 400)


TOK = tokenizer()
GRAMMAR = CallGrammar(TOK)


def allowed_after(tools, prefix: str, **options) -> set[str]:
    """Every token the grammar allows after `prefix`, as text."""
    matcher = GRAMMAR.matcher(tools, **options)
    logits = matcher(TOK.encode(prefix).ids if prefix else [], torch.zeros(TOK.get_vocab_size()))
    return {TOK.id_to_token(i) for i in torch.nonzero(logits == 0).flatten().tolist()}


def test_schema_lists_offered_tools_with_only_their_keys_in_order():
    schema = calls_schema([TIMER, LIGHTS])
    options = schema["items"]["anyOf"]
    assert [o["properties"]["name"] for o in options] == [{"const": "set_timer"}, {"const": "control_lights"}]
    lights_args = options[1]["properties"]["arguments"]
    assert list(lights_args["properties"]) == ["room", "state", "brightness"]
    assert lights_args["required"] == ["room", "state"] and lights_args["additionalProperties"] is False
    assert lights_args["properties"]["state"] == {"enum": ["on", "off"]}
    assert schema["minItems"] == 0 and "maxItems" not in schema
    assert calls_schema([TIMER], allow_none=False, allow_parallel=False)["minItems"] == 1
    assert calls_schema([TIMER], allow_parallel=False)["maxItems"] == 1


def test_every_rendered_completion_passes_token_by_token():
    for calls in CALLS:
        matcher = GRAMMAR.matcher([TIMER, LIGHTS])
        ids = TOK.encode(render_completion(calls, BY_NAME)).ids
        for i, token in enumerate(ids):
            logits = matcher(ids[:i], torch.zeros(TOK.get_vocab_size()))
            assert logits[token] == 0, (calls, TOK.id_to_token(token))


def test_only_offered_tool_names_can_start():
    start = '[{"name":"'
    allowed = allowed_after([TIMER], start)
    assert allowed and all("set_timer".startswith(t) for t in allowed)
    assert "control_lights" not in allowed and "set_timer" in allowed
    assert "delete_files" in allowed_after([UNSEEN], start)


def test_enum_values_and_types_are_enforced():
    prefix = '[{"name":"control_lights","arguments":{"room":"kitchen","state":"'
    assert allowed_after([LIGHTS], prefix) <= {"on", "off", "o"}
    assert "kitchen" not in allowed_after([LIGHTS], prefix)
    # An integer argument cannot open a string.
    assert '"' not in allowed_after([TIMER], '[{"name":"set_timer","arguments":{"minutes":')


def test_required_arguments_before_closing_and_no_unknown_keys():
    # `minutes` is required, so the arguments object cannot close empty: the first key must be it.
    assert "{}" not in allowed_after([TIMER], '[{"name":"set_timer","arguments":')
    keys = allowed_after([TIMER], '[{"name":"set_timer","arguments":{"')
    assert keys and all("minutes".startswith(t) for t in keys)
    # After the last declared key only the end of the object can come.
    closing = allowed_after([TIMER], '[{"name":"set_timer","arguments":{"minutes":5,"label":"tea"')
    assert "}}" in closing and all(t.startswith("}") for t in closing)


def test_no_call_and_end_token_follow_the_options():
    assert "]" in allowed_after([TIMER], "[")
    assert "]" not in allowed_after([TIMER], "[", allow_none=False)
    closed = '[{"name":"set_timer","arguments":{"minutes":5}}]'
    assert allowed_after([TIMER], closed) == {END}
    assert "," not in allowed_after([TIMER], '[{"name":"set_timer","arguments":{"minutes":5}}',
                                     allow_parallel=False)
