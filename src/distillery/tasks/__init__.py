"""The Task seam: one package per task kind, found by the Recipe's `task.kind`.

Nothing outside `tasks/` imports a concrete task: the pipeline asks `task_for(recipe)` and
talks to the `Task` interface of `tasks/base.py`.
"""

from __future__ import annotations

KINDS = ("tool_calling", "classification", "spans")


def task_for(recipe):
    """The Task that distills `recipe` (imported when asked for: each kind pulls in its own code)."""
    kind = recipe.task.kind
    if kind == "tool_calling":
        from distillery.tasks.tool_calling.task import ToolCallingTask

        return ToolCallingTask(recipe)
    if kind == "classification":
        from distillery.tasks.classification.task import ClassificationTask

        return ClassificationTask(recipe)
    if kind == "spans":
        from distillery.tasks.spans.task import SpansTask

        return SpansTask(recipe)
    raise ValueError(f"unknown task kind {kind!r}; known: {', '.join(KINDS)}")


def answerer_for(metadata: dict, runner, tokenizer, fmt):
    """What answers requests for a Spirit (or bottle) of a task other than tool calling, over
    `runner`: a LabelPredictor (classification) or a SpanPredictor (spans); their `predict(text)`
    gives `.answer`, the JSON-ready answer."""
    kind = metadata.get("task")
    if kind == "classification":
        from distillery.tasks.classification.predictor import LabelPredictor

        labels = metadata["labels"]
        return LabelPredictor(runner, tokenizer, fmt, labels["labels"], labels["multi_label"])
    if kind == "spans":
        from distillery.tasks.spans.task import SpanPredictor

        return SpanPredictor(runner, tokenizer, fmt, metadata["labels"]["types"])
    raise ValueError(f"no answerer for a {kind!r} Spirit")
