// Small DOM and pixel helpers shared by the widget's modules.

export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// The bytes of a DataView / typed array received in a widget message.
export function bytesOf(view) {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

// An offscreen canvas holding `imageData` (drawn scaled onto the widget's canvas later).
export function canvasFrom(imageData) {
  const c = document.createElement("canvas");
  c.width = imageData.width;
  c.height = imageData.height;
  c.getContext("2d").putImageData(imageData, 0, 0);
  return c;
}
