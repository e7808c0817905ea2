"""Answer a classification request: greedy decoding restricted to the label set.

Every answer the student may give is written out once as token ids (a label then the end
token; multi-label: labels in the set's order joined by ", ", or none), and the ids form a
trie. Decoding takes, at each step, the student's best token among the trie's children, so
the answer is always one of them: the student cannot invent a label.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import torch

from distillery.decoding import as_runner
from distillery.tasks.classification.data import request_text

MAX_MULTI_LABELS = 10  # 2^10 answers: beyond that the set of answers is too large to write out
JOIN = ", "


@dataclass
class LabelPrediction:
    label: str | list[str]  # a label; multi-label: the list of labels (possibly empty)
    text: str
    latency_ms: float
    unfinished: bool = False
    prompt_tokens: int = 0

    @property
    def answer(self) -> dict:
        return {"label": self.label}


def label_context(labels: dict[str, str]) -> str:
    """The label set as the prompt shows it: one `label: what it means` per line."""
    return "\n".join(f"{name}: {meaning}" for name, meaning in labels.items())


def answer_text(answer: str | list[str], labels: list[str]) -> str:
    """The answer as the student writes it (multi-label: in the set's order)."""
    if isinstance(answer, str):
        return answer
    return JOIN.join(label for label in labels if label in answer)


def answers(labels: list[str], multi_label: bool) -> list[str | list[str]]:
    if not multi_label:
        return list(labels)
    return [list(c) for n in range(len(labels) + 1) for c in itertools.combinations(labels, n)]


class LabelPredictor:
    def __init__(self, model, tokenizer, fmt, labels: dict[str, str], multi_label: bool = False):
        if multi_label and len(labels) > MAX_MULTI_LABELS:
            raise ValueError(f"multi-label decoding writes out every subset of the labels; {len(labels)} labels "
                             f"are too many (at most {MAX_MULTI_LABELS}).")
        self.model = as_runner(model, fmt.context)
        self.tokenizer, self.format, self.labels = tokenizer, fmt, labels
        self.context = label_context(labels)
        self.trie: dict = {}
        for answer in answers(list(labels), multi_label):
            ids = tokenizer.encode(answer_text(answer, list(labels)), add_special_tokens=False).ids + [fmt.end_id]
            node = self.trie
            for token in ids[:-1]:
                node = node.setdefault(token, {})
            node[ids[-1]] = answer  # a leaf: the end token holds the answer it completes

    def predict(self, utterance: str, context: str | None = None) -> LabelPrediction:
        start = time.perf_counter()
        example = {"utterance": utterance, **({"context": context} if context else {})}
        prompt = self.format.text_ids(self.tokenizer, self.format.framed(request_text(example), self.context))
        with torch.no_grad():
            logits = self.model.start(prompt)
            node, written = self.trie, []
            while True:
                allowed = list(node)
                token = allowed[int(torch.argmax(logits[allowed]))] if len(allowed) > 1 else allowed[0]
                child = node[token]
                if not isinstance(child, dict):  # the end token: an answer is complete
                    answer = child
                    break
                written.append(token)
                node = child
                logits = self.model.step(token)
        text = self.tokenizer.decode(written) if written else ""
        return LabelPrediction(label=answer, text=text, latency_ms=(time.perf_counter() - start) * 1000,
                               prompt_tokens=len(prompt))
