// Dialogs of the save flow: a version conflict (409) and a draft left from an earlier visit.

import { h, dialog, formatTime } from "../dom.js";
import { describeDiff } from "../merge.js";

export async function conflictDialog(autosave, taxonomy) {
  const labels = taxonomy ? { flag: (k) => taxonomy.flagLabel(k), style: (k) => taxonomy.label(k) } : {};
  const s = autosave.conflictSummary();
  if (!s) return null;
  const choice = await dialog({
    title: s.savedBy ? `${s.savedBy} saved this image${s.savedAt ? ` at ${formatTime(new Date(s.savedAt))}` : ""}` : "Someone else saved this image",
    className: "conflict-dialog",
    body: [
      h("p", { "data-testid": "conflict-who", text: `Version ${s.version} was saved on the server${s.savedBy ? ` by ${s.savedBy}` : ""} while you were editing.` }),
      h("dl", { class: "diff" },
        h("dt", { text: "Their changes" }), h("dd", { "data-testid": "conflict-theirs", text: describeDiff(s.theirs, labels) }),
        h("dt", { text: "Your unsaved changes" }), h("dd", { "data-testid": "conflict-mine", text: describeDiff(s.mine, labels) })),
      h("p", { class: "muted small", text: "Keep mine: your changes are applied on top of their version (where you both changed a region, yours wins). Take theirs: their version replaces yours; Ctrl+Z still brings yours back." }),
    ],
    buttons: [
      { label: "Keep mine (re-based)", value: "mine", kind: "primary", title: "Apply my changes on top of the new version and save" },
      { label: "Take theirs", value: "theirs", title: "Use the server's version" },
      { label: "Decide later", value: null, title: "Keep editing; nothing is saved until you choose" },
    ],
  });
  if (!choice) return null;
  return { choice, ...autosave.resolveConflict(choice) };
}

export function restoreDialog(draft, serverVersion) {
  const when = draft.savedAt ? formatTime(new Date(draft.savedAt)) : "earlier";
  const moved = draft.baseVersion !== serverVersion;
  return dialog({
    title: "Unsaved work found",
    className: "restore-dialog",
    body: [
      h("p", { text: `This browser kept changes to this image from ${when} that never reached the server.` }),
      moved ? h("p", { class: "note warn", text: `The server has moved on since (version ${serverVersion}); restoring re-bases your changes on it.` }) : null,
    ],
    buttons: [
      { label: "Restore my changes", value: "restore", kind: "primary" },
      { label: "Discard them", value: "discard", kind: "danger-quiet" },
    ],
    cancelValue: "later",
  });
}
