"""The `exact` judge: the task's own comparison. The N samples vote.

A sample scores how many of the N samples give the same answer as it does (itself
included, so a lone answer scores 1), compared the task's way (for tool calling
`validate.calls_equal`: values normalized, call order ignored); an invalid answer scores 0.
The majority's answer is kept. It sends nothing anywhere: free, and instant.
"""

from __future__ import annotations

from distillery.judges import Case, Score, agreement


class ExactJudge:
    kind = "exact"

    async def score(self, case: Case, samples: list) -> list[Score]:
        problems = [case.problem(s) for s in samples]
        return [Score(0, problem) if problem else Score(votes, f"{votes} of {len(samples)} samples give this answer")
                for votes, problem in zip(agreement(case, samples, problems), problems)]

    def spent(self) -> tuple[int, int, float]:
        return 0, 0, 0.0

    async def aclose(self) -> None:
        pass
