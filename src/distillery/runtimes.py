"""Runtimes: where a Spirit decodes (torch, onnx, gguf), behind one batched-engine interface.

`predict`, `taste` and `serve` take `--runtime torch|onnx|gguf`. A Spirit runs in any of them:
torch reads the Spirit itself; onnx and gguf run its f32 onnx or gguf export, written once
into the cache beside the choice below. A bottle runs in the one runtime its format needs.

Without `--runtime`, a Spirit runs in the fastest installed runtime that reproduces its calls
on its heads: each installed runtime answers the heads the Spirit carries as serve does (many
requests in flight, decoding together), the answers are compared with PyTorch's one-at-a-time
decoding (what the Tasting did), and the fastest of those that agree on every head wins. That is measured once per Spirit file and kept by its sha256 in
`$DISTILLERY_CACHE/runtimes/<sha256>.json` (default `~/.cache/distillery`), measured again only
when the installed runtimes change. A Spirit without heads runs in torch.

Every runtime decodes through a `batching` engine, so grammar, copied values and abstaining are
the same code everywhere, and batches (`predict --input`, `serve`) share forward passes where
the runtime can: torch and llama.cpp read many sequences in one pass; onnxruntime reads them
one after another (the exported graph takes one sequence).
"""

from __future__ import annotations

import importlib.util
import json
import os
import threading
import time
from dataclasses import replace
from pathlib import Path

from distillery.batching import WIDTH, EngineRunner, RunnerEngine, Scheduler, TorchEngine
from distillery.bottling import Bottle, open_artifact, resolve_heads, taste_bottle
from distillery.errors import DistilleryError

RUNTIMES = ("torch", "onnx", "gguf")
# The runtime each artifact format needs (a Spirit runs in any).
FORMAT_RUNTIME = {"hf": "torch", "pt": "torch", "onnx": "onnx", "gguf": "gguf"}
_PACKAGES = {"torch": (), "onnx": ("onnxruntime", "onnx", "onnxscript"), "gguf": ("llama_cpp", "gguf")}
_INSTALL = {"onnx": "pip install onnx onnxruntime onnxscript", "gguf": "pip install gguf llama-cpp-python"}


def missing(runtime: str) -> str | None:
    """The first package `runtime` needs that is not installed, or None."""
    return next((name for name in _PACKAGES[runtime] if importlib.util.find_spec(name) is None), None)


def installed() -> list[str]:
    return [runtime for runtime in RUNTIMES if missing(runtime) is None]


def check_runtime(runtime: str | None) -> None:
    """Refuse a runtime that is not one, or not installed here (exit 2, before loading anything)."""
    if runtime is None:
        return
    if runtime not in RUNTIMES:
        raise DistilleryError(f"--runtime {runtime!r} is not a runtime. Fix: use one of {', '.join(RUNTIMES)}, "
                              "or leave it out for the fastest one installed.")
    package = missing(runtime)
    if package is not None:
        raise DistilleryError(f"--runtime {runtime}: the `{package}` package is not installed. Fix: "
                              f"{_INSTALL[runtime]} (or pip install 'distillery[all]'), or use "
                              f"{' or '.join(installed())}.")


def cache_root() -> Path:
    """$DISTILLERY_CACHE/runtimes, else $XDG_CACHE_HOME/distillery/runtimes."""
    base = os.environ.get("DISTILLERY_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") \
        / "distillery"
    return Path(base) / "runtimes"


def open_in(path: Path, runtime: str | None = None, *, threads: int | None = None, width: int = WIDTH,
            log=lambda message: None) -> tuple[Bottle, str]:
    """An artifact ready to decode in `runtime`, and the runtime: a bottle in its own (a different
    one is refused), a Spirit in the one named or, with None, the one chosen for it."""
    check_runtime(runtime)
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".gguf":  # opened once, for batches
        from distillery.bottling.gguf import open_bottle

        return open_bottle(path, threads, width=width), _own("gguf", runtime, path)
    bottle = open_artifact(path, threads)
    if bottle.format != "spirit":
        own = _own(FORMAT_RUNTIME[bottle.format], runtime, path)
        return replace(bottle, runner=EngineRunner(_engine_of(bottle, width))), own
    from distillery.spirit import file_sha256, load_spirit

    spirit, sha256 = load_spirit(path), file_sha256(path)
    runtime = runtime or choose(spirit, sha256, threads=threads, log=log)
    engine = spirit_engine(spirit, sha256, runtime, threads=threads, width=width)
    return Bottle(EngineRunner(engine), spirit.tokenizer, spirit.metadata, "spirit"), runtime


def _own(runtime: str, wanted: str | None, path: Path) -> str:
    if wanted is not None and wanted != runtime:
        fmt = {"torch": "hf", "onnx": "onnx", "gguf": "gguf"}[wanted]
        raise DistilleryError(f"{path}: this artifact runs in {runtime}, not {wanted}. Fix: give the .spirit (it runs "
                              f"in any runtime), or bottle it for {wanted} (`distillery bottle SPIRIT --format {fmt} "
                              f"--out DIR`) and use that bottle.")
    return runtime


def _engine_of(bottle: Bottle, width: int):
    """The engine over an opened hf, pt or onnx bottle's model."""
    fmt, boundary = bottle.prompt_format, bottle.prompt_format.boundary_id(bottle.tokenizer)
    if bottle.format == "onnx":
        from distillery.bottling.onnx import OnnxRunner

        session = bottle.runner.session
        return RunnerEngine(lambda: OnnxRunner(session, fmt.context), fmt.context, width)
    return TorchEngine(bottle.runner.model, fmt.context, width=width, boundary_id=boundary)


def spirit_engine(spirit, sha256: str, runtime: str, *, threads: int | None = None, width: int = WIDTH,
                  prefixes: int = 16):
    """The engine that decodes `spirit` in `runtime` (onnx and gguf: its cached f32 export);
    `prefixes`: catalog prefixes kept (0: none)."""
    fmt = spirit.format
    boundary = fmt.boundary_id(spirit.tokenizer) if prefixes else None
    if runtime == "torch":
        return TorchEngine(spirit.model, fmt.context, width=width, boundary_id=boundary, prefixes=prefixes)
    if runtime == "onnx":
        from distillery.bottling.onnx import OnnxRunner, open_bottle

        session = open_bottle(_export(spirit, sha256, "onnx"), threads=threads).runner.session
        return RunnerEngine(lambda: OnnxRunner(session, fmt.context), fmt.context, width)
    if runtime == "gguf":
        from distillery.bottling.gguf_engine import LlamaCppEngine

        return LlamaCppEngine(_export(spirit, sha256, "gguf"), fmt.context, width=width, threads=threads,
                              boundary_id=boundary, prefixes=min(prefixes, 8))
    raise ValueError(f"unknown runtime {runtime!r}")


def _export(spirit, sha256: str, runtime: str) -> Path:
    """The Spirit's f32 export for `runtime`, written into the cache on first use."""
    folder = cache_root() / sha256
    name = f"{spirit.path.stem}.onnx" if runtime == "onnx" else f"{spirit.path.stem}-f32.gguf"
    if not (folder / name).is_file():  # each format writes its file atomically
        if runtime == "onnx":
            from distillery.bottling.onnx import export
        else:
            from distillery.bottling.gguf import export
        try:
            export(spirit, folder, None)
        except OSError as exc:
            raise DistilleryError(f"the {runtime} runtime needs the Spirit's {runtime} export in {folder}, which "
                                  f"cannot be written ({exc.strerror}). Fix: set DISTILLERY_CACHE to a writable "
                                  "folder, or use --runtime torch.") from None
    return folder / name


def cached(sha256: str) -> str | None:
    """The runtime chosen for the Spirit with this sha256, if it was chosen with today's installed runtimes."""
    try:
        record = json.loads((cache_root() / f"{sha256}.json").read_text())
    except (OSError, ValueError):
        return None
    here = installed()
    return record.get("runtime") if record.get("installed") == here and record.get("runtime") in here else None


def choose(spirit, sha256: str, *, threads: int | None = None, log=lambda message: None) -> str:
    """The fastest installed runtime that reproduces the Spirit's calls on its heads (cached by sha256)."""
    found = cached(sha256)
    if found is not None:
        return found
    record_path = cache_root() / f"{sha256}.json"
    record = measure(spirit, sha256, installed(), threads=threads, log=log)
    try:
        record_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = record_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        os.replace(tmp, record_path)
        kept = f"kept in {record_path}"
    except OSError as exc:  # an unwritable cache costs a measurement next time, nothing else
        kept = f"not kept: {record_path.parent} cannot be written ({exc.strerror}); set DISTILLERY_CACHE"
    log(f"runtime for {spirit.path.name}: {record['runtime']} ({record['reason']}); {kept}")
    return record["runtime"]


def measure(spirit, sha256: str, runtimes: list[str], *, threads: int | None = None,
            log=lambda message: None) -> dict:
    """Answer the Spirit's heads in each runtime as serve and `predict --input` do (many requests in
    flight, decoding together); the record `choose` keeps: per runtime the heads answered as PyTorch
    answers them one at a time, calls/s (or why it could not run), and the choice."""
    found = resolve_heads(spirit.metadata, None, str(spirit.path))
    record = {"sha256": sha256, "spirit": spirit.path.name, "installed": runtimes, "runtimes": {}}
    if found is None or runtimes == ["torch"]:
        why = "no other runtime installed" if found is not None else "the Spirit carries no heads to check on"
        return {**record, "runtime": "torch", "reason": why}
    heads = found[0]
    log(f"choosing the runtime of {spirit.path.name}: {', '.join(runtimes)} each answer its {len(heads)} heads "
        "(once; kept by the file's sha256)")
    from distillery.decoding import TorchRunner

    reference = Bottle(TorchRunner(spirit.model, spirit.format.context), spirit.tokenizer, spirit.metadata, "spirit")
    expected = [row["predicted"] for row in taste_bottle(reference, heads)["predictions"]]
    for runtime in runtimes:
        try:
            engine = spirit_engine(spirit, sha256, runtime, threads=threads, prefixes=0)
            in_flight(spirit, engine, heads[:2])  # warm-up: first calls allocate
            start = time.perf_counter()
            answers = in_flight(spirit, engine, heads)
            seconds = time.perf_counter() - start
        except Exception as exc:  # noqa: BLE001 - a runtime that cannot run this Spirit is not chosen, and says why
            record["runtimes"][runtime] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        same = sum(a == b for a, b in zip(answers, expected))
        record["runtimes"][runtime] = {"same": same, "n": len(heads), "calls_per_s": round(len(heads) / seconds, 2)}
    runtime, reason = pick(record["runtimes"], len(heads))
    return {**record, "runtime": runtime, "reason": reason}


def in_flight(spirit, engine, heads: list[dict]) -> list:
    """Each head's answer from the Spirit's task, as many requests in flight at once as the engine
    holds, each in its own thread (serve's way: batching.Scheduler)."""
    scheduler, task = Scheduler(engine), spirit.task
    answers, errors, queue, lock = [None] * len(heads), [], iter(range(len(heads))), threading.Lock()

    def worker():
        runner = scheduler.runner()
        caller = task.predictor(runner, spirit.tokenizer, spirit.format, spirit.decoding)
        try:
            while True:
                with lock:
                    i = next(queue, None)
                if i is None:
                    return
                answers[i] = task.taste(caller, [heads[i]], samples=0, held_out=None)["predictions"][0]["predicted"]
                runner.close()  # its place goes to the next request
        except Exception as exc:  # noqa: BLE001 - raised in the calling thread below
            errors.append(exc)
        finally:
            runner.close()

    workers = [threading.Thread(target=worker) for _ in range(min(engine.width, len(heads)))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise errors[0]
    return answers


def pick(measured: dict[str, dict], n: int) -> tuple[str, str]:
    """The fastest runtime that answered all `n` heads as PyTorch does (torch when none did), and why."""
    agreeing = {name: row for name, row in measured.items() if row.get("same") == n}
    if not agreeing:
        return "torch", "no runtime answered every head as PyTorch does"
    best = max(agreeing, key=lambda name: agreeing[name]["calls_per_s"])
    return best, f"the fastest of those that answer all {n} heads as PyTorch does: {agreeing[best]['calls_per_s']} calls/s"
