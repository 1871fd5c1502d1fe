// Image and label tiles: fetched from Python on demand (only what is visible, at the pyramid level
// of the zoom), cached, and drawn; a missing tile is drawn from the nearest coarser cached one.
// Tile (L, i, j) covers image rows [i * T * 2^L, (i + 1) * T * 2^L), sampled every 2^L pixels.

import { bytesOf, canvasFrom } from "./dom.js";

const CACHE_MAX = 600;

export function hsvToRgb(h, s, v) {
  const i = Math.floor(h * 6), f = h * 6 - i;
  const p = v * (1 - s), q = v * (1 - f * s), t = v * (1 - (1 - f) * s);
  const [r, g, b] = [[v, t, p], [q, v, p], [p, v, t], [p, q, v], [t, p, v], [v, p, q]][i % 6];
  return [Math.round(r * 255), Math.round(g * 255), Math.round(b * 255)];
}

// Same rule as sam_widgets._plot.label_colors: golden-ratio hues.
const colorCache = new Map();
export function labelColor(id) {
  let c = colorCache.get(id);
  if (!c) {
    c = hsvToRgb((id * 0.618033988749895) % 1, 0.85, 1.0);
    if (colorCache.size > 10000) colorCache.clear();
    colorCache.set(id, c);
  }
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

// The objects found for review (segment everything, "like these") are outlined in one colour over a
// faint fill, unlike the committed objects (their own colours, filled).
export const FOUND_RGB = [255, 214, 0];

function labelTileCanvas(h, w, bytes, found = false) {
  const ids = new Int32Array(bytes.slice().buffer), img = new ImageData(w, h), d = img.data;
  for (let p = 0, q = 0, n = h * w; p < n; p++, q += 4) {
    const id = ids[p];
    if (id === 0) continue;
    const col = found ? FOUND_RGB : labelColor(id);
    // draw object edges opaque, insides translucent
    const r = (p / w) | 0, x = p - r * w;
    const edge = (x > 0 && ids[p - 1] !== id) || (x < w - 1 && ids[p + 1] !== id) ||
      (r > 0 && ids[p - w] !== id) || (r < h - 1 && ids[p + w] !== id);
    d[q] = col[0]; d[q + 1] = col[1]; d[q + 2] = col[2]; d[q + 3] = edge ? 255 : found ? 40 : 110;
  }
  return canvasFrom(img);
}

export function createTiles({ model, root, view, waiting = null }) {
  const tiles = new Map(); // "kind:L:i:j" -> {canvas, gen, h, w}
  const pending = new Set(); // "kind:gen:L:i:j"
  const gen = { image: 1, labels: model.get("labels_version"), found: model.get("found_version") };
  const T = () => model.get("tile_size");

  function levelFor(scale) {
    const L = Math.floor(Math.log2(1 / scale) + 1e-9);
    return Math.min(Math.max(L, 0), model.get("max_level"));
  }

  function visibleTiles(L) {
    const [h, w] = view.shape(), span = T() << L;
    const [cw, ch] = view.size();
    const [r0, c0] = view.toImage(0, 0), [r1, c1] = view.toImage(cw, ch);
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
    // The request names the contrast limits it wants: the `contrast_limits` trait update travels on its
    // own and ipywidgets may hold it back while an earlier message is pending, so it can arrive later.
    const limits = model.get("contrast_limits") || null;
    if (want.length && waiting) waiting.ask("tiles");
    for (let n = 0; n < want.length; n += 32) {
      model.send({ type: "tiles", kind, gen: g, keys: want.slice(n, n + 32), contrast_limits: limits });
    }
  }

  // A "tile" message from Python: header + one buffer (uint8 image, int32 labels), or empty.
  function onTile(msg, buffers) {
    const p = `${msg.kind}:${msg.gen}:${msg.level}:${msg.i}:${msg.j}`;
    pending.delete(p);
    if (!pending.size && waiting) waiting.answered("tiles", true);
    if (msg.gen !== gen[msg.kind]) return;
    let c = null;
    if (!msg.empty) {
      const bytes = bytesOf(buffers[0]);
      c = msg.kind === "image" ? imageTileCanvas(msg.h, msg.w, msg.c, bytes)
        : labelTileCanvas(msg.h, msg.w, bytes, msg.kind === "found");
    }
    const key = `${msg.kind}:${msg.level}:${msg.i}:${msg.j}`;
    tiles.delete(key);
    tiles.set(key, { canvas: c, gen: msg.gen, h: msg.h, w: msg.w });
    while (tiles.size > CACHE_MAX) tiles.delete(tiles.keys().next().value);
    root.dataset.tiles = String(tiles.size);
    view.schedule();
  }

  // Draw tile (L, i, j) of `kind`, or the part of the nearest coarser cached tile that covers it.
  function drawTile(ctx, kind, L, i, j) {
    const [H, W] = view.shape(), span = T() << L, cam = view.cam;
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
      ctx.imageSmoothingEnabled = cam.scale * step < 1;
      ctx.drawImage(t.canvas, sx, sy, sw, sh, cam.tx + c0 * cam.scale, cam.ty + r0 * cam.scale,
        sw * step * cam.scale, sh * step * cam.scale);
      return true;
    }
    return false;
  }

  // The layer: ask for the visible tiles of each kind (objects found for review only while there are
  // some), draw what is cached, count what is not.
  function draw(ctx) {
    const L = levelFor(view.cam.scale), keys = visibleTiles(L);
    const kinds = model.get("num_found") > 0 ? ["image", "labels", "found"] : ["image", "labels"];
    for (const kind of kinds) request(kind, keys);
    let missing = 0, drawn = 0;
    for (const kind of kinds) {
      for (const [l, i, j] of keys) {
        const t = tiles.get(`${kind}:${l}:${i}:${j}`);
        if (!t || t.gen !== gen[kind]) missing++;
        if (drawTile(ctx, kind, l, i, j) && kind === "image") drawn++;
      }
    }
    root.dataset.tilesPending = String(missing);
    if (waiting) waiting.setBlank(drawn === 0);
    return { level: L };
  }

  // A new image: drop every cached tile.
  function reset() {
    tiles.clear();
    pending.clear();
    gen.image++;
    if (waiting) waiting.answered("tiles", true);
  }

  // The same image shown differently (contrast, plane): image tiles are refetched, old ones drawn meanwhile.
  function refreshImage() {
    gen.image++;
  }

  function setLabelsVersion(version) {
    gen.labels = version;
  }

  function setFoundVersion(version) {
    gen.found = version;
  }

  return { draw, onTile, reset, refreshImage, setLabelsVersion, setFoundVersion };
}
