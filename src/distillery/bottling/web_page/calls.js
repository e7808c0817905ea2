// The language of a completion, on bytes: a compact JSON list of calls of the offered tools,
// arguments in schema order, values of the declared type, enum members, and for copied
// parameters only spans or numbers of the request. It mirrors the JSON schema that distillery
// compiles with llguidance (the tool-calling task's grammar.py and spans.py).
//
// A matcher is (buf, pos) => {ends, next}: `ends` are the positions where the construct can
// finish; `next` is the set of bytes that may follow when the input runs out inside it.

const encoder = new TextEncoder();

function byteSet() {
  return new Uint32Array(8);
}

function addByte(r, b) {
  (r.next ??= byteSet())[b >> 5] |= 1 << (b & 31);
}

function addRange(r, lo, hi) {
  for (let b = lo; b <= hi; b++) addByte(r, b);
}

function merge(r, other) {
  for (const e of other.ends) if (!r.ends.includes(e)) r.ends.push(e);
  if (other.next) {
    r.next ??= byteSet();
    for (let i = 0; i < 8; i++) r.next[i] |= other.next[i];
  }
}

export function bytesIn(set) {
  const out = [];
  if (set) for (let b = 0; b < 256; b++) if (set[b >> 5] & (1 << (b & 31))) out.push(b);
  return out;
}

const result = () => ({ ends: [], next: null });
const EMPTY = (buf, pos) => ({ ends: [pos], next: null });

function literals(texts) {
  const options = texts.map((t) => encoder.encode(t));
  return (buf, pos) => {
    const r = result();
    for (const lit of options) {
      const n = Math.min(lit.length, buf.length - pos);
      let i = 0;
      while (i < n && buf[pos + i] === lit[i]) i++;
      if (i < n) continue;
      if (n < lit.length) addByte(r, lit[n]);
      else if (!r.ends.includes(pos + lit.length)) r.ends.push(pos + lit.length);
    }
    return r;
  };
}

function oneOf(matchers) {
  return (buf, pos) => {
    const r = result();
    for (const m of matchers) merge(r, m(buf, pos));
    return r;
  };
}

function seq(...matchers) {
  return (buf, pos) => {
    const r = result();
    let positions = [pos];
    for (const m of matchers) {
      const step = result();
      for (const p of positions) merge(step, m(buf, p));
      if (step.next) merge(r, { ends: [], next: step.next });
      positions = step.ends;
      if (!positions.length) break;
    }
    r.ends = positions;
    return r;
  };
}

// `open` (item (`,` item)*)? `close`; every item takes at least one byte, so the loop ends.
function listOf(item, open = "[", close = "]") {
  const opener = literals([open]), closer = literals([close]), next = seq(literals([","]), item);
  return (buf, pos) => {
    const start = opener(buf, pos);
    if (!start.ends.length) return start;
    const r = result();
    let frontier = start.ends, first = true;
    while (frontier.length) {
      const after = result();
      for (const p of frontier) {
        merge(r, closer(buf, p));
        merge(after, (first ? item : next)(buf, p));
      }
      first = false;
      if (after.next) merge(r, { ends: [], next: after.next });
      frontier = after.ends;
    }
    return r;
  };
}

const isHex = (c) => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);

// Well-formed UTF-8: the allowed range of each byte after a lead byte.
function utf8Tail(lead) {
  if (lead >= 0xc2 && lead <= 0xdf) return [[0x80, 0xbf]];
  if (lead === 0xe0) return [[0xa0, 0xbf], [0x80, 0xbf]];
  if (lead === 0xed) return [[0x80, 0x9f], [0x80, 0xbf]];
  if (lead >= 0xe1 && lead <= 0xef) return [[0x80, 0xbf], [0x80, 0xbf]];
  if (lead === 0xf0) return [[0x90, 0xbf], [0x80, 0xbf], [0x80, 0xbf]];
  if (lead >= 0xf1 && lead <= 0xf3) return [[0x80, 0xbf], [0x80, 0xbf], [0x80, 0xbf]];
  if (lead === 0xf4) return [[0x80, 0x8f], [0x80, 0xbf], [0x80, 0xbf]];
  return null;
}

// A JSON string as llguidance writes its lexeme: escapes, or any character but `"`, `\`,
// controls and DEL.
function jsonString(buf, pos) {
  const r = result();
  if (pos >= buf.length) { addByte(r, 0x22); return r; }
  if (buf[pos] !== 0x22) return r;
  let i = pos + 1;
  while (i < buf.length) {
    const c = buf[i];
    if (c === 0x22) { r.ends.push(i + 1); return r; }
    if (c < 0x20 || c === 0x7f) return r;
    if (c === 0x5c) {
      if (i + 1 >= buf.length) { for (const e of '"\\/bfnrtu') addByte(r, e.charCodeAt(0)); return r; }
      const e = buf[i + 1];
      if ('"\\/bfnrt'.includes(String.fromCharCode(e))) { i += 2; continue; }
      if (e !== 0x75) return r;
      for (let k = 2; k < 6; k++) {
        if (i + k >= buf.length) { addRange(r, 0x30, 0x39); addRange(r, 0x41, 0x46); addRange(r, 0x61, 0x66); return r; }
        if (!isHex(buf[i + k])) return r;
      }
      i += 6;
      continue;
    }
    if (c < 0x80) { i++; continue; }
    const tail = utf8Tail(c);
    if (!tail) return r;
    for (let k = 0; k < tail.length; k++) {
      if (i + 1 + k >= buf.length) { addRange(r, ...tail[k]); return r; }
      const b = buf[i + 1 + k];
      if (b < tail[k][0] || b > tail[k][1]) return r;
    }
    i += 1 + tail.length;
  }
  addRange(r, 0x20, 0x7e);
  addRange(r, 0xc2, 0xf4);
  return r;
}

// JSON numbers as a small automaton; `integer` allows no fraction or exponent.
const DIGITS = [0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39];
function jsonNumber(integer) {
  const moves = {
    start: [[0x2d, "sign"], [0x30, "zero"], ...DIGITS.slice(1).map((d) => [d, "int"])],
    sign: [[0x30, "zero"], ...DIGITS.slice(1).map((d) => [d, "int"])],
    zero: integer ? [] : [[0x2e, "dot"], [0x65, "exp"], [0x45, "exp"]],
    int: [...DIGITS.map((d) => [d, "int"]), ...(integer ? [] : [[0x2e, "dot"], [0x65, "exp"], [0x45, "exp"]])],
    dot: DIGITS.map((d) => [d, "frac"]),
    frac: [...DIGITS.map((d) => [d, "frac"]), [0x65, "exp"], [0x45, "exp"]],
    exp: [[0x2b, "expsign"], [0x2d, "expsign"], ...DIGITS.map((d) => [d, "expint"])],
    expsign: DIGITS.map((d) => [d, "expint"]),
    expint: DIGITS.map((d) => [d, "expint"]),
  };
  const complete = new Set(["zero", "int", "frac", "expint"]);
  return (buf, pos) => {
    const r = result();
    let state = "start", i = pos;
    for (;;) {
      if (complete.has(state)) r.ends.push(i);
      if (i >= buf.length) {
        for (const [b] of moves[state]) addByte(r, b);
        return r;
      }
      const move = moves[state].find(([b]) => b === buf[i]);
      if (!move) return r;
      state = move[1];
      i++;
    }
  };
}

const jsonBool = literals(["true", "false"]);
const jsonNull = literals(["null"]);

// Any JSON value (a parameter of type "any", or an object's members).
function jsonValue(buf, pos) {
  return anyValue(buf, pos);
}
const jsonObject = listOf(seq(jsonString, literals([":"]), jsonValue), "{", "}");
const anyValue = oneOf([jsonString, jsonNumber(false), jsonBool, jsonNull, listOf(jsonValue), jsonObject]);

function typed(type) {
  switch (type) {
    case "string": return jsonString;
    case "integer": return jsonNumber(true);
    case "number": return jsonNumber(false);
    case "boolean": return jsonBool;
    case "object": return jsonObject;
    case "array": return listOf(jsonValue);
    case "null": return jsonNull;
    default: return jsonValue;
  }
}

// grammar.py `_value_schema`: enums first (a copied one: only the members the request names),
// then copied values, then the declared type. null: the parameter cannot be written.
function valueMatcher(param, copy) {
  if (param.enum) {
    const named = copy ? namedMembers(param.enum, copy.text) : null;
    if (named === null || (!named.length && param.required)) return literals(param.enum);
    return named.length ? literals(named) : null;
  }
  if (copy) {
    const spanItems = param.items === null || param.items === "any" || param.items === "string";
    if (param.type === "string" && copy.span.length) return literals(copy.span);
    if (param.type === "array" && spanItems && copy.span.length) return listOf(literals(copy.span));
    if (param.type === "integer" && copy.integer.length) return literals(copy.integer);
    if (param.type === "number" && copy.number.length) return literals(copy.number);
  }
  if (param.type === "array") return listOf(param.items && param.items !== "any" ? typed(param.items) : jsonValue);
  return typed(param.type);
}

function argumentsMatcher(tool, copy) {
  const memo = new Map();
  const from = (i, first) => {
    const key = `${i}:${first}`;
    if (memo.has(key)) return memo.get(key);
    let m = EMPTY;
    if (i < tool.params.length) {
      const p = tool.params[i];
      const value = valueMatcher(p, p.copied ? copy : null);
      const skip = (buf, pos) => from(i + 1, first)(buf, pos);
      const write = value && seq(literals([(first ? "" : ",") + JSON.stringify(p.name) + ":"]),
        value, (buf, pos) => from(i + 1, false)(buf, pos));
      m = !write ? skip : p.required ? write : oneOf([write, skip]);
    }
    memo.set(key, m);
    return m;
  };
  return seq(literals(["{"]), from(0, true), literals(["}"]));
}

// spans.py: word-aligned substrings of the request, and the numbers written in it.
const W = "[\\p{L}\\p{N}_]";
const SPAN_START = new RegExp(`(?<!${W})${W}|(?:(?<=\\s)|^)[^\\p{L}\\p{N}_\\s]`, "gu");
const SPAN_END = new RegExp(`${W}(?!${W})|[^\\p{L}\\p{N}_\\s](?!${W})`, "gu");
const NUMBER = /(?<![\p{L}\p{N}_.])-?[0-9]+(?:\.[0-9]+)?(?![0-9])/gu;
const THOUSANDS = /(?<![\p{L}\p{N}_.,])-?[0-9]{1,3}(?:,[0-9]{3})+(?![0-9]|[,.][0-9])/gu;
// spans.py NUMBER_WORDS and SCALES: "two tickets", "the top ten", "50 million".
const NUMBER_WORDS = Object.fromEntries([
  ..."zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty"
    .split(" ").map((w, i) => [w, i]),
  ["thirty", 30], ["forty", 40], ["fifty", 50], ["sixty", 60], ["seventy", 70], ["eighty", 80], ["ninety", 90], ["hundred", 100],
]);
const SCALES = { thousand: 1e3, million: 1e6, billion: 1e9 };
const WORD_NUMBER = new RegExp(`(?<![\\p{L}\\p{N}_-])(?:${Object.keys(NUMBER_WORDS).join("|")})(?![\\p{L}\\p{N}_-])`, "giu");
const SCALED = new RegExp(`(?<![\\p{L}\\p{N}_.])([0-9]+(?:\\.[0-9]+)?) (${Object.keys(SCALES).join("|")})(?![\\p{L}\\p{N}_])`, "giu");
const MAX_SPAN_CHARS = 200;

export function spans(text) {
  const starts = [...text.matchAll(SPAN_START)].map((m) => m.index);
  const ends = [...text.matchAll(SPAN_END)].map((m) => m.index + m[0].length);
  const found = new Set();
  for (const s of starts) {
    for (const e of ends) if (s < e && [...text.slice(s, e)].length <= MAX_SPAN_CHARS) found.add(text.slice(s, e));
  }
  return [...found];
}

// spans.py `is_named`: an enum member written in the request, in any case ("warm_white" as
// "warm white" too). Members come JSON-encoded; null when they are not all strings.
function namedMembers(encoded, text) {
  const members = encoded.map((e) => JSON.parse(e));
  if (members.some((m) => typeof m !== "string" || !m.trim())) return null;
  return encoded.filter((_, i) => {
    const words = members[i].trim().split(/[\s_-]+/u).map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
    return new RegExp(`(?<!${W})${words.join("[\\s_-]+")}(?!${W})`, "iu").test(text);
  });
}

// Each number as Python's json.dumps writes it (a float keeps its ".0"); equal values once, in
// order of appearance. As in spans.py, "12,000" is also 12000, "5%" also 0.05, "ten" 10 and
// "1.5 million" also 1500000.
export function numbers(text) {
  const found = [];
  for (const m of text.matchAll(NUMBER)) {
    const isFloat = m[0].includes(".");
    found.push({ at: m.index, value: Number(m[0]), isFloat });
    if (text[m.index + m[0].length] === "%") {
      found.push({ at: m.index, value: Number((Number(m[0]) / 100).toPrecision(10)), isFloat: true });
    }
  }
  for (const m of text.matchAll(THOUSANDS)) found.push({ at: m.index, value: Number(m[0].replaceAll(",", "")), isFloat: false });
  for (const m of text.matchAll(WORD_NUMBER)) found.push({ at: m.index, value: NUMBER_WORDS[m[0].toLowerCase()], isFloat: false });
  for (const m of text.matchAll(SCALED)) {
    found.push({ at: m.index, value: Math.round(Number(m[1]) * SCALES[m[2].toLowerCase()]), isFloat: false });
  }
  found.sort((a, b) => a.at - b.at);  // stable: readings of one number keep their order
  const seen = new Map();
  for (const { value, isFloat } of found) {
    if (seen.has(value)) continue;
    seen.set(value, { isFloat, json: isFloat && Number.isInteger(value) ? value.toFixed(1) : String(value) });
  }
  return [...seen.values()];
}

// The language for one request: `language(bytes)` -> {complete, next} (next: the byte set
// that may follow; a valid prefix is complete or has a next byte).
export function callsLanguage(tools, utterance) {
  const found = numbers(utterance);
  const copy = {
    text: utterance,
    span: spans(utterance).map((s) => JSON.stringify(s)),
    number: found.map((n) => n.json),
    integer: found.filter((n) => !n.isFloat).map((n) => n.json),
  };
  const call = oneOf(tools.map((tool) => seq(
    literals([`{"name":${JSON.stringify(tool.name)},"arguments":`]), argumentsMatcher(tool, copy), literals(["}"]))));
  const top = listOf(call);
  return (buf) => {
    const r = top(buf, 0);
    return { complete: r.ends.includes(buf.length), next: r.next };
  };
}
