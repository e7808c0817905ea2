import pytest

from distillery.tasks.tool_calling.schema import Param, Tool
from distillery.tasks.tool_calling.validate import (
    calls_equal,
    check_calls,
    coerce_arguments,
    normalize_value,
)

WEATHER = Tool(
    name="get_weather",
    params=(
        Param("city", "string", required=True),
        Param("unit", "string", enum=("celsius", "fahrenheit")),
        Param("days", "integer"),
        Param("lat", "number"),
        Param("alerts", "boolean"),
        Param("tags", "array", items="string"),
        Param("extra", "object"),
        Param("anything", "any"),
    ),
)
TIMER = Tool(name="set_timer", params=(Param("minutes", "integer", required=True),))
TOOLS = [WEATHER, TIMER]
BY_NAME = {t.name: t for t in TOOLS}


def call(name="get_weather", **arguments):
    return {"name": name, "arguments": arguments}


def test_valid_calls_pass():
    assert check_calls([], TOOLS) is None  # no call is a valid answer
    assert check_calls([call(city="Paris", unit="celsius", days=3, lat=48.8, alerts=False)], TOOLS) is None
    assert check_calls([call(city="Oslo", tags=["a"], extra={"k": 1}, anything=[1])], TOOLS) is None
    assert check_calls([call(city="Rome"), call("set_timer", minutes=5)], TOOLS) is None


@pytest.mark.parametrize(
    "calls, reason",
    [
        ({"name": "get_weather"}, "bad_structure: calls must be a list, got dict"),
        (["get_weather"], "bad_structure: call 0 is not an object, got str"),
        ([{"arguments": {}}], "bad_structure: call 0 has no name"),
        (
            [{"name": "get_weather", "arguments": '{"city": "Paris"}'}],
            "bad_structure: call 0 (get_weather) arguments is not an object, got str",
        ),
        ([call("get_wether", city="Paris")], "unknown_tool: get_wether"),
        ([call(city="Paris", country="FR")], "unknown_argument: get_weather.country"),
        ([call(unit="celsius")], "missing_required: get_weather.city"),
        ([call(city="Paris", days="3")], "wrong_type: get_weather.days expected integer got '3'"),
        ([call(city="Paris", tags=["a", 2])], "wrong_type: get_weather.tags[1] expected string got 2"),
        ([call(city="Paris", unit="kelvin")], "not_in_enum: get_weather.unit 'kelvin' not in ['celsius', 'fahrenheit']"),
    ],
)
def test_each_reject_code(calls, reason):
    assert check_calls(calls, TOOLS) == reason


def test_type_rules():
    assert check_calls([call(city="P", lat=48)], TOOLS) is None  # int is a number
    assert check_calls([call(city="P", days=True)], TOOLS) == "wrong_type: get_weather.days expected integer got True"
    assert check_calls([call(city="P", lat=False)], TOOLS) == "wrong_type: get_weather.lat expected number got False"
    assert check_calls([call(city="P", days=3.0)], TOOLS) == "wrong_type: get_weather.days expected integer got 3.0"
    assert check_calls([call(city="P", alerts=1)], TOOLS) == "wrong_type: get_weather.alerts expected boolean got 1"
    assert check_calls([call(city=None)], TOOLS) == "wrong_type: get_weather.city expected string got None"


def test_bool_is_not_an_integer_enum_value():
    tool = Tool(name="f", params=(Param("level", "integer", enum=(1, 2)),))
    assert check_calls([call("f", level=1)], [tool]) is None
    assert check_calls([call("f", level=True)], [tool]) == "wrong_type: f.level expected integer got True"
    assert check_calls([call("f", level=3)], [tool]) == "not_in_enum: f.level 3 not in [1, 2]"


def test_normalize_value():
    assert normalize_value(3, "number") == 3.0 and isinstance(normalize_value(3, "number"), float)
    assert normalize_value(3.0, "integer") == 3 and isinstance(normalize_value(3.0, "integer"), int)
    assert normalize_value("  New   York\n", "string") == "new york"
    assert normalize_value(True, "boolean") is True
    assert normalize_value(["  A ", 2], "array") == ["a", 2.0]
    assert normalize_value({"Key": " X "}, "object") == {"Key": "x"}
    assert normalize_value(None, None) is None


def test_calls_equal_ignores_order_case_and_whitespace():
    gold = [call(city="New York", lat=40), call("set_timer", minutes=5)]
    pred = [call("set_timer", minutes=5), call(city="  new  york ", lat=40.0)]
    assert calls_equal(gold, pred, BY_NAME)
    assert calls_equal([], [], BY_NAME)


def test_calls_equal_sees_real_differences():
    gold = [call(city="New York", lat=40)]
    assert not calls_equal(gold, [call(city="Newark", lat=40)], BY_NAME)
    assert not calls_equal(gold, [call(city="New York", lat=41)], BY_NAME)
    assert not calls_equal(gold, [call(city="New York")], BY_NAME)  # an argument missing
    assert not calls_equal(gold, gold + gold, BY_NAME)  # a multiset: counts matter
    assert not calls_equal(gold, [], BY_NAME)
    assert not calls_equal([call(city="P", alerts=True)], [call(city="P", alerts=1)], BY_NAME)


def test_coerce_arguments():
    args = {"city": 10001, "days": "3", "lat": 3, "alerts": "True", "unit": "Celsius", "tags": [1, "b"]}
    assert coerce_arguments(args, WEATHER) == {
        "city": "10001",
        "days": 3,
        "lat": 3.0,
        "alerts": True,
        "unit": "celsius",
        "tags": ["1", "b"],
    }
    assert args["days"] == "3"  # the input is not changed


def test_coerce_leaves_ambiguous_values_alone():
    args = {"city": "Paris", "days": "three", "lat": "north", "alerts": 1, "unit": "kelvin", "country": "FR"}
    assert coerce_arguments(args, WEATHER) == args
    assert coerce_arguments({"days": 2.5, "alerts": "yes"}, WEATHER) == {"days": 2.5, "alerts": "yes"}
    # null for an optional argument means "not given"; for a required one it is left to fail.
    assert coerce_arguments({"city": None, "days": None}, WEATHER) == {"city": None}
    assert coerce_arguments({"days": 4.0, "lat": "-2.5e1"}, WEATHER) == {"days": 4, "lat": -25.0}
