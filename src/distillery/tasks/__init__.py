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
