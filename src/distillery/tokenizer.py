"""The student's tokenizer: a byte-level BPE trained on the hearts with HF `tokenizers`.

Text is pre-split into identifier runs (letters, digits, underscores), runs of punctuation,
and single whitespace characters; BPE merges only inside a piece. Two consequences matter:
- a word has the same tokens in the utterance ("to Sarah") and in the call JSON ("Sarah"),
  so the student learns to copy a value rather than to translate it, and copying works for
  values it never saw in training;
- a tool or argument name (`get_stock_price`) becomes one token, so choosing a tool is one
  decision among the offered names, and the prompt's signatures stay short.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

# A tiny student's prompt sections, whatever the task: the task's context (offered tools, a
# label set), the request, then the answer, which the end token closes.
TOOLS, USER, CALL, END, PAD = "<|tools|>", "<|user|>", "<|call|>", "<|end|>", "<|pad|>"
SPECIAL_TOKENS = [PAD, TOOLS, USER, CALL, END]


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    """A byte-level BPE fitted to `texts`, with the prompt-section special tokens."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"[\p{L}\p{N}_]+|\s|[^\s\p{L}\p{N}_]+"), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def whitespace_ids(tokenizer: Tokenizer) -> frozenset[int]:
    """Ids of the tokens that are only whitespace (each whitespace character is its own piece)."""
    return frozenset(i for token, i in tokenizer.get_vocab().items()
                     if tokenizer.decode([i]).isspace() and token not in SPECIAL_TOKENS)


def encode_prompt(tokenizer: Tokenizer, text: str, skip: frozenset[int] | None = None) -> list[int]:
    """The prompt's ids without whitespace tokens.

    A small student copies a value by attending to the token after its cue ("to" -> "Sarah");
    with a space token between every two words it has to look two tokens back, and copying is
    not learned at all in a CPU-sized training budget (measured: benchmarks/copying.py). The
    prompt is only read, never decoded, so it loses nothing the student needs; completions
    keep their spaces, so what the student writes is exact.
    """
    skip = whitespace_ids(tokenizer) if skip is None else skip
    return [i for i in tokenizer.encode(text).ids if i not in skip]


def load_tokenizer(json_text: str) -> Tokenizer:
    return Tokenizer.from_str(json_text)


def pad_id(tokenizer: Tokenizer) -> int:
    return tokenizer.token_to_id(PAD)
