"""The Recipe: one YAML file that fully defines a distillation run.

`load_recipe` reads and validates it, fills in every default and loads the tool catalog.
Every problem in the file is reported at once, in one `RecipeError` whose message names
the file, then one line per problem: the dotted field path, what is wrong and the fix.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from distillery.errors import RecipeError, StudentError
from distillery.judges.config import JudgeConfig, judge_problems
from distillery.recipe_messages import explain, report, show
from distillery.recipe_sections import (
    AgentConfig,
    BottlingConfig,
    CutsConfig,
    MashConfig,
    Section,
    SpiritConfig,
    StillConfig,
    StudentConfig,
    TaskConfig,
    TastingConfig,
    TeacherConfig,
    _check,
)
from distillery.students.sources import resolve_base
from distillery.tasks import DEFAULT_KIND, KINDS, load_context, recipe_problems

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]*")
_SECTIONS = ("teacher", "mash", "student", "cuts", "still", "tasting", "spirit", "bottling")


class Recipe(Section):
    """A whole distillation run. Build it with `load_recipe` or `recipe_from_dict`."""

    name: str = Field(description="Run name: a lowercase slug such as `needle`.")
    version: int = Field(1, ge=1, description="Recipe version; runs go to runs/<name>-v<version>.")
    task: TaskConfig = Field(default_factory=TaskConfig, description=TaskConfig.__doc__)
    seed: int = Field(0, ge=0, description="Seed for every random choice of the run.")
    tools: list[dict[str, Any]] | str | dict[str, str] | None = Field(
        None, validate_default=True,
        description="Tool catalog: an inline list of tool definitions, a file relative to the recipe, or "
                    "`{module: tools.py}`, a Python module whose functions are the tools (and run them).")
    teacher: TeacherConfig = Field(default_factory=TeacherConfig, description=TeacherConfig.__doc__)
    mash: MashConfig = Field(default_factory=MashConfig, description=MashConfig.__doc__)
    judge: JudgeConfig | None = Field(None, description=JudgeConfig.__doc__)
    student: StudentConfig = Field(default_factory=StudentConfig, description=StudentConfig.__doc__)
    cuts: CutsConfig = Field(default_factory=CutsConfig, description=CutsConfig.__doc__)
    still: StillConfig = Field(default_factory=StillConfig, description=StillConfig.__doc__)
    tasting: TastingConfig = Field(default_factory=TastingConfig, description=TastingConfig.__doc__)
    spirit: SpiritConfig = Field(default_factory=SpiritConfig, description=SpiritConfig.__doc__)
    bottling: BottlingConfig = Field(default_factory=BottlingConfig, description=BottlingConfig.__doc__)
    agent: AgentConfig | None = Field(None, description=AgentConfig.__doc__)

    _catalog: list = PrivateAttr(default_factory=list)
    _source: Path | None = PrivateAttr(None)
    _base_dir: Path | None = PrivateAttr(None)

    @field_validator("name")
    @classmethod
    def _slug(cls, name: str) -> str:
        if not NAME_PATTERN.fullmatch(name):
            slug = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._") or "needle"
            _check([("", f"{show(name)} is not a valid name; use lowercase letters, digits, '.', '_' "
                         f"or '-'. Fix: e.g. `name: {slug}`.")])
        return name

    @model_validator(mode="after")
    def _still_defaults_per_kind(self) -> Recipe:
        # The Still's defaults are a tiny student's. A pretrained one already knows language: the
        # prompt's loss would only cost time (its output layer is 49k wide), and its weights move
        # with a smaller step. A value written in the recipe is always kept.
        if self.student.kind != "tiny":
            given = self.still.model_fields_set
            if "prompt_loss" not in given:
                self.still.prompt_loss = 0.0
            if "lr" not in given:
                self.still.lr = 5.0e-4 if self.student.kind == "lora" else 5.0e-5
        return self

    @field_validator("task", mode="before")
    @classmethod
    def _task_shorthand(cls, task: Any) -> Any:
        return {"kind": task} if isinstance(task, str) else task

    @model_validator(mode="after")
    def _settings_of_the_task(self) -> Recipe:
        # Every setting must do something for this task kind: the kind says what it cannot honour.
        problems = recipe_problems(self) + judge_problems(self)
        if problems:
            raise PydanticCustomError("recipe_checks", "{text}", {"text": "; ".join(m for _, m in problems),
                                                                    "problems": problems})
        if self.mash.samples_per_request > 1 and self.judge is None:
            self.judge = JudgeConfig(kind="exact")  # best-of-N's default judge: the samples vote
        return self

    @field_validator("tools", mode="before")
    @classmethod
    def _catalog_spec(cls, tools: Any) -> Any:
        if tools is None or tools == "" or tools == []:
            return None  # whether the task needs a catalog is the task's check
        if isinstance(tools, list) and all(isinstance(tool, dict) for tool in tools):
            return tools
        if isinstance(tools, str):
            return tools
        if isinstance(tools, dict) and set(tools) == {"module"} and isinstance(tools["module"], str):
            return tools
        if isinstance(tools, dict) and "mcp" in tools:
            _check([("", "MCP servers are not supported yet. Fix: give the tools as a Python module of functions, "
                         "`tools: {module: tools.py}`, or as a JSON catalog.")])
        _check([("", f"{show(tools)} is not a tool catalog. Fix: a file path such as `tools: tools.json`, "
                     "a list of tool definitions, or `{module: tools.py}`.")])

    @property
    def catalog(self) -> list:
        """The tools (a tool-calling task's catalog), loaded from `tools` when the recipe was built."""
        return self._catalog

    @property
    def base_dir(self) -> Path | None:
        """The recipe's folder: relative paths in it resolve from here."""
        return self._base_dir

    @property
    def source(self) -> Path | None:
        """The recipe file, or None for a recipe built in memory."""
        return self._source

    @property
    def inputs_path(self) -> Path | None:
        """`mash.inputs` resolved against the recipe's folder."""
        inputs = self.mash.inputs
        return None if inputs is None else (self._base_dir or Path.cwd()) / Path(inputs).expanduser()

    @property
    def traces_path(self) -> Path | None:
        """`teacher.traces` resolved against the recipe's folder."""
        traces = self.teacher.traces
        return None if traces is None else (self._base_dir or Path.cwd()) / Path(traces).expanduser()

    def resolved_yaml(self) -> str:
        """The whole recipe with every default filled in (tools as written), in a fixed key order."""
        data = self.model_dump(mode="json")
        if data.get("agent") is None:
            data.pop("agent", None)  # a recipe without conversations reads, and hashes, as it always did
        if data.get("judge") is None:
            data.pop("judge", None)  # so does one without a judge
        return _dump(data)

    def sha256(self) -> str:
        """Hash of `resolved_yaml()`: the identity of the recipe, recorded in every artifact."""
        return hashlib.sha256(self.resolved_yaml().encode()).hexdigest()

    def section_sha256(self, name: str, without: frozenset[str] = frozenset()) -> str:
        """Hash of one top-level section, so the pipeline redoes only the stages it feeds.

        For `tools` it hashes the loaded catalog, so editing the tools file counts as a change.
        `without` leaves out fields that change how fast a stage runs, not what it makes.
        """
        if name not in type(self).model_fields:
            raise ValueError(f"unknown recipe section {name!r}; known: {', '.join(type(self).model_fields)}")
        if name == "tools" and self._catalog:
            text = json.dumps([tool.to_openai() for tool in self._catalog], sort_keys=True)
        else:
            section = self.model_dump(mode="json", include={name})[name]
            if without:
                section = {k: v for k, v in section.items() if k not in without}
            text = _dump({name: section})
        return hashlib.sha256(text.encode()).hexdigest()

    def run_dir(self, root: str | Path = "runs") -> Path:
        """Where this recipe's run lives: `<root>/<name>-v<version>`."""
        return Path(root) / f"{self.name}-v{self.version}"


def load_recipe(path: str | Path) -> Recipe:
    """Read, validate and complete a Recipe file; raise one `RecipeError` listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        message = f"recipe file not found (looked at {path.resolve()}). Fix: check the path."
        raise RecipeError(f"{path}: {message}") from None
    except (OSError, UnicodeDecodeError) as err:
        message = f"cannot read the recipe ({err}). Fix: pass a readable UTF-8 YAML file."
        raise RecipeError(f"{path}: {message}") from None
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = getattr(err, "problem", None) or str(err)
        fix = "keep only one of them" if isinstance(err, _DuplicateKey) else \
            "correct the YAML there (indent with spaces, `key: value`, quote text containing ':')"
        raise RecipeError(f"{path}: not valid YAML{where}: {what}. Fix: {fix}.") from None
    if data is None:
        raise RecipeError(f"{path}: the recipe is empty. Fix: add at least `name:` and `tools:`.")
    return recipe_from_dict(data, source=path)


def recipe_from_dict(data: dict, source: Path | None = None, base_dir: Path | None = None) -> Recipe:
    """Validate an in-memory recipe and load its catalog; relative paths resolve against
    `base_dir` (default: the source's folder, else the working directory)."""
    if not isinstance(data, dict):
        raise RecipeError(f"{source or 'recipe'}: a recipe must be a mapping of `key: value` lines, "
                          f"not a {type(data).__name__}. Fix: start with e.g. `name: needle`.")
    # `still:` with every line commented out reads as null; take it as "all defaults".
    data = {key: {} if value is None and key in _SECTIONS else value for key, value in data.items()}
    if base_dir is None:
        base_dir = source.resolve().parent if source is not None else Path.cwd()
    problems: list[tuple[str, str]] = []
    recipe = None
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as err:
        for error in err.errors():
            problems.extend(explain(error))
    bad = {path.split(".")[0].split("[")[0] for path, _ in problems}
    teacher = data.get("teacher") if isinstance(data.get("teacher"), dict) else {}
    catalog = []
    kind = _kind(data.get("task"))
    if "tools" not in bad and "task" not in bad and kind in KINDS:
        catalog = load_context(kind, data, base_dir, problems)
    if "teacher" not in bad and isinstance(teacher.get("traces"), str):
        file_exists("teacher.traces", teacher["traces"], base_dir, problems)
    mash_data = data.get("mash") if isinstance(data.get("mash"), dict) else {}
    if "mash" not in bad and isinstance(mash_data.get("inputs"), str):
        file_exists("mash.inputs", mash_data["inputs"], base_dir, problems)
    judge = data.get("judge") if isinstance(data.get("judge"), dict) else {}
    if "judge" not in bad and isinstance(judge.get("checks"), str):
        file_exists("judge.checks", judge["checks"], base_dir, problems)
    if recipe is not None and recipe.student.base is not None:
        try:
            resolve_base(recipe.student.base, base_dir)
        except StudentError as err:
            problems.append(("student.base", str(err).removeprefix("student.base: ")))
    if problems:
        raise RecipeError(report(source, problems))
    recipe._catalog, recipe._source, recipe._base_dir = catalog, source, base_dir
    return recipe


def _kind(task: Any) -> str | None:
    """The task kind as written (`task: spans` or `task: {kind: spans}`), before validation."""
    if task is None:
        return DEFAULT_KIND
    if isinstance(task, dict):
        return task.get("kind", DEFAULT_KIND)
    return task if isinstance(task, str) else None


def file_exists(field: str, spec: str, base_dir: Path, problems: list[tuple[str, str]]) -> bool:
    path = base_dir / Path(spec).expanduser()
    if not path.is_file():
        problems.append((field, f"file not found: {path}. Fix: check the path (relative to the recipe's folder)."))
    return path.is_file()


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)


class _DuplicateKey(yaml.constructor.ConstructorError):
    pass


class _Loader(yaml.SafeLoader):
    """safe_load, except that a key written twice is an error instead of silently losing the first."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, (str, int, float, bool)):
                continue  # unhashable keys: the base loader reports them
            if key in seen and key != "<<":
                raise _DuplicateKey(
                    None, None, f"`{key}` is written twice (first on line {seen[key]})", key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)
