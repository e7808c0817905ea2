"""Batched decoding: many sequences, one forward pass a step for all of them.

An *engine* holds up to `width` sequences, each with its own KV cache, and reads tokens for
any of them in one call:

    engine.feed([(key, tokens), ...]) -> [next-token logits, ...]   # a new key starts a sequence
    engine.drop(key)                                                # its cache is freed

Sequences join and leave between calls (continuous batching), so a batch never waits for its
longest answer. Two drivers run the same greedy loop as `decoding.greedy_decode` over an engine:
`decode_many` answers a list of prompts (`predict --input`, the Tasting), and `Scheduler` lets
many threads each decode their own request while their steps share forward passes (`serve`).
Grammar, copied values and abstaining are the logits filters of each sequence, untouched.

`TorchEngine` runs any transformers causal LM; the gguf runtime brings a llama.cpp engine
(bottling/gguf_engine.py) and any one-sequence runner becomes an engine with `RunnerEngine`.
Each engine keeps the KV cache of the prompts' catalog prefix (the tokens up to the
PromptFormat's boundary) in a small LRU, so a repeated catalog is read once.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from typing import Protocol

import torch
from transformers import DynamicCache

from distillery.decoding import LogitsFilter, TorchRunner, cache_argument, last_logits_only

WIDTH = 32  # sequences decoded together by default
MAX_WAIT_S = 0.004  # how long a step waits for the other live sequences' next tokens
READ_TOKENS = 256  # prompts read in one forward pass together, at most this many tokens (padding included)


class Engine(Protocol):
    max_len: int  # the model's context, per sequence
    width: int  # the most sequences it holds at once

    def feed(self, feeds: list[tuple[Hashable, list[int]]]) -> list[torch.Tensor]:
        """Append each feed's tokens to its sequence (a new key: a new sequence, its tokens the
        prompt); the next-token logits of each, in order, as 1-D CPU tensors."""

    def drop(self, key: Hashable) -> None:
        """Forget a sequence (an unknown key is ignored)."""


class Prefixes:
    """The KV cache of catalog prefixes (the prompt up to and including `boundary_id`), an LRU
    keyed by the prefix's ids. The engine decides what an entry holds."""

    def __init__(self, boundary_id: int | None, size: int):
        self.boundary_id, self.size = boundary_id, size
        self.entries: OrderedDict[tuple[int, ...], object] = OrderedDict()
        self.hits = self.misses = 0

    def cut(self, prompt: list[int]) -> int:
        """Where the prompt's prefix ends (0: no usable prefix: no boundary, or nothing after it)."""
        if not self.size or self.boundary_id is None or self.boundary_id not in prompt:
            return 0
        cut = prompt.index(self.boundary_id) + 1
        return cut if cut < len(prompt) else 0

    def get(self, prefix: tuple[int, ...]):
        found = self.entries.get(prefix)
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
            self.entries.move_to_end(prefix)
        return found

    def put(self, prefix: tuple[int, ...], entry) -> object | None:
        """Store an entry; returns the one evicted to make room (None if none)."""
        self.entries[prefix] = entry
        if len(self.entries) > self.size:
            return self.entries.popitem(last=False)[1]
        return None


class TorchEngine:
    """A transformers causal LM decoding up to `width` sequences together.

    Each sequence owns a row of per-layer key/value buffers (its slot). A forward pass gathers
    the rows it needs into a `DynamicCache`, padded to the longest past with masked columns,
    reads each sequence's new tokens (left-padded, positions counted per sequence) and writes
    the new columns back. One-token steps go in one pass, prompts in passes of about
    READ_TOKENS tokens: reading a prompt is matrix work that batching does not shorten, and
    padding a short step to a prompt's length would waste it.
    """

    def __init__(self, model, max_len: int | None = None, width: int = WIDTH, boundary_id: int | None = None,
                 prefixes: int = 16):
        self.model = model
        limit = model.config.max_position_embeddings
        self.max_len = min(max_len or limit, limit)
        self.width = width
        self.cache_key, self.extra = cache_argument(model), last_logits_only(model)
        self.device = _device(model)
        self.prefixes = Prefixes(boundary_id, prefixes)
        self.keys: list[torch.Tensor] = []  # per layer [width, kv_heads, capacity, head_dim]
        self.values: list[torch.Tensor] = []
        self.slots: dict[Hashable, int] = {}
        self.lengths = [0] * width
        self.free = list(range(width - 1, -1, -1))  # popped from the end: the lowest slot first

    def to(self, device) -> TorchEngine:
        """Decode on `device` from now on (the model moves there; cached KV is dropped)."""
        self.model.to(device)
        self.device = _device(self.model)
        self.keys, self.values = [], []
        self.prefixes.entries.clear()
        return self

    def drop(self, key: Hashable) -> None:
        slot = self.slots.pop(key, None)
        if slot is not None:
            self.lengths[slot] = 0
            self.free.append(slot)
            self.free.sort(reverse=True)  # sequences stay in low, mostly consecutive slots

    @torch.inference_mode()
    def feed(self, feeds: list[tuple[Hashable, list[int]]]) -> list[torch.Tensor]:
        work, saves = [], []
        for key, tokens in feeds:
            slot = self.slots.get(key)
            if slot is None:
                if not self.free:
                    raise RuntimeError(f"the engine holds {self.width} sequences already")
                slot = self.slots[key] = self.free.pop()
                self.lengths[slot] = 0
                tokens = self._start(slot, tokens, saves)
            if self.lengths[slot] + len(tokens) > self.max_len:
                raise ValueError(f"a sequence would pass the model's context of {self.max_len} tokens")
            work.append((slot, tokens))
        found: list[torch.Tensor | None] = [None] * len(work)
        steps = sorted((i for i, (_, tokens) in enumerate(work) if len(tokens) == 1), key=lambda i: work[i][0])
        reads = sorted((i for i, (_, tokens) in enumerate(work) if len(tokens) > 1), key=lambda i: len(work[i][1]))
        for group in ([steps] if steps else []) + _read_groups(reads, work):
            logits = self._forward([work[i] for i in group])
            for i, row in zip(group, logits):
                found[i] = row
        for slot, prefix in saves:  # catalogs read for the first time: keep their KV
            entry = ([k[slot, :, :len(prefix)].clone() for k in self.keys],
                     [v[slot, :, :len(prefix)].clone() for v in self.values])
            self.prefixes.put(prefix, entry)
        return found

    def _start(self, slot: int, prompt: list[int], saves: list) -> list[int]:
        """A new sequence: its catalog's cached KV copied in, the rest of the prompt returned."""
        cut = self.prefixes.cut(prompt)
        if not cut:
            return prompt
        prefix = tuple(prompt[:cut])
        cached = self.prefixes.get(prefix)
        if cached is None:
            saves.append((slot, prefix))
            return prompt
        for buffers, parts in ((self.keys, cached[0]), (self.values, cached[1])):
            for buffer, part in zip(buffers, parts):
                buffer[slot, :, :cut] = part
        self.lengths[slot] = cut
        return prompt[cut:]

    def _forward(self, work: list[tuple[int, list[int]]]) -> torch.Tensor:
        order = [slot for slot, _ in work]
        lengths = torch.tensor([self.lengths[slot] for slot in order])
        past, width = int(lengths.max()), max(len(tokens) for _, tokens in work)
        if width == 1:  # one token each: the step of every live sequence
            ids = torch.tensor([tokens for _, tokens in work])
            positions = lengths[:, None]
            mask = torch.cat([torch.arange(past)[None] < lengths[:, None], torch.ones((len(work), 1), dtype=torch.bool)],
                             dim=1).long()
        else:
            ids = torch.zeros((len(work), width), dtype=torch.long)
            mask = torch.zeros((len(work), past + width), dtype=torch.long)
            positions = torch.zeros((len(work), width), dtype=torch.long)
            for i, (slot, tokens) in enumerate(work):
                length, pad = self.lengths[slot], width - len(tokens)
                ids[i, pad:] = torch.tensor(tokens)
                mask[i, :length] = 1  # the past, then masked columns up to the longest past
                mask[i, past + pad:] = 1
                positions[i, pad:] = torch.arange(length, length + len(tokens))
        # Nothing padded (one sequence, or all alike): no mask, the model's plain causal path.
        mask = None if bool(mask.all()) else mask.to(self.device)
        slots = torch.tensor(order, device=self.device)
        # Consecutive slots are a view of the buffers (no copy): always so for one sequence.
        rows = slice(order[0], order[-1] + 1) if order == list(range(order[0], order[-1] + 1)) else slots
        cache = DynamicCache()
        if past:
            for layer, (keys, values) in enumerate(zip(self.keys, self.values)):
                cache.update(keys[rows, :, :0], values[rows, :, :0], layer)  # an empty layer of the cache's kind,
                written = cache.layers[layer]  # then the past as is: the forward pass copies it once, appending
                written.keys, written.values = keys[rows, :, :past], values[rows, :, :past]
        out = self.model(input_ids=ids.to(self.device), attention_mask=mask, position_ids=positions.to(self.device),
                         **{self.cache_key: cache}, **self.extra, use_cache=True)
        layers = cache.layers  # the cache passed in, now holding the new columns too
        self._reserve(layers, max(self.lengths[slot] + len(tokens) for slot, tokens in work))
        at = lengths.to(self.device)
        for layer, written in enumerate(layers):
            for buffer, new in ((self.keys[layer], written.keys[:, :, past:]),
                                (self.values[layer], written.values[:, :, past:])):
                if width == 1:
                    buffer[slots, :, at] = new[:, :, 0]
                else:
                    for i, (slot, tokens) in enumerate(work):
                        length = self.lengths[slot]
                        buffer[slot, :, length:length + len(tokens)] = new[i, :, width - len(tokens):]
        for slot, tokens in work:
            self.lengths[slot] += len(tokens)
        return out.logits[:, -1].float().cpu()

    def _reserve(self, layers, needed: int) -> None:
        """Buffers long enough for `needed` tokens a slot (grown by doubling, up to the context)."""
        capacity = self.keys[0].shape[2] if self.keys else 0
        if needed <= capacity:
            return
        size = min(self.max_len, max(needed, 2 * capacity, 64))
        for buffers, attribute in ((self.keys, "keys"), (self.values, "values")):
            for layer, written in enumerate(layers):
                shape = getattr(written, attribute).shape
                grown = torch.zeros((self.width, shape[1], size, shape[3]), dtype=getattr(written, attribute).dtype,
                                    device=self.device)
                if capacity:
                    grown[:, :, :capacity] = buffers[layer]
                    buffers[layer] = grown
                else:
                    buffers.append(grown)


def _device(model) -> torch.device:
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def _read_groups(reads: list[int], work: list[tuple[int, list[int]]]) -> list[list[int]]:
    """Prompts (sorted by length) grouped so that a group's padded size stays within READ_TOKENS."""
    groups: list[list[int]] = []
    for i in reads:
        if groups and (len(groups[-1]) + 1) * len(work[i][1]) <= READ_TOKENS:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


class RunnerEngine:
    """An engine over one-sequence runners (an ONNX bottle's): each sequence has its own runner
    and they are read one after another. Same answers, no shared forward pass."""

    def __init__(self, make_runner: Callable[[], object], max_len: int, width: int = WIDTH):
        self.make_runner, self.max_len, self.width = make_runner, max_len, width
        self.runners: dict[Hashable, object] = {}
        self.idle: list[object] = []

    def feed(self, feeds: list[tuple[Hashable, list[int]]]) -> list[torch.Tensor]:
        found = []
        for key, tokens in feeds:
            runner = self.runners.get(key)
            if runner is None:
                if len(self.runners) >= self.width:
                    raise RuntimeError(f"the engine holds {self.width} sequences already")
                runner = self.runners[key] = self.idle.pop() if self.idle else self.make_runner()
                found.append(runner.start(tokens))
                continue
            logits = None
            for token in tokens:
                logits = runner.step(token)
            found.append(logits)
        return found

    def drop(self, key: Hashable) -> None:
        runner = self.runners.pop(key, None)
        if runner is not None:
            self.idle.append(runner)


class EngineRunner:
    """One sequence at a time over an engine (a `decoding.Runner`), with the engine at hand for
    batches (`ToolCaller.predict_many`). Not thread-safe; serve's threads use a `Scheduler`."""

    def __init__(self, engine: Engine):
        self.engine, self.max_len = engine, engine.max_len
        self.key: Hashable | None = None
        self._keys = itertools.count()
        if hasattr(engine, "to"):
            self.to = engine.to  # a torch engine moves to another device (`--device`)

    def start(self, prompt_ids: list[int]) -> torch.Tensor:
        if self.key is not None:
            self.engine.drop(self.key)
        self.key = ("single", next(self._keys))
        return self.engine.feed([(self.key, list(prompt_ids))])[0]

    def step(self, token: int) -> torch.Tensor:
        return self.engine.feed([(self.key, [token])])[0]

    def release(self) -> None:
        """Free the last sequence's place in the engine (decoding it further needs a new start)."""
        if self.key is not None:
            self.engine.drop(self.key)
            self.key = None


def batch_engine(runner, width: int) -> Engine | None:
    """The engine a runner decodes batches with: its own (every place freed), a new TorchEngine
    over a TorchRunner's model, or None (a runner that only reads one sequence)."""
    if isinstance(runner, EngineRunner):
        runner.release()
        return runner.engine
    if isinstance(runner, TorchRunner):
        return TorchEngine(runner.model, runner.max_len, width=width, prefixes=0)
    return None


@torch.inference_mode()
def decode_many(engine: Engine, prompts: list[list[int]], *, eos_id: int, max_new_tokens: list[int],
                logits_filters: list[LogitsFilter | None], width: int | None = None) -> list[list[int] | Exception]:
    """`greedy_decode` of every prompt, up to `width` at a time in one forward pass a step: as
    one finishes the next prompt takes its place. A filter that raises ends its sequence: its
    result is the exception."""
    width = min(width or engine.width, engine.width)
    results: list[list[int] | Exception] = [[] for _ in prompts]
    prompts = [list(p[-(engine.max_len - 1):]) for p in prompts]
    limits = [min(limit, engine.max_len - len(p)) for limit, p in zip(max_new_tokens, prompts)]
    waiting = deque(i for i, limit in enumerate(limits) if limit > 0)
    last: dict[int, int] = {}  # live sequence -> its last token
    keys = ("many", id(results))  # keys no other user of the engine has
    try:
        while waiting or last:
            feeds = [((keys, i), [token]) for i, token in last.items()]
            while waiting and len(feeds) < width:
                i = waiting.popleft()
                feeds.append(((keys, i), prompts[i]))
            for ((_, i), _), logits in zip(feeds, engine.feed(feeds)):
                token = _choose(results, i, logits, logits_filters[i], eos_id)
                if token is None or len(results[i]) >= limits[i]:
                    last.pop(i, None)
                    engine.drop((keys, i))
                else:
                    last[i] = token
    finally:
        for i in last:
            engine.drop((keys, i))
    return results


def _choose(results: list, i: int, logits: torch.Tensor, logits_filter, eos_id: int) -> int | None:
    """The next token of sequence `i` (appended to its result), or None when it ends."""
    if logits_filter is not None:
        try:
            logits = logits_filter(results[i], logits)
        except Exception as exc:  # the filter's way to stop a sequence (abstaining)
            results[i] = exc
            return None
    token = int(torch.argmax(logits))
    if token == eos_id:
        return None
    results[i].append(token)
    return token


class _Ask:
    """One sequence's tokens waiting for the next forward pass, and its logits once read."""

    __slots__ = ("tokens", "done", "logits", "error")

    def __init__(self, tokens: list[int]):
        self.tokens, self.done, self.logits, self.error = tokens, threading.Event(), None, None


class Scheduler:
    """Dynamic batching for threads that each decode one request (serve's request threads).

    Each thread gets a `runner()` and decodes as it would alone (`greedy_decode`, its task's
    predictor, its grammar). The scheduler's thread gathers the tokens every open sequence asks
    to read, waits until all of them have asked (at most `max_wait` seconds after the first, so
    a slow one never holds the others), and reads them in one `engine.feed`. New sequences join
    at the next pass; when `width` sequences are open, a new one waits for a free place.
    """

    def __init__(self, engine: Engine, max_wait: float = MAX_WAIT_S):
        self.engine, self.max_wait = engine, max_wait
        self.cond = threading.Condition()
        self.open: set[Hashable] = set()
        self.asks: dict[Hashable, _Ask] = {}
        self.closed: list[Hashable] = []
        self.thread: threading.Thread | None = None
        self._keys = itertools.count()
        self.passes = self.fed = 0  # forward calls and sequences read: their ratio is the mean batch

    def runner(self, deadline: float | None = None) -> ScheduledRunner:
        """A runner for one thread's sequence; `deadline` (time.monotonic) bounds waiting for a place."""
        return ScheduledRunner(self, deadline)

    def _open(self, deadline: float | None) -> Hashable:
        with self.cond:
            while len(self.open) >= self.engine.width:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError("no free place to decode before the deadline")
                self.cond.wait(left)
            key = next(self._keys)
            self.open.add(key)
            if self.thread is None:
                self.thread = threading.Thread(target=self._loop, name="distillery-batch", daemon=True)
                self.thread.start()
            return key

    def _close(self, key: Hashable) -> None:
        with self.cond:
            if key in self.open:
                self.open.discard(key)
                self.asks.pop(key, None)
                self.closed.append(key)
                self.cond.notify_all()

    def _ask(self, key: Hashable, tokens: list[int]) -> torch.Tensor:
        ask = _Ask(tokens)
        with self.cond:
            self.asks[key] = ask
            self.cond.notify_all()
        ask.done.wait()
        if ask.error is not None:
            raise ask.error
        return ask.logits

    def _loop(self) -> None:
        with torch.inference_mode():  # per thread: the request threads' mode does not reach this one
            while True:
                with self.cond:
                    while not self.asks:
                        if self.open:
                            self.cond.wait()
                            continue
                        self.cond.wait(1.0)  # idle: a second for new work, then the thread ends
                        if not self.asks and not self.open:
                            self._release(self.closed)
                            self.thread = None  # the next open starts a new one
                            return
                    first = time.monotonic()
                    while len(self.asks) < len(self.open) and (left := first + self.max_wait - time.monotonic()) > 0:
                        self.cond.wait(left)
                    asks, self.asks = self.asks, {}
                    # Only this thread touches the engine; freeing a place is bookkeeping.
                    self._release(self.closed)
                self._read(asks)

    def _release(self, keys: list[Hashable]) -> None:
        for key in keys:
            self.engine.drop(key)
        keys.clear()

    def _read(self, asks: dict[Hashable, _Ask]) -> None:
        try:
            found = self.engine.feed([(key, ask.tokens) for key, ask in asks.items()])
        except Exception as exc:  # noqa: BLE001 - handed to each waiting thread, which raises it
            for key, ask in asks.items():
                self.engine.drop(key)
                ask.error = exc
                ask.done.set()
            return
        self.passes += 1
        self.fed += len(asks)
        for ask, logits in zip(asks.values(), found):
            ask.logits = logits
            ask.done.set()


class ScheduledRunner:
    """One thread's sequence in a Scheduler: a `decoding.Runner` whose reads are batched with
    the other threads'. `close()` frees its place (serve calls it when the request is answered)."""

    def __init__(self, scheduler: Scheduler, deadline: float | None):
        self.scheduler, self.deadline = scheduler, deadline
        self.max_len = scheduler.engine.max_len
        self.key: Hashable | None = None

    def start(self, prompt_ids: list[int]) -> torch.Tensor:
        self.close()
        self.key = self.scheduler._open(self.deadline)
        return self.scheduler._ask(self.key, list(prompt_ids))

    def step(self, token: int) -> torch.Tensor:
        return self.scheduler._ask(self.key, [token])

    def close(self) -> None:
        if self.key is not None:
            self.scheduler._close(self.key)
            self.key = None
