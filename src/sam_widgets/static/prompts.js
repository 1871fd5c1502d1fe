// Prompts and their answer: mouse and keys -> the `prompt` trait ({points: [[row, col, label]], box:
// [min_row, min_col, max_row, max_col] | null}); Python answers with "prediction" messages (the
// candidate masks, bit-packed crops), drawn over the tiles with the prompt itself.

import { canvasFrom, bytesOf } from "./dom.js";

const DRAG_PX = 5;
const MASK_RGBA = [0, 220, 255, 150];

// One candidate mask: (h, w) bits, row-major, most significant bit first -> [canvas, area].
export function maskCanvas(h, w, bytes) {
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

const round2 = (v) => Math.round(v * 100) / 100;

export function createPrompts({ model, root, canvas, view, waiting = null }) {
  let pred = { candidates: [], seq: -1 };
  root.dataset.predictionSeq = "-1";
  let drag = null; // {mode: "maybe"|"box"|"pan", x0, y0, x, y, negative, tx0, ty0}
  let spaceDown = false;
  let panMode = false; // the toolbar's Pan button

  function setPrompt(prompt) {
    const changed = JSON.stringify(model.get("prompt")) !== JSON.stringify(prompt); // else nothing is sent
    model.set("prompt", prompt);
    model.save_changes();
    if (changed && waiting) waiting.ask("prompt"); // the kernel answers every prompt update it handled
    view.schedule();
  }

  // Escape: no prompt, and no object being edited any more (the kernel holds which one is)
  const clear = () => { setPrompt({ points: [], box: null }); model.send({ type: "clear" }); };
  const ask = (type) => { model.send({ type }); if (waiting) waiting.ask(type); }; // answered when done
  const commit = () => ask("commit");
  const undo = () => ask("undo");

  function pick(m) {
    if (m >= 0 && m < pred.candidates.length) {
      model.set("candidate", m);
      model.save_changes();
      view.schedule();
    }
  }

  function togglePan() {
    panMode = !panMode;
    return panMode;
  }

  // A "prediction" message: the candidates of prompt number `seq` (older answers are dropped).
  function onPrediction(msg, buffers) {
    if (msg.seq < pred.seq) return;
    const candidates = msg.candidates.map((c, m) => {
      if (!c.h || !c.w) return { ...c, canvas: null };
      const [cv] = maskCanvas(c.h, c.w, bytesOf(buffers[m]));
      return { ...c, canvas: cv };
    });
    pred = { candidates, seq: msg.seq };
    root.dataset.predictionSeq = String(msg.seq);
    view.schedule();
  }

  // A new image: the masks shown belong to the old one.
  function clearPrediction() {
    pred = { candidates: [], seq: pred.seq };
  }

  // ---- drawing (a layer of the view) ----
  function drawMask(ctx) {
    const m = pred.candidates[model.get("candidate")], cam = view.cam;
    root.dataset.overlayPixels = String(m ? m.area : 0);
    if (!m || !m.canvas) return;
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(m.canvas, cam.tx + m.col * cam.scale, cam.ty + m.row * cam.scale, m.w * cam.scale, m.h * cam.scale);
  }

  function strokeBox(ctx, box, dashed) {
    const cam = view.cam;
    const [y0, x0] = [cam.ty + box[0] * cam.scale, cam.tx + box[1] * cam.scale];
    const [y1, x1] = [cam.ty + (box[2] + 1) * cam.scale, cam.tx + (box[3] + 1) * cam.scale];
    ctx.save();
    ctx.setLineDash(dashed ? [6, 4] : []);
    ctx.lineWidth = 2;
    ctx.strokeStyle = "#ffd400";
    ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    ctx.restore();
  }

  function drawPrompt(ctx) {
    const prompt = model.get("prompt") || {};
    if (prompt.box) strokeBox(ctx, prompt.box, false);
    for (const [r, c, label] of prompt.points || []) {
      const [x, y] = view.toScreen(r, c);
      ctx.beginPath();
      ctx.arc(x, y, 5, 0, 2 * Math.PI);
      ctx.fillStyle = label ? "#2ecc40" : "#ff4136";
      ctx.fill();
      ctx.lineWidth = 1.5;
      ctx.strokeStyle = "#ffffff";
      ctx.stroke();
    }
    if (drag && drag.mode === "box") strokeBox(ctx, dragBox(drag), true);
  }

  function draw(ctx) {
    drawMask(ctx);
    drawPrompt(ctx);
  }

  // ---- mouse ----
  // The box (min_row, min_col, max_row, max_col) of the pixels a drag from (x0, y0) to (x, y) covers.
  function dragBox(d) {
    const [ra, ca] = view.toImage(d.x0, d.y0), [rb, cb] = view.toImage(d.x, d.y);
    return [Math.min(ra, rb) + 0.5, Math.min(ca, cb) + 0.5, Math.max(ra, rb) - 0.5, Math.max(ca, cb) - 0.5].map(round2);
  }

  function onInside(r, c) {
    const [H, W] = view.shape();
    return r >= -0.5 && c >= -0.5 && r <= H - 0.5 && c <= W - 0.5;
  }

  function onPointerDown(e) {
    canvas.focus();
    const [x, y] = view.pos(e);
    const pan = e.button === 1 || e.button === 2 || spaceDown || panMode;
    if (e.button !== 0 && !pan) return;
    e.preventDefault();
    canvas.setPointerCapture(e.pointerId);
    drag = { mode: pan ? "pan" : "maybe", x0: x, y0: y, x, y, tx0: view.cam.tx, ty0: view.cam.ty,
      negative: e.shiftKey || e.altKey || e.ctrlKey || e.metaKey };
  }

  let hover = null; // the last mouse position over the canvas (for E)

  // E: edit the committed object under the mouse (its mask becomes the current one; clicks correct it).
  function editAtMouse() {
    if (!hover) return;
    const [r, c] = view.toImage(hover[0], hover[1]);
    if (onInside(r, c)) model.send({ type: "edit", row: round2(r), col: round2(c) });
  }

  function onPointerMove(e) {
    hover = view.pos(e);
    if (!drag) return;
    const [x, y] = view.pos(e);
    drag.x = x; drag.y = y;
    if (drag.mode === "pan") {
      view.panTo(drag.tx0 + x - drag.x0, drag.ty0 + y - drag.y0);
    } else if (drag.mode === "maybe" && Math.hypot(x - drag.x0, y - drag.y0) > DRAG_PX) {
      drag.mode = "box";
    }
    view.schedule();
  }

  // A click adds a point (negative with a modifier key); a drag sets the box; the other prompts stay.
  function onPointerUp() {
    if (!drag) return;
    const d = drag;
    drag = null;
    const prompt = model.get("prompt") || { points: [], box: null };
    if (d.mode === "maybe") {
      const [r, c] = view.toImage(d.x0, d.y0);
      if (onInside(r, c)) {
        const pt = [round2(r), round2(c), d.negative ? 0 : 1];
        setPrompt({ points: [...(prompt.points || []), pt], box: prompt.box || null });
      }
    } else if (d.mode === "box") {
      const box = dragBox(d);
      if (box[2] >= box[0] && box[3] >= box[1]) setPrompt({ points: prompt.points || [], box });
    }
    view.schedule();
  }

  // ---- keys ----
  function onKey(e) {
    const k = e.key;
    let handled = true;
    if (k === "Enter") commit();
    else if (k === "Escape") clear();
    else if ((k === "z" || k === "Z") && (e.ctrlKey || e.metaKey)) undo();
    else if (k >= "1" && k <= "9") pick(Number(k) - 1);
    else if (k === "f" || k === "F") view.fit();
    else if ((k === "e" || k === "E") && !e.ctrlKey && !e.metaKey) editAtMouse();
    else if (k === "+" || k === "=") view.zoomCentre(1.5);
    else if (k === "-") view.zoomCentre(1 / 1.5);
    else if (k === " ") { spaceDown = e.type === "keydown"; }
    else handled = false;
    if (handled) { e.preventDefault(); e.stopPropagation(); }
  }

  function onKeyUp(e) {
    if (e.key === " ") { spaceDown = false; e.preventDefault(); e.stopPropagation(); }
  }

  canvas.addEventListener("pointerdown", onPointerDown);
  canvas.addEventListener("pointermove", onPointerMove);
  canvas.addEventListener("pointerup", onPointerUp);
  canvas.addEventListener("pointercancel", () => { drag = null; view.schedule(); });
  canvas.addEventListener("contextmenu", (e) => e.preventDefault());
  canvas.addEventListener("keydown", onKey);
  canvas.addEventListener("keyup", onKeyUp);

  return { draw, onPrediction, clearPrediction, clear, commit, undo, pick, togglePan };
}
