"""What every LLM provider shares: the request and response shapes, keys and HTTP errors.

A provider is a small class with an id, a model and one async method,
`complete(request) -> Response`, that turns our request into its wire format and back.
Retries, the journal, the cost meter and concurrency wrap it from outside (`session.py`),
so a provider never sleeps, counts money or touches a file.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from dataclasses import asdict, dataclass
from typing import Protocol
from urllib.parse import urlparse

import httpx

from distillery.errors import TeacherError

# Finish reasons after normalization; a provider's own words map onto these.
STOP, LENGTH, CONTENT_FILTER = "stop", "length", "content_filter"
TIMEOUT = httpx.Timeout(120.0, connect=10.0)


@dataclass(frozen=True)
class Request:
    """One teacher request: chat messages, sampling parameters, an optional JSON schema."""

    messages: tuple[dict, ...]  # {"role": "system" | "user" | "assistant", "content": str}
    temperature: float
    max_tokens: int
    json_schema: dict | None = None
    seed: int | None = None

    def params(self) -> dict:
        """Everything but the messages: what the journal id hashes beside them."""
        data = asdict(self)
        data.pop("messages")
        return data


@dataclass(frozen=True)
class Response:
    text: str
    input_tokens: int
    output_tokens: int
    finish: str  # stop | length | content_filter | the provider's own word
    raw_finish: str = ""


class Provider(Protocol):
    name: str
    model: str

    async def complete(self, request: Request) -> Response: ...

    async def aclose(self) -> None: ...


class HTTPStatusFailure(Exception):
    """A non-2xx answer: retry.py decides whether to try again from `status` and `retry_after`."""

    def __init__(self, status: int, body: str, retry_after: float | None):
        super().__init__(f"HTTP {status}")
        self.status, self.body, self.retry_after = status, body, retry_after


def is_loopback(url: str | None) -> bool:
    """Whether `url` points at this machine (a local llama.cpp or Ollama needs no key)."""
    if not url:
        return False
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_key(variables: tuple[str, ...], provider: str, optional: bool = False) -> str | None:
    """The first set variable's value; a missing key is the user's to fix (exit 2), named."""
    for name in variables:
        value = os.environ.get(name, "").strip()
        if value:
            guard_logs(value)
            return value
    if optional:
        return None
    names = " or ".join(variables)
    raise TeacherError(
        f"teacher.provider is `{provider}` but {names} is not set. Fix: `export {variables[0]}=...` "
        "in the shell that runs distillery (keys are read only from the environment, never from the "
        "recipe), or use `provider: offline`.")


def redact(text: str, *secrets: str | None) -> str:
    """`text` with every secret (and its tail, which some servers echo) blanked out."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
            if len(secret) >= 12:
                text = text.replace(secret[-8:], "[redacted]")
    return text


class RedactSecrets(logging.Filter):
    """Blanks out secrets from log records, whichever library logs them: a server that echoes a
    key back (in a body or a header) would otherwise put it in httpcore's DEBUG log.

    With no secrets given it takes every key-like variable of the environment (the CLI puts
    one on its log handlers).
    """

    def __init__(self, secrets: tuple[str, ...] | None = None):
        super().__init__()
        if secrets is None:
            secrets = tuple(value for name, value in os.environ.items() if len(value) >= 8
                            and name.upper().endswith(("_API_KEY", "_KEY", "_TOKEN", "_SECRET")))
        self.secrets = set(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            cleaned = redact(message, *self.secrets)
            if cleaned != message:
                record.msg, record.args = cleaned, None
        return True


_GUARD = RedactSecrets(())
_HTTP_LOGGERS = ("httpx", "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy",
                 "distillery.teachers")


def guard_logs(secret: str | None) -> None:
    """Keep `secret` out of the HTTP libraries' logs, however the application set logging up."""
    if secret:
        _GUARD.secrets.add(secret)
        for name in _HTTP_LOGGERS:
            logger = logging.getLogger(name)
            if _GUARD not in logger.filters:
                logger.addFilter(_GUARD)


def make_client(transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    # A client per provider, so a test can hand in a MockTransport; no env proxies or netrc
    # with the key in play, and never a redirect that would carry headers elsewhere.
    return httpx.AsyncClient(timeout=TIMEOUT, transport=transport, trust_env=transport is None,
                             follow_redirects=False)


class HTTPTeacher:
    """What every HTTP provider shares: its endpoint, its key from the environment, one client."""

    name = ""
    default_model = ""
    default_url = ""
    key_variables: tuple[str, ...] = ()

    def __init__(self, model: str | None = None, base_url: str | None = None, key_env: str | None = None,
                 transport: httpx.AsyncBaseTransport | None = None):
        self.model = model or self.default_model
        self.base_url = (base_url or self.default_url).rstrip("/")
        variables = (key_env,) if key_env else self.key_variables
        self._key = api_key(variables, self.name, optional=self.key_is_optional())
        self.key_env = variables[0]
        self._client = make_client(transport)

    def key_is_optional(self) -> bool:
        return False

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self._key,) if self._key else ()

    async def aclose(self) -> None:
        await self._client.aclose()


async def post_json(client: httpx.AsyncClient, url: str, headers: dict, body: dict) -> dict:
    """POST `body`, return the JSON answer; a non-2xx answer raises HTTPStatusFailure."""
    answer = await client.post(url, headers=headers, json=body)
    if answer.status_code >= 300:
        raise HTTPStatusFailure(answer.status_code, answer.text[:500], _retry_after(answer.headers))
    try:
        return answer.json()
    except ValueError:
        raise HTTPStatusFailure(502, "the answer is not JSON: " + answer.text[:200], None) from None


def _retry_after(headers: httpx.Headers) -> float | None:
    """Seconds to wait from `retry-after-ms` (OpenAI) or `Retry-After` (seconds or an HTTP date)."""
    if "retry-after-ms" in headers:
        try:
            return float(headers["retry-after-ms"]) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from datetime import datetime, timezone
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds())
        except (TypeError, ValueError):
            return None
