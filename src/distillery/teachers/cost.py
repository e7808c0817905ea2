"""What teacher requests cost: a price table, the run's meter and its budget.

Prices are USD per million tokens (input, output) from the providers' public price pages;
`teacher.price` in the recipe overrides them (prices change; a table can only be a default).
A request reserves its worst case (its prompt plus `max_tokens` of answer) before it is sent
and settles to its real usage after, so `budget_usd` holds even with requests in flight.
"""

from __future__ import annotations

from dataclasses import dataclass

from distillery.errors import TeacherError
from distillery.teachers.base import Request, is_loopback

# Longest matching prefix wins, so dated snapshots ("gpt-4o-mini-2024-07-18") share a price.
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60), "gpt-4o": (2.50, 10.00), "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60), "gpt-4.1": (2.00, 8.00), "gpt-5-nano": (0.05, 0.40),
    "gpt-5-mini": (0.25, 2.00), "gpt-5": (1.25, 10.00), "o4-mini": (1.10, 4.40), "o3-mini": (1.10, 4.40),
    "o3": (2.00, 8.00), "gpt-3.5-turbo": (0.50, 1.50),
    "claude-3-haiku": (0.25, 1.25), "claude-3-5-haiku": (0.80, 4.00), "claude-haiku-4-5": (1.00, 5.00),
    "claude-3-5-sonnet": (3.00, 15.00), "claude-3-7-sonnet": (3.00, 15.00), "claude-sonnet-4": (3.00, 15.00),
    "claude-opus-4": (15.00, 75.00),
    "gemini-1.5-flash": (0.075, 0.30), "gemini-1.5-pro": (1.25, 5.00), "gemini-2.0-flash-lite": (0.075, 0.30),
    "gemini-2.0-flash": (0.10, 0.40), "gemini-2.5-flash-lite": (0.10, 0.40), "gemini-2.5-flash": (0.30, 2.50),
    "gemini-2.5-pro": (1.25, 10.00),
}
CHARS_PER_TOKEN = 3.5  # English and JSON in common BPE vocabularies; a little pessimistic
# A Batch API's price as a share of the live one (`teacher.batch`): OpenAI Batch, Anthropic Message
# Batches and Gemini batch mode all charge half, on input and output alike.
BATCH_FACTOR: dict[str, float] = {"openai": 0.5, "anthropic": 0.5, "gemini": 0.5}


@dataclass(frozen=True)
class Price:
    input: float  # USD per million prompt tokens
    output: float  # USD per million answer tokens

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input + output_tokens * self.output) / 1e6


def price_for(teacher_cfg, model: str) -> Price | None:
    """The recipe's override, else the table's price; free on this machine; None when unknown."""
    if getattr(teacher_cfg, "price", None) is not None:
        return Price(teacher_cfg.price.input, teacher_cfg.price.output)
    if is_loopback(teacher_cfg.base_url):
        return Price(0.0, 0.0)
    name = model.lower().removeprefix("models/").rsplit("/", 1)[-1]
    key = max((k for k in PRICES if name.startswith(k)), key=len, default=None)
    return Price(*PRICES[key]) if key else None


def batch_price(price: Price | None, provider: str) -> Price | None:
    """What `price` (a live price: the table's or `teacher.price`) becomes through `provider`'s Batch API."""
    if price is None:
        return None
    factor = BATCH_FACTOR[provider]
    return Price(price.input * factor, price.output * factor)


def prompt_tokens(request: Request, with_schema: bool = True) -> int:
    """A token count for the prompt that errs high (the reservation must not fall short)."""
    chars = sum(len(m["content"]) + 8 for m in request.messages)
    if with_schema and request.json_schema is not None:
        chars += len(str(request.json_schema))
    return int(chars / CHARS_PER_TOKEN) + 1


class BudgetReached(Exception):
    """The next request's worst case would take the run past `teacher.budget_usd`."""


class CostMeter:
    """Money spent and reserved in this run (answers in the journal count as spent)."""

    def __init__(self, price: Price | None, budget: float | None, spent: float = 0.0):
        self.price = price or Price(0.0, 0.0)
        self.budget, self.spent, self.reserved = budget, spent, 0.0

    def reserve(self, request: Request, committed: bool = False) -> float:
        """Hold the request's worst case; `committed`: already sent (by a killed run), so counted, never refused."""
        amount = self.price.cost(prompt_tokens(request), request.max_tokens)
        if not committed and self.budget is not None and self.spent + self.reserved + amount > self.budget:
            raise BudgetReached
        self.reserved += amount
        return amount

    def settle(self, reserved: float, input_tokens: int, output_tokens: int) -> float:
        self.reserved -= reserved
        cost = self.price.cost(input_tokens, output_tokens)
        self.spent += cost
        return cost

    def release(self, reserved: float) -> None:
        self.reserved -= reserved


def check_budget_is_enforceable(teacher_cfg, model: str) -> Price | None:
    """The price to meter with; a budget with no known price cannot be kept, so that is an error."""
    price = price_for(teacher_cfg, model)
    if price is None and teacher_cfg.budget_usd is not None:
        raise TeacherError(
            f"teacher.budget_usd is set but distillery knows no price for model `{model}`, so it cannot "
            "keep the budget. Fix: add `price: {input: 0.15, output: 0.60}` (USD per million tokens) "
            "under `teacher:`.")
    return price
