"use strict";
// The mask rule of attnviz/masks.py (MaskRule.key_range), for the pages: which cells a query cannot
// see. `rule` is one layer's {causal, window} from the page's data (window null: none); put in
// front of view.js and long.js (html_page.page_script). HF semantics: a causal layer's query i sees
// keys j <= i, within a sliding window w only i - w < j <= i; a bidirectional window |i - j| < w.
const MASKS = {
  // [lo, hi]: the keys (inclusive) some query of rows a0..a1-1 sees (not clipped to the text).
  keyRange(rule, a0, a1) {
    const w = rule.window;
    const lo = w == null ? -Infinity : a0 - w + 1;
    const hi = rule.causal ? a1 - 1 : (w == null ? Infinity : a1 + w - 2);
    return [lo, hi];
  },
  // Whether query i cannot see key j.
  cell(rule, i, j) {
    const [lo, hi] = MASKS.keyRange(rule, i, i + 1);
    return j < lo || j > hi;
  },
  // Whether every cell of rows a0..a1-1 x keys b0..b1-1 is masked (a pooled block drawn grey).
  block(rule, a0, a1, b0, b1) {
    const [lo, hi] = MASKS.keyRange(rule, a0, a1);
    return b1 - 1 < lo || b0 > hi;
  },
  // Whether the rule masks any cell at all.
  any(rule) { return rule.causal || rule.window != null; },
};
