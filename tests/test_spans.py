"""Values copied from the request: spans, numbers, which parameters qualify, and the grammar they make."""

import torch

from distillery.tasks.tool_calling.grammar import CallGrammar, calls_schema
from distillery.tasks.tool_calling.prompt import render_completion
from distillery.tasks.tool_calling.schema import Param, Tool
from distillery.tasks.tool_calling.spans import copied_params, is_copied, is_named, named_members, numbers, spans
from distillery.tokenizer import train_tokenizer

MSG = Tool("send_message", "", (Param("recipient", "string", required=True), Param("message", "string"),
                                Param("priority", "string", enum=("low", "high"))))
TEMP = Tool("set_thermostat", "", (Param("temperature", "number", required=True), Param("room", "string")))
BY_NAME = {t.name: t for t in (MSG, TEMP)}


def test_spans_are_word_aligned_substrings():
    found = spans('text Ann "see you at 5?" now')
    assert {"Ann", "text Ann", "see you at 5?", "see", "5?", "now"} <= set(found)
    assert "nn" not in found and "text A" not in found and "you a" not in found
    assert len(found) == len(set(found))


def test_numbers_are_read_as_written():
    assert numbers("set 19 degrees, 443.82 EUR at 12:30, -4 outside, v2") == [19, 443.82, 12, 30, -4]
    assert numbers("no digits here") == []


def test_is_copied_by_type():
    utterance = "text Ann Lee: running late, 2 minutes"
    assert is_copied("Ann Lee", utterance) is True
    assert is_copied("Ann Le", utterance) is False
    assert is_copied(2, utterance) is True and is_copied(2.0, utterance) is True and is_copied(3, utterance) is False
    assert is_copied(["Ann", "running late"], utterance) is True
    assert is_copied(["Ann", "Bob"], utterance) is False
    assert is_copied(True, utterance) is None and is_copied({"a": 1}, utterance) is None


def example(utterance, calls):
    return {"utterance": utterance, "calls": calls}


def test_copied_params_need_support_and_near_always_copied():
    examples = [example(f"message {name}: hi there", [{"name": "send_message",
                                                       "arguments": {"recipient": name, "message": "Hi there!",
                                                                     "priority": "low"}}])
                for name in ("Ann", "Bob", "Cy", "Dee")]
    examples += [example("make the kitchen 20", [{"name": "set_thermostat",
                                                  "arguments": {"temperature": 20, "room": "kitchen"}}])] * 2
    # recipient: copied 4/4; message: rewritten by the teacher; priority: an enum the requests never name;
    # thermostat: only 2 examples.
    assert copied_params(examples, BY_NAME) == ["send_message.recipient"]
    assert copied_params(examples, BY_NAME, min_support=2) == [
        "send_message.recipient", "set_thermostat.room", "set_thermostat.temperature"]


def test_a_copied_parameter_can_only_take_spans_of_the_request():
    utterance = "message Ann Lee that dinner is at 7"
    schema = calls_schema([MSG], utterance=utterance, copied=frozenset({"send_message.recipient"}))
    args = schema["items"]["anyOf"][0]["properties"]["arguments"]["properties"]
    assert args["recipient"] == {"$ref": "#/$defs/span"} and args["message"] == {"type": "string"}
    assert "Ann Lee" in schema["$defs"]["span"]["enum"]

    calls = [{"name": "send_message", "arguments": {"recipient": "Ann Lee", "message": "dinner is at 7"}}]
    text = render_completion(calls, BY_NAME)
    tok = train_tokenizer([utterance + text, text.replace("Ann Lee", "Bob")] * 5, 300)
    grammar = CallGrammar(tok)

    def allowed(prefix):
        matcher = grammar.matcher([MSG], utterance=utterance, copied=frozenset({"send_message.recipient"}))
        logits = matcher(tok.encode(prefix).ids, torch.zeros(tok.get_vocab_size()))
        return {tok.id_to_token(i) for i in torch.nonzero(logits == 0).flatten().tolist()}

    start = allowed('[{"name":"send_message","arguments":{"recipient":"')
    assert "Ann" in start and "Bob" not in start
    # After "Ann" the span can only go on with the request's next word, or end.
    assert all(t == "Ġ" or t.startswith('"') for t in allowed('[{"name":"send_message","arguments":{"recipient":"Ann'))
    # `message` is free: any string token may start it.
    free = allowed('[{"name":"send_message","arguments":{"recipient":"Ann Lee","message":"')
    assert {"Ann", "!", "#"} <= free and len(free) > 100


def test_no_copy_when_the_request_has_nothing_to_copy():
    schema = calls_schema([TEMP], utterance="warmer please", copied=frozenset({"set_thermostat.temperature"}))
    args = schema["items"]["anyOf"][0]["properties"]["arguments"]["properties"]
    assert args["temperature"] == {"type": "number"}


def test_is_named_in_any_case_with_underscores_as_spaces():
    assert is_named("off", "switch OFF the lights") is True
    assert is_named("warm_white", "in warm white please") is True and is_named("warm_white", "warm-white") is True
    assert is_named("on", "turn the lights off") is False
    assert is_named("kg", "5kg of rice") is False  # a member is a word, not part of one
    assert is_named(3, "level 3") is None and named_members((1, 2), "1 or 2") is None
    assert named_members(("white", "warm_white", "blue"), "Warm White light") == ["white", "warm_white"]


def test_enums_the_requests_always_name_are_copied():
    examples = [example(f"message {name}, {level} priority", [{"name": "send_message", "arguments": {
        "recipient": name, "priority": level}}]) for name, level in (("Ann", "low"), ("Bob", "HIGH"), ("Cy", "high"))]
    assert copied_params(examples, BY_NAME) == ["send_message.priority", "send_message.recipient"]


def test_a_copied_enum_offers_only_the_members_the_request_names():
    copied = frozenset({"send_message.priority"})

    def value(tools, utterance, name):
        schema = calls_schema(tools, utterance=utterance, copied=copied)
        return schema["items"]["anyOf"][0]["properties"]["arguments"]["properties"].get(name, "left out")

    assert value([MSG], "message Ann, it's High priority", "priority") == {"enum": ["high"]}
    # Named nowhere: an optional enum cannot be written at all ...
    assert value([MSG], "message Ann", "priority") == "left out"
    # ... a required one keeps every member, or no call could be made.
    required = Tool("send_message", "", (Param("recipient", "string", required=True),
                                         Param("priority", "string", required=True, enum=("low", "high"))))
    assert value([required], "message Ann", "priority") == {"enum": ["low", "high"]}
    # Not copied: the whole enum, whatever the request says.
    assert calls_schema([MSG], utterance="high priority")["items"]["anyOf"][0]["properties"]["arguments"][
        "properties"]["priority"] == {"enum": ["low", "high"]}


def test_numbers_as_people_write_them():
    # Thousands separators and percentages are read both ways; a unit may be glued on.
    assert numbers("net income of $2,000,000 at 8% a year") == [2, 2000000, 0, 8, 0.08]
    assert numbers("weighs 70kg, 1.75m tall, 5C charge") == [70, 1.75, 5]
    assert numbers("the list [200,300,400]") == [200, 200300400, 300, 400]
    assert numbers("rs6034464 and C4 are names, not numbers") == []
    assert is_copied(0.05, "a 5% rate") is True and is_copied(12000, "12,000 miles") is True


def test_numbers_written_as_words_or_with_a_scale_word_are_read():
    assert numbers("two tickets for the top Ten, 50 million USD, 1.5 billion") == [2, 10, 50, 50000000, 1.5, 1500000000]
    # Inside another word or a compound they are not numbers: "someone", "twenty-five".
    assert numbers("someone said twenty-five, oftentimes") == []


def test_a_count_said_as_a_word_is_still_copied():
    assert is_copied(2, "book two tickets") is True
    assert is_copied(3, "book two tickets") is False
