// Images from the browser: the home page's "Upload images" button and drag-and-drop. Files go up a few at a time
// (POST /api/v1/images, multipart field `file`) with a progress bar; the server checks each file's content, and the
// answer says what was added, what was already there and what was refused and why.

import { h } from "./dom.js";

export const ACCEPT = "image/jpeg,image/png,image/webp";
export const UPLOAD_BATCH = 8; // files per request: progress moves, and one bad batch loses no other
// bytes per request, well under the server's request limit (INKLABEL_MAX_REQUEST_BYTES, 200 MB), so that large
// photos go up in smaller batches instead of being refused together; a larger file goes alone
export const UPLOAD_BATCH_BYTES = 64 * 1024 * 1024;

/** Consecutive batches of at most UPLOAD_BATCH files and UPLOAD_BATCH_BYTES bytes (a larger file alone). */
export function uploadBatches(files) {
  const batches = [];
  let batch = [], bytes = 0;
  for (const file of files) {
    if (batch.length && (batch.length >= UPLOAD_BATCH || bytes + file.size > UPLOAD_BATCH_BYTES)) {
      batches.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(file);
    bytes += file.size;
  }
  if (batch.length) batches.push(batch);
  return batches;
}

/** Upload `files` (an array of File) in batches; onProgress(done, total). Never throws: failures are refusals. */
export async function uploadFiles(api, files, onProgress = () => {}) {
  const out = { added: 0, duplicates: 0, rejected: [] };
  let done = 0;
  for (const batch of uploadBatches(files)) {
    const form = new FormData();
    for (const file of batch) form.append("file", file, file.name);
    try {
      const answer = await api.upload("/images", form);
      for (const image of answer.images || []) {
        if (image.duplicate) out.duplicates += 1;
        else out.added += 1;
      }
      out.rejected.push(...(answer.rejected || []));
    } catch (err) {
      const refused = err.details && err.details.rejected;
      if (refused) out.rejected.push(...refused);
      else for (const file of batch) out.rejected.push({ filename: file.name, code: err.code, message: err.message });
    }
    done += batch.length;
    onProgress(done, files.length);
  }
  return out;
}

/** "3 added · 1 already here · 2 refused" */
export function uploadSummary(out) {
  const parts = [`${out.added} added`];
  if (out.duplicates) parts.push(`${out.duplicates} already here`);
  if (out.rejected.length) parts.push(`${out.rejected.length} refused`);
  return parts.join(" · ");
}

/** The upload control of the home page: a button, a status line with a progress bar, and the page as a drop zone.
 *  onDone(out) runs after each upload (the home page draws its grid again). */
export function uploadControl({ api, dropZone, onDone }) {
  const input = h("input", { type: "file", accept: ACCEPT, multiple: true, hidden: true, "data-testid": "upload-input" });
  const button = h("button", { type: "button", class: "btn btn-big", "data-testid": "upload-images", title: "Add JPEG, PNG or WebP photos to the pool (or drop them on this page)" }, "Upload images");
  const status = h("div", { class: "upload-status", role: "status", "data-testid": "upload-status", hidden: true });
  let busy = false;

  async function send(fileList) {
    const files = Array.from(fileList || []);
    if (!files.length || busy) return;
    busy = true;
    button.disabled = true;
    const bar = h("progress", { max: files.length, value: 0 });
    const text = h("span", { text: `Uploading ${files.length} file${files.length === 1 ? "" : "s"}…` });
    status.hidden = false;
    status.replaceChildren(text, bar);
    const out = await uploadFiles(api, files, (done, total) => {
      bar.value = done;
      text.textContent = `Uploading… ${done} of ${total}`;
    });
    busy = false;
    button.disabled = false;
    input.value = "";
    const refused = out.rejected.length ? h("ul", { class: "upload-refused" },
      out.rejected.map((r) => h("li", { text: `${r.filename || "a file"}: ${r.message}` }))) : null;
    const dismiss = h("button", { type: "button", class: "btn btn-small", "aria-label": "Dismiss", title: "Dismiss", on: { click: () => { status.hidden = true; } } }, "×");
    status.replaceChildren(h("strong", { text: uploadSummary(out) }), h("span", { class: "spacer" }), dismiss, refused);
    if (onDone) onDone(out, status);
  }

  button.addEventListener("click", () => input.click());
  input.addEventListener("change", () => send(input.files));
  if (dropZone) {
    dropZone.addEventListener("dragover", (ev) => {
      if (!ev.dataTransfer || !Array.from(ev.dataTransfer.types || []).includes("Files")) return;
      ev.preventDefault();
      dropZone.classList.add("dropping");
    });
    dropZone.addEventListener("dragleave", (ev) => {
      if (ev.target === dropZone) dropZone.classList.remove("dropping");
    });
    dropZone.addEventListener("drop", (ev) => {
      if (!ev.dataTransfer || !ev.dataTransfer.files.length) return;
      ev.preventDefault();
      dropZone.classList.remove("dropping");
      send(ev.dataTransfer.files);
    });
  }
  return { button, input, status, send };
}
