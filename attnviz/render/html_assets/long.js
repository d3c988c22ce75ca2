// attnviz page for long texts: pooled overviews of every head, a zoom at full resolution, the
// focus word's row in full. Vanilla JavaScript, no network. Reads #attnviz-data (see
// attnviz/render/html_long.py for its shape and the storage of the maps).
"use strict";
(function () {
  const root = document.getElementById("attnviz");
  const t0 = performance.now();
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

  // VIRIDIS: viridis.js, in front of this script.
  const LUT = new Uint8ClampedArray(768);
  for (let i = 0; i < 768; i++) LUT[i] = parseInt(VIRIDIS.substr(2 * i, 2), 16);
  const GREY = [154, 154, 154];
  const T = DATA.T, labels = DATA.labels, E = DATA.pool.edges, R = E.length - 1;
  const H = DATA.heads;

  // --- data ------------------------------------------------------------------------------------
  // Levels 0..255 of a map (zero runs: a 0 byte is followed by how many zeros it stands for).
  function levels(entry, count) {
    const bin = atob(entry.b64 != null ? entry.b64 : document.getElementById(entry.id).textContent);
    const out = new Uint8Array(count);
    let o = 0;
    for (let u = 0; u < bin.length; u++) {
      const v = bin.charCodeAt(u);
      if (v === 0) { o += bin.charCodeAt(++u); } else out[o++] = v;
    }
    if (o !== count) throw new Error("corrupt map: " + o + " of " + count + " values");
    return out;
  }
  // level -> weight: (level / 255)^2 x scale (html_long.py decode).
  function weightsOf(scale) {
    const t = new Float64Array(256);
    for (let l = 0; l < 256; l++) t[l] = (l / 255) * (l / 255) * scale;
    return t;
  }
  const overview = H.map((h) => ({ lv: levels(h.overview, R * R), w: weightsOf(h.overview.scale) }));
  let waiting = false;
  const full = new Map();   // head index -> {lv, w}; the last few used (4 MB each at 2,000 tokens)
  // A head's full map; null while the browser has not read its element yet (the page redraws
  // when it has: DOMContentLoaded).
  function fullMap(k) {
    let m = full.get(k);
    if (m) { full.delete(k); full.set(k, m); return m; }
    if (H[k].full.b64 == null && !document.getElementById(H[k].full.id)) { waiting = true; return null; }
    m = { lv: levels(H[k].full, T * T), w: weightsOf(H[k].full.scale) };
    full.set(k, m);
    if (full.size > 3) full.delete(full.keys().next().value);
    return m;
  }
  // The layer's mask rule (masks.js, in front of this script): look-ahead, a local layer's window.
  function masked(layer, i, j) { return MASKS.cell(DATA.masks[String(layer)], i, j); }
  function blockMasked(layer, r, c) {   // every cell of overview block (r, c) masked
    return MASKS.block(DATA.masks[String(layer)], E[r], E[r + 1], E[c], E[c + 1]);
  }
  // What grey means on this page: " (look-ahead, outside the 4-token window in local layers 0, 2)".
  function maskedWhat() {
    const parts = DATA.causal ? ["look-ahead"] : [];
    const local = DATA.layers.filter((l) => DATA.masks[String(l)].window != null);
    if (local.length) {
      parts.push("outside the " + DATA.masks[String(local[0])].window + "-token window" +
        (local.length < DATA.layers.length ? " in local layer" + (local.length > 1 ? "s " : " ") + local.join(", ") : ""));
    }
    return parts.length ? " (" + parts.join(", ") + ")" : "";
  }

  // --- state -----------------------------------------------------------------------------------
  const state = { sel: 0, Z: DATA.zoom, r0: 0, c0: 0, gamma: 1, sinksOut: DATA.sinks_out };
  if (DATA.focus) {   // start with the focus row in the window, at its left end
    state.r0 = clampStart(DATA.focus.index - Math.floor(DATA.zoom / 2));
    state.c0 = clampStart(DATA.focus.index - DATA.zoom + 1);
  }
  function clampStart(x) { return Math.max(0, Math.min(T - state.Z, Math.round(x))); }
  // colour index (0..255) of a weight for head k
  function colourTable(k, table) {
    const top = state.sinksOut ? H[k].top_no_sinks : H[k].top, g = state.gamma, out = new Uint8Array(256);
    for (let l = 0; l < 256; l++) out[l] = Math.round(Math.pow(Math.min(1, table[l] / top), g) * 255);
    return out;
  }

  // --- page ------------------------------------------------------------------------------------
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text != null) e.textContent = text;
    return e;
  }
  const m = DATA.model;
  root.appendChild(el("p", { class: "meta" },
    m.name + (m.learned ? "" : " (random weights: patterns are not learned)") + " · " + T.toLocaleString("en") +
    " tokens · " + (DATA.causal ? "causal · " : "") + "layers held: " + DATA.layers.join(", ") + " of " + m.num_layers +
    " · " + H.length + " maps"));
  root.appendChild(el("p", { class: "meta" },
    "Overview: each head pooled to " + R + " x " + R + " blocks of up to " + DATA.pool.block + " x " + DATA.pool.block +
    " tokens, the " + DATA.pool.how + " of each block. Zoom: one cell per token pair. Colour: viridis of the weight " +
    "over the head's largest weight outside masked cells" + (DATA.causal ? " below the overview's first block row" : "") +
    " (and the sinks " + DATA.sinks.map((i) => labels[i]).join(" ") +
    ", when left out below: their cells then show brightest), linear or square root; grey: masked" + maskedWhat() + ". Drag on an overview or use the arrow keys to move the zoom " +
    "(Shift: a whole window), + and - to resize it, [ and ] for the previous or next head."));
  for (const note of DATA.notes) root.appendChild(el("p", { class: "meta warn" }, note));
  const controls = el("div", { class: "controls" });
  const gammaSel = el("select", { id: "gamma", "aria-label": "colour scale" });
  gammaSel.appendChild(el("option", { value: "1" }, "linear"));
  gammaSel.appendChild(el("option", { value: "0.5" }, "square root (small weights brighter)"));
  const gl = el("label", {}, "colour ");
  gl.appendChild(gammaSel);
  controls.appendChild(gl);
  const sinksBox = el("input", { type: "checkbox", id: "sinks" });
  sinksBox.checked = state.sinksOut;
  const sl = el("label", {});
  sl.appendChild(sinksBox);
  sl.appendChild(document.createTextNode(" sinks out of the colour scale"));
  controls.appendChild(sl);
  const status = el("span", { class: "status", id: "status", "aria-live": "polite" });
  controls.appendChild(status);
  root.appendChild(controls);

  const layout = el("div", { class: "long-layout" });
  const grid = el("div", { class: "overviews", id: "overviews" });
  const right = el("div", { class: "zoom-side" });
  layout.appendChild(grid);
  layout.appendChild(right);
  root.appendChild(layout);
  const cards = H.map((h, k) => {
    const card = el("figure", { class: "ov", "data-k": String(k) });
    const cap = el("figcaption", {}, "layer " + h.layer + " · " + (h.head >= 0 ? "head " + h.head : "rollout"));
    const wrap = el("div", { class: "ov-wrap" });
    const canvas = el("canvas", { width: String(R), height: String(R), class: "ov-canvas", "aria-label": cap.textContent });
    const box = el("div", { class: "window", hidden: "" });
    wrap.appendChild(canvas);
    wrap.appendChild(box);
    card.appendChild(cap);
    card.appendChild(wrap);
    grid.appendChild(card);
    return { card, canvas, box };
  });
  const zoomTitle = el("h2", { id: "zoom-title" });
  const zoom = el("canvas", { id: "zoom", tabindex: "0", "aria-label": "zoomed window of the selected head" });
  right.appendChild(zoomTitle);
  right.appendChild(zoom);
  const focusBox = el("div", { class: "focus", id: "focus" });
  root.appendChild(focusBox);

  // --- drawing ---------------------------------------------------------------------------------
  function drawOverview(k) {
    const { canvas } = cards[k];
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(R, R);
    const ov = overview[k], cidx = colourTable(k, ov.w), layer = H[k].layer, px = img.data;
    for (let r = 0; r < R; r++) {
      for (let c = 0; c < R; c++) {
        const p = 4 * (r * R + c);
        if (blockMasked(layer, r, c)) { px[p] = GREY[0]; px[p + 1] = GREY[1]; px[p + 2] = GREY[2]; }
        else { const q = 3 * cidx[ov.lv[r * R + c]]; px[p] = LUT[q]; px[p + 1] = LUT[q + 1]; px[p + 2] = LUT[q + 2]; }
        px[p + 3] = 255;
      }
    }
    ctx.putImageData(img, 0, 0);
  }
  function placeWindow() {
    cards.forEach(({ card, box }, k) => {
      const on = k === state.sel;
      card.classList.toggle("selected", on);
      if (!on) { box.hidden = true; return; }
      box.hidden = false;
      box.style.left = (100 * state.c0 / T) + "%";
      box.style.top = (100 * state.r0 / T) + "%";
      box.style.width = (100 * state.Z / T) + "%";
      box.style.height = (100 * state.Z / T) + "%";
    });
  }
  const LABEL_W = 96, LABEL_H = 70;
  function cellPx() { return Math.max(2, Math.floor(640 / state.Z)); }
  function drawZoom() {
    const k = state.sel, Z = state.Z, cell = cellPx(), fm = fullMap(k);
    if (!fm) { zoomTitle.textContent = "reading the page… (this head's map comes next)"; return; }
    const cidx = colourTable(k, fm.w), layer = H[k].layer;
    const W = LABEL_W + Z * cell, Ht = LABEL_H + Z * cell;
    if (zoom.width !== W) zoom.width = W;
    if (zoom.height !== Ht) zoom.height = Ht;
    const ctx = zoom.getContext("2d");
    ctx.clearRect(0, 0, W, Ht);
    const img = ctx.createImageData(Z * cell, Z * cell), px = img.data, stride = Z * cell;
    for (let a = 0; a < Z; a++) {
      const i = state.r0 + a;
      for (let b = 0; b < Z; b++) {
        const j = state.c0 + b;
        let rr, gg, bb;
        if (masked(layer, i, j)) { rr = GREY[0]; gg = GREY[1]; bb = GREY[2]; }
        else { const q = 3 * cidx[fm.lv[i * T + j]]; rr = LUT[q]; gg = LUT[q + 1]; bb = LUT[q + 2]; }
        for (let y = 0; y < cell; y++) {
          let p = 4 * ((a * cell + y) * stride + b * cell);
          for (let x = 0; x < cell; x++, p += 4) { px[p] = rr; px[p + 1] = gg; px[p + 2] = bb; px[p + 3] = 255; }
        }
      }
    }
    ctx.putImageData(img, LABEL_W, LABEL_H);
    const style = getComputedStyle(root);
    ctx.fillStyle = style.color || "#000";
    const font = Math.min(11, Math.max(8, cell - 1));
    ctx.font = font + "px sans-serif";
    const step = Math.max(1, Math.ceil((font + 2) / cell));
    ctx.textAlign = "right"; ctx.textBaseline = "middle";
    for (let a = 0; a < Z; a += step) {
      const i = state.r0 + a;
      ctx.fillText(short(i), LABEL_W - 4, LABEL_H + (a + 0.5) * cell);
    }
    for (let b = 0; b < Z; b += step) {
      const j = state.c0 + b;
      ctx.save();
      ctx.translate(LABEL_W + (b + 0.5) * cell, LABEL_H - 4);
      ctx.rotate(-Math.PI / 2);
      ctx.textAlign = "left";
      ctx.fillText(short(j), 0, 0);
      ctx.restore();
    }
    zoomTitle.textContent = "layer " + H[k].layer + " · head " + H[k].head + " · queries " + state.r0 + "-" +
      (state.r0 + Z - 1) + " · keys " + state.c0 + "-" + (state.c0 + Z - 1) + " (" + Z + " x " + Z + " tokens)";
  }
  function short(i) {
    const s = labels[i];
    return i + " " + (s.length > 9 ? s.slice(0, 8) + "…" : s);
  }
  function drawFocus() {
    focusBox.textContent = "";
    if (!DATA.focus) {
      focusBox.appendChild(el("p", { class: "meta" }, "No focus word (give one with --focus)."));
      return;
    }
    const k = state.sel, f = DATA.focus.index, fm = fullMap(k);
    if (!fm) return;
    const cidx = colourTable(k, fm.w), layer = H[k].layer;
    focusBox.appendChild(el("h2", {}, "where \u201c" + DATA.focus.label + "\u201d (token " + f + ") attends · layer " +
      H[k].layer + " · head " + H[k].head + " · its whole row, each pixel the largest weight of its tokens"));
    // One canvas pixel per screen pixel (at most one per token): each the max of its tokens, so a
    // single strong weight never falls between pixels when the row is wider than the screen.
    const n = Math.max(1, Math.min(T, Math.floor(focusBox.clientWidth || T)));
    const strip = el("canvas", { width: String(n), height: "1", id: "strip", class: "strip", "aria-label": "focus row" });
    const ctx = strip.getContext("2d");
    const img = ctx.createImageData(n, 1), px = img.data;
    for (let p = 0; p < n; p++) {
      const j0 = Math.floor(p * T / n), j1 = Math.max(j0 + 1, Math.floor((p + 1) * T / n));
      let best = -1;
      for (let j = j0; j < j1; j++) if (!masked(layer, f, j) && fm.lv[f * T + j] > best) best = fm.lv[f * T + j];
      let rgb;
      if (best < 0) rgb = GREY;
      else { const q = 3 * cidx[best]; rgb = [LUT[q], LUT[q + 1], LUT[q + 2]]; }
      px[4 * p] = rgb[0]; px[4 * p + 1] = rgb[1]; px[4 * p + 2] = rgb[2]; px[4 * p + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    const wrap = el("div", { class: "strip-wrap" });
    wrap.appendChild(strip);
    const mark = el("div", { class: "strip-mark" });
    mark.style.left = (100 * (f + 0.5) / T) + "%";
    wrap.appendChild(mark);
    focusBox.appendChild(wrap);
    strip.addEventListener("click", (ev) => {
      const j = Math.floor(ev.offsetX / strip.clientWidth * T);
      centre(f, j);
    });
    const list = el("ol", { class: "targets" });
    for (const [j, w] of H[k].targets || []) {
      const b = el("button", { type: "button" }, labels[j] + " · token " + j + " · " + w.toFixed(3) +
        (j === f ? " · itself" : " · " + Math.abs(f - j) + (j < f ? " back" : " ahead")));
      b.addEventListener("click", () => centre(f, j));
      const li = el("li");
      li.appendChild(b);
      list.appendChild(li);
    }
    focusBox.appendChild(list);
  }

  // --- interaction -----------------------------------------------------------------------------
  let pending = false;
  function redraw(all) {
    if (all) H.forEach((_, k) => drawOverview(k));
    placeWindow();
    drawZoom();
  }
  function centre(i, j) {
    state.r0 = clampStart(i - state.Z / 2);
    state.c0 = clampStart(j - state.Z / 2);
    redraw(false);
  }
  function select(k) {
    if (k === state.sel) return;
    state.sel = k;
    redraw(false);
    drawFocus();
  }
  function move(dr, dc) {
    state.r0 = clampStart(state.r0 + dr);
    state.c0 = clampStart(state.c0 + dc);
    redraw(false);
  }
  function resize(Z) {
    const ci = state.r0 + state.Z / 2, cj = state.c0 + state.Z / 2;
    state.Z = Math.max(8, Math.min(T, 256, Z));
    centre(ci, cj);
  }
  cards.forEach(({ canvas }, k) => {
    const at = (ev) => {
      const rect = canvas.getBoundingClientRect();
      centre((ev.clientY - rect.top) / rect.height * T, (ev.clientX - rect.left) / rect.width * T);
    };
    let dragging = false;
    canvas.addEventListener("pointerdown", (ev) => {
      dragging = true;
      canvas.setPointerCapture(ev.pointerId);
      if (k !== state.sel) { state.sel = k; drawFocus(); }
      at(ev);
    });
    canvas.addEventListener("pointermove", (ev) => { if (dragging) at(ev); });
    canvas.addEventListener("pointerup", () => { dragging = false; });
  });
  zoom.addEventListener("mousemove", (ev) => {
    const cell = cellPx();
    const a = Math.floor((ev.offsetY - LABEL_H) / cell), b = Math.floor((ev.offsetX - LABEL_W) / cell);
    if (a < 0 || b < 0 || a >= state.Z || b >= state.Z) { status.textContent = ""; return; }
    const i = state.r0 + a, j = state.c0 + b, k = state.sel, fm = fullMap(k);
    if (!fm) return;
    status.textContent = "query " + i + " \u201c" + labels[i] + "\u201d \u2192 key " + j + " \u201c" + labels[j] + "\u201d: " +
      (masked(H[k].layer, i, j) ? "masked" : fm.w[fm.lv[i * T + j]].toFixed(4));
  });
  document.addEventListener("keydown", (ev) => {
    if (ev.target && ev.target.tagName === "SELECT") return;
    const step = ev.shiftKey ? state.Z : Math.max(1, state.Z / 8);
    const keys = {
      ArrowUp: () => move(-step, 0), ArrowDown: () => move(step, 0),
      ArrowLeft: () => move(0, -step), ArrowRight: () => move(0, step),
      "+": () => resize(state.Z / 2), "=": () => resize(state.Z / 2), "-": () => resize(state.Z * 2),
      "[": () => select((state.sel + H.length - 1) % H.length), "]": () => select((state.sel + 1) % H.length),
    };
    const act = keys[ev.key];
    if (act) { ev.preventDefault(); act(); }
  });
  sinksBox.addEventListener("change", () => {
    state.sinksOut = sinksBox.checked;
    redraw(true);
    drawFocus();
  });
  gammaSel.addEventListener("change", () => {
    state.gamma = Number(gammaSel.value);
    redraw(true);
    drawFocus();
  });

  try {
    redraw(true);
    drawFocus();
  } catch (err) { fail(err); return; }
  document.addEventListener("DOMContentLoaded", () => {
    root.dataset.loaded = "1";
    if (waiting) { waiting = false; drawZoom(); drawFocus(); }
  });
  // For tests and the bench: the state, a way to move, and when the first view was drawn.
  window.attnvizLong = { state, move, select, resize, centre };
  requestAnimationFrame(() => {
    root.dataset.firstView = String(Math.round(performance.now() - t0));
    root.dataset.ready = "1";
  });
})();
