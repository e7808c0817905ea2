"""Augmentation of the hearts: consistent rewrites, seeded, never touching enums."""

from distillery.tasks.tool_calling.augment import Augmenter
from distillery.tasks.tool_calling.schema import Param, Tool
from distillery.tasks.tool_calling.validate import check_calls

TOOLS = {
    "send_message": Tool("send_message", "", (Param("recipient", "string", required=True),
                                             Param("message", "string", required=True))),
    "set_timer": Tool("set_timer", "", (Param("minutes", "integer", required=True),)),
    "get_weather": Tool("get_weather", "", (Param("location", "string", required=True),
                                           Param("units", "string", enum=("celsius", "fahrenheit")))),
}
HEARTS = [
    {"id": "a", "utterance": 'text Sarah "running late"', "tools": ["send_message", "set_timer"],
     "calls": [{"name": "send_message", "arguments": {"recipient": "Sarah", "message": "running late"}}]},
    {"id": "b", "utterance": "set a timer for 10 minutes", "tools": ["set_timer", "get_weather"],
     "calls": [{"name": "set_timer", "arguments": {"minutes": 10}}]},
    {"id": "c", "utterance": "weather in Oslo in celsius", "tools": ["get_weather", "set_timer"],
     "calls": [{"name": "get_weather", "arguments": {"location": "Oslo", "units": "celsius"}}]},
    {"id": "d", "utterance": "text Omar and Omar again", "tools": ["send_message"],
     "calls": [{"name": "send_message", "arguments": {"recipient": "Omar", "message": "hi"}}]},
]


def test_value_swap_rewrites_utterance_and_call_together():
    aug = Augmenter(HEARTS, TOOLS, value_swap=1.0, tool_drop=0.0, seed=0)
    changed = 0
    for epoch in range(20):
        for i, ex in enumerate(HEARTS[:3]):
            out = aug(ex, epoch, i)
            assert check_calls(out["calls"], [TOOLS[n] for n in out["tools"]]) is None
            for call in out["calls"]:
                for key, value in call["arguments"].items():
                    assert str(value) in out["utterance"], (out, key)
            changed += out != ex
    assert changed >= 50  # almost every draw changes something


def test_enum_values_are_never_swapped_and_ambiguous_values_are_left_alone():
    aug = Augmenter(HEARTS, TOOLS, value_swap=1.0, tool_drop=0.0, seed=0)
    for epoch in range(20):
        assert aug(HEARTS[2], epoch, 2)["calls"][0]["arguments"]["units"] == "celsius"
        # "Omar" occurs twice: replacing one would make the target ambiguous.
        assert aug(HEARTS[3], epoch, 3)["calls"][0]["arguments"]["recipient"] == "Omar"


def test_tool_drop_withdraws_the_called_tool_and_targets_no_call():
    aug = Augmenter(HEARTS, TOOLS, value_swap=0.0, tool_drop=1.0, seed=0)
    out = aug(HEARTS[1], 0, 1)
    assert out["tools"] == ["get_weather"] and out["calls"] == []
    # Nothing left to offer: the example is kept as it is.
    assert aug(HEARTS[3], 0, 3) == HEARTS[3]


def test_same_seed_epoch_and_index_give_the_same_rewrite():
    a = Augmenter(HEARTS, TOOLS, value_swap=1.0, tool_drop=0.2, seed=5)
    b = Augmenter(HEARTS, TOOLS, value_swap=1.0, tool_drop=0.2, seed=5)
    assert [a(ex, 3, i) for i, ex in enumerate(HEARTS)] == [b(ex, 3, i) for i, ex in enumerate(HEARTS)]
    assert [a(ex, 3, i) for i, ex in enumerate(HEARTS)] != [a(ex, 4, i) for i, ex in enumerate(HEARTS)]


def test_reoffer_draws_new_distractors_but_keeps_the_called_tools_and_no_call_lists():
    no_call = {"id": "e", "utterance": "play some jazz", "tools": ["set_timer", "get_weather"], "calls": []}
    aug = Augmenter(HEARTS + [no_call], TOOLS, value_swap=0.0, tool_drop=0.0, seed=0, reoffer=1.0,
                    tools_per_call=(2, 3))
    offered = set()
    for epoch in range(30):
        out = aug(HEARTS[1], epoch, 1)
        assert "set_timer" in out["tools"] and 2 <= len(out["tools"]) <= 3
        assert len(set(out["tools"])) == len(out["tools"]) and out["calls"] == HEARTS[1]["calls"]
        offered.add(tuple(out["tools"]))
        assert aug(no_call, epoch, 4) == no_call
    assert len(offered) >= 4  # different lists and orders across epochs
    assert Augmenter(HEARTS, TOOLS, value_swap=0.0, tool_drop=0.0, seed=0)(HEARTS[1], 3, 1) == HEARTS[1]
