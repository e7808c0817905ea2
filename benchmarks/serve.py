"""What `distillery serve` sustains: requests/s and p50/p95 latency at 1, 4 and 8 concurrent
clients; what the prefix KV cache saves; whether a second decoder per Spirit would add throughput.

    python benchmarks/serve.py runs/needle-v1 [--requests 200] [--json benchmarks/results/serve.json]

The server runs in its own process (`distillery serve --spirit`), as in production; the
clients are threads of this one, each sending held-out requests (the run's heads, with their
own offered tools) over HTTP. The prefix cache is measured in-process, without HTTP: the same
requests decoded with a fixed catalog, once reading the whole prompt each time (cold) and once
starting from the catalog's cached KV (warm). The decoder comparison is in-process too: every
request answered by one decoder (what the server does), then by two side by side in two threads.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import torch
from rich.console import Console
from rich.table import Table

from distillery.jsonl import read_jsonl
from distillery.serve import LoadedSpirit
from distillery.spirit import file_sha256, load_spirit, read_metadata
from distillery.tasks.tool_calling.prompt import render_prompt
from distillery.tasks.base import percentile
from distillery.tokenizer import encode_prompt, whitespace_ids


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(spirit: Path, port: int, threads: int) -> subprocess.Popen:
    server = subprocess.Popen([sys.executable, "-m", "distillery.cli", "serve", "--spirit", str(spirit),
                               "--port", str(port), "--threads", str(threads)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited: {server.stderr.read()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit("the server did not start within 300 s")


def load(url: str, model: str, bodies: list[dict], clients: int) -> dict:
    """Send every body once, from `clients` threads; latency per request, requests/s overall."""
    latencies, failures, lock, queue = [], [], threading.Lock(), iter(bodies)

    def client():
        with httpx.Client(base_url=url, timeout=120) as http:
            while True:
                with lock:
                    body = next(queue, None)
                if body is None:
                    return
                start = time.perf_counter()
                reply = http.post("/v1/chat/completions", json={**body, "model": model})
                elapsed = (time.perf_counter() - start) * 1000
                with lock:
                    if reply.status_code == 200:
                        latencies.append(elapsed)
                    else:
                        failures.append(f"{reply.status_code} {reply.text[:200]}")

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if failures:
        print(f"{len(failures)} of {len(bodies)} requests failed, e.g. {failures[0]}")
    if not latencies:
        raise SystemExit("every request failed")
    return {"clients": clients, "requests": len(bodies), "failed": len(failures),
            "requests_per_s": round(len(latencies) / wall, 2), "p50_ms": round(percentile(latencies, 0.5), 1),
            "p95_ms": round(percentile(latencies, 0.95), 1)}


class Turn:
    """One request as serve's chat turn decodes it (Task.chat_turn): these tools, no tool_choice."""

    reply = None

    def __init__(self, utterance: str, tools: list):
        self.utterance, self.tools = utterance, tools

    def run(self, caller):
        return caller.predict(self.utterance, self.tools)


def largest_catalog(spirit, heads: list[dict]) -> list:
    """The Spirit's tools, in order, as many as fit its context with every head and room to answer."""
    skip, longest = whitespace_ids(spirit.tokenizer), max((h["utterance"] for h in heads), key=len)
    limit = spirit.metadata["model_config"]["max_position_embeddings"] - 64
    tools = []
    for tool in spirit.tools:
        if len(encode_prompt(spirit.tokenizer, render_prompt(longest, [*tools, tool]), skip)) > limit:
            break
        tools.append(tool)
    return tools


def prefix_cache(spirit_path: Path, heads: list[dict], threads: int) -> list[dict]:
    """p50 per request with one fixed catalog, cold (whole prompt read) vs warm (catalog KV reused):
    the prompt read alone, and the whole answer.

    Cold and warm answer each request in turn, alternating which goes first, so a change in the
    machine's load during the run weighs on both alike.
    """
    torch.set_num_threads(threads)
    spirit = load_spirit(spirit_path)
    by_name, skip = {t.name: t for t in spirit.tools}, whitespace_ids(spirit.tokenizer)
    results = []
    for fixed in ([by_name[n] for n in heads[0]["tools"]], largest_catalog(spirit, heads)):
        loaded = {"cold": LoadedSpirit(spirit, "", prefix_cache=0), "warm": LoadedSpirit(spirit, "")}
        times, reads = {"cold": [], "warm": []}, {"cold": [], "warm": []}
        for i, head in enumerate(heads):
            for label in (("cold", "warm") if i % 2 else ("warm", "cold")):
                start = time.perf_counter()
                loaded[label].answer(Turn(head["utterance"], fixed), deadline=time.monotonic() + 60)
                times[label].append((time.perf_counter() - start) * 1000)
            # The prompt read alone (the time to the first token), which is what the cache shortens.
            ids = encode_prompt(spirit.tokenizer, render_prompt(head["utterance"], fixed), skip)
            with torch.inference_mode():
                for label in (("cold", "warm") if i % 2 else ("warm", "cold")):
                    start = time.perf_counter()
                    loaded[label].runner.start(ids)
                    reads[label].append((time.perf_counter() - start) * 1000)
        prompt = encode_prompt(spirit.tokenizer, render_prompt("", fixed), skip)
        row = {"tools": len(fixed), "catalog_tokens": len(prompt) - 1}
        for label in ("cold", "warm"):
            row[f"{label}_prompt_p50_ms"] = round(percentile(reads[label], 0.5), 2)
            row[f"{label}_answer_p50_ms"] = round(percentile(times[label], 0.5), 2)
            row[f"{label}_answer_mean_ms"] = round(statistics.mean(times[label]), 2)
        row["prompt_speedup"] = round(row["cold_prompt_p50_ms"] / row["warm_prompt_p50_ms"], 2)
        row["answer_speedup"] = round(row["cold_answer_p50_ms"] / row["warm_answer_p50_ms"], 2)
        results.append(row)
    return results


def decoders(spirit_path: Path, heads: list[dict], threads: int) -> dict:
    """Requests/s in-process with one decoder (what the server does) vs two decoders side by side
    (two runners over the same weights, in two threads): does a second sequence add throughput?"""
    torch.set_num_threads(threads)
    spirit = load_spirit(spirit_path)
    by_name = {t.name: t for t in spirit.tools}
    work = [(h["utterance"], [by_name[n] for n in h["tools"]]) for h in heads]
    loaded = [LoadedSpirit(spirit, "") for _ in range(2)]

    def answer_all(one: LoadedSpirit, share: list) -> None:
        for utterance, tools in share:
            one.answer(Turn(utterance, tools), deadline=time.monotonic() + 60)

    for one in loaded:  # warm: every catalog read once, as in a running server
        answer_all(one, work)
    best = {1: 0.0, 2: 0.0}
    for count in (1, 2, 1, 2):  # best of two rounds each, taken in turn
        runs = [threading.Thread(target=answer_all, args=(one, work[i::count])) for i, one in enumerate(loaded[:count])]
        start = time.perf_counter()
        for t in runs:
            t.start()
        for t in runs:
            t.join()
        best[count] = max(best[count], len(work) / (time.perf_counter() - start))
    return {f"{count}_decoder_requests_per_s": round(rate, 2) for count, rate in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run directory, e.g. runs/needle-v1")
    parser.add_argument("--requests", type=int, default=200, help="requests per concurrency level")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the server")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/serve.json"))
    args = parser.parse_args()
    spirit = next(args.run.glob("*.spirit"))
    heads = read_jsonl(args.run / "cuts" / "heads.jsonl")
    tools = {t["function"]["name"]: t for t in read_metadata(spirit)["tools"]}  # OpenAI format
    bodies = [{"messages": [{"role": "user", "content": h["utterance"]}], "tools": [tools[n] for n in h["tools"]]}
              for h in heads]
    bodies = (bodies * (args.requests // len(bodies) + 1))[:args.requests]
    load_before = os.getloadavg()

    port = free_port()
    server = start_server(spirit, port, args.threads)
    try:
        url = f"http://127.0.0.1:{port}"
        model = httpx.get(url + "/v1/models").json()["data"][0]["id"]
        load(url, model, bodies[:10], 1)  # warm-up: the Spirit loads on its first request
        levels = [load(url, model, bodies, clients) for clients in (1, 4, 8)]
    finally:
        server.terminate()
        server.wait(timeout=30)
    cache = prefix_cache(spirit, heads[:50], args.threads)
    parallel = decoders(spirit, heads[:50], args.threads)

    table = Table(title=f"distillery serve, {spirit.name}, {args.requests} requests per level, "
                        f"{args.threads} torch thread(s), {os.cpu_count()} CPUs")
    for column in ("clients", "requests/s", "p50 ms", "p95 ms", "failed"):
        table.add_column(column, justify="right")
    for row in levels:
        table.add_row(str(row["clients"]), f"{row['requests_per_s']:.1f}", f"{row['p50_ms']:.1f}",
                      f"{row['p95_ms']:.1f}", str(row["failed"]))
    Console().print(table)
    for row in cache:
        print(f"prefix cache, one catalog of {row['tools']} tools ({row['catalog_tokens']} tokens), 50 requests "
              f"in-process, p50 cold vs warm: prompt read {row['cold_prompt_p50_ms']:.1f} vs "
              f"{row['warm_prompt_p50_ms']:.1f} ms ({row['prompt_speedup']:.2f}x), whole answer "
              f"{row['cold_answer_p50_ms']:.1f} vs {row['warm_answer_p50_ms']:.1f} ms ({row['answer_speedup']:.2f}x)")
    print(f"in-process requests/s: one decoder {parallel['1_decoder_requests_per_s']:.1f}, two side by side "
          f"{parallel['2_decoder_requests_per_s']:.1f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "spirit": str(spirit), "sha256": file_sha256(spirit), "requests_per_level": args.requests,
        "server_torch_threads": args.threads, "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "levels": levels, "prefix_cache": cache, "decoders": parallel}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
