"""The offline teacher on function docs written like BFCL's: dotted names, bare verbs as names,
typed lists, unit-like names that are not units, required units of optional numbers, and one
tool called twice."""

import random
import re

from distillery.tasks.tool_calling.mash import offer_tools, reject_reason
from distillery.tasks.tool_calling.catalog import parse_tools
from distillery.tasks.tool_calling.spans import numbers
from distillery.tasks.tool_calling.offline import OfflineTeacher

DOCS = parse_tools([
    {"name": "calculate", "description": "Evaluate an arithmetic expression.", "parameters": {
        "type": "dict", "required": ["expression"],
        "properties": {"expression": {"type": "string", "description": "The expression."}}}},
    {"name": "walmart.check_price", "description": "Calculate total price for given items.", "parameters": {
        "type": "dict", "required": ["items", "quantities"], "properties": {
            "items": {"type": "array", "items": {"type": "string"}, "description": "Items to buy."},
            "quantities": {"type": "array", "items": {"type": "integer"}, "description": "Quantity of each item."}}}},
    {"name": "recipe_calculator.calculate_time", "description": "Cooking time of a recipe.", "parameters": {
        "type": "dict", "required": ["weight", "per_unit_time"], "properties": {
            "weight": {"type": "float", "description": "The weight of the item."},
            "per_unit_time": {"type": "integer", "description": "Minutes per unit of weight."},
            "unit_of_time": {"type": "string", "description": "Unit of time, e.g. minutes."}}}},
    {"name": "latest_exchange_rate", "description": "Latest exchange rate between two currencies.", "parameters": {
        "type": "dict", "required": ["source_currency", "target_currency"], "properties": {
            "source_currency": {"type": "string", "description": "The currency you are converting from."},
            "target_currency": {"type": "string", "description": "The currency you are converting to."},
            "amount": {"type": "float", "description": "The amount to convert."}}}},
    {"name": "temperature_converter.convert", "description": "Convert a temperature.", "parameters": {
        "type": "dict", "required": ["temperature", "from_unit", "to_unit"], "properties": {
            "temperature": {"type": "float", "description": "The temperature."},
            "from_unit": {"type": "string", "description": "The unit to convert from."},
            "to_unit": {"type": "string", "description": "The unit to convert to."},
            "round_to": {"type": "integer", "description": "Decimal places."}}}},
], where="bfcl docs")
BY_NAME = {t.name: t for t in DOCS}


def run(n=150, **ratios):
    teacher = OfflineTeacher(DOCS, seed=11, **{"no_call_ratio": 0.0, **ratios})
    return [teacher.candidate(i) for i in range(n)]


def calls_of(candidates, name):
    return [call for c in candidates for call in c["calls"] if call["name"] == name]


def test_every_candidate_is_a_valid_example_for_every_tool():
    candidates = run(n=300, no_call_ratio=0.1, parallel_ratio=0.2)
    for i, candidate in enumerate(candidates):
        offered = offer_tools(candidate["calls"], candidate["avoid"], DOCS, random.Random(i), 1, 1)
        assert reject_reason(candidate, offered, BY_NAME, set()) is None, candidate
    assert {call["name"] for c in candidates for call in c["calls"]} == set(BY_NAME)


def test_a_list_of_integers_holds_whole_numbers_written_in_the_request():
    quantities = [(call["arguments"]["quantities"], c["utterance"]) for c in run()
                  for call in c["calls"] if call["name"] == "walmart.check_price"]
    assert len(quantities) >= 10
    for values, text in quantities:
        assert all(type(v) is int for v in values)
        assert all(re.search(rf"\b{v}\b", text) for v in values)


def test_a_quantity_named_like_a_unit_is_still_a_number():
    for call in calls_of(run(), "recipe_calculator.calculate_time"):
        assert type(call["arguments"]["per_unit_time"]) is int


def test_a_required_unit_is_given_and_written_even_without_its_number():
    found = [(call["arguments"], c["utterance"]) for c in run() for call in c["calls"]
             if call["name"] == "latest_exchange_rate"]
    assert any("amount" not in args for args, _ in found)  # the optional number is sometimes left out
    for args, text in found:
        assert args["source_currency"] in text and args["target_currency"] in text


def test_from_and_to_units_are_units_read_in_their_direction():
    for call in calls_of(run(), "temperature_converter.convert"):
        args = call["arguments"]
        assert args["from_unit"] in ("celsius", "fahrenheit", "kelvin")
        assert args["to_unit"] in ("celsius", "fahrenheit", "kelvin")


def test_parallel_requests_call_one_tool_twice_or_two_tools():
    pairs = [c["calls"] for c in run(n=200, parallel_ratio=1.0)]
    assert all(len(calls) == 2 for calls in pairs)
    same = sum(a["name"] == b["name"] for a, b in pairs)
    assert 0.3 * len(pairs) < same < 0.7 * len(pairs)
    # A catalog of one tool can still ask for parallel calls: that tool twice.
    alone = OfflineTeacher(DOCS[:1], seed=0, no_call_ratio=0.0, parallel_ratio=1.0).candidate(0)
    assert [c["name"] for c in alone["calls"]] == ["calculate", "calculate"]


TECHNICAL = parse_tools([
    {"name": "math.lcm", "description": "Least common multiple of two numbers.", "parameters": {
        "type": "dict", "required": ["num1", "num2"], "properties": {
            "num1": {"type": "integer", "description": "First number."},
            "num2": {"type": "integer", "description": "Second number."}}}},
    {"name": "finance.future_value", "description": "Future value of an investment.", "parameters": {
        "type": "dict", "required": ["initial_investment", "interest_rate"], "properties": {
            "initial_investment": {"type": "integer", "description": "The initial amount invested."},
            "interest_rate": {"type": "float", "description": "Annual interest rate as a decimal."}}}},
    {"name": "chess.rating", "description": "Fetch the current chess rating of a player.", "parameters": {
        "type": "dict", "required": ["player_name"], "properties": {
            "player_name": {"type": "string", "description": "The full name of the chess player."}}}},
    {"name": "root_finder", "description": "Find a root of an equation.", "parameters": {
        "type": "dict", "required": ["method"], "properties": {
            "method": {"type": "string", "description": "The method to use, e.g. 'bisection' or 'newton'."}}}},
], where="technical docs")


def technical_calls(name, n=400):
    teacher = OfflineTeacher(TECHNICAL, seed=5, no_call_ratio=0.0)
    found = [(c["utterance"], call["arguments"]) for c in (teacher.candidate(i) for i in range(n))
             for call in c["calls"] if call["name"] == name]
    assert len(found) >= 50
    return found


def test_like_numbers_are_often_given_in_order_without_their_names():
    found = technical_calls("math.lcm")
    in_order = [(text, args) for text, args in found if "num" not in text.lower()]
    assert 0.3 * len(found) < len(in_order) < 0.7 * len(found)
    for text, args in in_order:
        said = numbers(text.replace("one:", ":"))  # "quick one:" is a frame, not the number 1
        assert said.index(args["num1"]) < said.index(args["num2"]), text  # in the parameters' order


def test_rates_are_decimals_said_as_percentages_or_decimals():
    found = technical_calls("finance.future_value")
    rates = [args["interest_rate"] for _, args in found]
    assert all(isinstance(r, float) and 0 < r < 1 for r in rates)
    said_percent = [text for text, args in found if f"{args['interest_rate'] * 100:g}%" in text]
    assert 0.4 * len(found) < len(said_percent) < len(found)  # "5%" mostly, "0.05" sometimes
    # Large sums are written as people write them: sometimes "$12,000".
    assert any(re.search(r"\$?\d{1,3}(,\d{3})+", text) for text, _ in found)


def test_named_things_get_real_names_and_examples_from_their_description():
    players = [args["player_name"] for _, args in technical_calls("chess.rating")]
    assert sum(" " in p and p[0].isupper() for p in players) > 0.6 * len(players)  # "Magnus Carlsen"
    methods = [args["method"] for _, args in technical_calls("root_finder")]
    assert {"bisection", "newton"} <= set(methods)
