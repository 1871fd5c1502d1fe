// SamWidget front end (anywidget ES module, hand-written, no build step, no CDN).
//
// The canvas shows image pyramid tiles fetched from Python on demand (only what is visible), the
// committed labels as coloured tiles, the current mask (bit-packed crops) and the prompt.
// Coordinates: image (row, col) with pixel centres at integers; pixel (r, c) covers
// [c, c + 1) x [r, r + 1) in "canvas image units", screen = unit * scale + (tx, ty).

const CACHE_MAX = 600;
const DRAG_PX = 5;
const MASK_RGBA = [0, 220, 255, 150];

function hsvToRgb(h, s, v) {
  const i = Math.floor(h * 6), f = h * 6 - i;
  const p = v * (1 - s), q = v * (1 - f * s), t = v * (1 - (1 - f) * s);
  const [r, g, b] = [[v, t, p], [q, v, p], [p, v, t], [p, q, v], [t, p, v], [v, p, q]][i % 6];
  return [Math.round(r * 255), Math.round(g * 255), Math.round(b * 255)];
}

// Same rule as sam_widgets._plot.label_colors: golden-ratio hues.
const colorCache = new Map();
function labelColor(id) {
  let c = colorCache.get(id);
  if (!c) {
    c = hsvToRgb((id * 0.618033988749895) % 1, 0.85, 1.0);
    if (colorCache.size > 10000) colorCache.clear();
    colorCache.set(id, c);
  }
  return c;
}

function bytesOf(view) {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

function canvasFrom(imageData) {
  const c = document.createElement("canvas");
  c.width = imageData.width;
  c.height = imageData.height;
  c.getContext("2d").putImageData(imageData, 0, 0);
  return c;
}

function imageTileCanvas(h, w, c, bytes) {
  const img = new ImageData(w, h), d = img.data;
  for (let p = 0, q = 0, n = h * w; p < n; p++, q += 4) {
    if (c === 1) { const v = bytes[p]; d[q] = v; d[q + 1] = v; d[q + 2] = v; }
    else { d[q] = bytes[3 * p]; d[q + 1] = bytes[3 * p + 1]; d[q + 2] = bytes[3 * p + 2]; }
    d[q + 3] = 255;
  }
  return canvasFrom(img);
}

function labelTileCanvas(h, w, bytes) {
  const ids = new Int32Array(bytes.slice().buffer), img = new ImageData(w, h), d = img.data;
  for (let p = 0, q = 0, n = h * w; p < n; p++, q += 4) {
    const id = ids[p];
    if (id === 0) continue;
    const col = labelColor(id);
    // draw object edges opaque, insides translucent
    const r = (p / w) | 0, x = p - r * w;
    const edge = (x > 0 && ids[p - 1] !== id) || (x < w - 1 && ids[p + 1] !== id) ||
      (r > 0 && ids[p - w] !== id) || (r < h - 1 && ids[p + w] !== id);
    d[q] = col[0]; d[q + 1] = col[1]; d[q + 2] = col[2]; d[q + 3] = edge ? 255 : 110;
  }
  return canvasFrom(img);
}

function maskCanvas(h, w, bytes) {
  const img = new ImageData(w, h), d = img.data;
  let area = 0;
  for (let p = 0, q = 0, n = h * w; p < n; p++, q += 4) {
    if (bytes[p >> 3] & (128 >> (p & 7))) {
      d[q] = MASK_RGBA[0]; d[q + 1] = MASK_RGBA[1]; d[q + 2] = MASK_RGBA[2]; d[q + 3] = MASK_RGBA[3];
      area++;
    }
  }
  return [canvasFrom(img), area];
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function render({ model, el: host }) {
  const root = el("div", "sam-widget");
  root.setAttribute("data-lm-suppress-shortcuts", "true"); // keys go to the canvas, not JupyterLab
  const bar = el("div", "sam-toolbar");
  const btn = (label, title, fn) => {
    const b = el("button", "sam-button", label);
    b.title = title;
    b.addEventListener("click", (e) => { e.preventDefault(); fn(); canvas.focus(); });
    bar.appendChild(b);
    return b;
  };
  const wrap = el("div", "sam-canvas-wrap");
  const canvas = el("canvas", "sam-canvas");
  canvas.tabIndex = 0;
  wrap.appendChild(canvas);
  const footer = el("div", "sam-footer");
  const statusEl = el("span", "sam-status");
  const countEl = el("span", "sam-count");
  footer.append(statusEl, countEl);
  root.append(bar, wrap, footer);
  host.appendChild(root);
  const ctx = canvas.getContext("2d");

  // ---- state ----
  let view = { scale: 1, tx: 0, ty: 0 };
  let fitted = false;
  const tiles = new Map(); // "kind:L:i:j" -> {canvas, gen, h, w}
  const pending = new Set(); // "kind:gen:L:i:j"
  let gen = { image: 1, labels: model.get("labels_version") };
  let pred = { candidates: [], seq: -1 };
  root.dataset.predictionSeq = "-1";
  let drag = null; // {mode: "maybe"|"box"|"pan", x0, y0, x, y, negative, tx0, ty0}
  let spaceDown = false;
  let frame = 0;
  let userMoved = false; // until the user zooms or pans, the image is refitted on resize

  const shape = () => model.get("image_shape");
  const T = () => model.get("tile_size");
  const toImage = (x, y) => [(y - view.ty) / view.scale - 0.5, (x - view.tx) / view.scale - 0.5]; // (row, col)
  const toScreen = (r, c) => [view.tx + (c + 0.5) * view.scale, view.ty + (r + 0.5) * view.scale];

  function fit() {
    const [h, w] = shape();
    const cw = wrap.clientWidth, ch = wrap.clientHeight;
    if (!h || !w || !cw || !ch) return;
    const s = Math.min(cw / w, ch / h);
    view = { scale: s, tx: (cw - w * s) / 2, ty: (ch - h * s) / 2 };
    fitted = true;
    userMoved = false;
    schedule();
  }

  function zoomAt(x, y, factor) {
    const [h, w] = shape();
    const fitScale = Math.min(wrap.clientWidth / w, wrap.clientHeight / h);
    const s = Math.min(Math.max(view.scale * factor, fitScale / 8), 64);
    view = { scale: s, tx: x - (x - view.tx) * (s / view.scale), ty: y - (y - view.ty) * (s / view.scale) };
    userMoved = true;
    schedule();
  }

  function schedule() {
    if (!frame) frame = requestAnimationFrame(() => { frame = 0; draw(); });
  }

  // ---- tiles ----
  function levelFor(scale) {
    const L = Math.floor(Math.log2(1 / scale) + 1e-9);
    return Math.min(Math.max(L, 0), model.get("max_level"));
  }

  function visibleTiles(L) {
    const [h, w] = shape(), span = T() << L;
    const [r0, c0] = toImage(0, 0), [r1, c1] = toImage(wrap.clientWidth, wrap.clientHeight);
    const i0 = Math.max(0, Math.floor(r0 / span)), i1 = Math.min(Math.ceil(h / span) - 1, Math.floor(r1 / span));
    const j0 = Math.max(0, Math.floor(c0 / span)), j1 = Math.min(Math.ceil(w / span) - 1, Math.floor(c1 / span));
    const out = [];
    for (let i = i0; i <= i1; i++) for (let j = j0; j <= j1; j++) out.push([L, i, j]);
    return out;
  }

  function request(kind, keys) {
    const g = gen[kind], want = [];
    for (const [L, i, j] of keys) {
      const t = tiles.get(`${kind}:${L}:${i}:${j}`);
      const p = `${kind}:${g}:${L}:${i}:${j}`;
      if ((t && t.gen === g) || pending.has(p)) continue;
      pending.add(p);
      want.push([L, i, j]);
    }
    for (let n = 0; n < want.length; n += 32) {
      model.send({ type: "tiles", kind, gen: g, keys: want.slice(n, n + 32) });
    }
  }

  function onTile(msg, buffers) {
    const p = `${msg.kind}:${msg.gen}:${msg.level}:${msg.i}:${msg.j}`;
    pending.delete(p);
    if (msg.gen !== gen[msg.kind]) return;
    let c = null;
    if (!msg.empty) {
      const bytes = bytesOf(buffers[0]);
      c = msg.kind === "image" ? imageTileCanvas(msg.h, msg.w, msg.c, bytes) : labelTileCanvas(msg.h, msg.w, bytes);
    }
    const key = `${msg.kind}:${msg.level}:${msg.i}:${msg.j}`;
    tiles.delete(key);
    tiles.set(key, { canvas: c, gen: msg.gen, h: msg.h, w: msg.w });
    while (tiles.size > CACHE_MAX) tiles.delete(tiles.keys().next().value);
    root.dataset.tiles = String(tiles.size);
    schedule();
  }

  // Draw tile (L, i, j) of `kind`, or the part of the nearest coarser cached tile that covers it.
  function drawTile(kind, L, i, j) {
    const [H, W] = shape(), span = T() << L;
    const top = model.get("max_level");
    for (let lev = L; lev <= top; lev++) {
      const d = lev - L, pi = i >> d, pj = j >> d;
      const t = tiles.get(`${kind}:${lev}:${pi}:${pj}`);
      if (!t) continue;
      if (!t.canvas) return true; // empty labels tile
      const step = 1 << lev, pspan = T() << lev;
      const r0 = i * span, c0 = j * span, r1 = Math.min(r0 + span, H), c1 = Math.min(c0 + span, W);
      const sx = (c0 - pj * pspan) / step, sy = (r0 - pi * pspan) / step;
      const sw = Math.min(Math.ceil((c1 - c0) / step), t.w - sx), sh = Math.min(Math.ceil((r1 - r0) / step), t.h - sy);
      if (sw <= 0 || sh <= 0) return false;
      ctx.imageSmoothingEnabled = view.scale * step < 1;
      ctx.drawImage(t.canvas, sx, sy, sw, sh, view.tx + c0 * view.scale, view.ty + r0 * view.scale,
        sw * step * view.scale, sh * step * view.scale);
      return true;
    }
    return false;
  }

  // ---- drawing ----
  function draw() {
    const dpr = window.devicePixelRatio || 1;
    const cw = wrap.clientWidth, ch = wrap.clientHeight;
    if (canvas.width !== Math.round(cw * dpr) || canvas.height !== Math.round(ch * dpr)) {
      canvas.width = Math.round(cw * dpr);
      canvas.height = Math.round(ch * dpr);
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#15171a";
    ctx.fillRect(0, 0, cw, ch);
    const [H, W] = shape();
    if (!H || !W || !cw) return;
    if (!fitted) { fit(); if (!fitted) return; }
    const L = levelFor(view.scale), keys = visibleTiles(L);
    request("image", keys);
    request("labels", keys);
    let missing = 0;
    for (const [l, i, j] of keys) {
      const t = tiles.get(`image:${l}:${i}:${j}`);
      if (!t || t.gen !== gen.image) missing++;
      drawTile("image", l, i, j);
    }
    for (const [l, i, j] of keys) {
      const t = tiles.get(`labels:${l}:${i}:${j}`);
      if (!t || t.gen !== gen.labels) missing++;
      drawTile("labels", l, i, j);
    }
    root.dataset.tilesPending = String(missing);
    drawMask();
    drawPrompt();
    root.dataset.view = JSON.stringify({ scale: view.scale, tx: view.tx, ty: view.ty, level: L });
  }

  function drawMask() {
    const m = pred.candidates[model.get("candidate")];
    root.dataset.overlayPixels = String(m ? m.area : 0);
    if (!m || !m.canvas) return;
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(m.canvas, view.tx + m.col * view.scale, view.ty + m.row * view.scale,
      m.w * view.scale, m.h * view.scale);
  }

  function strokeBox(box, dashed) {
    const [y0, x0] = [view.ty + box[0] * view.scale, view.tx + box[1] * view.scale];
    const [y1, x1] = [view.ty + (box[2] + 1) * view.scale, view.tx + (box[3] + 1) * view.scale];
    ctx.save();
    ctx.setLineDash(dashed ? [6, 4] : []);
    ctx.lineWidth = 2;
    ctx.strokeStyle = "#ffd400";
    ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    ctx.restore();
  }

  function drawPrompt() {
    const prompt = model.get("prompt") || {};
    if (prompt.box) strokeBox(prompt.box, false);
    for (const [r, c, label] of prompt.points || []) {
      const [x, y] = toScreen(r, c);
      ctx.beginPath();
      ctx.arc(x, y, 5, 0, 2 * Math.PI);
      ctx.fillStyle = label ? "#2ecc40" : "#ff4136";
      ctx.fill();
      ctx.lineWidth = 1.5;
      ctx.strokeStyle = "#ffffff";
      ctx.stroke();
    }
    if (drag && drag.mode === "box") strokeBox(dragBox(drag), true);
  }

  function dragBox(d) {
    const [ra, ca] = toImage(d.x0, d.y0), [rb, cb] = toImage(d.x, d.y);
    return [Math.min(ra, rb) + 0.5, Math.min(ca, cb) + 0.5, Math.max(ra, rb) - 0.5, Math.max(ca, cb) - 0.5]
      .map((v) => Math.round(v * 100) / 100);
  }

  // ---- prompts ----
  function setPrompt(prompt) {
    model.set("prompt", prompt);
    model.save_changes();
    schedule();
  }

  function onInside(r, c) {
    const [H, W] = shape();
    return r >= -0.5 && c >= -0.5 && r <= H - 0.5 && c <= W - 0.5;
  }

  function pos(e) {
    const rect = canvas.getBoundingClientRect();
    return [e.clientX - rect.left, e.clientY - rect.top];
  }

  function onPointerDown(e) {
    canvas.focus();
    const [x, y] = pos(e);
    const pan = e.button === 1 || e.button === 2 || spaceDown || panButton.classList.contains("active");
    if (e.button !== 0 && !pan) return;
    e.preventDefault();
    canvas.setPointerCapture(e.pointerId);
    drag = { mode: pan ? "pan" : "maybe", x0: x, y0: y, x, y, tx0: view.tx, ty0: view.ty,
      negative: e.shiftKey || e.altKey || e.ctrlKey || e.metaKey };
  }

  function onPointerMove(e) {
    if (!drag) return;
    const [x, y] = pos(e);
    drag.x = x; drag.y = y;
    if (drag.mode === "pan") {
      view.tx = drag.tx0 + x - drag.x0;
      view.ty = drag.ty0 + y - drag.y0;
      userMoved = true;
    } else if (drag.mode === "maybe" && Math.hypot(x - drag.x0, y - drag.y0) > DRAG_PX) {
      drag.mode = "box";
    }
    schedule();
  }

  function onPointerUp(e) {
    if (!drag) return;
    const d = drag;
    drag = null;
    const prompt = model.get("prompt") || { points: [], box: null };
    if (d.mode === "maybe") {
      const [r, c] = toImage(d.x0, d.y0);
      if (onInside(r, c)) {
        const pt = [Math.round(r * 100) / 100, Math.round(c * 100) / 100, d.negative ? 0 : 1];
        setPrompt({ points: [...(prompt.points || []), pt], box: prompt.box || null });
      }
    } else if (d.mode === "box") {
      const box = dragBox(d);
      if (box[2] >= box[0] && box[3] >= box[1]) setPrompt({ points: prompt.points || [], box });
    }
    schedule();
  }

  function onWheel(e) {
    e.preventDefault();
    const [x, y] = pos(e);
    zoomAt(x, y, Math.exp(-e.deltaY * (e.deltaMode === 1 ? 0.05 : 0.0015)));
  }

  function pick(m) {
    if (m >= 0 && m < pred.candidates.length) {
      model.set("candidate", m);
      model.save_changes();
      schedule();
    }
  }

  function onKey(e) {
    const k = e.key;
    let handled = true;
    if (k === "Enter") model.send({ type: "commit" });
    else if (k === "Escape") setPrompt({ points: [], box: null });
    else if ((k === "z" || k === "Z") && (e.ctrlKey || e.metaKey)) model.send({ type: "undo" });
    else if (k >= "1" && k <= "9") pick(Number(k) - 1);
    else if (k === "f" || k === "F") fit();
    else if (k === "+" || k === "=") zoomAt(wrap.clientWidth / 2, wrap.clientHeight / 2, 1.5);
    else if (k === "-") zoomAt(wrap.clientWidth / 2, wrap.clientHeight / 2, 1 / 1.5);
    else if (k === " ") { spaceDown = e.type === "keydown"; }
    else handled = false;
    if (handled) { e.preventDefault(); e.stopPropagation(); }
  }
  function onKeyUp(e) { if (e.key === " ") { spaceDown = false; e.preventDefault(); e.stopPropagation(); } }

  // ---- toolbar ----
  btn("Fit", "Fit the image (F)", fit);
  const panButton = btn("Pan", "Drag to pan (or right/middle-drag, or Space-drag)", () => panButton.classList.toggle("active"));
  bar.appendChild(el("span", "sam-sep"));
  const commitButton = btn("Commit", "Commit the mask as a new object (Enter)", () => model.send({ type: "commit" }));
  commitButton.classList.add("sam-commit");
  btn("Undo", "Remove the last committed object (Ctrl+Z)", () => model.send({ type: "undo" }));
  btn("Clear", "Clear the prompt (Esc)", () => setPrompt({ points: [], box: null }));
  bar.appendChild(el("span", "sam-sep"));
  const picker = el("span", "sam-picker");
  bar.appendChild(picker);
  bar.appendChild(el("span", "sam-sep"));
  const contrast = el("span", "sam-contrast");
  contrast.appendChild(el("span", "sam-label", "contrast"));
  const lo = el("input", "sam-range"), hi = el("input", "sam-range");
  for (const r of [lo, hi]) { r.type = "range"; contrast.appendChild(r); }
  bar.appendChild(contrast);
  const planeBox = el("span", "sam-plane");
  const planeLabel = el("span", "sam-label"), planeInput = el("input", "sam-range");
  planeInput.type = "range"; planeInput.min = "0"; planeInput.step = "1";
  planeBox.append(planeLabel, planeInput);
  bar.appendChild(planeBox);

  function updatePicker() {
    picker.replaceChildren();
    const scores = model.get("scores") || [], sel = model.get("candidate");
    scores.forEach((s, m) => {
      const b = el("button", "sam-button sam-candidate" + (m === sel ? " active" : ""), `${m + 1}: ${s.toFixed(2)}`);
      b.title = `candidate mask ${m + 1} (key ${m + 1}), predicted IoU ${s.toFixed(3)}`;
      b.addEventListener("click", (e) => { e.preventDefault(); pick(m); canvas.focus(); });
      picker.appendChild(b);
    });
  }

  function updateContrast() {
    const [dmin, dmax] = model.get("data_range"), limits = model.get("contrast_limits") || model.get("auto_limits");
    const stepv = (dmax - dmin) / 1000 || 1;
    for (const [r, v] of [[lo, limits[0]], [hi, limits[1]]]) {
      r.min = String(dmin); r.max = String(dmax); r.step = String(stepv); r.value = String(v);
    }
  }
  let contrastTimer = 0;
  function onContrast() {
    let a = Number(lo.value), b = Number(hi.value);
    if (b <= a) b = a + Number(hi.step);
    clearTimeout(contrastTimer);
    contrastTimer = setTimeout(() => {
      model.set("contrast_limits", [a, b]); // change:contrast_limits refetches the tiles
      model.save_changes();
    }, 80);
  }
  lo.addEventListener("input", onContrast);
  hi.addEventListener("input", onContrast);

  function updatePlane() {
    const n = model.get("num_planes"), p = model.get("plane");
    planeBox.style.display = n > 1 ? "" : "none";
    planeInput.max = String(n - 1);
    planeInput.value = String(p);
    planeLabel.textContent = `plane ${p}/${n - 1}`;
  }
  let planeTimer = 0;
  planeInput.addEventListener("input", () => {
    planeLabel.textContent = `plane ${planeInput.value}/${model.get("num_planes") - 1}`;
    clearTimeout(planeTimer);
    planeTimer = setTimeout(() => { model.set("plane", Number(planeInput.value)); model.save_changes(); }, 120);
  });

  function updateStatus() {
    const err = model.get("error");
    statusEl.textContent = err ? `⚠ ${err}` : model.get("status");
    statusEl.classList.toggle("sam-error", !!err);
    root.classList.toggle("sam-busy", model.get("busy"));
    countEl.textContent = `${model.get("num_objects")} objects`;
    root.dataset.objects = String(model.get("num_objects"));
  }

  // ---- model events ----
  function onCustom(msg, buffers) {
    if (msg.type === "tile") onTile(msg, buffers);
    else if (msg.type === "prediction") {
      if (msg.seq < pred.seq) return;
      const candidates = msg.candidates.map((c, m) => {
        if (!c.h || !c.w) return { ...c, canvas: null };
        const [cv] = maskCanvas(c.h, c.w, bytesOf(buffers[m]));
        return { ...c, canvas: cv };
      });
      pred = { candidates, seq: msg.seq };
      root.dataset.predictionSeq = String(msg.seq);
      schedule();
    }
  }
  const onImage = () => {
    tiles.clear(); pending.clear(); gen.image++; fitted = false;
    pred = { candidates: [], seq: pred.seq };
    updateContrast(); schedule();
  };
  const onLabels = () => { gen.labels = model.get("labels_version"); schedule(); };
  const onContrastLimits = () => { updateContrast(); gen.image++; schedule(); };
  const onHeight = () => { wrap.style.height = `${model.get("height")}px`; fitted = false; schedule(); };
  const onCandidates = () => { updatePicker(); schedule(); };
  function onPlane() { gen.image++; updatePlane(); schedule(); }
  const handlers = [
    ["msg:custom", onCustom], ["change:image_version", onImage], ["change:labels_version", onLabels],
    ["change:contrast_limits", onContrastLimits], ["change:height", onHeight], ["change:prompt", schedule],
    ["change:scores", onCandidates], ["change:candidate", onCandidates], ["change:status", updateStatus],
    ["change:error", updateStatus], ["change:busy", updateStatus], ["change:num_objects", updateStatus],
    ["change:data_range", updateContrast], ["change:auto_limits", updateContrast],
    ["change:plane", onPlane], ["change:num_planes", updatePlane],
  ];
  for (const [name, fn] of handlers) model.on(name, fn);

  canvas.addEventListener("pointerdown", onPointerDown);
  canvas.addEventListener("pointermove", onPointerMove);
  canvas.addEventListener("pointerup", onPointerUp);
  canvas.addEventListener("pointercancel", () => { drag = null; schedule(); });
  canvas.addEventListener("wheel", onWheel, { passive: false });
  canvas.addEventListener("contextmenu", (e) => e.preventDefault());
  canvas.addEventListener("keydown", onKey);
  canvas.addEventListener("keyup", onKeyUp);
  const resize = new ResizeObserver(() => { if (!userMoved) fitted = false; schedule(); });
  resize.observe(wrap);

  onHeight();
  model.send({ type: "hello" }); // ask for the current mask (a view opened after a prediction)
  updateContrast();
  updatePicker();
  updatePlane();
  updateStatus();
  schedule();

  return () => {
    for (const [name, fn] of handlers) model.off(name, fn);
    resize.disconnect();
    if (frame) cancelAnimationFrame(frame);
    clearTimeout(contrastTimer);
    clearTimeout(planeTimer);
  };
}

export default { render };
