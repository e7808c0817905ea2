// The student in the browser: onnxruntime-web runs the decoder, @huggingface/tokenizers its
// tokenizer; prompt, greedy decoding with the KV cache and the call grammar are distillery's
// (predictor.py, decoding.py), so a request gets the call `distillery predict` gives.
import * as ort from "./vendor/ort.wasm.bundle.min.mjs";
import { Tokenizer } from "./vendor/tokenizers.min.mjs";
import { callsLanguage } from "./calls.js";
import { TokenRules, concat } from "./mask.js";

// The bundle carries its wasm loader; only the .wasm binary is fetched, from the bottle itself.
ort.env.wasm.wasmPaths = { wasm: new URL("./vendor/ort-wasm-simd-threaded.wasm", import.meta.url).href };
// One thread: several need SharedArrayBuffer, which a plain static server does not enable.
ort.env.wasm.numThreads = 1;

const $ = (id) => document.getElementById(id);
const CALL_PREFIX = new TextEncoder().encode('[{"name":"');

async function load() {
  const bottle = await (await fetch("bottle.json")).json();
  const tokenizer = new Tokenizer(JSON.parse(bottle.tokenizer), {});
  const session = await ort.InferenceSession.create(bottle.model, { executionProviders: ["wasm"] });
  const tokenBytes = bottle.token_bytes.map((s) => s === null ? null : Uint8Array.from(s, (c) => c.charCodeAt(0)));
  const rules = new TokenRules(tokenBytes, (text) => tokenizer.encode(text, { add_special_tokens: false }).ids, bottle.end_id);
  return { bottle, tokenizer, session, tokenBytes, rules, skip: new Set(bottle.skip_ids) };
}

// One sequence through the decoder; the KV cache goes back in as the next step's past.
class Runner {
  constructor(session, bottle) {
    this.session = session;
    this.bottle = bottle;
  }

  async start(ids) {
    const { layers, kv_heads, head_dim } = this.bottle;
    this.past = {};
    for (let i = 0; i < layers; i++) {
      for (const kind of ["key", "value"]) {
        this.past[`past_key_values.${i}.${kind}`] = new ort.Tensor("float32", new Float32Array(0), [1, kv_heads, 0, head_dim]);
      }
    }
    this.length = 0;
    return this.forward(ids);
  }

  step(token) {
    return this.forward([token]);
  }

  async forward(ids) {
    const feeds = {
      input_ids: new ort.Tensor("int64", BigInt64Array.from(ids, BigInt), [1, ids.length]),
      position_ids: new ort.Tensor("int64", BigInt64Array.from(ids, (_, i) => BigInt(this.length + i)), [1, ids.length]),
      ...this.past,
    };
    const out = await this.session.run(feeds);
    for (const name of Object.keys(this.past)) this.past[name] = out[name.replace("past_key_values", "present")];
    this.length += ids.length;
    return out.logits.data;
  }
}

function argmaxOf(logits, ids) {
  let best = ids[0];
  for (const i of ids) if (logits[i] > logits[best]) best = i;
  return best;
}

// prompt.py render_prompt + tokenizer.py encode_prompt: whitespace tokens are dropped.
function promptIds(model, utterance, tools) {
  const { tools: TOOLS, user: USER, call: CALL } = model.bottle.special;
  const prompt = TOOLS + tools.map((t) => t.signature).join("\n") + USER + utterance.trim() + CALL;
  return model.tokenizer.encode(prompt, { add_special_tokens: false }).ids.filter((i) => !model.skip.has(i));
}

// In the order given: the prompt lists the tools in the order they are offered.
function offeredTools(bottle, names) {
  const byName = new Map(bottle.tools.map((t) => [t.name, t]));
  return names.map((name) => byName.get(name)).filter(Boolean);
}

// predictor.py ToolCaller.predict: prompt, constrained greedy decoding, parse.
export async function predict(model, utterance, toolNames) {
  const t0 = performance.now();
  const { bottle, session, tokenBytes, rules } = model;
  const tools = offeredTools(bottle, toolNames);
  const full = promptIds(model, utterance, tools);
  const ids = full.slice(-(bottle.max_len - 1));
  const cut = ids.length < full.length ? `the prompt is ${full.length} tokens and the student reads ${bottle.max_len}: offer fewer tools. ` : "";
  const maxNew = bottle.max_len - ids.length;
  const language = bottle.grammar ? callsLanguage(tools, utterance) : null;
  const offered = new Set(tools.map((t) => t.name));
  const knownFirst = Object.keys(bottle.known_first).map(Number);
  const runner = new Runner(session, bottle);
  let logits = await runner.start(ids);
  let text = new Uint8Array(0);
  const generated = [];
  let finished = false, abstained = false, checkedAbstain = false;
  while (generated.length < maxNew) {
    // predictor.py _AbstainUnoffered: at the first tool name, a known but unoffered favourite means no call.
    if (language && knownFirst.length && !checkedAbstain && generated.length <= 8 &&
        text.length === CALL_PREFIX.length && text.every((b, i) => b === CALL_PREFIX[i])) {
      checkedAbstain = true;
      const best = argmaxOf(logits, knownFirst);
      if (!bottle.known_first[best].some((name) => offered.has(name))) { abstained = true; break; }
    }
    const all = Array.from(logits.keys());
    let token = -1;
    if (!language) {
      token = argmaxOf(logits, all);
    } else {
      const next = rules.next(language, text, generated.length ? generated[generated.length - 1] : null);
      if (next.only) {
        token = next.only.length ? argmaxOf(logits, next.only) : -1;
      } else {
        // Most steps the favourite is allowed; only when it is not, try the rest best-first.
        const favourite = argmaxOf(logits, all);
        token = next.allows(favourite) ? favourite : all.sort((a, b) => logits[b] - logits[a]).find(next.allows) ?? -1;
      }
    }
    if (token === -1 || token === bottle.end_id) { finished = token === bottle.end_id; break; }
    generated.push(token);
    if (tokenBytes[token] !== null) text = concat(text, tokenBytes[token]);
    if (generated.length === maxNew) break;
    logits = await runner.step(token);
  }
  const answer = { calls: [], text: "[]", ms: performance.now() - t0, ids: generated, tokens: generated.length };
  if (abstained) return { ...answer, note: cut + "no call: the request is for a tool that is not offered" };
  answer.text = new TextDecoder().decode(text);
  try { answer.calls = JSON.parse(answer.text); } catch { answer.calls = null; }
  if (language && answer.calls === null) return { ...answer, calls: [], note: cut + "no call: out of tokens before the call was complete" };
  const note = answer.calls === null ? "not a list of calls" : language ? "decoded under the offered tools' schemas" : finished ? "" : "out of tokens";
  return { ...answer, note: cut + note };
}

// Offer the first tools by default, as many as leave half the context for the request and the call.
function showTools(model) {
  const { bottle } = model;
  const list = $("tools");
  let fits = 0;
  while (fits < bottle.tools.length && promptIds(model, "", bottle.tools.slice(0, fits + 1)).length <= bottle.max_len / 2) fits++;
  for (const [i, tool] of bottle.tools.entries()) {
    const label = document.createElement("label");
    label.title = tool.description;
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = i < Math.max(fits, 1);
    box.value = tool.name;
    const sig = document.createElement("code");
    sig.textContent = tool.signature;
    label.append(box, sig);
    list.append(label);
  }
}

async function main() {
  $("status").textContent = "loading the model…";
  const model = await load();
  const { bottle } = model;
  $("name").textContent = bottle.name;
  const metrics = (bottle.tasting && bottle.tasting.metrics) || {};
  $("facts").textContent = [bottle.quantize ? `ONNX ${bottle.quantize}` : "ONNX f32",
    metrics.exact_call_accuracy !== undefined ? `exact calls on its heads: ${(100 * metrics.exact_call_accuracy).toFixed(0)}%` : ""]
    .filter(Boolean).join(" · ");
  showTools(model);
  const checked = () => [...document.querySelectorAll("#tools input:checked")].map((b) => b.value);
  const budget = () => {
    const n = promptIds(model, $("request").value, offeredTools(bottle, checked())).length;
    $("budget").textContent = `prompt: ${n} of ${bottle.max_len} tokens`;
  };
  $("tools").addEventListener("change", budget);
  $("request").addEventListener("input", budget);
  budget();
  window.distillery = { predict: (utterance, names) => predict(model, utterance, names), bottle };
  $("go").disabled = false;
  $("status").textContent = "ready";
  $("ask").addEventListener("submit", async (event) => {
    event.preventDefault();
    const names = checked();
    $("go").disabled = true;
    $("status").textContent = "thinking…";
    const answer = await predict(model, $("request").value, names);
    $("calls").textContent = answer.calls === null ? answer.text : JSON.stringify(answer.calls, null, 2);
    $("latency").textContent = `${answer.ms.toFixed(0)} ms, ${answer.tokens} tokens`;
    $("note").textContent = answer.note;
    $("status").textContent = "done";
    $("go").disabled = false;
  });
}

main().catch((error) => {
  $("status").textContent = `error: ${error.message}`;
  console.error(error);
});
