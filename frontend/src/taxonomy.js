// The taxonomy as the editor uses it: style colours, labels and keyboard shortcuts.

// cyan, distinct from every style colour; like them light enough for black ink, with the dark outline halo
// (app.css .region .casing) for skin — tests/unit/test_palette.py checks the whole palette
export const UNSTYLED_COLOR = "#22d3ee";

export class Taxonomy {
  constructor(data) {
    this.styles = (data && data.styles) || [];
    this.motifs = (data && data.motifs) || [];
    this.flags = (data && data.flags) || [];
    this.byKey = new Map(this.styles.map((s) => [s.key, s]));
    this.flagByKey = new Map(this.flags.map((f) => [f.key, f]));
    this.shortcuts = new Map();
    for (const s of this.styles) {
      const parsed = parseShortcut(s.shortcut);
      if (parsed) this.shortcuts.set(shortcutId(parsed.shift, parsed.digit), s.key);
    }
  }

  style(key) {
    return this.byKey.get(key) || null;
  }

  label(key) {
    const s = this.byKey.get(key);
    return s ? s.label : key || "No style";
  }

  color(key) {
    const s = this.byKey.get(key);
    return s && /^#[0-9a-fA-F]{3,8}$/.test(s.color || "") ? s.color : UNSTYLED_COLOR;
  }

  trainable(key) {
    const s = this.byKey.get(key);
    return !s || s.trainable !== false;
  }

  flagLabel(key) {
    const f = this.flagByKey.get(key);
    return f ? f.label : key;
  }

  /** The style a key event picks: digits by KeyboardEvent.code, so Shift+1 works on every layout. */
  styleForEvent(ev) {
    const m = /^(?:Digit|Numpad)(\d)$/.exec(ev.code || "");
    if (!m) return null;
    return this.shortcuts.get(shortcutId(ev.shiftKey, m[1])) || null;
  }

  /** Human text of a style's shortcut: "1", "Shift+1"; "0" is the fit key, so that style uses Alt+0. */
  shortcutText(key) {
    const s = this.byKey.get(key);
    const parsed = s && parseShortcut(s.shortcut);
    if (!parsed) return "";
    const base = (parsed.shift ? "Shift+" : "") + parsed.digit;
    return base === "0" ? "Alt+0" : base;
  }
}

export function parseShortcut(text) {
  const m = /^(shift\+)?(\d)$/i.exec(String(text || "").trim());
  return m ? { shift: Boolean(m[1]), digit: m[2] } : null;
}

function shortcutId(shift, digit) {
  return (shift ? "S" : "") + digit;
}

/** Text colour (black or white) that reads on `hex`. */
export function contrastText(hex) {
  const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})/i.exec(hex || "");
  if (!m) return "#000";
  const [r, g, b] = m.slice(1).map((x) => parseInt(x, 16) / 255).map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  const lum = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  return lum > 0.4 ? "#000" : "#fff";
}
