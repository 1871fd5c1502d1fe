// SamWidget front end: the anywidget entry module (hand-written, no build step, no CDN).
//
// The canvas shows image pyramid tiles fetched from Python on demand (only what is visible), the
// committed labels as coloured tiles, the current mask (bit-packed crops) and the prompt.
// The parts, one module each: view.js (canvas, camera, draw loop), tiles.js (image and label tiles),
// prompts.js (mouse and keys -> prompt, candidate masks), toolbar.js (buttons, sliders, status).
// Python joins them into one ES module (sam_widgets/_bundle.py): anywidget loads `_esm` from a string,
// where relative imports cannot resolve.

import { el } from "./dom.js";
import { createPrompts } from "./prompts.js";
import { createTiles } from "./tiles.js";
import { createToolbar } from "./toolbar.js";
import { createView } from "./view.js";
import { createWaiting } from "./waiting.js";

function render({ model, el: host }) {
  const root = el("div", "sam-widget");
  root.setAttribute("data-lm-suppress-shortcuts", "true"); // keys go to the canvas, not JupyterLab
  const wrap = el("div", "sam-canvas-wrap");
  const canvas = el("canvas", "sam-canvas");
  canvas.tabIndex = 0;
  wrap.appendChild(canvas);

  const view = createView({ model, root, wrap, canvas });
  const waiting = createWaiting({ model, root, wrap }); // "waiting for the kernel…" over the canvas
  const tiles = createTiles({ model, root, view, waiting });
  const prompts = createPrompts({ model, root, canvas, view, waiting });
  view.layers.push(tiles, prompts);
  const toolbar = createToolbar({ model, root, canvas, view, prompts, waiting });
  root.append(toolbar.bar, wrap, toolbar.footer);
  host.appendChild(root);

  // ---- model events ----
  function onCustom(msg, buffers) {
    if (msg.type === "tile") tiles.onTile(msg, buffers);
    else if (msg.type === "prediction") prompts.onPrediction(msg, buffers);
    else if (msg.type === "answer") waiting.answered(msg.what); // a prompt, commit or undo was handled
  }
  const onImage = () => {
    tiles.reset();
    waiting.reset();
    prompts.clearPrediction();
    toolbar.updateContrast();
    view.refit();
  };
  const onLabels = () => { tiles.setLabelsVersion(model.get("labels_version")); view.schedule(); };
  const onFound = () => { tiles.setFoundVersion(model.get("found_version")); toolbar.updateFound(); view.schedule(); };
  const onContrastLimits = () => { toolbar.updateContrast(); tiles.refreshImage(); view.schedule(); };
  const onHeight = () => { wrap.style.height = `${model.get("height")}px`; view.refit(); };
  const onCandidates = () => { toolbar.updatePicker(); view.schedule(); };
  const onPlane = () => { tiles.refreshImage(); toolbar.updatePlane(); view.schedule(); };
  const handlers = [
    ["msg:custom", onCustom], ["change:image_version", onImage], ["change:labels_version", onLabels],
    ["change:contrast_limits", onContrastLimits], ["change:height", onHeight], ["change:prompt", view.schedule],
    ["change:scores", onCandidates], ["change:candidate", onCandidates], ["change:status", toolbar.updateStatus],
    ["change:error", toolbar.updateStatus], ["change:busy", toolbar.updateStatus],
    ["change:num_objects", toolbar.updateStatus], ["change:data_range", toolbar.updateContrast],
    ["change:auto_limits", toolbar.updateContrast], ["change:plane", onPlane], ["change:num_planes", toolbar.updatePlane],
    ["change:image_shape", waiting.update], ["change:kernel_progress", waiting.update],
    ["change:found_version", onFound], ["change:num_found", onFound],
  ];
  for (const [name, fn] of handlers) model.on(name, fn);

  onHeight();
  model.send({ type: "hello" }); // ask for the current mask (a view opened after a prediction)
  toolbar.updateContrast();
  toolbar.updatePicker();
  toolbar.updatePlane();
  toolbar.updateFound();
  toolbar.updateStatus();
  view.schedule();

  return () => {
    for (const [name, fn] of handlers) model.off(name, fn);
    view.dispose();
    toolbar.dispose();
    waiting.dispose();
  };
}

export default { render };
