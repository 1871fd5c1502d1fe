// The canvas and its camera: image (row, col) <-> screen, fit, zoom, pan, and the draw loop.
//
// Coordinates: image (row, col) with pixel centres at integers; pixel (r, c) covers
// [c, c + 1) x [r, r + 1) in "canvas image units", screen = unit * scale + (tx, ty).
// What is drawn comes from layers (tiles, then prompts): objects with draw(ctx) called in order
// each frame; a layer may return fields to add to the `data-view` attribute (the tests read it).

export function createView({ model, root, wrap, canvas }) {
  const ctx = canvas.getContext("2d");
  const cam = { scale: 1, tx: 0, ty: 0 };
  const layers = [];
  let fitted = false;
  let userMoved = false; // until the user zooms or pans, the image is refitted on resize
  let frame = 0;

  const shape = () => model.get("image_shape");
  const size = () => [wrap.clientWidth, wrap.clientHeight];
  const toImage = (x, y) => [(y - cam.ty) / cam.scale - 0.5, (x - cam.tx) / cam.scale - 0.5]; // (row, col)
  const toScreen = (r, c) => [cam.tx + (c + 0.5) * cam.scale, cam.ty + (r + 0.5) * cam.scale];

  function schedule() {
    if (!frame) frame = requestAnimationFrame(() => { frame = 0; draw(); });
  }

  function fit() {
    const [h, w] = shape();
    const [cw, ch] = size();
    if (!h || !w || !cw || !ch) return;
    const s = Math.min(cw / w, ch / h);
    Object.assign(cam, { scale: s, tx: (cw - w * s) / 2, ty: (ch - h * s) / 2 });
    fitted = true;
    userMoved = false;
    schedule();
  }

  // Refit at the next frame (a new image, a new height).
  function refit() {
    fitted = false;
    schedule();
  }

  function zoomAt(x, y, factor) {
    const [h, w] = shape();
    const fitScale = Math.min(wrap.clientWidth / w, wrap.clientHeight / h);
    const s = Math.min(Math.max(cam.scale * factor, fitScale / 8), 64);
    Object.assign(cam, { scale: s, tx: x - (x - cam.tx) * (s / cam.scale), ty: y - (y - cam.ty) * (s / cam.scale) });
    userMoved = true;
    schedule();
  }

  const zoomCentre = (factor) => zoomAt(wrap.clientWidth / 2, wrap.clientHeight / 2, factor);

  function panTo(tx, ty) {
    cam.tx = tx;
    cam.ty = ty;
    userMoved = true;
    schedule();
  }

  function draw() {
    const dpr = window.devicePixelRatio || 1;
    const [cw, ch] = size();
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
    const info = {};
    for (const layer of layers) Object.assign(info, layer.draw(ctx));
    root.dataset.view = JSON.stringify({ scale: cam.scale, tx: cam.tx, ty: cam.ty, ...info });
  }

  function pos(e) {
    const rect = canvas.getBoundingClientRect();
    return [e.clientX - rect.left, e.clientY - rect.top];
  }

  function onWheel(e) {
    e.preventDefault();
    const [x, y] = pos(e);
    zoomAt(x, y, Math.exp(-e.deltaY * (e.deltaMode === 1 ? 0.05 : 0.0015)));
  }

  canvas.addEventListener("wheel", onWheel, { passive: false });
  const resize = new ResizeObserver(() => { if (!userMoved) fitted = false; schedule(); });
  resize.observe(wrap);

  function dispose() {
    resize.disconnect();
    if (frame) cancelAnimationFrame(frame);
  }

  return { cam, layers, shape, size, toImage, toScreen, pos, schedule, fit, refit, zoomAt, zoomCentre, panTo, dispose };
}
