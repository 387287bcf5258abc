// The save-status pill: saved · saving · unsaved · offline · error · conflict, with a tooltip that says more.

import { h, formatTime } from "../dom.js";

const TEXT = {
  saved: "Saved",
  saving: "Saving…",
  unsaved: "Unsaved",
  offline: "Offline",
  error: "Not saved",
  conflict: "Conflict",
};

const TIPS = {
  saved: "Everything is on the server.",
  saving: "Sending your changes to the server.",
  unsaved: "Changes will be saved in a moment (Ctrl+S saves now). A copy is kept in this browser.",
  offline: "The server cannot be reached. Your work is kept in this browser and saved when the connection is back. Click to retry now.",
  error: "The server did not accept the last save. Your work is kept in this browser. Click to retry.",
  conflict: "Someone else saved this image while you were editing. Click to choose which version to keep.",
};

export function statusPill(autosave, { onConflict }) {
  const label = h("span", { class: "pill-text" });
  const pill = h("button", { class: "pill", type: "button", "data-testid": "save-status", "aria-live": "polite" }, h("span", { class: "dot", "aria-hidden": "true" }), label);
  const render = () => {
    const s = autosave.status;
    pill.dataset.status = s;
    label.textContent = TEXT[s] || s;
    let tip = TIPS[s] || "";
    if (autosave.message && (s === "error" || s === "offline")) tip = autosave.message + " — " + tip;
    if (s === "saved" && autosave.lastSavedAt) tip += ` Last saved ${formatTime(new Date(autosave.lastSavedAt))}, version ${autosave.version}.`;
    pill.title = tip;
  };
  pill.addEventListener("click", () => {
    if (autosave.status === "conflict") onConflict();
    else if (autosave.status === "offline" || autosave.status === "error") autosave.retry();
    else autosave.flush();
  });
  autosave.onStatus(render);
  render();
  return pill;
}
