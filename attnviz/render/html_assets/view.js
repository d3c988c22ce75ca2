// attnviz interactive view. Vanilla JavaScript, no library, no network: everything the page needs
// is in it. Reads the JSON in #attnviz-data (see attnviz/render/html.py for its shape).
"use strict";
(function () {
  const root = document.getElementById("attnviz");
  function fail(err) {
    const p = document.createElement("p");
    p.className = "error";
    p.textContent = "attnviz view failed: " + err;
    root.appendChild(p);
    root.dataset.error = String(err);
  }
  let DATA;
  try {
    DATA = JSON.parse(document.getElementById("attnviz-data").textContent);
  } catch (err) { fail(err); return; }
  // An encoder-decoder page (html.py seq2seq_page_data) holds three kinds of attention (encoder,
  // decoder, cross), each with its own tokens and weights: the one shown is copied onto DATA.
  const KINDS = DATA.kinds ? Object.keys(DATA.kinds) : [];
  if (KINDS.length) Object.assign(DATA, DATA.kinds[DATA.kind]);

  // VIRIDIS: viridis.js, in front of this script.
  const LUT = new Uint8ClampedArray(768);
  for (let i = 0; i < 768; i++) LUT[i] = parseInt(VIRIDIS.substr(2 * i, 2), 16);
  const MASK_GREY = "#9a9a9a";
  const SINK_GREY = "#c8c8c8";
  const MAXQ = DATA.bits === 16 ? 65535 : 255;

  // --- data ------------------------------------------------------------------------------------
  const decoded = {};
  // The columns' labels: the rows' own, or for cross-attention the source's tokens.
  function keyLabels(lv) { return lv.key_labels || lv.labels; }
  // Weights of one view and level as float64, [layers][heads][T][Tk] flattened. Same arithmetic
  // as attnviz.render.html.dequantise, so tests can predict what the page computes.
  function weights(view, level) {
    const key = (DATA.kind || "") + "/" + view + "/" + level;
    if (decoded[key]) return decoded[key];
    const entry = DATA.views[view].data[level];
    const bin = atob(entry.b64);
    if (DATA.bits === 32) {   // float32 little-endian, exact (html.py quantise)
      const bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      const view32 = new DataView(bytes.buffer), n = bin.length / 4;
      const exact = new Float64Array(n);
      for (let i = 0; i < n; i++) exact[i] = view32.getFloat32(4 * i, true);
      decoded[key] = exact;
      return exact;
    }
    const k = entry.scale / MAXQ;
    const wide = DATA.bits === 16;
    const units = wide ? bin.length / 2 : bin.length;
    const unit = wide ? (u) => bin.charCodeAt(2 * u) | (bin.charCodeAt(2 * u + 1) << 8) : (u) => bin.charCodeAt(u);
    const V = DATA.views[view];
    const T = DATA.levels[level].labels.length, Tk = keyLabels(DATA.levels[level]).length;
    const out = new Float64Array(V.layers.length * V.heads.length * T * Tk);   // zeros
    let o = 0;
    // Zero-run encoding (html.py quantise): a 0 unit is followed by how many zeros it stands for.
    for (let u = 0; u < units; u++) {
      const v = unit(u);
      if (v === 0) { o += unit(u + 1); u++; } else out[o++] = v * k;
    }
    if (o !== out.length) throw new Error("corrupt weights for " + key + ": " + o + " of " + out.length + " values");
    decoded[key] = out;
    return out;
  }

  const levelNames = Object.keys(DATA.levels);
  const viewNames = Object.keys(DATA.views);
  const state = {
    view: DATA.initial.view, level: DATA.initial.level, sinks: DATA.initial.sinks_excluded,
    layer: 0, head: 0, shown: null, tab: "head", hover: null, cell: null, focus: {},
  };
  // show --html opens on the one head that answers the focus question (html.py _opening).
  if (DATA.initial.head !== undefined) {
    state.layer = DATA.initial.layer; state.head = DATA.initial.head; state.shown = new Set([DATA.initial.head]);
  }
  for (const name of levelNames) state.focus[name] = DATA.levels[name].focus ? DATA.levels[name].focus.index : null;

  function cur() {
    const V = DATA.views[state.view];
    const lv = DATA.levels[state.level];
    const T = lv.labels.length;
    const klabels = keyLabels(lv), Tk = klabels.length, cross = !!lv.key_labels;
    const kspecial = lv.key_special || lv.special;
    const L = V.layers.length, H = V.heads.length;
    const w = weights(state.view, state.level);
    const sinks = new Set(state.sinks ? lv.sinks : []);   // key indices
    const masks = V.masks[state.level];   // per layer: {causal, window} (masks.js)
    return { V, lv, T, Tk, klabels, kspecial, cross, L, H, w, sinks, masks };
  }
  function at(c, li, hi, i, j) { return c.w[((li * c.H + hi) * c.T + i) * c.Tk + j]; }
  // Whether query i cannot see key j in layer li: look-ahead, or outside a local layer's window.
  function masked(c, li, i, j) { return MASKS.cell(c.masks[li], i, j); }
  // Why a cell is masked, for its tooltip.
  function maskedWhy(c, li, i, j) { return j > i && c.masks[li].causal ? "after the query" : "outside the " + c.masks[li].window + "-token window"; }
  // Top of the colour scale for one head: 1 for views whose rows sum to one (as in the images),
  // else, or with sinks left out, the largest weight among the cells that are coloured.
  function vmax(c, li, hi) {
    if (c.V.unit_scale && !c.sinks.size) return 1;
    let top = 0;
    for (let i = 0; i < c.T; i++) {
      const [lo, up] = MASKS.keyRange(c.masks[li], i, i + 1);   // the keys row i sees
      for (let j = Math.max(0, lo); j <= Math.min(c.Tk - 1, up); j++) {
        if (c.sinks.has(j)) continue;
        const v = at(c, li, hi, i, j);
        if (v > top) top = v;
      }
    }
    return top > 0 ? top : 1;
  }
  function rgb(v, top) {
    const k = Math.max(0, Math.min(255, Math.floor((v / top) * 255.999)));
    return [LUT[3 * k], LUT[3 * k + 1], LUT[3 * k + 2]];
  }
  function headName(V, hi) { return V.heads[hi] < 0 ? "all heads (mixed)" : "head " + V.heads[hi]; }
  // A label inside running text: first-strong isolates (U+2068 ... U+2069), so a Hebrew or Arabic
  // token neither reorders the numbers around it nor turns the line right to left.
  function iso(s) { return "\u2068" + s + "\u2069"; }
  function fmt(v) { return v.toFixed(DATA.bits === 16 ? 4 : 3); }
  // Candidate weights: 4 decimals, more (up to the 6 stored) until the winner's reads unlike the others.
  function candDigits(ws, won) {
    if (won === null) return 4;
    for (let d = 4; d < 6; d++) if (ws.every((v, k) => k === won || v.toFixed(d) !== ws[won].toFixed(d))) return d;
    return 6;
  }

  // --- small DOM helpers -------------------------------------------------------------------------
  function el(tag, attrs, children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") e.textContent = v;
      else if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (v !== null && v !== undefined && v !== false) e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children || []) if (c) e.appendChild(c);
    return e;
  }
  function svgEl(tag, attrs) {
    const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    return e;
  }
  function hatch(ctx) {
    const p = document.createElement("canvas");
    p.width = p.height = 6;
    const g = p.getContext("2d");
    g.fillStyle = "#e4e4e4"; g.fillRect(0, 0, 6, 6);
    g.strokeStyle = MASK_GREY; g.lineWidth = 1.2;
    g.beginPath(); g.moveTo(0, 6); g.lineTo(6, 0); g.moveTo(-1, 1); g.lineTo(1, -1); g.moveTo(5, 7); g.lineTo(7, 5); g.stroke();
    return ctx.createPattern(p, "repeat");
  }

  // --- page skeleton -----------------------------------------------------------------------------
  const info = el("p", { class: "meta" });
  function infoText() {
    const m = DATA.model;
    return "model: " + m.name + " · " + m.num_layers + " layers × " + m.num_heads + " heads"
      + (DATA.causal ? " · " + (KINDS.length ? "" : "decoder ") + "(causal: a token sees only the tokens before it)" : "")
      + (DATA.bits === 32 ? " · weights stored exactly (float32)"
        : " · weights stored at " + DATA.bits + " bits (exact values: attnviz show --format json)");
  }
  info.textContent = infoText();
  root.appendChild(info);
  // Which kind of attention an encoder-decoder page shows, and what its rows and columns are.
  const kindLine = el("p", { class: "kind", id: "kind", "aria-live": "polite" });
  function kindText() {
    const rows = { encoder: "source tokens", decoder: "target tokens", cross: "target tokens" }[DATA.kind];
    const cols = DATA.kind === "decoder" ? "target tokens" : "source tokens";
    return "showing " + DATA.kinds[DATA.kind].name + " · rows: " + rows + " (queries) · columns: " + cols + " (keys)";
  }
  if (KINDS.length) {
    kindLine.textContent = kindText();
    root.appendChild(kindLine);
  }
  if (!DATA.model.learned) root.appendChild(el("p", { class: "meta warn", text: "Random weights: these patterns are not learned." }));
  if (DATA.truncated) root.appendChild(el("p", { class: "meta warn", text: "The text was cut to the model's maximum length." }));

  const controls = el("div", { class: "controls", role: "group", "aria-label": "what to show" });
  root.appendChild(controls);
  const tabs = el("div", { class: "tabs", role: "tablist", "aria-label": "views" });
  root.appendChild(tabs);
  const panels = {};
  const TABS = [["head", "Head view"], ["matrix", "Matrix"], ["model", "Model view"], ["focus", "Focus"]];
  for (const [id, title] of TABS) {
    tabs.appendChild(el("button", { type: "button", role: "tab", id: "tab-" + id, "aria-controls": "panel-" + id,
      onclick: () => { state.tab = id; render(); } , text: title }));
    panels[id] = el("section", { class: "panel", id: "panel-" + id, role: "tabpanel", "aria-labelledby": "tab-" + id });
    root.appendChild(panels[id]);
  }
  // Notes are a list only when there are some; the keys help is a line of its own.
  const notes = el("ul", { class: "notes", id: "notes" });
  const keysLine = el("p", { class: "meta keys", text: "Keys: ← → change head, ↑ ↓ change layer; in the matrix, focus it and use the arrows to move between cells."
    + (KINDS.length ? " e, d, c: encoder, decoder, cross-attention." : "") });
  root.appendChild(keysLine);
  // The list is on the page only while it has notes (another kind of attention has its own).
  function buildNotes() {
    notes.textContent = "";
    for (const note of DATA.notes) notes.appendChild(el("li", { text: note }));
    if (DATA.notes.length && !notes.parentNode) root.insertBefore(notes, keysLine);
    else if (!DATA.notes.length && notes.parentNode) notes.remove();
  }
  buildNotes();

  // Controls: view, unit level, sinks, layer, head.
  function toggle(label, pressed, onclick, attrs) {
    return el("button", Object.assign({ type: "button", "aria-pressed": pressed ? "true" : "false", onclick, text: label }, attrs || {}));
  }
  function buildControls() {
    controls.textContent = "";
    const c = cur();
    if (KINDS.length) {
      const g = el("span", { class: "group", role: "group", "aria-label": "kind of attention" }, [el("span", { text: "attention:" })]);
      for (const k of KINDS) g.appendChild(toggle(k, k === DATA.kind, () => { setKind(k); },
        { "data-kind": k, "data-key": "kind-" + k, title: DATA.kinds[k].name }));
      controls.appendChild(g);
    }
    if (viewNames.length > 1) {
      const g = el("span", { class: "group", role: "group", "aria-label": "view" }, [el("span", { text: "view:" })]);
      for (const v of viewNames) g.appendChild(toggle(v, v === state.view, () => { setView(v); }, { "data-view": v, "data-key": "view-" + v }));
      controls.appendChild(g);
    }
    controls.appendChild(toggle("word level", state.level === "words", () => {
      const next = state.level === "words" ? "tokens" : "words";
      if (DATA.levels[next]) { state.level = next; state.hover = null; state.cell = null; render(); }
    }, { id: "words", disabled: levelNames.length < 2 ? true : null,
         title: "merge subword pieces into words: attention to a word is the sum over its pieces, from a word the mean" }));
    controls.appendChild(toggle("leave sinks out of the colour scale", state.sinks, () => { state.sinks = !state.sinks; render(); },
      { id: "sinks", title: "special tokens" + (DATA.causal ? " and the first token" : "") + ": " + (c.lv.sinks.map((i) => iso(c.lv.labels[i])).join(", ") || "none") }));
    const layerSel = el("select", { id: "layer", "aria-label": "layer", onchange: (e) => { state.layer = +e.target.value; render(); } });
    c.V.layers.forEach((l, i) => layerSel.appendChild(el("option", { value: i, text: "layer " + l, selected: i === state.layer })));
    const headSel = el("select", { id: "head", "aria-label": "head", onchange: (e) => { state.head = +e.target.value; render(); } });
    c.V.heads.forEach((h, i) => headSel.appendChild(el("option", { value: i, text: headName(c.V, i), selected: i === state.head })));
    controls.appendChild(el("label", {}, [el("span", { text: "layer" }), layerSel]));
    controls.appendChild(el("label", {}, [el("span", { text: "head" }), headSel]));
    controls.appendChild(el("span", { class: "status", id: "status", "aria-live": "polite", text: statusText(c) }));
  }
  function statusText(c) {
    return "layer " + c.V.layers[state.layer] + " · " + headName(c.V, state.head) + " · " + c.T + " " + (state.level === "words" ? "words" : "tokens");
  }
  // Only the current layer and head changed: set them in the existing controls, so nothing moves
  // on the page and the browser repaints just those controls.
  function syncControls() {
    document.getElementById("layer").value = state.layer;
    document.getElementById("head").value = state.head;
    document.getElementById("status").textContent = statusText(cur());
  }
  // Another kind of attention (an encoder-decoder page): its tokens, weights and focus; the same
  // layer and head where it has them.
  function setKind(k) {
    if (!DATA.kinds || !DATA.kinds[k] || k === DATA.kind) return;
    DATA.kind = k;
    Object.assign(DATA, DATA.kinds[k]);
    state.view = DATA.initial.view; state.level = DATA.initial.level; state.sinks = DATA.initial.sinks_excluded;
    state.shown = null; state.cell = null; state.hover = null;
    for (const name of Object.keys(DATA.levels)) state.focus[name] = DATA.levels[name].focus ? DATA.levels[name].focus.index : null;
    info.textContent = infoText();
    kindLine.textContent = kindText();
    buildNotes();
    render();
  }
  function setView(v) {
    const before = DATA.views[state.view];
    state.view = v;
    const V = DATA.views[v];
    // Keep the same model layer and head where the new view has them (rollout has one map per layer).
    const l = V.layers.indexOf(before.layers[state.layer]);
    const h = V.heads.indexOf(before.heads[state.head]);
    state.layer = l >= 0 ? l : 0;
    state.head = h >= 0 ? h : 0;
    state.shown = null;
    render();
  }
  function move(dl, dh) {
    const c = cur();
    state.layer = Math.max(0, Math.min(c.L - 1, state.layer + dl));
    state.head = Math.max(0, Math.min(c.H - 1, state.head + dh));
    const one = state.shown && state.shown.size === 1;
    if (one) state.shown = new Set([state.head]);
    // The head view of several heads draws the same lines whichever head is current: only the
    // controls change, so the panel (thousands of lines) is not drawn again.
    render(state.tab === "head" && dl === 0 && !one);
  }

  // --- head view ---------------------------------------------------------------------------------
  function headColour(h) { const cs = DATA.head_view.colours; return cs[h % cs.length]; }
  // The lines of the selected heads in the current layer: [head, query, key, strength 0-1].
  function headLines(c) {
    const out = [];
    const topK = DATA.head_view.top_k;
    for (const hi of [...state.shown].sort((a, b) => a - b)) {
      const top = vmax(c, state.layer, hi);
      for (let i = 0; i < c.T; i++) {
        let keys = [];
        const [lo, up] = MASKS.keyRange(c.masks[state.layer], i, i + 1);   // the keys row i sees
        for (let j = Math.max(0, lo); j <= Math.min(c.Tk - 1, up); j++) {
          if (c.sinks.has(j)) continue;
          keys.push([j, at(c, state.layer, hi, i, j)]);
        }
        if (topK) keys = keys.sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, topK);
        for (const [j, v] of keys) {
          const s = Math.min(1, v / top);
          if (s >= DATA.head_view.min_line) out.push([hi, i, j, s]);
        }
      }
    }
    return out;
  }
  function renderHead(panel) {
    const c = cur();
    if (!state.shown) state.shown = new Set(c.V.heads.map((_, i) => i));
    panel.textContent = "";
    const chips = el("div", { class: "headchips", role: "group", "aria-label": "heads drawn" });
    chips.appendChild(el("button", { type: "button", text: "all heads", "data-key": "all-heads", onclick: () => { state.shown = new Set(c.V.heads.map((_, i) => i)); render(); } }));
    chips.appendChild(el("button", { type: "button", text: "current head only", "data-key": "one-head", onclick: () => { state.shown = new Set([state.head]); render(); } }));
    c.V.heads.forEach((h, hi) => {
      const b = toggle(h < 0 ? "mixed" : "H" + h, state.shown.has(hi), () => {
        if (state.shown.has(hi)) state.shown.delete(hi); else state.shown.add(hi);
        render();
      }, { "data-head": hi, "data-key": "chip-" + hi, "aria-label": "draw " + headName(c.V, hi), style: "--chip: " + headColour(hi) });
      chips.appendChild(b);
    });
    panel.appendChild(chips);
    const row = c.T > 60 ? 16 : 22;
    const grid = el("div", { class: "headview", style: "--row: " + row + "px; --tokfont: " + (row < 20 ? 11 : 14) + "px" });
    const qcol = el("div", { class: "col q", role: "group", "aria-label": c.cross ? "target tokens (queries)" : "queries (attending)" });
    const kcol = el("div", { class: "col k", role: "group", "aria-label": c.cross ? "source tokens (keys)" : "keys (attended to)" });
    const height = row * Math.max(c.T, c.Tk);
    const svg = svgEl("svg", { class: "lines", height: height, viewBox: "0 0 200 " + height, preserveAspectRatio: "none",
      role: "img", "aria-label": "attention lines from queries (left) to keys (right)" });
    const lines = headLines(c);
    const buttons = { q: [], k: [] };
    // Hovering or focusing a token redraws only the lines (not the tokens), so focus stays put.
    function drawLines() {
      const hover = state.hover;
      // One markup string parsed once: thousands of lines (12 heads x T x T) drawn this way take a
      // fraction of the time that createElementNS + setAttribute per line does. Every value in it
      // is a number or a colour of ours, never text from the page's data.
      const parts = [];
      for (const [hi, i, j, s] of lines) {
        if (hover && !((hover.side === "q" && hover.i === i) || (hover.side === "k" && hover.i === j))) continue;
        parts.push('<line x1="0" y1="' + row * (i + 0.5) + '" x2="200" y2="' + row * (j + 0.5) + '" stroke="' + headColour(hi)
          + '" stroke-opacity="' + s.toFixed(3) + '" stroke-width="' + (1 + 2 * s).toFixed(2)
          + '" vector-effect="non-scaling-stroke" data-h="' + hi + '" data-q="' + i + '" data-k="' + j + '"></line>');
      }
      svg.innerHTML = parts.join("");
      svg.dataset.lines = parts.length;
      for (const side of ["q", "k"]) buttons[side].forEach((b, i) => b.classList.toggle("active", !!hover && hover.side === side && hover.i === i));
    }
    for (const [side, col, labels, special] of [["q", qcol, c.lv.labels, c.lv.special], ["k", kcol, c.klabels, c.kspecial]]) {
      labels.forEach((label, i) => {
        const sink = c.sinks.has(i) && (side === "k" || !c.cross);   // sinks are keys
        const cls = "tok" + (special[i] ? " special" : "") + (sink ? " sink" : "");
        const b = el("button", { type: "button", class: cls, dir: "auto", "data-i": i, "data-side": side, text: label,
          "data-key": "tok-" + side + i,
          "aria-label": (side === "q" ? "lines from " : "lines to ") + (state.level === "words" ? "word " : "token ") + i + ": " + label,
          title: i + ": " + iso(label) });
        const on = () => { if (!state.hover || state.hover.side !== side || state.hover.i !== i) { state.hover = { side, i }; drawLines(); } };
        const off = () => { if (state.hover && state.hover.side === side && state.hover.i === i) { state.hover = null; drawLines(); } };
        b.addEventListener("mouseenter", on);
        b.addEventListener("focus", on);
        b.addEventListener("mouseleave", () => { if (document.activeElement !== b) off(); });
        b.addEventListener("blur", off);
        buttons[side].push(b);
        col.appendChild(b);
      });
    }
    drawLines();
    grid.append(qcol, svg, kcol);
    panel.appendChild(grid);
    let say = (c.cross ? "Lines from each target token (left) to the source tokens it attends to (right)"
      : "Lines from each query (left) to the keys it attends to (right)") + "; opacity and width = weight, one colour per head. "
      + "Hover or focus a token to see only its lines. Lines weaker than " + Math.round(DATA.head_view.min_line * 100) + "% are not drawn.";
    if (DATA.head_view.top_k) say += " Long text (over " + DATA.head_view.top_k_from + " units): each query draws only its "
      + DATA.head_view.top_k + " strongest lines per head, to stay responsive; the matrix shows every weight.";
    panel.appendChild(el("p", { class: "meta", text: say }));
  }

  // --- matrix view -------------------------------------------------------------------------------
  // One head as a T x T canvas, a pixel per cell: viridis up to `top`, sinks light grey, masked
  // cells grey. Reused (one canvas per page), so draw it before asking for the next.
  let tileCanvas = null, tileImage = null;
  function headTile(c, li, hi, top) {
    const T = c.T, Tk = c.Tk;
    if (!tileCanvas || tileCanvas.width !== Tk || tileCanvas.height !== T) {
      tileCanvas = document.createElement("canvas");
      tileCanvas.width = Tk; tileCanvas.height = T;
      tileImage = tileCanvas.getContext("2d").createImageData(Tk, T);   // 1 MB at 512 tokens: made once
    }
    const tg = tileCanvas.getContext("2d");
    const img = tileImage;
    const d = img.data, w = c.w, base = (li * c.H + hi) * T * Tk;
    const sink = new Uint8Array(Tk);
    for (const j of c.sinks) sink[j] = 1;
    // the arithmetic of rgb(), inlined: this loop runs T*Tk times per head (262,144 at 512 tokens);
    // row i sees keys lo..hi (MASKS.keyRange), the rest are masked
    for (let i = 0, o = 0; i < T; i++) {
      const [lo, up] = MASKS.keyRange(c.masks[li], i, i + 1);
      for (let j = 0; j < Tk; j++, o += 4) {
        if (j < lo || j > up) { d[o] = d[o + 1] = d[o + 2] = 154; }
        else if (sink[j]) { d[o] = d[o + 1] = d[o + 2] = 200; }
        else {
          const k = 3 * Math.max(0, Math.min(255, Math.floor((w[base + i * Tk + j] / top) * 255.999)));
          d[o] = LUT[k]; d[o + 1] = LUT[k + 1]; d[o + 2] = LUT[k + 2];
        }
        d[o + 3] = 255;
      }
    }
    tg.putImageData(img, 0, 0);
    return tileCanvas;
  }
  function renderMatrix(panel) {
    const c = cur();
    panel.textContent = "";
    const T = c.T, Tk = c.Tk;
    const cell = Math.max(4, Math.min(28, Math.floor(560 / Math.max(T, Tk))));
    const showLabels = cell >= 9;
    const axes = c.cross ? "rows: target tokens (queries) · columns: source tokens (keys)" : "rows: queries · columns: keys";
    const canvas = el("canvas", { tabindex: 0, id: "matrix", role: "img", "data-key": "matrix",
      "aria-label": "heatmap of layer " + c.V.layers[state.layer] + ", " + headName(c.V, state.head) + ": " + axes + "; focus it and use the arrow keys to read cells" });
    const ctx = canvas.getContext("2d");
    const font = Math.min(12, cell - 1) + "px " + getComputedStyle(document.body).fontFamily;
    ctx.font = font;
    let lab = 0;
    if (showLabels) for (const l of c.lv.labels.concat(c.klabels)) lab = Math.max(lab, ctx.measureText(l).width);
    const margin = showLabels ? Math.ceil(lab) + 24 : 4;
    const ratio = window.devicePixelRatio || 1;
    const W = margin + Tk * cell + 2, Ht = margin + T * cell + 2;
    canvas.width = W * ratio; canvas.height = Ht * ratio;
    canvas.style.width = W + "px"; canvas.style.height = Ht + "px";
    ctx.scale(ratio, ratio);
    ctx.font = font;
    const top = vmax(c, state.layer, state.head);
    // One pixel per cell, scaled up unsmoothed: T x T fillRects with a colour string each took
    // 0.4 s at 512 tokens. The masked cells (a causal model's upper triangle, a local layer's keys
    // outside its window) are hatched after, as one path of up to two rectangles per row.
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(headTile(c, state.layer, state.head, top), margin, margin, Tk * cell, T * cell);
    const rule = c.masks[state.layer];
    if (MASKS.any(rule)) {
      ctx.fillStyle = hatch(ctx);
      ctx.beginPath();
      for (let i = 0; i < T; i++) {
        const [lo, hi] = MASKS.keyRange(rule, i, i + 1);
        if (lo > 0) ctx.rect(margin, margin + i * cell, Math.min(lo, Tk) * cell, cell);
        if (hi < Tk - 1) ctx.rect(margin + Math.max(hi + 1, 0) * cell, margin + i * cell, (Tk - Math.max(hi + 1, 0)) * cell, cell);
      }
      ctx.fill();
    }
    if (showLabels) {
      ctx.fillStyle = getComputedStyle(document.body).color;
      ctx.textBaseline = "middle";
      c.lv.labels.forEach((l, i) => {
        ctx.textAlign = "right";
        ctx.fillText(l, margin - 4, margin + (i + 0.5) * cell);
      });
      c.klabels.forEach((l, j) => {
        ctx.save();
        ctx.translate(margin + (j + 0.5) * cell, margin - 4);
        ctx.rotate(-Math.PI / 2);
        ctx.textAlign = "left";
        ctx.fillText(l, 0, 0);
        ctx.restore();
      });
    }
    if (state.cell) {
      ctx.strokeStyle = "#ff2d55"; ctx.lineWidth = 2;
      ctx.strokeRect(margin + state.cell[1] * cell + 1, margin + state.cell[0] * cell + 1, cell - 2, cell - 2);
    }
    canvas.dataset.margin = margin;
    canvas.dataset.cell = cell;
    canvas.dataset.vmax = top;
    const tip = el("div", { class: "tooltip", id: "tooltip", role: "status", hidden: true });
    function show(i, j, x, y) {
      const q = c.lv.labels[i], k = c.klabels[j];
      const v = at(c, state.layer, state.head, i, j);
      tip.textContent = "";
      const why = masked(c, state.layer, i, j) ? ": masked (" + maskedWhy(c, state.layer, i, j) + ")" : null;
      tip.append(el("span", { dir: "ltr", text: (c.cross ? "target " : "query ") + i + " " }), el("bdi", { text: q }),
        el("span", { dir: "ltr", text: (c.cross ? " → source " : " → key ") + j + " " }),
        el("bdi", { text: k }), el("span", { dir: "ltr", text: why || ": " + fmt(v) + (c.sinks.has(j) ? " (sink, out of the colour scale)" : "") }));
      tip.dataset.q = i; tip.dataset.k = j; tip.dataset.w = why ? "masked" : String(v);
      tip.hidden = false;
      tip.style.left = (x + 14) + "px"; tip.style.top = (y + 14) + "px";
    }
    canvas.addEventListener("mousemove", (e) => {
      const r = canvas.getBoundingClientRect();
      const x = e.clientX - r.left, y = e.clientY - r.top;
      const i = Math.floor((y - margin) / cell), j = Math.floor((x - margin) / cell);
      if (i < 0 || j < 0 || i >= T || j >= Tk) { tip.hidden = true; return; }
      show(i, j, x, y);
    });
    canvas.addEventListener("mouseleave", () => { tip.hidden = true; });
    canvas.addEventListener("focus", () => {
      if (!state.cell) state.cell = [0, 0];
      show(state.cell[0], state.cell[1], margin + state.cell[1] * cell, margin + state.cell[0] * cell);
    });
    canvas.addEventListener("keydown", (e) => {
      const d = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] }[e.key];
      if (!d) return;
      e.preventDefault(); e.stopPropagation();
      const [i, j] = state.cell || [0, 0];
      state.cell = [Math.max(0, Math.min(T - 1, i + d[0])), Math.max(0, Math.min(Tk - 1, j + d[1]))];
      render();
    });
    const wrap = el("div", { class: "matrixwrap" }, [canvas, tip]);
    panel.appendChild(el("p", { class: "meta", id: "matrix-caption", text: "layer " + c.V.layers[state.layer] + " · " + headName(c.V, state.head)
      + " · " + (KINDS.length ? DATA.kinds[DATA.kind].name + " · " : "") + axes + " · " + state.view }));
    panel.appendChild(wrap);
    panel.appendChild(legend(top, c));
  }
  function legend(top, c) {
    const box = el("div", { class: "legend" });
    const bar = el("canvas", { width: 160, height: 12, "aria-hidden": "true" });
    const g = bar.getContext("2d");
    for (let x = 0; x < 160; x++) { const k = Math.floor(x / 160 * 256); g.fillStyle = "rgb(" + LUT[3 * k] + "," + LUT[3 * k + 1] + "," + LUT[3 * k + 2] + ")"; g.fillRect(x, 0, 1, 12); }
    box.append(el("span", { text: "0" }), bar, el("span", { text: fmt(top) + " (viridis" + (c.V.unit_scale && !c.sinks.size ? ", 0–1" : ", 0 to the largest coloured weight") + ")" }));
    const rule = c.masks[state.layer];
    if (MASKS.any(rule)) {
      const sw = el("canvas", { width: 14, height: 14, "aria-hidden": "true" });
      const sg = sw.getContext("2d"); sg.fillStyle = hatch(sg); sg.fillRect(0, 0, 14, 14);
      const why = [];
      if (rule.causal) why.push("a key after its query (causal model)");
      if (rule.window != null) why.push("a key outside the " + rule.window + "-token sliding window of this layer");
      box.append(el("span", { class: "masked-key" }, [sw, document.createTextNode(" masked: " + why.join(", or "))]));
    }
    if (c.sinks.size) {
      const sw = el("canvas", { width: 14, height: 14, "aria-hidden": "true" });
      const sg = sw.getContext("2d"); sg.fillStyle = SINK_GREY; sg.fillRect(0, 0, 14, 14);
      box.append(el("span", {}, [sw, document.createTextNode(" sink tokens, left out of the colour scale: "
        + c.lv.sinks.map((i) => iso(c.lv.labels[i])).join(", "))]));
    }
    return box;
  }

  // --- model view ---------------------------------------------------------------------------------
  function renderModel(panel) {
    const c = cur();
    panel.textContent = "";
    const T = Math.max(c.T, c.Tk);
    // Thumbnails share the page's width (12 heads of MiniLM fit a laptop screen), 32-96 px each.
    const room = Math.floor(((root.clientWidth || 900) - 40) / c.H) - 10;
    const size = Math.max(32, Math.min(96, T * 3, room));
    const tw = Math.round(size * c.Tk / T), th = Math.round(size * c.T / T);   // cross-attention: not square
    const grid = el("div", { class: "modelgrid", role: "group", "aria-label": "every layer and head; choose one to open it in the matrix",
      style: "grid-template-columns: auto repeat(" + c.H + ", " + (size + 6) + "px)" });
    grid.appendChild(el("span", { class: "axis" }));
    c.V.heads.forEach((h, hi) => grid.appendChild(el("span", { class: "axis", text: h < 0 ? "mixed" : "H" + h })));
    c.V.layers.forEach((l, li) => {
      grid.appendChild(el("span", { class: "axis", text: "L" + l }));
      c.V.heads.forEach((h, hi) => {
        const cv = el("canvas", { width: tw, height: th });
        const g = cv.getContext("2d");
        g.imageSmoothingEnabled = false;
        g.drawImage(headTile(c, li, hi, vmax(c, li, hi)), 0, 0, tw, th);
        const b = el("button", { type: "button", class: "thumb", "data-layer": li, "data-head": hi, "data-key": "thumb-" + li + "-" + hi,
          "aria-label": "layer " + l + ", " + headName(c.V, hi) + ": open in the matrix view",
          "aria-current": li === state.layer && hi === state.head ? "true" : null,
          onclick: () => { state.layer = li; state.head = hi; state.tab = "matrix"; state.cell = null; render(); } }, [cv]);
        grid.appendChild(b);
      });
    });
    panel.appendChild(grid);
    panel.appendChild(el("p", { class: "meta", text: "Each thumbnail is one head's matrix (rows: queries, columns: keys); choose one to open it in the matrix view." }));
  }

  // --- focus panel ---------------------------------------------------------------------------------
  function renderFocus(panel) {
    const c = cur();
    panel.textContent = "";
    const sel = el("select", { id: "focus", "aria-label": "focus word", onchange: (e) => {
      state.focus[state.level] = e.target.value === "" ? null : +e.target.value; render(); } });
    sel.appendChild(el("option", { value: "", text: "(none)" }));
    c.lv.labels.forEach((l, i) => sel.appendChild(el("option", { value: i, text: i + ": " + iso(l), selected: state.focus[state.level] === i })));
    panel.appendChild(el("label", { class: "controls" }, [el("span", { text: "where does this " + (state.level === "words" ? "word" : "token") + " attend?" }), sel]));
    const f = state.focus[state.level];
    if (f === null || f === undefined) {
      panel.appendChild(el("p", { class: "meta", text: "No focus word: the sentence has no common pronoun. Choose one above (or pass --focus)." }));
      return;
    }
    const auto = c.lv.focus && c.lv.focus.index === f && c.lv.focus.auto;
    const cands = c.V.candidates[state.level];
    const useCands = cands && cands.focus === f;
    const head = ["layer", "head", "1st", "2nd", "3rd"];
    if (useCands) for (const l of cands.labels) head.push("→ " + iso(l));
    // Heads known to resolve pronouns (attnviz inspect / probe coref), marked with their accuracy.
    const PH = DATA.pronoun_heads && DATA.pronoun_heads.heads.length ? DATA.pronoun_heads : null;
    const pronounOf = {};
    if (PH) { for (const p of PH.heads) pronounOf[p.layer + "/" + p.head] = p.accuracy; head.push("pronoun"); }
    const table = el("table", { class: "focus", id: "focus-table" });
    table.appendChild(el("thead", {}, [el("tr", {}, head.map((h) => el("th", { scope: "col", dir: "auto", text: h })))]));
    const body = el("tbody");
    c.V.layers.forEach((l, li) => c.V.heads.forEach((h, hi) => {
      const ranked = [];
      for (let j = 0; j < c.Tk; j++) if (!masked(c, li, f, j) && !c.sinks.has(j)) ranked.push([j, at(c, li, hi, f, j)]);
      ranked.sort((a, b) => b[1] - a[1] || a[0] - b[0]);
      const tr = el("tr", { "data-layer": li, "data-head": hi }, [
        el("td", { class: "num", text: l }),
        el("td", {}, [el("button", { type: "button", text: h < 0 ? "mixed" : String(h), "aria-label": "open layer " + l + " " + headName(c.V, hi) + " in the matrix",
          onclick: () => { state.layer = li; state.head = hi; state.tab = "matrix"; render(); } })]),
      ]);
      for (let r = 0; r < 3; r++) {
        const t = ranked[r];
        tr.appendChild(t ? el("td", {}, [el("bdi", { class: "lab", text: c.klabels[t[0]] }), el("span", { dir: "ltr", text: " " + fmt(t[1]) })]) : el("td"));
      }
      if (useCands) {
        const won = cands.winners[li][hi];
        const ws = cands.weights[li][hi], d = candDigits(ws, won);
        // A winner whose weight still reads like another's won by less than the page stores (1e-6).
        const close = won !== null && ws.some((v, k) => k !== won && v.toFixed(d) === ws[won].toFixed(d));
        ws.forEach((v, k) => tr.appendChild(el("td", { class: "num" + (won === k ? " win" : ""), text: v.toFixed(d) + (won === k ? (close ? " ★ (by < 0.000001)" : " ★") : "") })));
      }
      if (PH) {
        const acc = pronounOf[l + "/" + h];
        tr.appendChild(el("td", { class: "num pronoun", text: acc === undefined ? "" : "★ " + Math.round(100 * acc) + "%" }));
      }
      body.appendChild(tr);
    }));
    table.appendChild(body);
    panel.appendChild(el("p", { class: "meta", text: "Where “" + iso(c.lv.labels[f]) + "” (" + (state.level === "words" ? "word " : "token ") + f + ")"
      + (auto ? ", the first pronoun," : "") + " attends" + (c.cross ? " in the source" : "") + " in every head, strongest first"
      + (c.sinks.size ? ", sinks left out" : "") + "." }));
    if (useCands) {
      const wins = cands.labels.map((l, k) => iso(l) + " " + cands.wins[k]).join(" · ");
      panel.appendChild(el("p", { class: "meta", id: "wins", text: "Candidates (weight from the focus word to each; ★ the winner): heads won: " + wins + (cands.ties ? " · ties " + cands.ties : "") }));
    }
    if (PH) panel.appendChild(el("p", { class: "meta", id: "pronoun-note", text: "pronoun: heads that resolve pronouns on the "
      + PH.probe_set + " probe set (their accuracy), found by attnviz inspect." }));
    panel.appendChild(table);
  }

  // --- render and keyboard ------------------------------------------------------------------------
  // A re-render replaces the panel; the element that had keyboard focus (its data-key or id) gets it back.
  function render(controlsOnly) {
    const had = document.activeElement;
    const key = had && had !== document.body ? (had.dataset && had.dataset.key ? '[data-key="' + had.dataset.key + '"]' : had.id ? "#" + had.id : null) : null;
    state.hover = null;
    try {
      const c = cur();
      state.layer = Math.min(state.layer, c.L - 1);
      state.head = Math.min(state.head, c.H - 1);
      if (state.cell && (state.cell[0] >= c.T || state.cell[1] >= c.Tk)) state.cell = null;
      if (controlsOnly) syncControls(); else buildControls();
      for (const [id] of TABS) {
        document.getElementById("tab-" + id).setAttribute("aria-selected", id === state.tab ? "true" : "false");
        panels[id].hidden = id !== state.tab;
      }
      const draw = { head: renderHead, matrix: renderMatrix, model: renderModel, focus: renderFocus }[state.tab];
      if (!controlsOnly) draw(panels[state.tab]);
      if (key) {
        const target = root.querySelector(key);
        if (target && document.activeElement !== target) target.focus();
      }
      root.dataset.ready = "1";
      root.dataset.tab = state.tab;
      root.dataset.layer = state.layer;
      root.dataset.head = state.head;
      root.dataset.level = state.level;
      root.dataset.view = state.view;
      if (KINDS.length) root.dataset.kind = DATA.kind;
    } catch (err) { fail(err && err.stack || err); }
  }
  document.addEventListener("keydown", (e) => {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    const t = e.target;
    if (t && (t.tagName === "SELECT" || t.tagName === "INPUT" || t.tagName === "TEXTAREA")) return;
    const kind = { e: "encoder", d: "decoder", c: "cross" }[e.key];
    if (KINDS.length && kind && DATA.kinds[kind]) { e.preventDefault(); setKind(kind); return; }
    const d = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] }[e.key];
    if (!d) return;
    e.preventDefault();
    move(d[0], d[1]);
  });
  render();
  // When the first view is on screen, in ms since navigation (bench/bench_html.py reads it).
  requestAnimationFrame(() => setTimeout(() => { root.dataset.painted = performance.now().toFixed(1); }, 0));
  // A canvas draws with the fonts loaded at that moment: once the embedded Hangul font (if any)
  // has loaded, draw again so the matrix labels use it.
  const faces = document.fonts ? [...document.fonts].filter((f) => f.family.replace(/"/g, "") === "Attnviz Hangul") : [];
  if (faces.length) {
    document.fonts.load('12px "Attnviz Hangul"', DATA.text).then(
      () => { root.dataset.fonts = "ready"; render(); }, () => { root.dataset.fonts = "failed"; });
  } else root.dataset.fonts = "ready";
})();
