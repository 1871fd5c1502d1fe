// "waiting for the kernel…" over the canvas: shown while there is no image yet and while something
// asked of the kernel (tiles, a prompt's masks, a commit) has no answer after a moment (the kernel runs
// another cell, or embeds); with the kernel's progress below it (the `kernel_progress` trait, which
// reaches the browser even while the kernel is busy), which is also shown alone while there is any.
// Over a blank canvas it sits in the middle; over a drawn image it is a small banner at the top.
// The element's text is what the tests read (`.sam-waiting`, `data-waiting` on the widget's root).

import { el } from "./dom.js";

const DELAY_MS = 300; // an answer within this is not worth a message (no flicker while panning)

export function createWaiting({ model, root, wrap }) {
  const box = el("div", "sam-waiting");
  const title = el("div", "sam-waiting-title", "waiting for the kernel…");
  const line = el("div", "sam-waiting-progress");
  box.append(title, line);
  wrap.appendChild(box);
  const asked = new Map(); // what -> {n: requests without an answer, since: when the first was sent (ms)}
  let blank = true;
  let timer = 0;

  function update() {
    clearTimeout(timer);
    timer = 0;
    const now = performance.now();
    const [h, w] = model.get("image_shape") || [0, 0];
    const progress = model.get("kernel_progress") || "";
    let oldest = Infinity;
    for (const a of asked.values()) oldest = Math.min(oldest, a.since);
    const late = now - oldest >= DELAY_MS;
    const show = !h || !w || late || !!progress;
    if (!show && oldest !== Infinity) timer = setTimeout(update, DELAY_MS - (now - oldest) + 5);
    // progress alone (e.g. a large image's tiles embedded in the background) is not a wait: no title
    title.style.display = !h || !w || late ? "" : "none";
    line.textContent = progress;
    line.style.display = progress ? "" : "none";
    box.style.display = show ? "" : "none";
    box.classList.toggle("sam-waiting-blank", blank);
    root.dataset.waiting = show ? "1" : "0";
  }

  // Something was asked of the kernel; `answered` when its reply came (`all`: every request of that kind).
  function ask(what) {
    const a = asked.get(what);
    if (a) a.n++;
    else asked.set(what, { n: 1, since: performance.now() });
    update();
  }
  function answered(what, all = false) {
    const a = asked.get(what);
    if (!a) return;
    if (all || --a.n <= 0) asked.delete(what);
    update();
  }
  // Whether the canvas shows no image at all (the message then sits in the middle).
  function setBlank(b) {
    if (b !== blank) { blank = b; update(); }
  }
  // A new image: nothing of the old one is waited for.
  function reset() {
    asked.clear();
    blank = true;
    update();
  }

  function dispose() {
    clearTimeout(timer);
  }

  update();
  return { ask, answered, setBlank, reset, update, dispose };
}
