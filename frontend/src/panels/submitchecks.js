// Submit-time checks (issue 19): contradictions that used to pass silently — a "not a tattoo"-style flag on an
// image with regions, regions without a style, suggestions nobody answered — listed in one dialog. Each is fixed
// there (one click) or kept with a reason, which the reviewer reads (POST /images/<id>/submit-checks).

import { h, clear } from "../dom.js";

const s = (n, one, many) => `${n} ${n === 1 ? one : many}`;

/** What is wrong before a submit: [{check, count, title, text, fixes: [{label, run, leave?}]}]. */
export function submitProblems(store, taxonomy, { select } = {}) {
  const regions = store.all().filter((r) => !r.suggested);
  const suggested = store.all().filter((r) => r.suggested);
  const problems = [];
  const excluding = store.tags.flags.filter((f) => {
    const flag = taxonomy.flags.find((x) => x.key === f);
    return flag && flag.excluded_from_training !== false;
  });
  if (excluding.length && regions.length) {
    const names = excluding.map((f) => `“${taxonomy.flagLabel(f)}”`).join(", ");
    problems.push({
      check: "flag_with_regions", count: regions.length,
      title: `Flagged ${names}, yet ${s(regions.length, "region is", "regions are")} drawn`,
      text: "Flagged images are left out of the training sets, so these regions would not be used.",
      fixes: [
        { label: "Remove the flag", run: () => store.setTags({ ...store.tags, flags: store.tags.flags.filter((f) => !excluding.includes(f)) }) },
        { label: `Delete the ${s(regions.length, "region", "regions")}`, run: () => store.transact(() => { for (const r of regions) store.remove(r.id); }) },
      ],
    });
  }
  const unstyled = regions.filter((r) => !r.style);
  if (unstyled.length) {
    problems.push({
      check: "unstyled_regions", count: unstyled.length,
      title: `${s(unstyled.length, "region has", "regions have")} no style`,
      text: "The style classifier learns only from regions with a style.",
      fixes: select ? [{ label: "Show me", leave: true, run: () => select(unstyled[0].id) }] : [],
    });
  }
  if (suggested.length) {
    problems.push({
      check: "unanswered_suggestions", count: suggested.length,
      title: `${s(suggested.length, "model suggestion is", "model suggestions are")} neither accepted nor rejected`,
      text: "Unanswered suggestions are not part of the submitted annotation.",
      fixes: [
        { label: "Accept all", run: () => store.transact(() => { for (const r of suggested) store.update(r.id, { suggested: false }); }) },
        { label: "Reject all", run: () => store.transact(() => { for (const r of suggested) store.remove(r.id); }) },
      ],
    });
  }
  return problems;
}

/**
 * Resolves with {overrides: [{check, count, reason}]} to submit (empty when nothing is wrong), or null to go back.
 */
export function submitChecksDialog(store, taxonomy, { select } = {}) {
  if (!submitProblems(store, taxonomy).length) return Promise.resolve({ overrides: [] });
  return new Promise((resolve) => {
    const reasons = new Map(); // check -> text typed so far (kept while the list re-renders after a fix)
    const list = h("div", { class: "checks" });
    const submit = h("button", { type: "button", class: "btn btn-primary", "data-testid": "checks-submit" }, "Submit");
    const back = h("button", { type: "button", class: "btn", "data-testid": "checks-back" }, "Go back and fix");
    const dlg = h("dialog", { class: "dialog submit-checks", "aria-labelledby": "checks-title", "data-testid": "submit-checks" },
      h("h2", { id: "checks-title", text: "Before you submit" }),
      h("div", { class: "dialog-body" }, list),
      h("div", { class: "dialog-actions" }, submit, back));
    let problems = [];
    const finish = (value) => {
      dlg.close();
      resolve(value);
    };

    function render() {
      problems = submitProblems(store, taxonomy, { select });
      clear(list);
      if (!problems.length) list.append(h("p", { class: "note", "data-testid": "checks-clear", text: "All fixed. Submit when ready." }));
      for (const p of problems) {
        const reason = h("input", { type: "text", maxlength: 1000, placeholder: "…or keep it: why is it right? (the reviewer sees this)", "aria-label": `Reason to keep: ${p.title}`, "data-testid": `reason-${p.check}` });
        reason.value = reasons.get(p.check) || "";
        reason.addEventListener("input", () => { reasons.set(p.check, reason.value); refresh(); });
        const fixes = p.fixes.map((f) => h("button", { type: "button", class: "btn btn-small", "data-testid": `fix-${p.check}`,
          on: { click: () => { f.run(); if (f.leave) finish(null); else render(); } } }, f.label));
        list.append(h("section", { class: "check", "data-check": p.check },
          h("strong", { text: p.title }), h("p", { class: "muted small", text: p.text }),
          h("div", { class: "row" }, fixes), reason));
      }
      refresh();
    }

    function refresh() {
      const missing = problems.filter((p) => (reasons.get(p.check) || "").trim().length < 3);
      submit.disabled = missing.length > 0;
      submit.title = missing.length ? "Fix each item, or say why it is right" : "";
      submit.textContent = problems.length ? "Submit with these reasons" : "Submit";
    }

    submit.addEventListener("click", () => finish({
      overrides: problems.map((p) => ({ check: p.check, count: p.count, reason: reasons.get(p.check).trim() })),
    }));
    back.addEventListener("click", () => finish(null));
    dlg.addEventListener("cancel", (ev) => { ev.preventDefault(); finish(null); });
    dlg.addEventListener("close", () => dlg.remove());
    document.body.append(dlg);
    render();
    dlg.showModal();
    const first = list.querySelector("button, input");
    if (first) first.focus();
  });
}
