"""The `execute` judge: run each answer. The task's own check first (a tool call's name and
arguments against the schema), then every `check_...` function of the user's `judge.checks`
file, in the order the file defines them.

A check is called with the example as the Mash would write it (for tool calling
`{"utterance", "tools", "calls"}`, `tools` being the names shown to the teacher) and returns
None or True to pass, False or a reason (a string) to fail. A check that raises fails, with
the exception as its reason: running the call is the point, and a call that makes the user's
code throw is a wrong call. A sample scores 1 when everything passes, else 0 with the first
failure; a failing answer is never kept.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
from collections.abc import Callable
from pathlib import Path

from distillery.errors import DistilleryError
from distillery.judges import Case, Score


def load_checks(path: Path) -> list[tuple[str, Callable]]:
    """The `check_...` functions of the file at `path`, in definition order; a file that will not
    load is the user's to fix (exit 2), before any teacher request is sent."""
    fix = "Fix: a Python file of functions `def check_name(example): ...` returning None or True to pass, " \
          "False or a reason to fail (docs/judges.md)."
    if not path.is_file():
        raise DistilleryError(f"judge.checks: file not found: {path}. {fix}")
    name = "distillery_checks_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's code: any failure is theirs to see
        raise DistilleryError(f"judge.checks: {path} failed to load ({type(exc).__name__}: {exc}). {fix}") from None
    checks = [(n, f) for n, f in vars(module).items() if n.startswith("check_") and callable(f)]
    if not checks:
        raise DistilleryError(f"judge.checks: {path} defines no `check_...` function. {fix}")
    return checks


class ExecuteJudge:
    kind = "execute"

    def __init__(self, checks: list[tuple[str, Callable]]):
        self.checks = checks

    async def score(self, case: Case, samples: list) -> list[Score]:
        return [self._run(case, sample) for sample in samples]

    def _run(self, case: Case, sample) -> Score:
        problem = case.problem(sample)
        if problem:
            return Score(0, problem)
        for name, check in self.checks:
            # A copy each time: one check must not change what the next one sees.
            example = {**copy.deepcopy(case.request), case.answer: copy.deepcopy(sample)}
            try:
                verdict = check(example)
            except Exception as exc:  # noqa: BLE001 - the user's check: a raise is a failed check
                return Score(0, f"check_failed: {name} raised {type(exc).__name__}: {exc}"[:300])
            if verdict is None or verdict is True:
                continue
            if verdict is False:
                return Score(0, f"check_failed: {name}")
            if isinstance(verdict, str):
                return Score(0, f"check_failed: {name}: {verdict}"[:300])
            raise DistilleryError(f"judge.checks: {name} returned {verdict!r}. Fix: return None or True to pass, "
                                  "False or a reason (a string) to fail.")
        return Score(1, f"passes the schema and {len(self.checks)} checks")

    def spent(self) -> tuple[int, int, float]:
        return 0, 0, 0.0

    async def aclose(self) -> None:
        pass
