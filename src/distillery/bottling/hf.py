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
from transformers import GenerationConfig, LlamaForCausalLM, PreTrainedTokenizerFast
from transformers.utils import logging as hf_logging

from distillery.bottling import Bottle, check_choice
from distillery.decoding import TorchRunner
from distillery.errors import DistilleryError
from distillery.spirit import Spirit, metadata_strings, parse_metadata
from distillery.tasks.tool_calling.prompt import CALL, END, PAD, TOOLS, USER

METADATA = "distillery.json"

# tasks/tool_calling/prompt.py's render_prompt in Jinja: OpenAI `tools` -> compact signatures.
# Only `{{ }}` writes text and every tag trims, so it renders the same whatever the whitespace
# settings: transformers' and plain jinja2's (llama-cpp-python's chat formatter) are tested.
CHAT_TEMPLATE = (
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
    '{{- "' + TOOLS + '" -}}'
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
    '{{- "' + USER + '" ~ (ns.user | trim) ~ "' + CALL + '" -}}'
)


@contextmanager
def _no_progress_bar():
    # transformers draws a progress bar for the one shard of a tiny model: noise on the command line.
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.enable_progress_bar()


def hf_tokenizer(tokenizer: Tokenizer, max_len: int) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=END, pad_token=PAD,
                                   chat_template=CHAT_TEMPLATE, model_max_length=max_len)


def export(spirit: Spirit, out: Path, quantize: str | None = None) -> Path:
    """Write the folder `<out>/<name>-hf` (f32 weights; `<name>-hf-f16` with quantize="f16"); returns it."""
    check_choice("hf", quantize)
    out = Path(out) / f"{spirit.path.stem}-hf{'-' + quantize if quantize else ''}"
    out.mkdir(parents=True, exist_ok=True)
    model = copy.deepcopy(spirit.model)
    if quantize == "f16":
        model = model.half()
    config = spirit.metadata["model_config"]
    model.generation_config = GenerationConfig(
        bos_token_id=config["bos_token_id"], eos_token_id=config["eos_token_id"],
        pad_token_id=config["pad_token_id"], do_sample=False, max_length=config["max_position_embeddings"])
    with _no_progress_bar():
        model.save_pretrained(out)
    hf_tokenizer(spirit.tokenizer, config["max_position_embeddings"]).save_pretrained(out)
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
            model = LlamaForCausalLM.from_pretrained(path, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise DistilleryError(f"{path}: transformers cannot load the folder ({exc}). Fix: bottle the Spirit "
                              "again.") from None
    model.eval()
    return Bottle(runner=TorchRunner(model), tokenizer=Tokenizer.from_str(metadata["tokenizer"]),
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


def _metrics_table(rows: dict[str, dict]) -> str:
    keys = ["exact_call_accuracy", "tool_name_accuracy", "arg_key_f1", "valid_call_rate"]
    lines = ["| | " + " | ".join(keys) + " | n |", "|---" * (len(keys) + 2) + "|"]
    for label, notes in rows.items():
        metrics = notes.get("metrics", {})
        lines.append(f"| {label} | " + " | ".join(f"{metrics[k]:.3f}" if k in metrics else "-" for k in keys)
                     + f" | {notes.get('n_eval', '-')} |")
    return "\n".join(lines)


def write_card(folder: Path, metadata: dict, quantize: str | None, bottle_notes: dict | None = None) -> None:
    """README.md: what the model is, how to prompt it, its tasting notes, recipe and lineage."""
    name = Path(folder).name
    tools = [t["function"]["name"] for t in metadata["tools"]]
    tasting = metadata.get("tasting", {})
    rows = {"the Spirit (distillery's tasting)": tasting}
    if bottle_notes is not None:
        rows[f"this folder ({quantize or 'f32'})"] = bottle_notes
    example = "set a timer for 10 minutes"
    card = f"""---
library_name: transformers
pipeline_tag: text-generation
tags: [distillery, tool-calling, function-calling, llama]
---
# {name}

A {tasting.get('params', 0) / 1e6:.1f}M-parameter Llama student distilled by distillery for
{metadata['task'].replace('_', ' ')}: given a request and the tools on offer, it writes the calls as
compact JSON, `[{{"name": ..., "arguments": {{...}}}}]`, then `<|end|>`.
It was trained on {len(tools)} tools: {', '.join(f'`{t}`' for t in tools)}. Weights: {quantize or 'f32'}.

## Prompt

`<|tools|>` one signature a line (`name(param,optional?:type,...)`) `<|user|>` the request `<|call|>`.
The chat template writes it from OpenAI-format `tools` and `messages`. One more rule: **the prompt is
read without whitespace tokens** (every token that decodes to whitespace is dropped from the prompt's
ids; the answer keeps its spaces). Greedy decoding, as in generation_config.json:

{_USAGE.format(folder=name, example=example)}

distillery decodes under a grammar of the offered tools (only their names, argument keys and types),
so an invalid call cannot come out; plain `generate` has no such constraint. `distillery predict
{name} "{example}"` runs this folder with the grammar.

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
