"""The Tasting of a student trained on conversations: every assistant turn, and whole tasks.

Each held-out conversation is replayed turn by turn: the student answers every assistant
turn with the gold history before it (the calls made so far and their real results). From
those answers:

- per turn, the tool-calling metrics of single requests (a final answer in text counts as
  "no call"), so `exact_call_accuracy` is the per-turn call accuracy and stays the proof;
- `turn_accuracy`: the turn exactly right, a final answer's words included;
- `trajectory_success`: the whole task done: every call right, in order, and a final answer
  in text where the teacher gave one. While every call is right the history the student
  would see running as an agent is the gold one (the same calls get the same results), so
  this is what `distillery run` would do on the request, without executing anything.

Where the run kept tools apart (`agent.held_out_tools`), the same numbers on conversations
that use those tools, never trained on, and on a sample of the hearts, trained on, give the
memorization gap: hearts minus unseen tools. A student that memorized its Mash scores high
on the first and low on the second; one that learned to use tools scores alike.
"""

from __future__ import annotations

from distillery.tasks.base import latency_ms
from distillery.tasks.tool_calling.conversation import source_text, turns
from distillery.tasks.tool_calling.metrics import PROOF_METRIC, breakdown, score, strengths_and_weaknesses
from distillery.tasks.tool_calling.schema import Tool

CONTEXT_POLICY = ("when a turn's history does not fit the student's context, its oldest exchanges are left "
                  "out; the first request and the latest turns are kept")
HEARTS_SAMPLE = 32  # trained-on conversations tasted for the memorization gap


def _same_text(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def turn_verdict(gold: dict, calls: list[dict] | None, content: str | None, tools_by_name: dict[str, Tool]) -> str:
    """One turn: "exact", or what went wrong (a final answer in other words, a missed call...)."""
    from distillery.tasks.tool_calling.metrics import verdict

    if "content" in gold:  # the teacher answered in text here
        if content is not None:
            return "exact" if _same_text(gold["content"], content) else "other words"
        return "spurious call" if calls else "invalid output" if calls is None else "no answer"
    if content is not None and gold["calls"]:
        return "answered instead of calling"
    return verdict(gold["calls"], calls, tools_by_name)


def replay(caller, examples: list[dict], tools_by_name: dict[str, Tool]) -> list[dict]:
    """Every conversation answered turn by turn on its gold history: one record per example."""
    records = []
    for ex in examples:
        offered = [tools_by_name[n] for n in ex["tools"]]
        found = []
        for turn in turns(ex):
            pred = caller.predict_turn(turn.history, offered)
            found.append({"history": turn.history, "gold": turn.answer, "calls": pred.calls, "content": pred.content,
                          "verdict": turn_verdict(turn.answer, pred.calls, pred.content, tools_by_name),
                          "latency_ms": pred.latency_ms, "dropped": pred.dropped, "unfinished": pred.unfinished})
        records.append({"example": ex, "turns": found})
    return records


def _completed(record: dict) -> bool:
    """The task done: every call turn exact, and a text answer wherever the teacher answered in text."""
    return all(t["verdict"] in ("exact", "other words") for t in record["turns"])


def summarize(records: list[dict], tools_by_name: dict[str, Tool]) -> dict:
    """The metrics of a set of replayed conversations (see the module's docstring)."""
    cases, predictions = [], []
    for r in records:
        for t in r["turns"]:
            cases.append({"id": r["example"]["id"], "utterance": source_text(t["history"]),
                          "tools": r["example"]["tools"], "calls": t["gold"].get("calls", [])})
            predictions.append(t["calls"])
    metrics = score(cases, predictions, tools_by_name) if cases else {"verdicts": []}
    metrics.pop("verdicts")
    all_turns = [t for r in records for t in r["turns"]]
    finals = [t for t in all_turns if "content" in t["gold"]]
    call_turns = [t for t in all_turns if t["gold"].get("calls")]
    ratio = lambda part, whole: part / whole if whole else 0.0  # noqa: E731
    metrics.update({
        "turn_accuracy": ratio(sum(t["verdict"] == "exact" for t in all_turns), len(all_turns)),
        "call_turn_accuracy": ratio(sum(t["verdict"] == "exact" for t in call_turns), len(call_turns)),
        "final_answer_rate": ratio(sum(t["content"] is not None for t in finals), len(finals)) if finals else None,
        "final_answer_exact": ratio(sum(t["verdict"] == "exact" for t in finals), len(finals)) if finals else None,
        "trajectory_success": ratio(sum(_completed(r) for r in records), len(records)),
        "n_conversations": len(records),
        "n_turns": len(all_turns),
        "n_eval": len(records),
    })
    return {"metrics": metrics, "cases": cases, "predictions": predictions}


def _answer(turn: dict):
    return turn["content"] if turn["content"] is not None else turn["calls"]


def _gold(turn: dict):
    return turn["gold"]["content"] if "content" in turn["gold"] else turn["gold"]["calls"]


def _verdict(record: dict) -> str:
    if all(t["verdict"] == "exact" for t in record["turns"]):
        return "exact"
    if _completed(record):
        return "completed, other words"
    first = next(i for i, t in enumerate(record["turns"]) if t["verdict"] not in ("exact", "other words"))
    return f"turn {first + 1}: {record['turns'][first]['verdict']}"


def taste(caller, heads: list[dict], catalog: list[Tool], *, samples: int = 10, held_out: int | None = None,
          hearts: list[dict] | None = None, unseen: list[dict] | None = None) -> dict:
    """Tasting-notes fields for conversation heads; with `hearts` and `unseen` (conversations of tools
    kept apart) the memorization gap too."""
    tools_by_name = {t.name: t for t in catalog}
    heads = heads[:held_out] if held_out else heads
    records = replay(caller, heads, tools_by_name)
    found = summarize(records, tools_by_name)
    metrics = found["metrics"]
    parts = breakdown(found["cases"], found["predictions"], tools_by_name)
    strengths, weaknesses = strengths_and_weaknesses(parts)
    rows = [{"id": r["example"]["id"], "input": r["example"]["utterance"], "tools": r["example"]["tools"],
             "gold": [_gold(t) for t in r["turns"]], "predicted": [_answer(t) for t in r["turns"]],
             "verdict": _verdict(r)} for r in records]
    turn_rows = [{"input": t["history"][-1]["content"] if t["history"][-1]["role"] == "user"
                  else f"{t['history'][-1]['name']}: {t['history'][-1]['content']}",
                  "gold": _gold(t), "predicted": _answer(t), "verdict": t["verdict"]}
                 for r in records for t in r["turns"]]
    trimmed = sum(t["dropped"] > 0 for r in records for t in r["turns"])
    notes = {
        "proof": metrics[PROOF_METRIC],
        "proof_metric": PROOF_METRIC,
        "metrics": metrics,
        "n_eval": len(heads),
        "strengths": strengths,
        "weaknesses": weaknesses,
        "samples": _pick(turn_rows, samples),
        "breakdown": parts,
        "latency_ms": latency_ms([t["latency_ms"] for r in records for t in r["turns"]]),
        "unfinished": sum(t["unfinished"] for r in records for t in r["turns"]),
        "predictions": rows,
        "context": {"policy": CONTEXT_POLICY, "turns_trimmed": trimmed, "n_turns": metrics["n_turns"]},
        "tables": [{"title": "Conversations", "header": ["request", "turns", "verdict"],
                    "rows": [[r["input"], str(len(r["gold"])), r["verdict"]] for r in rows[:samples]]},
                   {"title": "Context", "header": ["policy", "turns trimmed"],
                    "rows": [[CONTEXT_POLICY, f"{trimmed} of {metrics['n_turns']}"]]}],
    }
    if unseen is not None:
        gap = memorization(caller, hearts or [], unseen, tools_by_name, metrics)
        notes["memorization"] = gap
        metrics["memorization_gap"] = gap["gap"]
        notes["tables"].append({"title": "Memorization gap", "header": ["set", "conversations", "exact call (per turn)",
                                                                        "trajectory success"],
                                "rows": [[name, str(row["n_conversations"]), f"{row['exact_call_accuracy']:.3f}",
                                          f"{row['trajectory_success']:.3f}"]
                                         for name, row in gap["sets"].items()]
                                + [["gap (hearts - unseen tools)", "", f"{gap['gap']:.3f}", f"{gap['trajectory_gap']:.3f}"]]})
    return notes


def memorization(caller, hearts: list[dict], unseen: list[dict], tools_by_name: dict[str, Tool],
                 heads_metrics: dict) -> dict:
    """The same numbers on trained-on conversations (a sample of the hearts), the held-out ones,
    and those of tools never trained on; the gap is hearts minus unseen tools."""
    keys = ("n_conversations", "exact_call_accuracy", "turn_accuracy", "trajectory_success")
    sets = {"hearts (trained on)": summarize(replay(caller, hearts[:HEARTS_SAMPLE], tools_by_name),
                                             tools_by_name)["metrics"],
            "heads (held-out requests)": heads_metrics,
            "unseen tools (held-out tools)": summarize(replay(caller, unseen, tools_by_name), tools_by_name)["metrics"]}
    sets = {name: {k: m.get(k, 0.0) for k in keys} for name, m in sets.items()}
    trained, apart = sets["hearts (trained on)"], sets["unseen tools (held-out tools)"]
    return {"sets": sets, "gap": trained["exact_call_accuracy"] - apart["exact_call_accuracy"],
            "trajectory_gap": trained["trajectory_success"] - apart["trajectory_success"]}


def _pick(rows: list[dict], n: int) -> list[dict]:
    """Up to half wrong turns, the rest right ones, in order."""
    wrong = [r for r in rows if r["verdict"] != "exact"]
    right = [r for r in rows if r["verdict"] == "exact"]
    take = min(len(wrong), max(n // 2, n - len(right)))
    chosen = {id(r) for r in wrong[:take] + right[:n - take]}
    return [r for r in rows if id(r) in chosen]


def summary(notes: dict) -> str:
    """The console line's conversation part."""
    m = notes["metrics"]
    line = f"  turns {m['turn_accuracy']:.3f}  trajectory {m['trajectory_success']:.3f}"
    if "memorization_gap" in m:
        line += f"  memorization gap {m['memorization_gap']:+.3f}"
    return line
