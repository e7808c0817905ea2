"""The web bottle: a static folder that runs the student in the browser, offline.

    index.html app.js calls.js style.css   the page (bottling/web_page/)
    model.onnx                              the ONNX bottle (f32, or int8 with --quantize int8)
    bottle.json                             what the page needs to build prompts and decode
    vendor/                                 onnxruntime-web and @huggingface/tokenizers, from npm

Serve the folder with any static server (`python -m http.server -d DIR`) and open it: the page
loads nothing from anywhere else. The npm packages are fetched once, at bottle time, by
`npm install` of pinned versions into distillery's cache; a browser never reaches a CDN.

The page decodes like distillery: the same prompt (built from the signatures in bottle.json,
whitespace ids dropped), greedy with the KV cache, and constrained to the same call grammar
(calls.js mirrors the tool-calling task's grammar.py: offered names, argument keys in schema
order, typed values, enums, and the copied values of spans.py), so what it shows is always a
valid call of an offered tool. tests/test_bottle_web.py checks its answers equal `predict`'s.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from distillery.bottling import onnx as onnx_bottle
from distillery.errors import DistilleryError
from distillery.tokenizer import CALL, END, SPECIAL_TOKENS, TOOLS, USER

PAGE = Path(__file__).with_name("web_page")
# Pinned: the page is tested against exactly these.
NPM_PACKAGES = ("onnxruntime-web@1.30.0", "@huggingface/tokenizers@0.2.0")
# File in the bottle's vendor/ <- file in node_modules/. The wasm-only ES module bundle needs
# no other script; its one .wasm is the single-threaded-capable SIMD build.
VENDOR = {
    "ort.wasm.bundle.min.mjs": "onnxruntime-web/dist/ort.wasm.bundle.min.mjs",
    "ort-wasm-simd-threaded.wasm": "onnxruntime-web/dist/ort-wasm-simd-threaded.wasm",
    "tokenizers.min.mjs": "@huggingface/tokenizers/dist/tokenizers.min.mjs",
    "tokenizers.LICENSE": "@huggingface/tokenizers/LICENSE",
}


def cache_dir() -> Path:
    """Where fetched npm packages are kept: $DISTILLERY_CACHE, else $XDG_CACHE_HOME/distillery."""
    if os.environ.get("DISTILLERY_CACHE"):
        return Path(os.environ["DISTILLERY_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "distillery"


def npm_modules() -> Path:
    """node_modules holding the pinned packages, installed with npm on first use."""
    root = cache_dir() / ("web-" + "-".join(p.replace("@", "").replace("/", "_") for p in NPM_PACKAGES))
    modules = root / "node_modules"
    if all((modules / src).is_file() for src in VENDOR.values()):
        return modules
    npm = shutil.which("npm")
    if npm is None:
        raise DistilleryError("the web bottle needs " + " and ".join(NPM_PACKAGES) + " from the npm registry, "
                              "and `npm` is not installed. Fix: install Node.js with npm (e.g. `apt-get install "
                              f"npm`), then bottle again; they are fetched once into {root}.")
    root.mkdir(parents=True, exist_ok=True)
    (root / "package.json").write_text('{"private": true}\n')
    done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--ignore-scripts", "--no-save",
                           "--prefix", str(root), *NPM_PACKAGES], capture_output=True, text=True)
    missing = [src for src in VENDOR.values() if not (modules / src).is_file()]
    if done.returncode != 0 or missing:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise DistilleryError(f"`npm install {' '.join(NPM_PACKAGES)}` failed ({' / '.join(tail) or missing}). "
                              "Fix: check that the npm registry is reachable (npm config get registry), then "
                              "bottle again.")
    return modules


def _byte_decoder() -> dict[str, int]:
    """Byte-level BPE's printable stand-ins -> the bytes they stand for (GPT-2's table)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[chr(b)] = b
        else:
            chars[chr(256 + extra)] = b
            extra += 1
    return chars


def page_data(spirit) -> dict:
    """bottle.json: the tokenizer, the tools as the prompt and the grammar see them, and the decoding settings."""
    tok, meta = spirit.tokenizer, spirit.metadata
    decoder = _byte_decoder()
    # Each token's bytes as a string of chars 0-255 (null for the special tokens): the grammar reads bytes.
    token_bytes = [None] * tok.get_vocab_size()
    for token, i in tok.get_vocab().items():
        if token not in SPECIAL_TOKENS:
            token_bytes[i] = "".join(chr(decoder[c]) for c in token)
    config = spirit.model.config
    known_first: dict[int, list[str]] = {}
    for name in spirit.decoding.get("known_tools") or ():
        known_first.setdefault(tok.encode(name).ids[0], []).append(name)
    tools = spirit.task.page_tools(spirit.decoding)
    return {
        "name": Path(spirit.path).stem,
        "model": "model.onnx",
        "max_len": spirit.format.context,
        "layers": config.num_hidden_layers,
        "kv_heads": config.num_key_value_heads,
        "head_dim": getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads,
        "tokenizer": meta["tokenizer"],
        "special": {"tools": TOOLS, "user": USER, "call": CALL, "end": END},
        "end_id": spirit.format.end_id,
        "skip_ids": sorted(spirit.format.skip_ids),
        "token_bytes": token_bytes,
        "grammar": bool(spirit.decoding.get("grammar", True)),
        "known_first": {str(k): v for k, v in known_first.items()},
        "tools": tools,
        "tasting": meta.get("tasting", {}),
        "lineage": meta.get("lineage", {}),
    }


def refuse(spirit) -> str | None:
    """Why this Spirit cannot be a web page (None: it can)."""
    if not hasattr(spirit.task, "page_tools"):
        return (f"the web page answers tool calls only; this is a {spirit.task.kind} Spirit. Fix: bottle it as onnx "
                "(onnxruntime-web loads the same .onnx), gguf or hf.")
    return None


def export(spirit, out: Path, quantize: str | None = None) -> Path:
    """Write the web folder `out` and return it."""
    if refuse(spirit):
        raise DistilleryError(f"{spirit.path}: {refuse(spirit)}")
    if spirit.format.template != "special":
        # The page's JavaScript builds tiny students' prompts only; a pretrained student's chat
        # frame and its 49k-token grammar are not in it yet.
        raise DistilleryError(f"{spirit.path}: the web bottle runs tiny students only; this one is a "
                              f"{(spirit.metadata.get('student') or {}).get('kind')} student. Fix: bottle it as "
                              "onnx (onnxruntime-web loads the same .onnx), gguf or hf.")
    out = Path(out)
    modules = npm_modules()  # first: a missing npm is reported before the export's work
    out.mkdir(parents=True, exist_ok=True)
    model = onnx_bottle.export(spirit, out / ".onnx-export", quantize)
    os.replace(model, out / "model.onnx")
    shutil.rmtree(out / ".onnx-export")
    data = page_data(spirit)
    data["quantize"] = quantize
    (out / "bottle.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    for page_file in PAGE.iterdir():
        if page_file.is_file():
            shutil.copyfile(page_file, out / page_file.name)
    (out / "vendor").mkdir(exist_ok=True)
    for name, src in VENDOR.items():
        shutil.copyfile(modules / src, out / "vendor" / name)
    (out / "vendor" / "NOTICE.txt").write_text(_notice(modules), encoding="utf-8")
    return out


def _notice(modules: Path) -> str:
    lines = ["vendor/ holds files of these npm packages, unmodified:"]
    for spec in NPM_PACKAGES:
        package = json.loads((modules / spec.rsplit("@", 1)[0] / "package.json").read_text(encoding="utf-8"))
        lines.append(f"- {package['name']} {package['version']} (license: {package.get('license')})")
    return "\n".join(lines) + "\n"
