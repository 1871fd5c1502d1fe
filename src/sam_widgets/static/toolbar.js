// The toolbar above the canvas (fit, pan, commit, undo, clear, keep / drop the objects found, candidate
// picker, contrast, plane) and the status line below it. Each update* function redraws its part from the
// model's traits.

import { el } from "./dom.js";

export function createToolbar({ model, root, canvas, view, prompts, waiting = null }) {
  const bar = el("div", "sam-toolbar");
  const footer = el("div", "sam-footer");
  const statusEl = el("span", "sam-status");
  const countEl = el("span", "sam-count");
  footer.append(statusEl, countEl);

  const btn = (label, title, fn) => {
    const b = el("button", "sam-button", label);
    b.title = title;
    b.addEventListener("click", (e) => { e.preventDefault(); fn(); canvas.focus(); });
    bar.appendChild(b);
    return b;
  };
  const sep = () => bar.appendChild(el("span", "sam-sep"));

  btn("Fit", "Fit the image (F)", view.fit);
  const panButton = btn("Pan", "Drag to pan (or right/middle-drag, or Space-drag)",
    () => panButton.classList.toggle("active", prompts.togglePan()));
  sep();
  const commitButton = btn("Commit", "Commit the mask as a new object (Enter)", prompts.commit);
  commitButton.classList.add("sam-commit");
  btn("Undo", "Remove the last committed object (Ctrl+Z)", prompts.undo);
  btn("Clear", "Clear the prompt (Esc)", prompts.clear);
  // the objects found by segment_everything / find_like_committed, outlined until kept or dropped
  const ask = (type) => { model.send({ type }); if (waiting) waiting.ask(type); }; // answered when done
  const foundBox = el("span", "sam-found");
  const keepFound = btn("Keep found", "", () => ask("add_found"));
  keepFound.classList.add("sam-keep-found");
  const dropFound = btn("Drop found", "Drop the objects found (w.clear_found())", () => ask("clear_found"));
  dropFound.classList.add("sam-drop-found");
  foundBox.append(sep(), keepFound, dropFound);
  bar.appendChild(foundBox);
  sep();
  const picker = el("span", "sam-picker");
  bar.appendChild(picker);
  sep();
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

  // One button per candidate mask with its score (est. IoU or predicted IoU, named before the buttons,
  // explained in their tooltips); the selected one is active.
  function updatePicker() {
    picker.replaceChildren();
    const scores = model.get("scores") || [], sel = model.get("candidate");
    const kind = model.get("score_kind") || "score", help = model.get("score_help") || "";
    if (scores.length) {
      const name = el("span", "sam-label sam-score-kind", kind);
      name.title = help;
      picker.appendChild(name);
    }
    scores.forEach((s, m) => {
      const b = el("button", "sam-button sam-candidate" + (m === sel ? " active" : ""), `${m + 1}: ${s.toFixed(2)}`);
      b.title = `candidate mask ${m + 1} (key ${m + 1}), ${kind} ${s.toFixed(2)}${help ? ` — ${help}` : ""}`;
      b.addEventListener("click", (e) => { e.preventDefault(); prompts.pick(m); canvas.focus(); });
      picker.appendChild(b);
    });
  }

  function updateFound() {
    const n = model.get("num_found");
    foundBox.style.display = n > 0 ? "" : "none";
    keepFound.textContent = `Keep ${n} found`;
    keepFound.title = `Add the ${n} objects found (outlined) as committed objects (w.add_found())`;
    root.dataset.found = String(n);
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

  // The status line (or the error), the busy cursor and the object count.
  function updateStatus() {
    const err = model.get("error");
    statusEl.textContent = err ? `⚠ ${err}` : model.get("status");
    statusEl.classList.toggle("sam-error", !!err);
    root.classList.toggle("sam-busy", model.get("busy"));
    countEl.textContent = `${model.get("num_objects")} objects`;
    root.dataset.objects = String(model.get("num_objects"));
  }

  function dispose() {
    clearTimeout(contrastTimer);
    clearTimeout(planeTimer);
  }

  return { bar, footer, updatePicker, updateContrast, updatePlane, updateFound, updateStatus, dispose };
}
