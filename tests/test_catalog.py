import json

import pytest

from distillery.errors import CatalogError
from distillery.tasks.tool_calling.catalog import (
    enum_from_description,
    load_catalog,
    parse_tools,
)
from distillery.tasks.tool_calling.schema import Param, Tool

OPENAI_WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name."},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer"},
            },
            "required": ["city"],
        },
    },
}

ANTHROPIC_SEARCH = {
    "name": "search",
    "description": "Search the web.",
    "input_schema": {
        "type": "object",
        "properties": {"query": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}},
        "required": ["query"],
    },
}

# Copied from bfcl-eval's data (simple_python_0, simple_python_1, live_relevance_3-3-0,
# irrelevance_30, simple_java_2), trimmed.
BFCL_TRIANGLE = {
    "name": "calculate_triangle_area",
    "description": "Calculate the area of a triangle given its base and height.",
    "parameters": {
        "type": "dict",
        "properties": {
            "base": {"type": "integer", "description": "The base of the triangle."},
            "height": {"type": "integer", "description": "The height of the triangle."},
            "unit": {"type": "string", "description": "The unit of measure (defaults to 'units' if not specified)"},
        },
        "required": ["base", "height"],
    },
}
BFCL_FACTORIAL = {
    "name": "math.factorial",
    "description": "Calculate the factorial of a given number.",
    "parameters": {
        "type": "dict",
        "properties": {"number": {"type": "integer", "description": "The number."}},
        "required": ["number"],
    },
}
BFCL_METEO = {
    "name": "open_meteo_api.fetch_weather_data",
    "description": "Fetches the current temperature from the Open-Meteo API.",
    "parameters": {
        "type": "dict",
        "required": ["coordinates"],
        "properties": {
            "coordinates": {"type": "tuple", "description": "Latitude and longitude.", "items": {"type": "float"}},
            "units": {"type": "string", "enum": ["Celsius", "Fahrenheit", "Kelvin"], "default": "Celsius"},
            "scale": {"type": "Float", "description": "A scale factor."},
            "options": {"type": "dict", "properties": {"verbose": {"type": "boolean"}}},
        },
    },
}
BFCL_BLOODCELL = {
    "name": "bloodcell_classification",
    "description": "Identify and categorize different types of blood cells.",
    "parameters": {
        "type": "dict",
        "properties": {
            "cell_shape": {"type": "string", "description": "The shape of the cell, e.g. round, oval."},
            "cell_function": {"type": "String", "description": "Default: 'carry oxygen'.", "optional": True},
        },
        "required": ["cell_shape", "cell_function"],
    },
}


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_openai_tool_is_read_into_internal_form():
    [tool] = parse_tools([OPENAI_WEATHER], where="test")
    assert tool.name == "get_weather"
    assert tool.description == "Current weather for a city."
    assert tool.required == ("city",)
    assert tool.param("unit") == Param(name="unit", type="string", enum=("celsius", "fahrenheit"))
    assert tool.param("days").type == "integer"
    assert tool.param("days").required is False


def test_bare_function_and_anthropic_input_schema():
    bare = dict(OPENAI_WEATHER["function"], name="get_weather_bare")
    tools = parse_tools([bare, ANTHROPIC_SEARCH], where="test")
    assert [t.name for t in tools] == ["get_weather_bare", "search"]
    search = tools[1]
    assert search.required == ("query",)
    assert search.param("tags") == Param(name="tags", type="array", items="string")


def test_tool_without_parameters_takes_no_arguments():
    [tool] = parse_tools([{"name": "ping"}], where="test")
    assert tool == Tool(name="ping")


def test_bfcl_function_docs_are_normalized():
    tools = parse_tools([BFCL_TRIANGLE, BFCL_FACTORIAL, BFCL_METEO, BFCL_BLOODCELL], where="test")
    triangle, factorial, meteo, blood = tools
    assert triangle.required == ("base", "height")
    assert triangle.param("unit").enum is None  # "defaults to 'units'" is not an enum
    assert factorial.name == "math.factorial"  # dots kept as is
    coords = meteo.param("coordinates")
    assert (coords.type, coords.items, coords.required) == ("array", "number", True)
    assert meteo.param("units").enum == ("Celsius", "Fahrenheit", "Kelvin")
    assert meteo.param("units").default == "Celsius"
    assert meteo.param("scale").type == "number"  # "Float", capitalized
    assert meteo.param("options").type == "object"
    # "optional": true wins over the required list; "String" is a string.
    assert blood.required == ("cell_shape",)
    assert blood.param("cell_function").type == "string"


def test_python_type_spellings_are_normalized():
    props = {n: {"type": t} for n, t in [("a", "int"), ("b", "bool"), ("c", "str"), ("d", "list"), ("e", "any")]}
    [tool] = parse_tools([{"name": "f", "parameters": {"type": "dict", "properties": props}}], where="test")
    assert [p.type for p in tool.params] == ["integer", "boolean", "string", "array", "any"]


def test_enum_values_that_contradict_the_type_decide_it():
    # BFCL's live sets: a "boolean" whose answers are the strings "True"/"False"/"dontcare".
    prop = {"type": "boolean", "enum": ["True", "False", "dontcare"], "default": "dontcare"}
    [tool] = parse_tools([{"name": "f", "parameters": {"type": "dict", "properties": {"x": prop}}}], "test")
    assert tool.param("x").type == "string"
    assert tool.param("x").enum == ("True", "False", "dontcare")


def test_enum_found_in_description_only_for_clear_patterns():
    assert enum_from_description("The unit. One of ['celsius', 'fahrenheit']") == ("celsius", "fahrenheit")
    assert enum_from_description("Sort order. Allowed values: 'asc', 'desc'") == ("asc", "desc")
    assert enum_from_description("Units, either 'metric' or 'imperial'.") == ("metric", "imperial")
    assert enum_from_description("Possible values are 'Bot', 'BotLocale', or 'Vocab'.") == ("Bot", "BotLocale", "Vocab")
    # Open-ended, explained or merely illustrative lists are not enums.
    assert enum_from_description("Options: 'single', 'double', 'deluxe', etc.") is None
    assert enum_from_description("Possible values are 'asc' for ascending and 'desc' for descending.") is None
    assert enum_from_description("Options include 'PDF', 'HTML', 'DOCX'.") is None
    assert enum_from_description("List of sizes, such as ['S', 'M', 'L'].") is None
    assert enum_from_description("Unit, either metric or imperial.") is None
    assert enum_from_description("One of the competing teams.") is None


def test_description_enum_is_applied_to_string_params_only():
    props = {
        "unit": {"type": "string", "description": "One of ['celsius', 'fahrenheit']"},
        "ace": {"type": "string", "description": "One of ['1', '11']", "default": "5"},
        "n": {"type": "integer", "description": "One of ['1', '2']"},
    }
    [tool] = parse_tools([{"name": "f", "parameters": {"type": "dict", "properties": props}}], "test")
    assert tool.param("unit").enum == ("celsius", "fahrenheit")
    assert tool.param("ace").enum is None  # default outside the list: the list is not complete
    assert tool.param("n").enum is None


def test_load_inline_list(tmp_path):
    tools = load_catalog([OPENAI_WEATHER], base_dir=tmp_path)
    assert [t.name for t in tools] == ["get_weather"]


def test_load_json_array_object_and_relative_path(tmp_path):
    (tmp_path / "tools").mkdir()
    write(tmp_path / "tools" / "all.json", json.dumps([OPENAI_WEATHER, ANTHROPIC_SEARCH]))
    write(tmp_path / "one.json", json.dumps(BFCL_FACTORIAL))
    assert [t.name for t in load_catalog("tools/all.json", tmp_path)] == ["get_weather", "search"]
    assert [t.name for t in load_catalog(tmp_path / "one.json", base_dir=tmp_path / "elsewhere")] == [
        "math.factorial"
    ]


def test_load_jsonl_and_bfcl_question_lines(tmp_path):
    lines = [
        {"id": "simple_0", "question": [[{"role": "user", "content": "SECRET"}]], "function": [BFCL_TRIANGLE]},
        {"id": "simple_1", "question": [[{"role": "user", "content": "SECRET"}]], "function": [BFCL_FACTORIAL, BFCL_TRIANGLE]},
    ]
    path = write(tmp_path / "questions.jsonl", "\n".join(json.dumps(line) for line in lines) + "\n\n")
    tools = load_catalog(path, tmp_path)
    assert [t.name for t in tools] == ["calculate_triangle_area", "math.factorial"]  # deduped by name
    assert "SECRET" not in repr(tools)
    # BFCL names its JSON Lines files .json; they are read all the same.
    write(tmp_path / "BFCL_v4_simple_python.json", path.read_text())
    assert len(load_catalog("BFCL_v4_simple_python.json", tmp_path)) == 2


@pytest.mark.parametrize(
    "items, message",
    [
        ([OPENAI_WEATHER, OPENAI_WEATHER], "test, item 2: tool 'get_weather' is defined twice"),
        ([{"description": "no name"}], 'test, item 1: the tool has no "name"'),
        (["get_weather"], "test, item 1: expected a tool definition (a JSON object), got str"),
        ([], "test: the tool catalog is empty"),
        (
            [{"name": "f", "parameters": {"type": "dict", "properties": {"x": {"type": "datetime"}}}}],
            "test, item 1 ('f'), parameter 'x': unknown type 'datetime'. Use one of string, integer,",
        ),
        ([{"name": "f", "parameters": {"type": "string"}}], "test, item 1 ('f'): \"parameters\" must describe an object"),
    ],
)
def test_bad_catalogs_are_named_precisely(items, message):
    with pytest.raises(CatalogError) as e:
        parse_tools(items, where="test")
    assert message in str(e.value)


def test_file_errors_name_file_and_line(tmp_path):
    with pytest.raises(CatalogError, match=r"tool catalog .*missing\.json does not exist"):
        load_catalog("missing.json", tmp_path)
    write(tmp_path / "bad.jsonl", json.dumps(BFCL_FACTORIAL) + "\n{not json\n")
    with pytest.raises(CatalogError, match=r"bad\.jsonl, line 2: invalid JSON"):
        load_catalog("bad.jsonl", tmp_path)
    write(tmp_path / "bad.json", "[\n  {\"name\": \"f\",}\n]")
    with pytest.raises(CatalogError, match=r"bad\.json: invalid JSON \(.* at line 2, column"):
        load_catalog("bad.json", tmp_path)
    write(tmp_path / "tools.yaml", "- name: f\n")
    with pytest.raises(CatalogError, match="expected a .json or .jsonl file"):
        load_catalog("tools.yaml", tmp_path)
    write(tmp_path / "empty.json", "[]")
    with pytest.raises(CatalogError, match=r"empty\.json: the tool catalog is empty"):
        load_catalog("empty.json", tmp_path)
    write(tmp_path / "dup.jsonl", json.dumps(BFCL_FACTORIAL) + "\n" + json.dumps(BFCL_FACTORIAL) + "\n")
    with pytest.raises(CatalogError, match=r"dup\.jsonl, line 2: tool 'math.factorial' is defined twice"):
        load_catalog("dup.jsonl", tmp_path)
