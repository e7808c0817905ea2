"""Values copied from the request: spans, numbers, which parameters qualify, and the grammar they make."""

import torch

from distillery.tasks.tool_calling.grammar import CallGrammar, calls_schema
from distillery.tasks.tool_calling.prompt import render_completion
from distillery.tasks.tool_calling.schema import Param, Tool
from distillery.tasks.tool_calling.spans import copied_params, is_copied, numbers, spans
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
    # recipient: copied 4/4; message: rewritten by the teacher; priority: an enum; thermostat: only 2 examples.
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
