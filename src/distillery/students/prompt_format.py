"""PromptFormat: how a request becomes prompt ids for one student, and how its answer is written.

Decoding, the Tasting, bottles and serve read only this, never a model attribute: a student
trained from scratch and a fine-tuned chat model differ here and nowhere else downstream.

- `tiny` students: `<|tools|>signatures<|user|>utterance<|call|>` with their own special
  tokens, whitespace tokens left out of the prompt (tokenizer.py says why), compact JSON.
- pretrained students: the base's own chat template, rendered once into a `frame` with a
  system slot (an instruction and the offered tools) and a user slot; JSON spaced the way
  `json.dumps` writes it, which is what chat models saw; the answer ends with the
  template's end-of-turn token.

The format is plain data (JSON in the Spirit's `prompt_format` metadata), so a bottle, the
web page or another language can rebuild a prompt without distillery's code.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from distillery.tokenizer import CALL, END, PAD, TOOLS, USER

SYSTEM_SLOT, USER_SLOT = "\x00system\x00", "\x00user\x00"
# The instruction a pretrained student reads before the offered tools. Short: every prompt token
# costs training time on a CPU, and the fine-tune, not the instruction, teaches the format.
INSTRUCTION = ("You call functions. Answer with a JSON list of calls "
               '[{"name": ..., "arguments": {...}}], or [] when no function fits the request.')


@dataclass(frozen=True)
class PromptFormat:
    template: str  # "special": tiny's special-token sections; "chat": the base's chat template
    tools: str  # how offered tools are written: "signatures" (compact `name(a,b?:int)`) or "json" (OpenAI function JSON)
    end_id: int  # the token that ends an answer
    pad_id: int
    context: int  # usable context length in tokens (prompt + answer)
    json_style: str = "compact"  # "compact" (no spaces) or "spaced" (json.dumps' ", " and ": ")
    skip_ids: tuple[int, ...] = ()  # token ids left out of a prompt
    frame: str = ""  # chat only: the rendered template with SYSTEM_SLOT and USER_SLOT
    instruction: str = ""  # chat only: the system text before the tools
    end_text: str = END  # the end token's text, written after the calls in a training completion
    boundary_text: str = USER  # the prompt's text up to here depends only on the offered tools
    special_tokens: tuple[str, ...] = field(default=())  # control tokens of the vocabulary (gguf bottles)
    # chat only: (the text that closes a user turn and opens the assistant's, the text after an
    # assistant's answer that opens the next user turn), cut from the template by `chat_turns`
    turns: tuple[str, ...] = field(default=())

    # -- text ------------------------------------------------------------------------------
    def framed(self, request: str, context: str) -> str:
        """The prompt for `request` with the task's `context` text (offered tools, a label set)
        where the template keeps it: after `<|tools|>`, or in the system turn after the instruction."""
        if self.template == "special":
            return f"{TOOLS}{context}{USER}{request.strip()}{CALL}"
        system = f"{self.instruction}\n{context}" if context else self.instruction
        return self.frame.replace(SYSTEM_SLOT, system).replace(USER_SLOT, request.strip())

    def conversation(self, segments: list[str], context: str) -> str:
        """The prompt of a conversation: `segments` alternate what the user side said (a request,
        tool results) and what the assistant answered, and end with the user side. One segment is
        `framed`'s prompt, byte for byte."""
        if len(segments) % 2 == 0:
            raise ValueError("a conversation's prompt ends with the user side (a request or tool results)")
        if self.template == "special":
            open_assistant, open_user = CALL, END + USER
        elif len(self.turns) == 2:
            open_assistant, open_user = self.turns
        else:
            raise ValueError("this student's prompt format has no conversation turns (its chat template "
                             "could not render one)")
        body = segments[0].strip()
        for i, text in enumerate(segments[1:]):
            body += (open_assistant + text) if i % 2 == 0 else (open_user + text.strip())
        return self.framed(body, context)

    @property
    def converses(self) -> bool:
        """Whether this format can write a conversation (history) into a prompt."""
        return self.template == "special" or len(self.turns) == 2

    def dumps(self, value: Any) -> str:
        separators = (",", ":") if self.json_style == "compact" else (", ", ": ")
        return json.dumps(value, ensure_ascii=False, separators=separators)

    # -- ids ---------------------------------------------------------------------------------
    def text_ids(self, tokenizer, prompt: str) -> list[int]:
        """A prompt's ids, without the ids this format leaves out of prompts."""
        ids = tokenizer.encode(prompt, add_special_tokens=False).ids
        skip = frozenset(self.skip_ids)
        return [i for i in ids if i not in skip] if skip else ids

    def boundary_id(self, tokenizer) -> int | None:
        """The token that closes the part of every prompt that only the offered tools decide
        (serve caches the KV of everything up to it)."""
        return tokenizer.token_to_id(self.boundary_text)

    # -- storage -----------------------------------------------------------------------------
    def to_json(self) -> str:
        data = asdict(self)
        if not data["turns"]:
            del data["turns"]  # formats without turns are stored as they always were
        return json.dumps(data, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> PromptFormat:
        data = dict(data)
        for key in ("skip_ids", "special_tokens", "turns"):
            data[key] = tuple(data.get(key, ()))
        return cls(**data)


def tiny_format(tokenizer, context: int) -> PromptFormat:
    """The format of a `tiny` student (and of every Spirit written before formats were stored)."""
    from distillery.tokenizer import whitespace_ids
    from distillery.tokenizer import SPECIAL_TOKENS

    return PromptFormat(template="special", tools="signatures", end_id=tokenizer.token_to_id(END),
                        pad_id=tokenizer.token_to_id(PAD), context=context, json_style="compact",
                        skip_ids=tuple(sorted(whitespace_ids(tokenizer))), end_text=END, boundary_text=USER,
                        special_tokens=tuple(SPECIAL_TOKENS))


def chat_frame(hf_tokenizer) -> tuple[str, str]:
    """(frame, end-of-turn text): the chat template rendered once around two slots.

    The answer ends where the template ends an assistant turn; that text is what follows the
    assistant's content when the template renders one.
    """
    messages = [{"role": "system", "content": SYSTEM_SLOT}, {"role": "user", "content": USER_SLOT}]
    frame = hf_tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    marker = "\x00answer\x00"
    turn = hf_tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": marker}], tokenize=False)
    after = turn.split(marker, 1)[1]
    end_text = next((tok for tok in hf_tokenizer.all_special_tokens if after.startswith(tok)), None)
    if end_text is None:
        end_text = hf_tokenizer.eos_token
    if SYSTEM_SLOT not in frame or USER_SLOT not in frame:
        raise ValueError("the chat template drops the system or the user message")
    return frame, end_text


def chat_turns(hf_tokenizer) -> tuple[str, str] | tuple[()]:
    """(close user + open assistant, close assistant + open user): what the chat template writes
    between the turns of a conversation, cut from one rendering of [system, user, assistant, user].
    Empty when the template cannot render that conversation or writes the turns another way
    (then the student answers single requests only)."""
    marks = ["\x00u1\x00", "\x00a1\x00", "\x00u2\x00"]
    messages = [{"role": "system", "content": SYSTEM_SLOT}, {"role": "user", "content": marks[0]},
                {"role": "assistant", "content": marks[1]}, {"role": "user", "content": marks[2]}]
    try:
        text = hf_tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    except Exception:  # noqa: BLE001 - a template may refuse any conversation it was not written for
        return ()
    frame = hf_tokenizer.apply_chat_template(messages[:2], add_generation_prompt=True, tokenize=False)
    if any(text.count(m) != 1 for m in marks):
        return ()
    head, rest = text.split(marks[0])
    open_assistant, rest = rest.split(marks[1])
    open_user, tail = rest.split(marks[2])
    # The turns must compose: the conversation's text is the one-turn frame with the history in its user slot.
    if frame.replace(marks[0], marks[0] + open_assistant + marks[1] + open_user + marks[2]) != text:
        return ()
    return open_assistant, open_user
