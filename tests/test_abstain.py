"""Abstaining: no call when the student asks for a tool it knows that is not offered."""

import torch

from distillery.tasks.tool_calling.predictor import ToolCaller
from distillery.students.prompt_format import tiny_format
from distillery.tasks.tool_calling.prompt import END, render_completion, render_prompt
from distillery.tasks.tool_calling.schema import Param, Tool
from distillery.tokenizer import train_tokenizer

TIMER = Tool("set_timer", "", (Param("minutes", "integer", required=True),))
LIGHTS = Tool("control_lights", "", (Param("room", "string", required=True),))
WEATHER = Tool("get_weather", "", (Param("city", "string", required=True),))
BY_NAME = {t.name: t for t in (TIMER, LIGHTS, WEATHER)}
CALLS = [[{"name": "set_timer", "arguments": {"minutes": 5}}], [{"name": "control_lights", "arguments": {"room": "hall"}}],
         [{"name": "get_weather", "arguments": {"city": "Oslo"}}], []]
TOK = train_tokenizer([render_prompt("set a timer", list(BY_NAME.values())) + render_completion(c, BY_NAME)
                       for c in CALLS] * 5, 400)
FMT = tiny_format(TOK, 512)


class Scripted:
    """A runner that wants to write `text`: each step it puts the highest logit on the next token."""

    def __init__(self, text: str):
        self.ids = TOK.encode(text).ids + [TOK.token_to_id(END)]
        self.max_len, self.pos = 512, 0

    def _logits(self) -> torch.Tensor:
        logits = torch.zeros(TOK.get_vocab_size())
        logits[self.ids[min(self.pos, len(self.ids) - 1)]] = 10.0
        return logits

    def start(self, prompt_ids):
        self.pos = 0
        return self._logits()

    def step(self, token):
        self.pos += 1
        return self._logits()


def predict(wanted: str, offered: list[Tool], known: list[str] | None):
    caller = ToolCaller(Scripted(wanted), TOK, FMT, known_tools=known)
    return caller.predict("what's the weather in Oslo", offered)


def test_a_known_tool_that_is_not_offered_gets_no_call():
    wanted = '[{"name":"get_weather","arguments":{"city":"Oslo"}}]'
    pred = predict(wanted, [TIMER, LIGHTS], known=list(BY_NAME))
    assert pred.calls == [] and pred.abstained
    # Without abstaining the grammar turns the request into a call of an offered tool.
    # (The scripted runner keeps wanting get_weather's tokens after that, so only the start counts.)
    forced = predict(wanted, [TIMER, LIGHTS], known=None)
    assert forced.text.startswith(('[{"name":"set_timer"', '[{"name":"control_lights"')) and not forced.abstained


def test_an_offered_tool_is_called_as_usual():
    wanted = '[{"name":"get_weather","arguments":{"city":"Oslo"}}]'
    pred = predict(wanted, [TIMER, WEATHER], known=list(BY_NAME))
    assert pred.calls == [{"name": "get_weather", "arguments": {"city": "Oslo"}}] and not pred.abstained


def test_tools_the_student_never_saw_are_not_reasons_to_abstain():
    # Known tools are only the ones trained on: an unseen catalog decodes as before.
    wanted = '[{"name":"get_weather","arguments":{"city":"Oslo"}}]'
    pred = predict(wanted, [TIMER, LIGHTS], known=["set_timer", "control_lights"])
    assert pred.text.startswith(('[{"name":"set_timer"', '[{"name":"control_lights"')) and not pred.abstained


def test_from_decoding_turns_abstaining_off_without_the_grammar():
    caller = ToolCaller.from_decoding(Scripted("[]"), TOK, FMT, {"grammar": True, "copied_params": [],
                                                            "known_tools": list(BY_NAME)}, max_new_tokens=64)
    assert caller.known_first and caller.grammar is not None
    free = ToolCaller.from_decoding(Scripted("[]"), TOK, FMT, {"grammar": True, "known_tools": list(BY_NAME)},
                                    max_new_tokens=64, grammar=False)
    assert not free.known_first and free.grammar is None
