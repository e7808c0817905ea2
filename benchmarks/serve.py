"""`distillery serve` against llama.cpp's own server on the same Spirit, side by side in one run.

    python benchmarks/serve.py runs/needle-v3 [--requests 200] [--clients 1 8 32] [--threads 1]
                               [--json benchmarks/results/serve.json]

Both servers run in their own process with the same number of threads:
- `distillery serve --spirit SPIRIT`: its default runtime (the fastest installed one that answers
  the Spirit's heads as PyTorch does), the requests in flight decoding together;
- `python -m llama_cpp.server --model <the Spirit's gguf bottle>`: llama.cpp's server, each request
  a `/v1/completions` with the prompt text the Spirit's chat template writes and the grammar of the
  request's offered tools (`.gbnf`, made as the bottle's is), greedy (temperature 0).
The clients are threads of this process sending the run's heads (each with its own offered tools),
the same requests to both servers; at each level the two servers take turns. Then one level with
every request offering the same catalog (a deployment's usual case: the prefix cache's). Each row:
requests/s, p50 and p99 latency, failures, the server's CPU milliseconds a request (its process's
CPU time over the level: what the machine's other load does not inflate), and how many answers
equal `predict`'s (the Spirit in its default runtime, one request at a time, in-process). llama.cpp tokenizes the prompt text
itself, with its own pre-tokenizer and keeping the whitespace the student never reads, so its
answers may differ from the Spirit's (bottling/gguf.py).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import torch
import yaml

from distillery.bottling import caller_for
from distillery.bottling.gguf import export, schema_gbnf
from distillery.jsonl import read_jsonl
from distillery.runtimes import open_in
from distillery.spirit import file_sha256, load_spirit
from distillery.tasks.base import percentile
from distillery.tasks.tool_calling.grammar import calls_schema
from distillery.tasks.tool_calling.prompt import parse_completion, prompt_text
from distillery.tasks.tool_calling.validate import coerce_arguments


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(command: list[str], port: int, ready: str) -> subprocess.Popen:
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"{command[2]} exited: {server.stderr.read()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{ready}", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit(f"{command[2]} did not start within 600 s")


def cpu_seconds(pid: int) -> float:
    """CPU time a process has used, all its threads (Linux: /proc/PID/stat's utime + stime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Target:
    """One server: how a request is sent and how its answer is read back as calls."""

    def __init__(self, name: str, url: str, path: str, body, calls, pid: int):
        self.name, self.url, self.path, self.body, self.calls, self.pid = name, url, path, body, calls, pid


def load(target: Target, requests: list[tuple], expected: list, clients: int) -> dict:
    """Send every request once from `clients` threads: requests/s, latency, failures, equal answers."""
    latencies, failures, equal, lock, queue = [], [], [0], threading.Lock(), iter(range(len(requests)))

    def client():
        with httpx.Client(base_url=target.url, timeout=300) as http:
            while True:
                with lock:
                    i = next(queue, None)
                if i is None:
                    return
                sent = time.perf_counter()
                try:
                    reply = http.post(target.path, json=target.body(*requests[i]))
                except httpx.HTTPError as exc:
                    with lock:
                        failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                elapsed = (time.perf_counter() - sent) * 1000
                with lock:
                    if reply.status_code != 200:
                        failures.append(f"{reply.status_code} {reply.text[:200]}")
                        continue
                    latencies.append(elapsed)
                    equal[0] += target.calls(reply.json(), requests[i][1]) == expected[i]

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began, cpu = time.perf_counter(), cpu_seconds(target.pid)
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall, cpu = time.perf_counter() - began, cpu_seconds(target.pid) - cpu
    if failures:
        print(f"  {target.name}: {len(failures)} of {len(requests)} failed, e.g. {failures[0]}")
    return {"server": target.name, "clients": clients, "requests": len(requests), "failed": len(failures),
            "requests_per_s": round(len(latencies) / wall, 2),
            "p50_ms": round(percentile(latencies, 0.5), 1), "p99_ms": round(percentile(latencies, 0.99), 1),
            "server_cpu_ms": round(cpu * 1000 / max(len(latencies), 1), 1), "same_as_predict": equal[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run directory, e.g. runs/needle-v3")
    parser.add_argument("--requests", type=int, default=200, help="requests per level")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--threads", type=int, default=1, help="threads of each server")
    parser.add_argument("--quantize", default=None, help="the gguf bottle's weights (default f32)")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/serve.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    name = yaml.safe_load((args.run / "recipe.yaml").read_text())["name"]
    path = args.run / f"{name}.spirit"
    spirit = load_spirit(path)
    fmt, by_name = spirit.format, {t.name: t for t in spirit.tools}
    heads = read_jsonl(args.run / "cuts" / "heads.jsonl")
    per_head = [(h["utterance"], [by_name[n] for n in h["tools"]]) for h in heads]
    per_head = (per_head * (args.requests // len(per_head) + 1))[:args.requests]
    catalog = max((tools for _, tools in per_head), key=len)  # one catalog for every request
    fixed = [(utterance, catalog) for utterance, _ in per_head]

    bottle, runtime = open_in(path, None, threads=args.threads, log=print)
    caller = caller_for(bottle)
    predicted = {}
    for utterance, tools in per_head + fixed:  # `predict`, one request at a time, in-process
        key = (utterance, tuple(t.name for t in tools))
        if key not in predicted:
            predicted[key] = caller.predict(utterance, tools).calls
    grammars = {}

    def llama_body(utterance, tools):
        key = tuple(t.name for t in tools)
        if key not in grammars:
            grammars[key] = schema_gbnf(calls_schema(tools), compact=fmt.json_style == "compact")
        # max_tokens null: up to the context, as distillery answers (the server's default is 16 tokens).
        return {"prompt": prompt_text(fmt, utterance, tools), "grammar": grammars[key], "temperature": 0.0,
                "max_tokens": None}

    def llama_calls(reply, tools):
        calls = parse_completion(reply["choices"][0]["text"])
        offered = {t.name: t for t in tools}
        return None if calls is None else [
            {"name": c["name"], "arguments": coerce_arguments(c["arguments"], offered[c["name"]])
             if c["name"] in offered else c["arguments"]} for c in calls]

    def distillery_calls(reply, tools):
        return [{"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])}
                for c in reply["choices"][0]["message"].get("tool_calls") or []]

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        gguf = export(spirit, Path(tmp), args.quantize)
        ours, theirs = free_port(), free_port()
        servers = [
            start([sys.executable, "-m", "distillery.cli", "serve", "--spirit", str(path), "--port", str(ours),
                   "--threads", str(args.threads)], ours, "/health"),
            start([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--port", str(theirs),
                   "--n_ctx", str(fmt.context), "--n_batch", str(fmt.context), "--n_threads", str(args.threads),
                   "--n_threads_batch", str(args.threads), "--verbose", "False"], theirs, "/v1/models")]
        try:
            model = httpx.get(f"http://127.0.0.1:{ours}/v1/models").json()["data"][0]["id"]
            targets = [
                Target(f"distillery serve ({runtime})", f"http://127.0.0.1:{ours}", "/v1/chat/completions",
                       lambda u, tools: {"model": model, "messages": [{"role": "user", "content": u}],
                                         "tools": [t.to_openai() for t in tools]}, distillery_calls, servers[0].pid),
                Target("llama_cpp.server", f"http://127.0.0.1:{theirs}", "/v1/completions", llama_body, llama_calls,
                       servers[1].pid)]
            levels = []
            plan = [(per_head, "own tools", clients) for clients in args.clients] + [(fixed, "one catalog", 8)]
            for step, (work, label, clients) in enumerate(plan):
                expected = [predicted[(u, tuple(t.name for t in tools))] for u, tools in work]
                order = targets if step % 2 == 0 else targets[::-1]  # who goes first alternates
                for target in order:
                    load(target, work[:10], expected[:10], 1)  # warm-up
                    row = {**load(target, work, expected, clients), "catalogs": label}
                    levels.append(row)
                    print(f"  {row['server']:32} {label:12} {clients:>3} clients: {row['requests_per_s']:6.1f} req/s, "
                          f"p50 {row['p50_ms']:7.1f} ms, p99 {row['p99_ms']:7.1f} ms, {row['failed']} failed, "
                          f"{row['server_cpu_ms']} server CPU ms a request, {row['same_as_predict']}/{row['requests']}"
                          " = predict")
        finally:
            for server in servers:
                server.terminate()
                server.wait(timeout=30)

    print(f"\n{path}, {args.requests} requests a level, {args.threads} thread(s) a server, {os.cpu_count()} CPUs")
    print(f"{'server':34}{'catalogs':>12}{'clients':>8}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'failed':>7}"
          f"{'CPU ms':>8}{'= predict':>10}")
    for row in levels:
        print(f"{row['server']:34}{row['catalogs']:>12}{row['clients']:>8}{row['requests_per_s']:>8.1f}"
              f"{row['p50_ms']:>9.1f}{row['p99_ms']:>9.1f}{row['failed']:>7}{row['server_cpu_ms']:>8.1f}"
              f"{row['same_as_predict']:>10}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "spirit": str(path), "sha256": file_sha256(path), "distillery_runtime": runtime,
        "gguf_bottle": args.quantize or "f32", "requests_per_level": args.requests, "threads_per_server": args.threads,
        "cpus": os.cpu_count(), "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()], "levels": levels}, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
