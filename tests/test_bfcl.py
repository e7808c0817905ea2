"""BFCL-compatible scoring: one test per rule of BFCL's AST checker, with BFCL-shaped data."""

from distillery.tasks.tool_calling.bfcl import check, first_answer, names_right, standardize

# A BFCL function doc (types as BFCL writes them) and its possible answer.
AREA = {"name": "geometry.area", "description": "Area of a shape.", "parameters": {
    "type": "dict", "required": ["shape", "base"], "properties": {
        "shape": {"type": "string"},
        "base": {"type": "float"},
        "height": {"type": "integer"},
        "unit": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "origin": {"type": "tuple", "items": {"type": "integer"}},
        "round": {"type": "boolean"},
    }}}
ANSWER = [{"geometry.area": {"shape": ["triangle"], "base": [10.0], "height": [5, ""],
                             "unit": ["square meters", "m2", ""]}}]


def call(name="geometry.area", **arguments):
    return {"name": name, "arguments": arguments}


def simple(*calls, answer=ANSWER, functions=(AREA,)):
    return check("simple_python", list(functions), list(calls), answer)


def test_the_possible_answer_itself_is_accepted():
    assert simple(call(shape="triangle", base=10.0, height=5, unit="m2")) is None
    assert first_answer(ANSWER) == [{"name": "geometry.area",
                                     "arguments": {"shape": "triangle", "base": 10.0, "height": 5,
                                                   "unit": "square meters"}}]


def test_function_name_must_match_exactly():
    assert "wrong_function" in simple(call("geometry_area", shape="triangle", base=10.0))
    assert "wrong_function" in simple(call("Geometry.area", shape="triangle", base=10.0))


def test_required_parameters_must_be_given():
    assert simple(call(shape="triangle")) == "missing_required: 'base'"


def test_no_parameter_outside_the_schema_or_the_possible_answer():
    assert simple(call(shape="triangle", base=10.0, color="red")) == "unexpected_parameter: 'color'"
    # `round` is in the schema but not in the answer: giving it is wrong too.
    assert simple(call(shape="triangle", base=10.0, round=True)) == "unexpected_parameter: 'round'"


def test_empty_string_marks_an_optional_parameter():
    assert simple(call(shape="triangle", base=10.0)) is None  # height and unit may be left out
    answer = [{"geometry.area": {"shape": ["triangle"], "base": [10.0], "height": [5]}}]
    assert "missing_parameter: 'height'" in simple(call(shape="triangle", base=10.0), answer=answer)


def test_int_is_accepted_for_a_float_but_not_the_other_way():
    assert simple(call(shape="triangle", base=10, height=5)) is None
    assert simple(call(shape="triangle", base=10.0, height=5.0)) == \
        "wrong_type: height: expected integer, got float 5.0"
    assert "expected float, got str" in simple(call(shape="triangle", base="10"))
    assert "expected integer, got bool" in simple(call(shape="triangle", base=10.0, height=True))


def test_any_value_from_the_list_of_possible_answers():
    assert simple(call(shape="triangle", base=10.0, unit="square meters")) is None
    assert simple(call(shape="triangle", base=10.0, unit="m2")) is None
    assert simple(call(shape="triangle", base=10.0, unit="cm2")) == \
        "wrong_value: unit: 'cm2' not in ['square meters', 'm2', '']"
    assert "not in" in simple(call(shape="triangle", base=12.5))


def test_strings_compare_in_bfcl_normal_form():
    assert standardize("Square-Meters, 2024.") == "squaremeters2024"
    assert standardize("it's") == 'it"s'
    assert simple(call(shape="Triangle", base=10.0, unit="Square_Meters.")) is None
    assert "not in" in simple(call(shape="triangles", base=10.0))


def test_lists_compare_element_wise_in_order_and_a_tuple_is_a_list():
    answer = [{"geometry.area": {"shape": ["triangle"], "base": [10.0],
                                 "tags": [["Red Roof", "big"]], "origin": [[0, 1]]}}]
    assert simple(call(shape="triangle", base=10.0, tags=["red roof", "BIG"], origin=[0, 1]),
                  answer=answer) is None
    assert simple(call(shape="triangle", base=10.0, tags=["red roof", "big"], origin=(0, 1)),
                  answer=answer) is None
    assert "not in" in simple(call(shape="triangle", base=10.0, tags=["big", "red roof"], origin=[0, 1]),
                              answer=answer)
    # Elements are type-checked one level deep: floats are not integers.
    assert "not all integer" in simple(call(shape="triangle", base=10.0, tags=["red roof", "big"],
                                            origin=[0.0, 1.0]), answer=answer)


def test_an_answer_of_another_type_is_a_variable_compared_as_written():
    answer = [{"geometry.area": {"shape": ["triangle"], "base": ["side_length"]}}]
    assert simple(call(shape="triangle", base="side_length"), answer=answer) is None
    assert "not in" in simple(call(shape="triangle", base="Side Length"), answer=answer)


def test_dict_values_and_lists_of_dicts():
    fn = {"name": "book", "parameters": {"type": "dict", "required": ["room"], "properties": {
        "room": {"type": "dict"}, "guests": {"type": "array", "items": {"type": "dict"}}}}}
    answer = [{"book": {"room": [{"type": ["Double"], "view": ["sea", ""]}],
                        "guests": [[{"name": ["Ana"]}, {"name": ["Tom"]}], ""]}}]

    def book(**arguments):
        return check("simple_python", [fn], [call("book", **arguments)], answer)

    assert book(room={"type": "double"}) is None  # view is optional inside the dict
    assert book(room={"type": "double", "view": "Sea"}, guests=[{"name": "ana"}, {"name": "TOM"}]) is None
    assert "matches no possible answer" in book(room={"type": "single"})
    assert "matches no possible answer" in book(room={"type": "double", "floor": 2})
    assert "matches no possible answer" in book(room={"type": "double"}, guests=[{"name": "Tom"}])


def test_simple_and_multiple_expect_exactly_one_call():
    one = call(shape="triangle", base=10.0)
    assert simple(one, one) == "wrong_count: 2 calls, expected 1"
    assert check("simple_python", [AREA], [], ANSWER) == "wrong_count: 0 calls, expected 1"
    assert check("simple_python", [AREA], None, ANSWER) == "not_calls: the output is not a list of calls"
    other = {"name": "geometry.perimeter", "parameters": {"type": "dict", "properties": {}}}
    assert check("multiple", [other, AREA], [one], ANSWER) is None
    assert "wrong_function" in check("multiple", [other, AREA], [call("geometry.perimeter")], ANSWER)


def test_parallel_calls_match_without_order():
    answers = [{"geometry.area": {"shape": ["triangle"], "base": [10.0]}},
               {"geometry.area": {"shape": ["square"], "base": [4.0]}}]
    square, triangle = call(shape="square", base=4), call(shape="triangle", base=10)
    for category in ("parallel", "parallel_multiple"):
        assert check(category, [AREA], [square, triangle], answers) is None
        assert check(category, [AREA], [triangle, square], answers) is None
        assert "no_match: no call matches expected call 2" in check(category, [AREA], [triangle, triangle], answers)
        assert check(category, [AREA], [triangle], answers) == "wrong_count: 1 calls, expected 2"


def test_irrelevance_is_right_only_without_a_call():
    assert check("irrelevance", [AREA], [], []) is None
    assert check("irrelevance", [AREA], None, []) is None  # not calls at all: no call was made
    assert "spurious_call" in check("irrelevance", [AREA], [call(shape="x", base=1.0)], [])


def test_tool_name_accuracy_compares_name_multisets():
    answers = [{"a": {}}, {"b": {}}, {"a": {}}]
    assert names_right([call("b"), call("a"), call("a")], answers)
    assert not names_right([call("a"), call("b")], answers)
    assert not names_right(None, answers)
    assert names_right([], []) and names_right(None, []) and not names_right([call("a")], [])
