"""The Student seam: what the Still, the Tasting, the Spirit, bottles and serve know of a student.

A student kind (`student.kind` in the Recipe) is a module here with one class:

    build(recipe, run_dir) -> Built          # a model ready to train, its tokenizer and PromptFormat
    trainable(model) -> [(name, parameter)]  # everything for tiny/full, the adapters for lora
    export(model) -> model                   # plain weights (adapters merged) for the Spirit
    load(metadata, tensors) -> model         # a Spirit's model from its metadata and tensors

Checkpoints hold only the trainable parameters (`training_state`), so a lora checkpoint is
its adapters. A model is any transformers causal LM: the Still reaches its layers through
`get_decoder()` and `get_output_embeddings()`, never through a Llama attribute.
"""

from __future__ import annotations

KINDS = ("tiny", "lora", "full")


def student_for(kind: str):
    """The Student of a `student.kind`."""
    if kind == "tiny":
        from distillery.students.tiny import TinyStudent

        return TinyStudent()
    if kind in ("lora", "full"):
        from distillery.students.pretrained import PretrainedStudent

        return PretrainedStudent(kind)
    raise ValueError(f"unknown student kind {kind!r}; known: {', '.join(KINDS)}")
