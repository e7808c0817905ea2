"""An LLM teacher that really calls tools: it writes a request, then solves it step by step.

Conversation `i`: request 0 asks the teacher for a user request that needs one to
`max_steps - 1` of a seeded slice of the catalog; each later request shows it the
conversation so far and asks for the next step, JSON `{"calls": [...], "answer": "..."}`
(calls to make, or the final answer once `calls` is empty). Every call it makes is run (the
recipe's tools module) and its result is shown in the next step.

Nothing is paid or run twice. Every teacher answer goes through the request journal
(`teachers/session.py`: journaled, fsynced, before it is used); every tool result goes into
`journal/tools.jsonl` the same way, keyed by (conversation, step, call, name, arguments). A
run killed at any moment and started again finds each finished step's answer and result on
disk: it asks only what was not answered and runs only what was not recorded. Because a
step's request is made from the answers and results before it, the resumed requests are the
same requests, with the same journal ids.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import random
from pathlib import Path

from distillery.errors import DistilleryError
from distillery.tasks.tool_calling.schema import Tool
from distillery.tasks.tool_calling.toolgen import shown_calls_schema
from distillery.tasks.tool_calling.validate import check_calls
from distillery.teachers.base import Request
from distillery.teachers.cost import BudgetReached
from distillery.teachers.retry import RetryPolicy
from distillery.teachers.session import TeacherSession

log = logging.getLogger("distillery.teachers")
STEPS_PER_CONVERSATION = 32  # journal indexes a conversation may use: i * 32 + step
REQUEST_SYSTEM = ("You write realistic requests that users send to an assistant that has tools. Answer with JSON "
                  'only: {"request": "..."}.')
AGENT_SYSTEM = ("You are an assistant that uses tools to do what the user asks. Each turn, answer with JSON only: "
                '{"calls": [{"name": ..., "arguments": {...}}], "answer": ""} to call tools (you will see their '
                'results), or {"calls": [], "answer": "..."} once you can answer the user.')


class ToolJournal:
    """Tool results by call key, written (fsynced) before they are used; a torn last line is dropped."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.results = path, {}
        if path.exists():
            data = path.read_bytes()
            good = data.rfind(b"\n") + 1  # past the last complete line
            for line in data[:good].splitlines():
                try:
                    record = json.loads(line)
                    self.results[record["key"]] = record["content"]
                except (ValueError, KeyError, TypeError):
                    log.warning("%s: a damaged line is skipped", path)
            if good < len(data):
                with path.open("r+b") as f:
                    f.truncate(good)
        self._file = path.open("a", encoding="utf-8")
        self.executed = 0  # tools run in this process

    def run(self, key: str, call: dict, execute) -> str:
        """The result of `call` under `key`: recorded, or run now and recorded before it is returned."""
        if key in self.results:
            return self.results[key]
        content = execute()
        self.executed += 1
        self._file.write(json.dumps({"key": key, **call, "content": content}, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.results[key] = content
        return content

    def close(self) -> None:
        self._file.close()


def _schema(tools: list[Tool]) -> dict:
    """A step's answer: calls of the offered tools with their own arguments, and the final answer."""
    return {"type": "object", "properties": {"calls": shown_calls_schema(tools), "answer": {"type": "string"}},
            "required": ["calls", "answer"]}


def _tools_text(tools: list[Tool]) -> str:
    return "\n".join(json.dumps(t.to_openai()["function"], ensure_ascii=False) for t in tools)


class LLMAgentTeacher:
    """Conversation candidates from an LLM provider running as an agent over the recipe's tools."""

    name = "llm-agent"

    def __init__(self, provider, catalog: list[Tool], run_tool, run_dir: Path, *, teacher_cfg, mash_cfg,
                 max_steps: int, seed: int, price=None, policy: RetryPolicy | None = None):
        self.provider, self.catalog, self.run_tool = provider, list(catalog), run_tool
        self.run_dir, self.teacher_cfg, self.mash_cfg = run_dir, teacher_cfg, mash_cfg
        self.max_steps, self.seed, self.price, self.policy = max_steps, seed, price, policy or RetryPolicy()
        self.requests = self.replayed = 0
        self.cost_usd = 0.0
        # One event loop, session and tool journal for the whole Mash: the provider's HTTP client
        # keeps its connections, and the journals stay open between conversations.
        self.loop = self.session = self.tools = None

    def candidate(self, index: int) -> dict:
        """Conversation `index`, asked and run to its end (or its rejection)."""
        if self.loop is None:
            self.loop = asyncio.new_event_loop()
            self.session = self.loop.run_until_complete(self._open())
            self.tools = ToolJournal(self.run_dir / "journal" / "tools.jsonl")
        try:
            return self.loop.run_until_complete(self._conversation(index))
        except BudgetReached:
            raise DistilleryError(
                f"teacher.budget_usd (${self.teacher_cfg.budget_usd:g}) reached: ${self.cost_usd:.4f} spent. Fix: "
                "raise `teacher.budget_usd` and run again; every answer paid for and every tool result is kept in "
                "the journal, and neither is paid for or run again.") from None
        finally:
            counts = self.session.counts
            self.requests, self.replayed, self.cost_usd = counts.sent, counts.replayed, self.session.meter.spent

    def close(self) -> None:
        """Let the journals and the HTTP client go (the Mash builder calls it when done)."""
        if self.loop is not None:
            self.tools.close()
            self.loop.run_until_complete(self.session.aclose())
            self.loop.close()
            self.loop = None

    async def _open(self) -> TeacherSession:
        return TeacherSession(self.provider, self.run_dir / "journal", price=self.price,
                              budget=self.teacher_cfg.budget_usd, concurrency=1, policy=self.policy)

    def _request(self, messages: list[dict], schema: dict, index: int) -> Request:
        return Request(messages=tuple(messages), temperature=self.teacher_cfg.temperature,
                       max_tokens=self.teacher_cfg.max_tokens, json_schema=schema,
                       seed=(self.seed * 1_000_003 + index) % 2**31)

    async def _conversation(self, i: int) -> dict:
        rng = random.Random(f"{self.seed}:llm-agent:{i}")
        low, high = self.mash_cfg.tools_per_call.min, self.mash_cfg.tools_per_call.max
        offered = rng.sample(self.catalog, min(rng.randint(low, high), len(self.catalog)))
        steps = rng.randint(1, self.max_steps - 1)
        where = {"provider": self.provider.name, "model": self.provider.model, "conversation": i}
        return await self._solve(i, offered, steps, self.session, self.tools, where)

    async def _ask(self, session, index: int, request: Request) -> dict | str:
        """The JSON object a teacher answered, or why it is not one."""
        record = await session.ask(index, request)
        if record["finish"] != "stop":
            return f"truncated: the answer ended with `{record.get('raw_finish') or record['finish']}`"
        try:
            value = json.loads(record["text"])
        except ValueError:
            return "invalid_json: the answer is not JSON"
        return value if isinstance(value, dict) else "invalid_json: the answer is not a JSON object"

    async def _solve(self, i: int, offered: list[Tool], steps: int, session, tools: ToolJournal, where: dict) -> dict:
        base = i * STEPS_PER_CONVERSATION
        ask = [{"role": "system", "content": REQUEST_SYSTEM},
               {"role": "user", "content": f"The assistant's tools:\n{_tools_text(offered)}\n\nWrite one request that "
                                           f"needs {steps} of these tool calls, one after another (a later call may "
                                           "need what an earlier one returns)."}]
        found = await self._ask(session, base, self._request(ask, {"type": "object", "properties": {
            "request": {"type": "string"}}, "required": ["request"]}, base))
        if isinstance(found, str):
            return {"reject": found, "teacher": where}
        text = found.get("request")
        if not isinstance(text, str) or not text.strip():
            return {"reject": "bad_structure: no request", "teacher": where}
        messages = [{"role": "user", "content": text.strip()}]
        chat = [{"role": "system", "content": f"{AGENT_SYSTEM}\nTools:\n{_tools_text(offered)}"},
                {"role": "user", "content": text.strip()}]
        schema = _schema(offered)
        for k in range(1, self.max_steps + 1):
            step = await self._ask(session, base + k, self._request(chat, schema, base + k))
            if isinstance(step, str):
                return {"reject": f"{step.split(':')[0]}: step {k}:{step.split(':', 1)[1]}", "teacher": where}
            calls, answer = step.get("calls") or [], step.get("answer")
            if not calls:
                if not isinstance(answer, str) or not answer.strip():
                    return {"reject": f"bad_structure: step {k} has neither calls nor an answer", "teacher": where}
                messages.append({"role": "assistant", "content": answer.strip()})
                return {"utterance": messages[0]["content"], "messages": messages,
                        "pool": [t.name for t in offered], "teacher": {**where, "steps": k}}
            reason = check_calls(calls, offered)
            if reason:
                code, _, detail = reason.partition(": ")
                return {"reject": f"{code}: step {k}: {detail}", "teacher": where}
            calls = [{"name": c["name"], "arguments": c.get("arguments", {})} for c in calls]
            messages.append({"role": "assistant", "calls": calls})
            results = []
            for j, call in enumerate(calls):
                key = hashlib.sha256(json.dumps([i, k, j, call], sort_keys=True).encode()).hexdigest()[:32]
                content = tools.run(key, call, lambda call=call: self.run_tool(call["name"], call["arguments"]))
                messages.append({"role": "tool", "name": call["name"], "content": content})
                results.append(f"{call['name']}: {content}")
            chat += [{"role": "assistant", "content": json.dumps({"calls": calls, "answer": ""}, ensure_ascii=False)},
                     {"role": "user", "content": "Tool results:\n" + "\n".join(results)}]
        return {"reject": f"max_steps: no answer within agent.max_steps ({self.max_steps})", "teacher": where}
