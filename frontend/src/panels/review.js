// Review: reviewers accept or reject a submitted image with a comment (POST /images/<id>/review); everyone
// sees the latest review comment (GET /images/<id>/reviews), so a rejected image shows what to fix.

import { h, toast } from "../dom.js";

const RANK = { annotator: 0, reviewer: 1, admin: 2 };

export function reviewPanel({ api, app, imageId, meta, autosave, onStatus }) {
  const isReviewer = (RANK[app.user.role] || 0) >= RANK.reviewer;
  const canReview = isReviewer && meta.status === "submitted";
  const mayHaveComment = ["rejected", "accepted", "submitted", "in_progress"].includes(meta.status);
  if (!canReview && !mayHaveComment) return null;
  const commentBox = h("div", { class: "review-comment" });
  const panel = h("section", { class: "panel review-panel", "aria-labelledby": "review-title", hidden: !canReview },
    h("h2", { id: "review-title", text: "Review" }), commentBox);

  api.get(`/images/${imageId}/reviews`).then((data) => {
    const last = data && Array.isArray(data.items) ? data.items[0] : null;
    if (!last || !last.comment) return;
    const who = last.reviewer && (last.reviewer.username || last.reviewer.name);
    commentBox.append(h("div", { class: ["note", last.decision === "reject" ? "warn" : ""], "data-testid": "review-comment" },
      h("strong", { text: last.decision === "reject" ? "Rejected — please fix" : "Accepted" }),
      who ? h("span", { class: "muted small", text: ` by ${who}` }) : null,
      h("p", { class: "comment", text: last.comment })));
    panel.hidden = false;
  }).catch(() => {});

  if (canReview) {
    const comment = h("textarea", { rows: 2, maxlength: 5000, placeholder: "Comment for the annotator (needed to reject)", "aria-label": "Review comment" });
    const send = async (decision) => {
      if (decision === "reject" && !comment.value.trim()) {
        toast("Say what to fix when rejecting.", "warn");
        comment.focus();
        return;
      }
      if (!(await autosave.flush())) {
        toast("Your own edits are not saved yet; try again in a moment.", "warn");
        return;
      }
      try {
        const resp = await api.post(`/images/${imageId}/review`, { decision, comment: comment.value.trim() });
        onStatus((resp && resp.status) || (decision === "accept" ? "accepted" : "rejected"));
        toast(decision === "accept" ? "Accepted." : "Rejected; it goes back to the annotator.", "ok");
        actions.replaceWith(h("div", { class: "row" },
          h("button", { type: "button", class: "btn btn-primary", "data-testid": "next-review", on: { click: () => app.openNextReview({ after: imageId }) } }, "Next to review →")));
      } catch (err) {
        toast(`Review not recorded: ${err.message}`, "error", 7000);
      }
    };
    const actions = h("div", {}, comment, h("div", { class: "row" },
      h("button", { type: "button", class: "btn btn-primary", on: { click: () => send("accept") } }, "Accept"),
      h("button", { type: "button", class: "btn", on: { click: () => send("reject") } }, "Reject")));
    panel.append(actions);
  }
  return panel;
}
