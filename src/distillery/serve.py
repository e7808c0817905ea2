"""`distillery serve`: the Cellar's Spirits and aliases behind an OpenAI-compatible API.

    GET  /health                 no key needed
    GET  /v1/models              every Spirit and alias
    GET  /v1/models/{model}
    POST /v1/chat/completions    messages + tools in, tool_calls out (grammar-constrained); a
                                 classification or spans Spirit answers JSON as the content;
                                 `stream: true` answers the same as server-sent chunks

A model name is looked up in the Cellar on every request (cheap: the index is re-read only
when its file changes), so re-pointing an alias takes effect at once; a request keeps the
Spirit it resolved to until it is answered. Loaded Spirits stay in a small LRU keyed by
sha256. Each Spirit decodes in its runtime (runtimes.py: torch, onnx or gguf) and the requests
in flight decode together, one forward pass a step for all of them, new ones joining between
steps (batching.Scheduler); each request's thread runs its own grammar in the server's thread
pool, so the event loop keeps accepting. A tool catalog's prompt prefix is read once per Spirit.
"""

from __future__ import annotations

import copy
import hmac
import ipaddress
import json
import logging
import socket
import tempfile
import threading
import time
from collections import OrderedDict
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from distillery.batching import Scheduler
from distillery.cellar import Cellar, CellarError
from distillery.errors import DistilleryError
from distillery.openai_api import (ApiError, ChatRequest, chat_completion, completion_chunks, error_body,
                                   last_user_message, model_card, validation_error)
from distillery.runtimes import cached, choose, spirit_engine
from distillery.spirit import Spirit, load_spirit
from distillery.tasks.base import Reply

log = logging.getLogger("distillery.serve")

MAX_BODY_BYTES = 1 << 20  # a big catalog is tens of kB; the student reads a few hundred tokens
TIMEOUT_S = 30.0


class DeadlineExceeded(Exception):
    pass


class LoadedSpirit:
    """One Spirit ready to answer: its task's predictor, and the scheduler that decodes the
    requests in flight together in the Spirit's runtime (`runtime` None: the one chosen for it).

    Answers come from the same predictor as `predict` and the Tasting; per request the task's
    turn changes what it needs (token budget, tool_choice) on a copy, whose runner is the
    request's own sequence in the batch and gives up at the request's deadline.
    """

    def __init__(self, spirit: Spirit, sha256: str, prefix_cache: int = 16, runtime: str | None = "torch"):
        import torch

        self.spirit, self.sha256, self.task = spirit, sha256, spirit.task
        threads = torch.get_num_threads()
        self.runtime = runtime or choose(spirit, sha256, threads=threads, log=log.warning)
        self.engine = spirit_engine(spirit, sha256, self.runtime, threads=threads, prefixes=prefix_cache)
        self.scheduler = Scheduler(self.engine)
        # Served answers are always constrained, whatever the recipe tasted with.
        self.caller = self.task.predictor(self.scheduler.runner(), spirit.tokenizer, spirit.format, spirit.decoding,
                                          grammar=True)

    def answer(self, turn, *, deadline: float) -> tuple[Reply, int]:
        """The reply to one request's `turn` (Task.chat_turn) and the completion tokens it took."""
        caller = copy.copy(self.caller)
        runner = self.scheduler.runner(deadline)
        caller.model = counted = _Deadline(runner, deadline)
        try:
            reply = turn.run(caller)
        except TimeoutError:  # every place in the batch stayed taken until the deadline
            raise DeadlineExceeded from None
        finally:
            runner.close()
        return reply, counted.tokens


class _Deadline:
    """A runner that gives up at the request's deadline, and counts the tokens it was asked for."""

    def __init__(self, runner, deadline: float):
        self.runner, self.deadline, self.max_len, self.tokens = runner, deadline, runner.max_len, 0

    def _check(self) -> None:
        if time.monotonic() > self.deadline:
            raise DeadlineExceeded

    def start(self, prompt_ids):
        self._check()
        self.tokens = 1  # every logits vector read becomes one completion token (the last may be the end token)
        return self.runner.start(prompt_ids)

    def step(self, token):
        self._check()
        self.tokens += 1
        return self.runner.step(token)


class SpiritPool:
    """Spirits loaded on first use and kept in an LRU by sha256; the Cellar names them."""

    def __init__(self, cellar: Cellar, size: int = 4, prefix_cache: int = 16, device: str = "cpu",
                 runtime: str | None = "torch"):
        self.cellar, self.size, self.prefix_cache, self.device = cellar, size, prefix_cache, device
        self.runtime = runtime
        self.loaded: OrderedDict[str, LoadedSpirit] = OrderedDict()
        self._lock = threading.Lock()  # guards `loaded`
        self._loading = threading.Lock()  # one load at a time; requests for loaded Spirits never wait on it

    def get(self, name: str) -> tuple[dict, LoadedSpirit]:
        entry = self.cellar.resolve(name)
        sha = entry["sha256"]
        with self._lock:
            found = self.loaded.get(sha)
            if found is not None:
                self.loaded.move_to_end(sha)
                return entry, found
        with self._loading:
            with self._lock:
                found = self.loaded.get(sha)
            if found is None:
                found = LoadedSpirit(load_spirit(self.cellar.verified_path(entry), self.device), sha,
                                     self.prefix_cache, self.runtime)
                log.info("loaded %s (sha256 %s...)", entry["name"], sha[:12])
            with self._lock:
                self.loaded[sha] = found
                while len(self.loaded) > self.size:
                    self.loaded.popitem(last=False)  # requests holding it finish with it
        return entry, found


def _created(iso: str) -> int:
    try:
        return int(datetime.fromisoformat(iso).timestamp())
    except (TypeError, ValueError):
        return 0


class Guard:
    """ASGI middleware: the API key (every route but /health), then the body limit, before any parsing."""

    def __init__(self, app, api_key: str | None, max_body: int):
        self.app, self.api_key, self.max_body = app, api_key, max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if self.api_key and scope["path"] != "/health":
            given = headers.get(b"authorization", b"").decode("latin-1")
            token = given[7:] if given[:7].lower() == "bearer " else ""
            if not hmac.compare_digest(token.encode(), self.api_key.encode()):
                return await _reply(send, 401, error_body(
                    "missing or wrong API key. Fix: send the header `Authorization: Bearer <key>` with the key the "
                    "server was started with.", "invalid_request_error", code="invalid_api_key"),
                    {"www-authenticate": "Bearer"})
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            return await _too_large(send, self.max_body)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body:
                return await _too_large(send, self.max_body)
            if not message.get("more_body"):
                break
        body, sent = b"".join(chunks), False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _too_large(send, limit: int):
    await _reply(send, 413, error_body(f"the request body is over the server's limit of {limit} bytes. Fix: send "
                                       "fewer tools or a shorter message, or start the server with a larger "
                                       "--max-body.", "invalid_request_error", code="request_too_large"))


async def _reply(send, status: int, body: dict, headers: dict | None = None):
    raw = json.dumps(body).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    head += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": raw})


def create_app(cellar: Cellar, *, api_key: str | None = None, max_body: int = MAX_BODY_BYTES,
               timeout_s: float = TIMEOUT_S, pool_size: int = 4, prefix_cache: int = 16,
               device: str = "cpu", runtime: str | None = "torch") -> FastAPI:
    """The API over `cellar`; `api_key` required on every route but /health when given; the
    Spirits decode on `device` (a torch device), in `runtime` (None: each Spirit's chosen one,
    measured on its first load if it never was: `run` measures before serving)."""
    pool = SpiritPool(cellar, size=pool_size, prefix_cache=prefix_cache, device=device, runtime=runtime)
    app = FastAPI(title="distillery", docs_url=None, redoc_url=None)
    app.state.pool = pool

    @app.exception_handler(ApiError)
    async def _api_error(_, exc: ApiError):
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_, exc: RequestValidationError):
        error = validation_error(list(exc.errors()))
        return JSONResponse(error.body(), status_code=error.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_, exc: StarletteHTTPException):
        return JSONResponse(error_body(str(exc.detail), "invalid_request_error"), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _internal(_, exc: Exception):
        log.exception("internal error")
        return JSONResponse(error_body(f"internal error ({type(exc).__name__})", "server_error"), status_code=500)

    def resolve(name: str) -> tuple[dict, LoadedSpirit]:
        try:
            return pool.get(name)
        except CellarError as exc:
            known = name in cellar.entries() or name in cellar.aliases()
            if known:  # a damaged or missing file: the server's problem, told in its log, not to clients
                log.error("%s", exc)
                raise ApiError(500, f"the Spirit behind {name!r} cannot be loaded; the server's log says why.",
                               type="server_error", code="spirit_unavailable") from None
            raise ApiError(404, f"the model {name!r} does not exist: it is neither a Spirit nor an alias in the "
                                "Cellar. Fix: GET /v1/models lists them.", param="model",
                           code="model_not_found") from None

    @app.get("/health")
    def health():
        return {"status": "ok", "models": len(cellar.entries()) + len(cellar.aliases()), "loaded": len(pool.loaded)}

    def cards() -> list[dict]:
        entries, aliases = cellar.entries(), cellar.aliases()
        return ([model_card(n, _created(e["added"]), proof=e.get("proof"), sha256=e["sha256"])
                 for n, e in sorted(entries.items())]
                + [model_card(a, _created(rec["updated"]), target=rec["target"], min_proof=rec.get("min_proof"))
                   for a, rec in sorted(aliases.items())])

    @app.get("/v1/models")
    def list_models():
        return {"object": "list", "data": cards()}

    @app.get("/v1/models/{model:path}")
    def get_model(model: str):
        found = [c for c in cards() if c["id"] == model]
        if not found:
            resolve(model)  # raises the 404
        return found[0]

    @app.post("/v1/chat/completions")
    def chat_completions(request: ChatRequest):
        deadline = time.monotonic() + timeout_s
        entry, loaded = resolve(request.model)
        try:
            utterance = last_user_message(request.messages, "messages")
        except DistilleryError as exc:
            raise ApiError(400, str(exc), param="messages") from None
        turn = loaded.task.chat_turn(request, utterance, entry["name"])
        reply, completion_tokens = turn.reply, 0
        if reply is None:
            try:
                reply, completion_tokens = loaded.answer(turn, deadline=deadline)
            except DeadlineExceeded:
                raise ApiError(504, f"no answer within the server's limit of {timeout_s:g} s per request (busy, or "
                                    "a long answer). Fix: retry, lower max_tokens, or start the server with a longer "
                                    "--timeout.", type="timeout_error", code="timeout") from None
        completion = chat_completion(model=entry["name"], calls=reply.calls, finish_reason=reply.finish_reason,
                                     prompt_tokens=reply.prompt_tokens, completion_tokens=completion_tokens,
                                     fingerprint="spirit-" + loaded.sha256[:16], content=reply.content or "")
        if not request.stream:
            return completion
        # Server-sent events once decoding is done: a call is only valid (and its values coerced to
        # their types) once the grammar has closed it, and a Spirit's whole answer takes tens of ms.
        events = [f"data: {json.dumps(c, ensure_ascii=False)}\n\n"
                  for c in completion_chunks(completion, usage=request.usage_in_stream())]
        return StreamingResponse(iter(events + ["data: [DONE]\n\n"]), media_type="text/event-stream",
                                 headers={"cache-control": "no-cache"})

    app.add_middleware(Guard, api_key=api_key, max_body=max_body)
    return app


def is_loopback(host: str) -> bool:
    """Whether `host` only ever reaches this machine (every address it resolves to is loopback)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses)


def run(*, host: str = "127.0.0.1", port: int = 8000, spirit: Path | None = None, cellar_root: Path | None = None,
        api_key: str | None = None, threads: int | None = 1, max_body: int = MAX_BODY_BYTES,
        timeout_s: float = TIMEOUT_S, log_level: str = "info", device: str = "cpu", runtime: str | None = None) -> None:
    """Serve until interrupted. `spirit`: serve that one file (under its Cellar name) instead of the Cellar.
    `device`: auto, cpu, cuda or mps (refused when not present). `runtime`: torch, onnx or gguf for
    every Spirit; None: each Spirit's chosen one, chosen before serving where it never was."""
    import torch
    import uvicorn

    from distillery.devices import resolve

    target = resolve(device, where="--device")

    if not is_loopback(host) and not api_key:
        raise DistilleryError(f"--host {host} is reachable from other machines, so the server needs an API key. "
                              "Fix: pass --api-key KEY (or set DISTILLERY_API_KEY), or serve on 127.0.0.1.")
    if threads:
        torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory(prefix="distillery-serve-") as tmp:
        cellar = Cellar(Path(tmp)) if spirit is not None else Cellar(cellar_root)
        if spirit is not None:
            cellar.add(spirit)
        if not cellar.entries():
            raise DistilleryError(f"the Cellar ({cellar.root}) has no Spirits to serve. Fix: `distillery cellar add "
                                  "FILE`, run `distillery distill`, or serve one file with --spirit FILE.")
        if target.type != "cpu":
            runtime = "torch"  # onnx and gguf decode on the CPU
        elif runtime is None:  # measured now, not in a first request's time limit
            for entry in cellar.entries().values():
                if cached(entry["sha256"]) is None:
                    choose(load_spirit(cellar.verified_path(entry)), entry["sha256"], threads=threads, log=log.warning)
        names = ", ".join([*cellar.entries(), *cellar.aliases()])
        log.warning("serving %s on http://%s:%d", names, host, port)
        app = create_app(cellar, api_key=api_key, max_body=max_body, timeout_s=timeout_s, device=target,
                         runtime=runtime)
        if spirit is not None:  # loaded now, not in the first request's time limit
            app.state.pool.get(next(iter(cellar.entries())))
        uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5)
