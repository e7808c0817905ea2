"""The tools of examples/agent.yaml: a small assistant's back office, simulated.

Every public function here is a tool (distillery reads the name, the docstring and the typed
signature). The results are made up but deterministic: the same call always gets the same
result, so the teacher's conversations, the Tasting and `distillery run` see one world. Some
results carry an id that another tool takes (`contact_id`, `flight_id`, `order_id`): those
are the multi-step tasks, where the agent has to look something up before it can act.
"""

from __future__ import annotations

import hashlib
from typing import Literal


def _number(*parts: object) -> int:
    return int(hashlib.sha256("|".join(str(p).casefold() for p in parts).encode()).hexdigest()[:8], 16)


def _code(prefix: str, *parts: object) -> str:
    return f"{prefix}-{_number(prefix, *parts) % 9000 + 1000}"


def find_contact(name: str) -> dict:
    """Look up a contact by name.

    Args:
        name: The contact's name, as the user says it.
    """
    return {"contact_id": _code("c", name), "name": name}


def send_message(contact_id: str, text: str) -> dict:
    """Send a text message to a contact.

    Args:
        contact_id: The contact's id, from find_contact.
        text: What the message says.
    """
    return {"message_id": _code("m", contact_id, text), "status": "sent"}


def get_weather(city: str) -> dict:
    """Get the current weather in a city.

    Args:
        city: The city.
    """
    conditions = ("sunny", "cloudy", "rainy", "windy", "snowy")
    return {"city": city, "temperature_c": _number("t", city) % 30 - 5, "conditions": conditions[_number(city) % 5]}


def search_flights(origin: str, destination: str) -> dict:
    """Find the cheapest flight from one city to another.

    Args:
        origin: The city to fly from.
        destination: The city to fly to.
    """
    return {"flight_id": _code("FL", origin, destination), "price_usd": 80 + _number(origin, destination) % 700}


def book_flight(flight_id: str, passenger: str) -> dict:
    """Book a seat on a flight.

    Args:
        flight_id: The flight's id, from search_flights.
        passenger: The passenger's full name.
    """
    return {"booking_ref": _code("BK", flight_id, passenger), "status": "confirmed"}


def find_order(order_number: int) -> dict:
    """Look up an order by its number.

    Args:
        order_number: The order number on the receipt.
    """
    states = ("shipped", "processing", "delivered")
    return {"order_id": _code("o", order_number), "state": states[_number(order_number) % 3]}


def track_package(order_id: str) -> dict:
    """Track the package of an order.

    Args:
        order_id: The order's id, from find_order.
    """
    carriers = ("UPS", "DHL", "FedEx")
    days = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
    return {"carrier": carriers[_number(order_id) % 3], "arrives": days[_number("d", order_id) % 5]}


def convert_currency(amount: float, from_currency: Literal["USD", "EUR", "GBP", "JPY"],
                     to_currency: Literal["USD", "EUR", "GBP", "JPY"]) -> dict:
    """Convert an amount of money from one currency to another.

    Args:
        amount: How much money.
        from_currency: The currency the amount is in.
        to_currency: The currency to convert to.
    """
    per_usd = {"USD": 1.0, "EUR": 0.92, "GBP": 0.79, "JPY": 150.0}
    return {"amount": round(amount / per_usd[from_currency] * per_usd[to_currency], 2), "currency": to_currency}


def set_timer(minutes: int, label: str = "") -> dict:
    """Start a countdown timer.

    Args:
        minutes: How long the timer runs, in minutes.
        label: A short name for the timer.
    """
    return {"timer_id": _code("t", minutes, label), "minutes": minutes}
