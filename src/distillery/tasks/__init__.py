"""The Task seam's registry: the one place that names the task kinds.

Nothing outside `tasks/` imports a concrete task. The pipeline asks `task_for(recipe)`; the
Spirit, bottles, `predict` and `serve` ask `task_of(metadata)`, the same Task rebuilt from
what the Spirit carries (its tool catalog, its label set). Both talk to the `Task` interface
of `tasks/base.py`. A kind's package is imported only when that kind is asked for.
"""

from __future__ import annotations

import importlib

KINDS = ("tool_calling", "classification", "spans", "generation")
DEFAULT_KIND = KINDS[0]  # recipes and Spirits written before there were kinds are tool calling
_CLASSES = {"tool_calling": "ToolCallingTask", "classification": "ClassificationTask", "spans": "SpansTask",
            "generation": "GenerationTask"}
# Kinds whose Recipe `judge:` grades the student's answers at the Tasting (its proof), not the
# teacher's in the Mash: the judge is an input of the Tasting stage, not of the Mash.
TASTING_JUDGED = ("generation",)

# Fields of the generic Recipe sections that only some kinds read; the Recipe refuses them for
# any other kind, where they would do nothing.
OWN_SETTINGS = {
    "tool_calling": {"mash": ("tools_per_call", "no_call_ratio", "parallel_ratio"),
                     "still": ("value_swap", "tool_drop", "reoffer"), "tasting": ("copy_values", "abstain")},
    "classification": {"mash": ("inputs",)},
    "spans": {},
    "generation": {"mash": ("inputs",), "tasting": ("proof", "temperature", "top_p", "max_new_tokens")},
}


def task_class(kind: str):
    if kind not in KINDS:
        raise ValueError(f"unknown task kind {kind!r}; known: {', '.join(KINDS)}")
    module = importlib.import_module(f"distillery.tasks.{kind}.task")
    return getattr(module, _CLASSES[kind])


def task_for(recipe):
    """The Task that distills `recipe`."""
    return task_class(recipe.task.kind)(recipe)


def kind_of(metadata: dict) -> str:
    """The task kind of a Spirit or bottle from its metadata."""
    return metadata.get("task") or DEFAULT_KIND


def task_of(metadata: dict, where: str = "Spirit"):
    """The Task of a Spirit or bottle, rebuilt from its metadata (`where` names the file in errors):
    what answers, tastes and serves it."""
    return task_class(kind_of(metadata)).from_metadata(metadata, where)


def recipe_problems(recipe) -> list[tuple[str, str]]:
    """(field, message) for every setting of `recipe` its task kind cannot honour."""
    kind = recipe.task.kind
    problems = list(task_class(kind).recipe_problems(recipe))
    if recipe.agent is not None and kind != "tool_calling":
        problems.append(("agent", f"conversations are tool calls and their results; a {kind} task has none. "
                                  "Fix: remove `agent`."))
    readers: dict[tuple[str, str], list[str]] = {}
    for owner, sections in OWN_SETTINGS.items():
        for section, names in sections.items():
            for name in names:
                readers.setdefault((section, name), []).append(owner)
    for (section, name), owners in readers.items():
        if kind not in owners and _changed(recipe, section, name):
            problems.append((f"{section}.{name}", f"only a {' or '.join(owners)} task reads it; a {kind} task would "
                                                  "ignore it. Fix: remove it."))
    return problems


def _changed(recipe, section: str, name: str) -> bool:
    """Whether the recipe sets `section.name` to other than its default (a resolved recipe writes
    every default out, and must load again as it was)."""
    part = getattr(recipe, section)
    if name not in part.model_fields_set:
        return False
    return getattr(part, name) != type(part).model_fields[name].get_default(call_default_factory=True)


def load_context(kind: str, data: dict, base_dir, problems: list[tuple[str, str]]):
    """What the kind reads from outside the Recipe's own fields (a tool catalog file), loaded and
    checked; problems are appended as (field, message)."""
    return task_class(kind).load_context(data, base_dir, problems)
