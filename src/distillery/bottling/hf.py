"""The hf bottle: a `save_pretrained` folder that transformers loads offline.

config.json, model.safetensors, generation_config.json (greedy, stops at <|end|>), the
tokenizer files with a chat template that writes the student's prompt, README.md (the model
card: how to prompt it, the tasting notes, the recipe, the lineage) and distillery.json (the
Spirit's metadata, so distillery can taste and run the folder alone).

The chat template renders `render_prompt` exactly; the one step it cannot do is the student's
whitespace rule (the prompt is read without whitespace tokens, tokenizer.py), so the card
shows the line of code that drops them.
"""

from __future__ import annotations

import copy
import json
from contextlib import contextmanager
from pathlib import Path

import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM, GenerationConfig, PreTrainedTokenizerFast
from transformers.utils import logging as hf_logging

from distillery.bottling import Bottle, check_choice
from distillery.decoding import TorchRunner
from distillery.errors import DistilleryError
from distillery.spirit import Spirit, metadata_strings, parse_metadata, prompt_format
from distillery.students.prompt_format import SYSTEM_SLOT, USER_SLOT, PromptFormat
from distillery.tokenizer import CALL, TOOLS, USER

METADATA = "distillery.json"

# The tool-calling prompt (its prompt.py's render_prompt) in Jinja: OpenAI `tools` -> compact signatures.
# Only `{{ }}` writes text and every tag trims, so it renders the same whatever the whitespace
# settings: transformers' and plain jinja2's (llama-cpp-python's chat formatter) are tested.
# The user message (the last one, its text parts joined) into ns.user.
_READ_USER = (
    '{%- set short = {"string": "str", "integer": "int", "number": "num", "boolean": "bool", "array": "list", '
    '"object": "obj", "any": "any"} -%}'
    '{%- set ns = namespace(user="") -%}'
    '{%- for message in messages -%}'
    '{%- if message["role"] == "user" -%}'
    '{%- if message["content"] is string -%}{%- set ns.user = message["content"] -%}'
    '{%- else -%}{%- set ns.user = message["content"] | selectattr("type", "equalto", "text") '
    '| map(attribute="text") | join(" ") -%}{%- endif -%}'
    '{%- endif -%}'
    '{%- endfor -%}'
)
# OpenAI `tools` -> one compact signature a line (the tool-calling task's render_tool).
_SIGNATURES = (
    '{%- for tool in tools or [] -%}'
    '{%- set f = tool["function"] if tool["function"] is defined else tool -%}'
    '{%- set schema = f["parameters"] if f["parameters"] is defined and f["parameters"] else {} -%}'
    '{%- set required = schema["required"] if schema["required"] is defined else [] -%}'
    '{%- if not loop.first -%}{{- "\\n" -}}{%- endif -%}'
    '{{- f["name"] ~ "(" -}}'
    '{%- for name, p in (schema["properties"] if schema["properties"] is defined else {}).items() -%}'
    '{%- if not loop.first -%}{{- "," -}}{%- endif -%}'
    '{{- name -}}{%- if name not in required -%}{{- "?" -}}{%- endif -%}'
    '{%- set type = p["type"] if p["type"] is defined else "any" -%}'
    '{%- set item = p["items"]["type"] if p["items"] is defined and p["items"]["type"] is defined else "any" -%}'
    '{%- if p["enum"] is defined -%}{{- ":enum[" ~ (p["enum"] | join("|")) ~ "]" -}}'
    '{%- elif type == "string" -%}'
    '{%- elif type == "array" and item != "any" -%}{{- ":list[" ~ (short[item] if item in short else item) ~ "]" -}}'
    '{%- else -%}{{- ":" ~ (short[type] if type in short else type) -}}'
    '{%- endif -%}'
    '{%- endfor -%}'
    '{{- ")" -}}'
    '{%- endfor -%}'
)
CHAT_TEMPLATE = _READ_USER + '{{- "' + TOOLS + '" -}}' + _SIGNATURES + (
    '{{- "' + USER + '" ~ (ns.user | trim) ~ "' + CALL + '" -}}'
)
_JSON_TOOLS = ('{%- for tool in tools or [] -%}{%- if not loop.first -%}{{- "\\n" -}}{%- endif -%}'
               '{{- (tool["function"] if tool["function"] is defined else tool) | tojson -}}{%- endfor -%}')


def _literal(text: str) -> str:
    return "{{- " + json.dumps(text) + " -}}"


def chat_template(fmt: PromptFormat, context: str | None = None) -> str:
    """A Jinja chat template that writes the student's prompt from OpenAI `tools` and `messages`.

    A pretrained student's prompt is its base's chat template with the instruction and the
    offered tools as the system turn: the same frame, rendered here from its pieces. A task
    whose prompt context never changes (a label set, span types) writes `context` as is.
    """
    if context is not None:
        request = "{{- ns.user | trim -}}"
        if fmt.template == "special":
            return _READ_USER + _literal(TOOLS + context + USER) + request + _literal(CALL)
        before, rest = fmt.frame.split(SYSTEM_SLOT, 1)
        between, after = rest.split(USER_SLOT, 1)
        return _READ_USER + _literal(before + fmt.instruction + "\n" + context + between) + request + _literal(after)
    if fmt.template == "special":
        return CHAT_TEMPLATE
    before, rest = fmt.frame.split(SYSTEM_SLOT, 1)
    between, after = rest.split(USER_SLOT, 1)
    tools = _SIGNATURES if fmt.tools == "signatures" else _JSON_TOOLS
    return (_READ_USER + _literal(before + fmt.instruction) + '{%- if tools -%}{{- "\\n" -}}' + tools
            + '{%- endif -%}' + _literal(between) + "{{- ns.user | trim -}}" + _literal(after))


@contextmanager
def _no_progress_bar():
    # transformers draws a progress bar for the one shard of a tiny model: noise on the command line.
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.enable_progress_bar()


def hf_tokenizer(tokenizer: Tokenizer, fmt: PromptFormat, context: str | None = None) -> PreTrainedTokenizerFast:
    pad = tokenizer.id_to_token(fmt.pad_id)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=fmt.end_text, pad_token=pad,
                                   chat_template=chat_template(fmt, context), model_max_length=fmt.context)


def export(spirit: Spirit, out: Path, quantize: str | None = None) -> Path:
    """Write the folder `<out>/<name>-hf` (f32 weights; `<name>-hf-f16` with quantize="f16"); returns it."""
    check_choice("hf", quantize)
    out = Path(out) / f"{spirit.path.stem}-hf{'-' + quantize if quantize else ''}"
    out.mkdir(parents=True, exist_ok=True)
    model = copy.deepcopy(spirit.model)
    if quantize == "f16":
        model = model.half()
    config, fmt = spirit.metadata["model_config"], spirit.format
    model.generation_config = GenerationConfig(
        bos_token_id=config.get("bos_token_id"), eos_token_id=fmt.end_id, pad_token_id=fmt.pad_id,
        do_sample=False, max_length=fmt.context)
    with _no_progress_bar():
        model.save_pretrained(out)
    hf_tokenizer(spirit.tokenizer, fmt, spirit.task.fixed_context()).save_pretrained(out)
    # transformers 5 writes the class name TokenizersBackend, unknown to transformers 4; both load this one.
    tokenizer_config = json.loads((out / "tokenizer_config.json").read_text())
    tokenizer_config["tokenizer_class"] = "PreTrainedTokenizerFast"
    (out / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2))
    (out / METADATA).write_text(json.dumps(metadata_strings(spirit.metadata), indent=1, ensure_ascii=False),
                                encoding="utf-8")
    write_card(out, spirit.metadata, quantize)
    return out


def read_metadata(folder: Path) -> dict:
    path = Path(folder) / METADATA
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DistilleryError(f"{folder}: no {METADATA} in the folder, so it is not an hf bottle of distillery. "
                              "Fix: `distillery bottle SPIRIT --format hf --out DIR`.") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise DistilleryError(f"{path}: cannot be read ({exc}). Fix: bottle the Spirit again.") from None
    return parse_metadata(raw, str(path))


def open_bottle(path: Path) -> Bottle:
    """The folder's model in transformers (in f32: an f16 folder is rounded, computed in f32 on a CPU)."""
    path = Path(path)
    metadata = read_metadata(path)
    try:
        with _no_progress_bar():
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise DistilleryError(f"{path}: transformers cannot load the folder ({exc}). Fix: bottle the Spirit "
                              "again.") from None
    model.eval()
    tokenizer = Tokenizer.from_str(metadata["tokenizer"])
    return Bottle(runner=TorchRunner(model, prompt_format(metadata, tokenizer).context), tokenizer=tokenizer,
                  metadata=metadata, format="hf")


_USAGE = """\
```python
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

tok = AutoTokenizer.from_pretrained("{folder}")
model = AutoModelForCausalLM.from_pretrained("{folder}")
tools = [...]  # OpenAI-format tools; the ones it was distilled on are `tools` in distillery.json
messages = [{{"role": "user", "content": "{example}"}}]
text = tok.apply_chat_template(messages, tools=tools, tokenize=False)
# The student reads its prompt without whitespace tokens: drop them (not from the answer).
skip = {{i for i in range(len(tok)) if tok.decode([i]).isspace()}}
ids = [i for i in tok(text)["input_ids"] if i not in skip]
out = model.generate(torch.tensor([ids]), max_new_tokens=128)  # greedy, stops at <|end|>
print(tok.decode(out[0, len(ids):], skip_special_tokens=True))
```"""


_CHAT_USAGE = """\
```python
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

tok = AutoTokenizer.from_pretrained("{folder}")
model = AutoModelForCausalLM.from_pretrained("{folder}")
tools = [...]  # OpenAI-format tools; the ones it was distilled on are `tools` in distillery.json
messages = [{{"role": "user", "content": "{example}"}}]
ids = tok.apply_chat_template(messages, tools=tools, add_generation_prompt=True, return_tensors="pt")
out = model.generate(ids, max_new_tokens=128)  # greedy, stops at the end of its turn
print(tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True))
```"""


def _metrics_table(rows: dict[str, dict]) -> str:
    first = next(iter(rows.values())).get("metrics", {})
    keys = [k for k, v in first.items() if isinstance(v, (int, float)) and not isinstance(v, bool)][:5]
    lines = ["| | " + " | ".join(keys) + " | n |", "|---" * (len(keys) + 2) + "|"]
    for label, notes in rows.items():
        metrics = notes.get("metrics", {})
        lines.append(f"| {label} | " + " | ".join(f"{metrics[k]:.3f}" if k in metrics else "-" for k in keys)
                     + f" | {notes.get('n_eval', '-')} |")
    return "\n".join(lines)


def write_card(folder: Path, metadata: dict, quantize: str | None, bottle_notes: dict | None = None) -> None:
    """README.md: what the model is, how to prompt it, its tasting notes, recipe and lineage."""
    from distillery.tasks import task_of

    name = Path(folder).name
    card = task_of(metadata, name).card()
    tasting = metadata.get("tasting", {})
    rows = {"the Spirit (distillery's tasting)": tasting}
    if bottle_notes is not None:
        rows[f"this folder ({quantize or 'f32'})"] = bottle_notes
    example = card["example"]
    fmt = prompt_format(metadata, Tokenizer.from_str(metadata["tokenizer"]))
    student = metadata.get("student") or {"kind": "tiny"}
    fixed = card["fixed_context"]
    usage = (_USAGE if fmt.template == "special" else _CHAT_USAGE).format(folder=name, example=example)
    if fixed:  # the prompt's context is in the chat template: no tools to pass
        usage = usage.replace("tools = [...]  # OpenAI-format tools; the ones it was distilled on are `tools` in "
                              "distillery.json\n", "").replace(", tools=tools", "")
    if fmt.template == "special":
        what = (f"A {tasting.get('params', 0) / 1e6:.1f}M-parameter Llama student distilled by distillery for\n"
                f"{card['what']}, then `<|end|>`.")
        prompt = (("`<|tools|>` the " + fixed + " `<|user|>` the text `<|call|>`.\nThe chat template writes it from "
                   "`messages`.") if fixed else
                  ("`<|tools|>` one signature a line (`name(param,optional?:type,...)`) `<|user|>` the request "
                   "`<|call|>`.\nThe chat template writes it from OpenAI-format `tools` and `messages`.")) + (
                  " One more rule: **the prompt is\nread without whitespace tokens** (every token that decodes to "
                  "whitespace is dropped from the prompt's\nids; the answer keeps its spaces). Greedy decoding, as in "
                  "generation_config.json:\n\n" + usage)
    else:
        what = (f"A {tasting.get('params', 0) / 1e6:.1f}M-parameter {student['kind']} fine-tune of "
                f"`{student.get('base')}`, distilled by distillery for\n{card['what']}, then `{fmt.end_text}`.")
        offered = (f"the {fixed}" if fixed else "the offered tools (" + (
            "compact signatures" if fmt.tools == "signatures" else "OpenAI function JSON") + ")")
        prompt = (f"Its base's chat template, with the instruction and {offered} as the system turn.\n"
                  "The chat template writes it from " + ("`messages`" if fixed else "OpenAI-format `tools` and "
                                                          "`messages`") +
                  "; greedy decoding, as in generation_config.json:\n\n" + usage)
    card = f"""---
library_name: transformers
pipeline_tag: text-generation
tags: [distillery, {', '.join(card['tags'])}, llama]
---
# {name}

{what}
{card['trained_on']} Weights: {quantize or 'f32'}.

## Prompt

{prompt}

{card['constraint']} `distillery predict
{name} "{example}"` runs this folder with it.

## Tasting notes

Measured on {tasting.get('n_eval', '?')} held-out requests (the Spirit's heads, stored in distillery.json).

{_metrics_table(rows)}

## Recipe

```yaml
{metadata['recipe'].strip()}
```

## Lineage

```json
{json.dumps(metadata.get('lineage', {}), indent=2)}
```
"""
    (Path(folder) / "README.md").write_text(card, encoding="utf-8")


def record_tasting(folder: Path, notes: dict) -> None:
    """Put the folder's own tasting numbers into its model card."""
    write_card(folder, read_metadata(folder), notes.get("quantize"), notes)
