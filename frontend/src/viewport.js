// Zoom and pan: the one affine map between image pixels and screen (CSS) pixels of the editor canvas.
//   screen = image * scale + (tx, ty)
// Pure maths plus change listeners; no DOM, so it runs under `node --test`.

export const MIN_ZOOM_OUT = 0.25; // relative to the fit scale
export const MAX_SCALE = 40; // screen pixels per image pixel

export class Viewport {
  constructor() {
    this.scale = 1;
    this.tx = 0;
    this.ty = 0;
    this.width = 0; // screen size of the canvas
    this.height = 0;
    this.imageWidth = 0;
    this.imageHeight = 0;
    this.listeners = new Set();
  }

  onChange(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit() {
    for (const fn of this.listeners) fn(this);
  }

  setSize(width, height) {
    this.width = width;
    this.height = height;
    this.emit();
  }

  setImage(width, height) {
    this.imageWidth = width;
    this.imageHeight = height;
  }

  toScreen(point) {
    return [point[0] * this.scale + this.tx, point[1] * this.scale + this.ty];
  }

  toImage(point) {
    return [(point[0] - this.tx) / this.scale, (point[1] - this.ty) / this.scale];
  }

  fitScale(padding = 16) {
    if (!this.imageWidth || !this.imageHeight || !this.width || !this.height) return 1;
    const w = Math.max(1, this.width - 2 * padding);
    const h = Math.max(1, this.height - 2 * padding);
    return Math.min(w / this.imageWidth, h / this.imageHeight);
  }

  minScale() {
    return Math.min(this.fitScale() * MIN_ZOOM_OUT, 1);
  }

  /** Whole image centred in the canvas. */
  fit(padding = 16) {
    this.scale = this.fitScale(padding);
    this.tx = (this.width - this.imageWidth * this.scale) / 2;
    this.ty = (this.height - this.imageHeight * this.scale) / 2;
    this.emit();
  }

  /** Multiply the scale by `factor`, keeping the image point under screen point (sx, sy) where it is. */
  zoomAt(factor, sx = this.width / 2, sy = this.height / 2) {
    const target = Math.min(MAX_SCALE, Math.max(this.minScale(), this.scale * factor));
    this.setScaleAt(target, sx, sy);
  }

  setScaleAt(scale, sx = this.width / 2, sy = this.height / 2) {
    const [ix, iy] = this.toImage([sx, sy]);
    this.scale = scale;
    this.tx = sx - ix * scale;
    this.ty = sy - iy * scale;
    this.emit();
  }

  panBy(dx, dy) {
    this.tx += dx;
    this.ty += dy;
    this.emit();
  }

  /** Put image point (x, y) at the centre of the canvas (used to reveal a region). */
  centreOn(x, y) {
    this.tx = this.width / 2 - x * this.scale;
    this.ty = this.height / 2 - y * this.scale;
    this.emit();
  }

  /** The part of the image on screen, in image pixels: [x0, y0, x1, y1] (may extend past the image). */
  visibleRect() {
    const [x0, y0] = this.toImage([0, 0]);
    const [x1, y1] = this.toImage([this.width, this.height]);
    return [x0, y0, x1, y1];
  }

  /** SVG/CSS transform that maps image pixels to screen pixels. */
  matrix() {
    return `matrix(${this.scale} 0 0 ${this.scale} ${this.tx} ${this.ty})`;
  }

  state() {
    return { scale: this.scale, tx: this.tx, ty: this.ty };
  }
}

/** Zoom factor for one wheel event: smooth for trackpads (small deltas), ~1.2x per mouse-wheel notch. */
export function wheelFactor(deltaY, deltaMode = 0, pinch = false) {
  const pixels = deltaMode === 1 ? deltaY * 16 : deltaMode === 2 ? deltaY * 400 : deltaY;
  const k = pinch ? 0.01 : 0.0015;
  const clamped = Math.max(-300, Math.min(300, pixels));
  return Math.exp(-clamped * k);
}
