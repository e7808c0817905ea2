"""The Spirit: one safetensors file that holds everything needed to run the student.

Tensors are the weights; the safetensors `__metadata__` carries JSON strings: `format`,
`model_config`, `tokenizer` (tokenizer.json text), `recipe` (resolved YAML), `task`,
`tools` (the catalog in OpenAI format, so `predict` needs no other file), `tasting`
(headline numbers), `lineage` (parent, Mash and recipe hashes, and for a pretrained student
its base's name and sha256), `decoding`, `student` (its kind and base), `prompt_format` (how
a request becomes prompt ids: students/prompt_format.py), `chat_template` (a pretrained
student's, its base's) and `heads` (the held-out examples the tasting used, JSON Lines
text, so any bottle of the Spirit is tasted on the same examples). Weights are stored in
`spirit.dtype` (float32, float16 or bfloat16) and always run in float32. No pickle
anywhere: opening a Spirit runs no code.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_model, save_model
from tokenizers import Tokenizer

from distillery.errors import DistilleryError, SpiritError
from distillery.students import student_for
from distillery.students.prompt_format import PromptFormat, tiny_format
from distillery.tasks import task_of

FORMAT = "distillery.spirit/1"
_JSON_KEYS = ("model_config", "tasting", "lineage", "tools", "labels", "decoding", "student", "prompt_format")
# Keys older Spirits lack: they decode with the grammar alone, and they are tiny students
# whose prompt format follows from their tokenizer (see `prompt_format`). A Spirit of a task
# other than tool calling has no tools.
_OPTIONAL = {"tools": "[]", "decoding": json.dumps({"grammar": True, "copied_params": []}),
             "student": json.dumps({"kind": "tiny"}), "prompt_format": "null"}
# Every metadata key, in the order bottles write them; `heads` and `chat_template` are optional.
KEYS = ("format", "model_config", "tokenizer", "recipe", "task", "tools", "labels", "tasting", "lineage", "decoding",
        "student", "prompt_format", "chat_template", "heads")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass
class Spirit:
    path: Path
    model: object  # a transformers causal LM, float32, in eval mode
    tokenizer: Tokenizer
    metadata: dict  # JSON fields parsed, text fields as text
    task: object  # the Task rebuilt from the metadata (tasks/base.py): what answers, tastes and serves it
    decoding: dict  # how it decodes: the task's settings (a tool catalog's copied params, a label set...)
    format: PromptFormat

    @property
    def tools(self) -> list:
        """The catalog a tool-calling Spirit was distilled on (empty for other tasks)."""
        return getattr(self.task, "catalog", [])


def write_child(path: Path, model, parent: Spirit, *, tasting: dict, lineage: dict, decoding: dict, context: dict,
                recipe_yaml: str | None = None, heads: str | None = None, dtype: str = "float32") -> None:
    """A Spirit trained further from `parent` (refine, age): the parent's student, tokenizer and
    prompt format, new weights, notes and decoding; its lineage's `parent` is the parent file's sha256."""
    meta = parent.metadata
    write_spirit(path, model, model_config=meta["model_config"], tokenizer_json=meta["tokenizer"],
                 recipe_yaml=recipe_yaml or meta["recipe"], task=meta["task"], context=context, tasting=tasting,
                 lineage={**meta["lineage"], **lineage, "parent": file_sha256(parent.path)}, decoding=decoding,
                 student=meta["student"], prompt_format=parent.format, chat_template=meta.get("chat_template"),
                 heads=heads if heads is not None else meta.get("heads"), dtype=dtype)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_spirit(path: Path, model, *, model_config: dict, tokenizer_json: str, recipe_yaml: str, task: str,
                 tasting: dict, lineage: dict, decoding: dict, tools: list | None = None,
                 context: dict[str, str] | None = None, student: dict | None = None,
                 prompt_format: PromptFormat | None = None, chat_template: str | None = None,
                 heads: str | None = None, dtype: str = "float32") -> None:
    """Write the Spirit; `dtype` is the weights' storage type (they load back as float32).

    `context` is what the task needs to answer on its own (Task.spirit_context: the tool
    catalog as `tools`, a label set as `labels`); `tools` is the tool-calling shorthand.
    Without `student` and `prompt_format` it is a tiny student's, whose format follows from its tokenizer.
    """
    context = dict(context or {})
    if tools is not None:
        context["tools"] = json.dumps([t.to_openai() for t in tools], ensure_ascii=False)
    student = student or {"kind": "tiny"}
    if prompt_format is None:
        prompt_format = tiny_format(Tokenizer.from_str(tokenizer_json), model_config["max_position_embeddings"])
    metadata = {
        "format": FORMAT,
        "model_config": json.dumps(model_config, sort_keys=True),
        "tokenizer": tokenizer_json,
        "recipe": recipe_yaml,
        "task": task,
        **context,
        "tasting": json.dumps(tasting, sort_keys=True),
        "lineage": json.dumps(lineage, sort_keys=True),
        "decoding": json.dumps(decoding, sort_keys=True),
        "student": json.dumps(student, sort_keys=True),
        "prompt_format": prompt_format.to_json(),
    }
    if chat_template is not None:
        metadata["chat_template"] = chat_template
    if heads is not None:
        metadata["heads"] = heads
    tmp = path.with_suffix(".spirit.tmp")
    if dtype != "float32":
        model = model.to(DTYPES[dtype])
    try:
        save_model(model, str(tmp), metadata=metadata)
    finally:
        if dtype != "float32":
            model.float()
    os.replace(tmp, path)


def read_metadata(path: Path) -> dict:
    """The Spirit's metadata, JSON fields parsed; raises SpiritError for anything that is not a Spirit."""
    path = Path(path)
    if not path.is_file():
        raise SpiritError(f"{path}: no such Spirit file. Fix: give the path of a `.spirit` file "
                          "(`distillery distill` writes one under runs/<name>-v<version>/).")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise SpiritError(f"{path}: not a readable safetensors file ({exc}). Fix: re-run `distillery distill`.")
    return parse_metadata(raw, str(path))


def parse_metadata(raw: dict[str, str], where: str) -> dict:
    """Spirit metadata as stored (every value a string) -> JSON fields parsed; `where` names the file."""
    if raw.get("format") != FORMAT:
        raise SpiritError(f"{where}: not a distillery Spirit (format is {raw.get('format')!r}, "
                          f"expected {FORMAT!r}).")
    meta = dict(raw)
    for key in _JSON_KEYS:
        if key == "labels" and key not in raw:  # only a classification Spirit has a label set
            continue
        try:
            meta[key] = json.loads(raw[key] if key in raw or key not in _OPTIONAL else _OPTIONAL[key])
        except (KeyError, json.JSONDecodeError) as exc:
            raise SpiritError(f"{where}: its `{key}` metadata is missing or damaged ({exc}).")
    return meta


def metadata_strings(meta: dict) -> dict[str, str]:
    """The inverse of `parse_metadata`: every key as the string a Spirit (or a bottle) stores.

    Key order is kept: a tool's parameter order is its prompt signature and its grammar.
    """
    return {key: meta[key] if isinstance(meta[key], str) else json.dumps(meta[key], ensure_ascii=False)
            for key in KEYS if key in meta}


def prompt_format(meta: dict, tokenizer: Tokenizer) -> PromptFormat:
    """The Spirit's PromptFormat; a Spirit written before formats were stored is a tiny student's."""
    if meta.get("prompt_format"):
        return PromptFormat.from_dict(meta["prompt_format"])
    return tiny_format(tokenizer, meta["model_config"]["max_position_embeddings"])


def build_student_model(meta: dict, where: str):
    """The Spirit's model architecture, untrained, from its metadata."""
    kind = (meta.get("student") or {}).get("kind", "tiny")
    try:
        return student_for(kind).load(meta)
    except (ValueError, TypeError, KeyError) as exc:
        raise SpiritError(f"{where}: its student ({kind}) cannot be rebuilt from its model_config ({exc}).")


def load_spirit(path: Path, device: torch.device | str = "cpu") -> Spirit:
    """The student (on `device`), its tokenizer and its catalog, from nothing but the Spirit file."""
    path = Path(path)
    meta = read_metadata(path)
    model = build_student_model(meta, str(path))
    try:
        load_model(model, str(path))
    except (SafetensorError, RuntimeError) as exc:
        raise SpiritError(f"{path}: its weights do not match its model_config ({exc}).")
    model.float().eval().to(device)
    tokenizer = Tokenizer.from_str(meta["tokenizer"])
    try:
        task = task_of(meta, str(path))
    except (DistilleryError, ValueError) as exc:
        raise SpiritError(f"{path}: its task cannot be rebuilt from its metadata ({exc}).") from None
    return Spirit(path=path, model=model, tokenizer=tokenizer, metadata=meta, task=task, decoding=meta["decoding"],
                  format=prompt_format(meta, tokenizer))
