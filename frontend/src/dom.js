// Tiny DOM helpers. Text always goes in through textContent / setAttribute: nothing a user typed is ever
// parsed as HTML.

const SVG_NS = "http://www.w3.org/2000/svg";

function build(el, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    else if (key === "text") el.textContent = value;
    else if (key === "on") for (const [ev, fn] of Object.entries(value)) el.addEventListener(ev, fn);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style") Object.assign(el.style, value);
    else if (key === "props") Object.assign(el, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** h("button", {class: "btn", title: "Undo", on: {click}}, "Undo") */
export function h(tag, attrs = {}, ...children) {
  return build(document.createElement(tag), attrs, children);
}

export function svg(tag, attrs = {}, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** A short notice in the corner; kind: info | ok | warn | error. Returns a function that removes it. */
export function toast(message, kind = "info", ms = 4000) {
  const host = document.getElementById("toasts");
  if (!host) return () => {};
  const el = h("div", { class: ["toast", "toast-" + kind], role: kind === "error" ? "alert" : "status" }, message);
  host.append(el);
  const remove = () => el.remove();
  if (ms) setTimeout(remove, ms);
  return remove;
}

/**
 * A modal dialog (native <dialog>). buttons: [{label, value, kind, title}]. Resolves with the chosen value
 * (or `cancelValue` on Esc). Focus goes to the first button.
 */
export function dialog({ title, body = [], buttons = [{ label: "OK", value: true }], cancelValue = null, className = "" }) {
  return new Promise((resolve) => {
    const actions = h("div", { class: "dialog-actions" });
    const dlg = h("dialog", { class: ["dialog", className], "aria-labelledby": "dialog-title" },
      h("h2", { id: "dialog-title", text: title }),
      h("div", { class: "dialog-body" }, body),
      actions);
    for (const b of buttons) {
      actions.append(h("button", {
        class: ["btn", b.kind ? "btn-" + b.kind : ""], type: "button", title: b.title || undefined,
        dataset: { value: String(b.value) },
        on: { click: () => { dlg.close(); resolve(b.value); } },
      }, b.label));
    }
    dlg.addEventListener("cancel", (ev) => {
      ev.preventDefault();
      dlg.close();
      resolve(cancelValue);
    });
    dlg.addEventListener("close", () => dlg.remove());
    document.body.append(dlg);
    dlg.showModal();
    const first = actions.querySelector("button");
    if (first) first.focus();
  });
}

export function formatTime(date) {
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}
