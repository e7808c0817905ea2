"""Prompt rendering, completion parsing, and the tokenizer that makes values copyable."""

from distillery.tasks.tool_calling.prompt import (
    CALL,
    END,
    TOOLS,
    USER,
    parse_completion,
    render_completion,
    render_prompt,
)
from distillery.tasks.tool_calling.schema import Param, Tool
from distillery.tokenizer import encode_prompt, train_tokenizer, whitespace_ids

TIMER = Tool("set_timer", "Start a timer.", (Param("minutes", "integer", required=True), Param("label", "string")))
MSG = Tool("send_message", "", (Param("recipient", "string", required=True),
                                Param("tone", "string", enum=("formal", "casual")),
                                Param("tags", "array", items="string")))


def test_prompt_is_compact_signatures_then_the_request():
    assert render_prompt("  set a timer  ", [TIMER, MSG]) == (
        f"{TOOLS}set_timer(minutes:int,label?)\n"
        f"send_message(recipient,tone?:enum[formal|casual],tags?:list[str]){USER}set a timer{CALL}")


def test_completion_orders_arguments_as_the_schema_and_parses_back():
    text = render_completion([{"name": "set_timer", "arguments": {"label": "tea", "minutes": 3}}],
                             {"set_timer": TIMER})
    assert text == '[{"name":"set_timer","arguments":{"minutes":3,"label":"tea"}}]' + END
    assert parse_completion(text) == [{"name": "set_timer", "arguments": {"minutes": 3, "label": "tea"}}]
    assert parse_completion("[]" + END) == []


def test_parse_rejects_what_is_not_a_list_of_calls():
    assert parse_completion('[{"name":"set_timer","arguments":{"minutes":3}') is None
    assert parse_completion('{"name":"set_timer"}') is None
    assert parse_completion('[{"arguments":{}}]') is None
    assert parse_completion('[{"name":"x","arguments":[1]}]') is None


def test_a_value_has_the_same_tokens_in_the_request_and_in_the_call():
    texts = [render_prompt(f"text {name} that I am late", [MSG]) +
             render_completion([{"name": "send_message", "arguments": {"recipient": name}}], {})
             for name in ["Sarah", "Omar", "Li Wei", "Sarah", "Omar"]]
    tok = train_tokenizer(texts * 20, 400)
    encoded = tok.encode(texts[2])
    tokens = encoded.tokens
    call_start = tokens.index(CALL)
    request, call = tokens[:call_start], tokens[call_start:]
    value = tok.encode("Li Wei").tokens
    assert value == ["Li", "Ġ", "Wei"]
    assert "send_message" in tokens  # a tool name is one token
    joined = "\x00".join(call)
    assert "\x00".join(value) in joined and "\x00".join(value) in "\x00".join(request)
    assert tok.decode(encoded.ids, skip_special_tokens=False) == texts[2]


def test_prompt_ids_leave_out_whitespace_and_completions_keep_it():
    prompt = render_prompt("text Li Wei that\tI am late", [TIMER, MSG])
    completion = render_completion([{"name": "send_message", "arguments": {"recipient": "Li Wei"}}], {})
    tok = train_tokenizer([prompt + completion] * 20, 400)
    skip = whitespace_ids(tok)
    assert {tok.token_to_id("Ġ"), tok.token_to_id("ĉ"), tok.token_to_id("Ċ")} <= skip
    assert not {tok.token_to_id(t) for t in (TOOLS, USER, CALL, END)} & skip
    ids = encode_prompt(tok, prompt, skip)
    assert [tok.id_to_token(i) for i in ids[-9:]] == ["<|user|>", "text", "Li", "Wei", "that", "I", "am", "late",
                                                     "<|call|>"]
    assert not set(ids) & skip and ids == encode_prompt(tok, prompt)
    # The completion is decoded, so it keeps every space.
    assert tok.decode(tok.encode(completion).ids, skip_special_tokens=False) == completion
