// Which tokens decoding may choose next: the call language (calls.js) read the way llguidance
// reads it, so the page picks the tokens `distillery predict` picks.
//
// Where the grammar forces the next bytes (one tool name left, the rest of a key, the end of a
// copied value), llguidance does not let the model spell them its own way: it allows only the
// first token of the tokenizer's own tokenization of those bytes, except that trailing tokens
// that a longer token could still extend are left open ("chopped"), and then it allows the
// tokens that start with (or are a prefix of) the chopped bytes. This mirrors llguidance's
// parser/src/tokenparser.rs (compute_mask, ff_tokens) and toktrie's chop_tokens.

const MAX_LOOKBACK_TOKENS = 4;

export function concat(a, b) {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function startsWith(bytes, prefix) {
  if (prefix.length > bytes.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

// Valid UTF-8 runs through the tokenizer; stray bytes (a character cut by the grammar) by
// longest match, as llguidance's tokenize_with_greedy_fallback does.
function validUtf8Length(bytes) {
  let i = 0;
  while (i < bytes.length) {
    const c = bytes[i];
    const size = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (!size || i + size > bytes.length) return i;
    for (let k = 1; k < size; k++) if ((bytes[i + k] & 0xc0) !== 0x80) return i;
    i += size;
  }
  return i;
}

export class TokenRules {
  // tokenBytes: each token's bytes (null for special tokens); encode: text -> ids.
  constructor(tokenBytes, encode, endId) {
    this.tokenBytes = tokenBytes;
    this.encode = encode;
    this.endId = endId;
    this.maxTokenLength = Math.max(...tokenBytes.map((b) => (b ? b.length : 0)));
    this.byFirstByte = Array.from({ length: 256 }, () => []);
    tokenBytes.forEach((b, id) => { if (b && b.length) this.byFirstByte[b[0]].push(id); });
  }

  tokenize(bytes) {
    const n = validUtf8Length(bytes);
    const ids = n ? this.encode(new TextDecoder().decode(bytes.subarray(0, n))) : [];
    for (let i = n; i < bytes.length;) {
      let best = -1, bestLength = 0;
      for (const id of this.byFirstByte[bytes[i]]) {
        const t = this.tokenBytes[id];
        if (t.length > bestLength && startsWith(bytes.subarray(i), t)) { best = id; bestLength = t.length; }
      }
      if (best < 0) break;
      ids.push(best);
      i += bestLength;
    }
    return ids;
  }

  // The bytes every continuation of `buf` must start with (none once the calls may end).
  forced(language, buf) {
    const out = [];
    for (;;) {
      const state = language(concat(buf, Uint8Array.from(out)));
      if (state.complete || !state.next) break;
      let only = -1, count = 0;
      for (let w = 0; w < 8 && count < 2; w++) {
        for (let bits = state.next[w]; bits && count < 2; bits &= bits - 1) {
          only = w * 32 + 31 - Math.clz32(bits & -bits);
          count++;
        }
      }
      if (count !== 1) break;
      out.push(only);
    }
    return Uint8Array.from(out);
  }

  static valid(language, bytes) {
    const state = language(bytes);
    return state.complete || state.next !== null && state.next.some((w) => w !== 0);
  }

  // Whether some token longer than `suffix` starts with it and goes on inside the language.
  hasValidExtension(language, state, suffix) {
    for (const id of this.byFirstByte[suffix[0]]) {
      const t = this.tokenBytes[id];
      if (t.length > suffix.length && startsWith(t, suffix) && TokenRules.valid(language, concat(state, t.subarray(suffix.length)))) return true;
    }
    return false;
  }

  chop(language, state, tokens) {
    let tail = new Uint8Array(0);
    for (const id of tokens.slice(-MAX_LOOKBACK_TOKENS)) tail = concat(tail, this.tokenBytes[id]);
    tail = tail.subarray(Math.max(0, tail.length - this.maxTokenLength));
    for (let i = 0; i < tail.length; i++) {
      const suffix = tail.subarray(i);
      if (!this.hasValidExtension(language, state, suffix)) continue;
      let length = 0;
      for (let k = 1; k <= tokens.length; k++) {
        length += this.tokenBytes[tokens[tokens.length - k]].length;
        if (length >= suffix.length) return [k, length];
      }
    }
    return [0, 0];
  }

  // What may come after `buf` (the bytes so far; `last` the last token, or null):
  // {only: [ids]} when the grammar forces bytes, else {allows: id => bool}.
  next(language, buf, last) {
    const forced = this.forced(language, buf);
    if (!forced.length) {
      const complete = language(buf).complete;
      return {
        allows: (id) => id === this.endId ? complete
          : this.tokenBytes[id] !== null && TokenRules.valid(language, concat(buf, this.tokenBytes[id])),
      };
    }
    let existing = last === null || this.tokenBytes[last] === null ? [] : [last];
    const bytes = existing.length ? concat(this.tokenBytes[last], forced) : forced;
    let tokens = this.tokenize(bytes);
    if (existing.length && tokens[0] !== last) {
      tokens = this.tokenize(forced);
      existing = [];
    }
    const state = concat(buf, forced);
    const [chopTokens, chopBytes] = this.chop(language, state, tokens.slice(existing.length));
    const fixed = tokens.slice(existing.length, tokens.length - chopTokens);
    if (fixed.length) return { only: [fixed[0]] };
    const prefix = bytes.subarray(bytes.length - chopBytes);
    const only = [];
    this.tokenBytes.forEach((t, id) => {
      if (!t || !t.length) return;
      if (t.length <= prefix.length ? startsWith(prefix, t)
        : startsWith(t, prefix) && TokenRules.valid(language, concat(state, t.subarray(prefix.length)))) only.push(id);
    });
    return { only };
  }
}
