"""The gguf runtime's batched engine: many sequences in one llama.cpp context (batching.Engine).

llama.cpp decodes several sequences in one `llama_decode`: every token of the batch names its
sequence and position, each sequence keeps its own KV cells, and prompts and one-token steps
of different sequences go in the same call. This drives that through llama-cpp-python's
low-level API, fed with distillery's prompt ids (llama.cpp's own pre-tokenizer differs from
the student's; see gguf.py).

Sequence ids 0..width-1 hold live sequences; the ones after them hold catalog prefixes: a new
sequence whose catalog was read before starts from a copy of that prefix's cells
(`llama_memory_seq_cp`) and reads only the request. Each sequence has its own KV stream
(`kv_unified` off: attention then spans its own cells, not every sequence's), kept in f32 so
the cache stores what the Spirit computes.
"""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path

import numpy as np
import torch

from distillery.batching import WIDTH, Prefixes
from distillery.bottling.gguf import _INSTALL_LLAMA, _quiet_stderr
from distillery.errors import DistilleryError

BATCH_TOKENS = 2048  # tokens one llama_decode reads at most; more are split across calls
KV_BUDGET = 1 << 30  # bytes of KV cells an engine may take: llama.cpp allocates every sequence's up front


class LlamaCppEngine:
    """A .gguf in llama.cpp decoding up to `width` sequences together."""

    def __init__(self, path: Path, max_len: int, width: int = WIDTH, threads: int | None = None,
                 boundary_id: int | None = None, prefixes: int = 8, kv_budget: int = KV_BUDGET):
        try:
            import llama_cpp
            from llama_cpp._logger import set_verbose
        except ImportError:
            raise DistilleryError(f"running a .gguf needs llama-cpp-python. {_INSTALL_LLAMA}") from None
        self.llama = llama_cpp
        set_verbose(False)  # llama.cpp's load report goes to Python's logger, silenced
        threads = threads or torch.get_num_threads()
        with _quiet_stderr():
            self.model = llama_cpp.llama_model_load_from_file(str(path).encode(), llama_cpp.llama_model_default_params())
        if not self.model:
            raise DistilleryError(f"{path}: llama.cpp cannot load it. Fix: bottle the Spirit again.")
        # llama.cpp gives each sequence n_ctx / n_seq_max cells, in multiples of 256, f32 keys and values.
        cells = -(-max_len // 256) * 256
        head_dim = llama_cpp.llama_model_n_embd(self.model) // llama_cpp.llama_model_n_head(self.model)
        per_sequence = 2 * 4 * cells * llama_cpp.llama_model_n_layer(self.model) * head_dim \
            * llama_cpp.llama_model_n_head_kv(self.model)
        room = max(1, kv_budget // per_sequence)  # a big student decodes fewer sequences at once
        width = max(1, min(width, room))
        prefixes = max(0, min(prefixes, room - width))
        self.max_len, self.width = max_len, width
        self.prefixes = Prefixes(boundary_id, prefixes)
        sequences = width + prefixes
        with _quiet_stderr():
            params = llama_cpp.llama_context_default_params()
            params.n_ctx = cells * sequences
            params.n_batch = params.n_ubatch = min(BATCH_TOKENS, max_len * sequences)
            params.n_seq_max = sequences
            params.kv_unified = False
            params.type_k = params.type_v = llama_cpp.GGML_TYPE_F32
            params.n_threads = params.n_threads_batch = threads
            params.no_perf = True
            self.ctx = llama_cpp.llama_init_from_model(self.model, params)
        if not self.ctx:
            llama_cpp.llama_model_free(self.model)
            raise DistilleryError(f"{path}: llama.cpp cannot make a context for {sequences} sequences of {max_len} "
                                  "tokens (out of memory?). Fix: decode fewer sequences at once.")
        self.n_batch = params.n_batch
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        self.batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(self.model))
        self.seqs: dict[Hashable, int] = {}  # live sequence -> its llama.cpp sequence id
        self.lengths: dict[int, int] = {}  # llama.cpp sequence id -> tokens in its cells
        self.free = list(range(width - 1, -1, -1))
        self.prefix_free = list(range(width + prefixes - 1, width - 1, -1))

    def close(self) -> None:
        if self.ctx:
            self.llama.llama_batch_free(self.batch)
            self.llama.llama_free(self.ctx)
            self.llama.llama_model_free(self.model)
            self.ctx = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown: the process frees everything anyway
            pass

    def drop(self, key: Hashable) -> None:
        seq = self.seqs.pop(key, None)
        if seq is not None:
            self.llama.llama_memory_seq_rm(self.memory, seq, -1, -1)
            self.lengths[seq] = 0
            self.free.append(seq)

    def feed(self, feeds: list[tuple[Hashable, list[int]]]) -> list[torch.Tensor]:
        work, saves = [], []
        for key, tokens in feeds:
            seq = self.seqs.get(key)
            if seq is None:
                if not self.free:
                    raise RuntimeError(f"the engine holds {self.width} sequences already")
                seq = self.seqs[key] = self.free.pop()
                self.lengths[seq] = 0
                tokens = self._start(seq, tokens, saves)
            if self.lengths[seq] + len(tokens) > self.max_len:
                raise ValueError(f"a sequence would pass the model's context of {self.max_len} tokens")
            work.append((seq, tokens))
        # One call for every one-token step, one for each prompt: measured on the Needle student,
        # llama.cpp reads prompts no faster together, and a long one would hold back every step.
        found: list[torch.Tensor | None] = [None] * len(work)
        # In ascending sequence ids: llama.cpp splits a batch whose ids go down into a call per sequence.
        steps = sorted((i for i, (_, tokens) in enumerate(work) if len(tokens) == 1), key=lambda i: work[i][0])
        groups = ([steps] if steps else []) + [[i] for i, (_, tokens) in enumerate(work) if len(tokens) > 1]
        for group in groups:
            logits = []
            for part in _parts([work[i] for i in group], self.n_batch):
                logits += self._decode(part)
            for i, row in zip(group, logits):
                found[i] = row
        for seq, prefix in saves:
            self._save(seq, prefix)
        return found

    def _start(self, seq: int, prompt: list[int], saves: list) -> list[int]:
        cut = self.prefixes.cut(prompt)
        if not cut:
            return prompt
        prefix = tuple(prompt[:cut])
        source = self.prefixes.get(prefix)
        if source is None:
            saves.append((seq, prefix))
            return prompt
        # A whole-stream copy: the prefix's stream holds nothing else.
        self.llama.llama_memory_seq_cp(self.memory, source, seq, -1, -1)
        self.lengths[seq] = cut
        return prompt[cut:]

    def _save(self, seq: int, prefix: tuple[int, ...]) -> None:
        """Keep the catalog's cells in a prefix sequence (the least recently used one when all are taken)."""
        if prefix in self.prefixes.entries or self.prefixes.size == 0:
            return
        if self.prefix_free:
            target = self.prefix_free.pop()
        else:
            target = self.prefixes.entries.popitem(last=False)[1]
        self.llama.llama_memory_seq_rm(self.memory, target, -1, -1)
        self.llama.llama_memory_seq_cp(self.memory, seq, target, -1, -1)
        self.llama.llama_memory_seq_rm(self.memory, target, len(prefix), -1)  # the catalog only
        self.prefixes.put(prefix, target)

    def _decode(self, work: list[tuple[int, list[int], bool]]) -> list[torch.Tensor]:
        """One llama_decode; the logits of each piece that ends its feed."""
        batch, rows, n = self.batch, [], 0
        for seq, tokens, last in work:
            start = self.lengths[seq]
            for j, token in enumerate(tokens):
                batch.token[n], batch.pos[n], batch.n_seq_id[n] = token, start + j, 1
                batch.seq_id[n][0] = seq
                batch.logits[n] = last and j == len(tokens) - 1
                n += 1
            if last:
                rows.append(n - 1)
            self.lengths[seq] = start + len(tokens)
        batch.n_tokens = n
        code = self.llama.llama_decode(self.ctx, batch)
        if code != 0:
            raise RuntimeError(f"llama_decode failed ({code})")
        return [torch.from_numpy(np.ctypeslib.as_array(self.llama.llama_get_logits_ith(self.ctx, row),
                                                       shape=(self.n_vocab,)).copy()) for row in rows]


def _parts(work: list[tuple[int, list[int]]], limit: int) -> list[list[tuple[int, list[int], bool]]]:
    """The work in calls of at most `limit` tokens; a prompt longer than the room left is cut,
    and only its last piece (`True`) asks for logits."""
    parts, current, size = [], [], 0
    for seq, tokens in work:
        while tokens:
            room = limit - size
            if room == 0:
                parts.append(current)
                current, size = [], 0
                continue
            piece, tokens = tokens[:room], tokens[room:]
            current.append((seq, piece, not tokens))
            size += len(piece)
    if current:
        parts.append(current)
    return parts

