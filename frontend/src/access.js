// Who may change the open image, and why not: the editor turns read-only with a banner instead of accepting
// edits the server will refuse (403) and offering to "restore" them later.

import { h } from "./dom.js";

export const ROLE_RANK = { annotator: 0, reviewer: 1, admin: 2 };

export function isReviewer(user) {
  return (ROLE_RANK[user && user.role] || 0) >= ROLE_RANK.reviewer;
}

/** "14:05" in the viewer's time zone. */
export function clockTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/** Someone else's live hold on the image: {user, until} or null. */
export function heldByOther(meta, user, now = Date.now()) {
  if (!meta || !meta.held_by || !meta.held_until) return null;
  if (user && meta.held_by === user.username) return null;
  if (Date.parse(meta.held_until) <= now) return null;
  return { user: meta.held_by, until: meta.held_until };
}

/**
 * {editable: true} or {editable: false, kind, reason, who, override}: `reason` says why the image cannot be changed
 * here, `who` who can change it; `override` is true where the user may still choose to edit (a reviewer or admin over someone else's hold).
 */
export function editAccess({ meta, user, agreement = false, now = Date.now() }) {
  if (agreement) return { editable: true };
  const privileged = isReviewer(user);
  if (meta.status === "accepted" && !privileged) {
    return { editable: false, kind: "accepted", reason: "This image was accepted in review and is frozen.",
      who: "Only a reviewer or an admin can change it.", override: false };
  }
  if (meta.status === "submitted" && !privileged) {
    return { editable: false, kind: "submitted", reason: "This image is submitted and waits for review.",
      who: "A reviewer can change it, or send it back to you with a comment; then it is yours to edit again.", override: false };
  }
  const held = heldByOther(meta, user, now);
  if (held) {
    // the server lets only reviewers and admins write over someone's lease (their revision records them)
    const who = privileged
      ? `${held.user} can change it now; as a ${user.role} you may edit anyway (your revision is recorded).`
      : `${held.user} can change it now; after ${clockTime(held.until)} (or when they submit) anyone can.`;
    return { editable: false, kind: "held", reason: `Held by ${held.user} until ${clockTime(held.until)}: they are working on it.`,
      who, override: privileged };
  }
  return { editable: true };
}

/** The banner under the top bar: why, and who can change it; "Edit anyway" where the user may override. */
export function readOnlyBanner(access, onEditAnyway) {
  const banner = h("div", { class: ["readonly-banner", access.kind], role: "status", "data-testid": "readonly-banner", "data-kind": access.kind },
    h("strong", { text: "Read-only. " }), h("span", { text: `${access.reason} ${access.who}` }));
  if (access.override) {
    banner.append(h("button", { type: "button", class: "btn btn-small", "data-testid": "edit-anyway",
      on: { click: () => { onEditAnyway(); banner.remove(); } } }, "Edit anyway"));
  }
  return banner;
}
