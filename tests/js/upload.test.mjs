import { test } from "node:test";
import assert from "node:assert/strict";
import { uploadBatches, uploadFiles, uploadSummary, UPLOAD_BATCH, UPLOAD_BATCH_BYTES } from "../../frontend/src/upload.js";
import { ApiError } from "../../frontend/src/api.js";

function file(name) {
  return new File([new Uint8Array([1, 2, 3])], name, { type: "image/jpeg" });
}

test("files go up in batches, and every answer is counted", async () => {
  const sent = [];
  const api = {
    upload: async (path, form) => {
      const names = form.getAll("file").map((f) => f.name);
      sent.push([path, names]);
      if (names.includes("bad.jpg")) {
        return { images: names.filter((n) => n !== "bad.jpg").map((n, i) => ({ id: sent.length * 100 + i, duplicate: n === "dup.jpg" })),
                 rejected: [{ filename: "bad.jpg", code: "not_an_image", message: "Not a recognised image" }] };
      }
      return { images: names.map((n, i) => ({ id: sent.length * 100 + i, duplicate: false })), rejected: [] };
    },
  };
  const files = Array.from({ length: UPLOAD_BATCH + 2 }, (_, i) => file(`p${i}.jpg`));
  files[1] = file("bad.jpg");
  files[2] = file("dup.jpg");
  const progress = [];
  const out = await uploadFiles(api, files, (done, total) => progress.push([done, total]));
  assert.equal(sent.length, 2);
  assert.deepEqual(sent.map(([path, names]) => [path, names.length]), [["/images", UPLOAD_BATCH], ["/images", 2]]);
  assert.deepEqual(progress, [[UPLOAD_BATCH, files.length], [files.length, files.length]]);
  assert.equal(out.added, files.length - 2);
  assert.equal(out.duplicates, 1);
  assert.equal(uploadSummary(out), `${files.length - 2} added · 1 already here · 1 refused`);
});

test("a refused batch is reported file by file and the next batches still go", async () => {
  let calls = 0;
  const api = {
    upload: async (path, form) => {
      calls += 1;
      const names = form.getAll("file").map((f) => f.name);
      if (calls === 1) { // every file refused: a 4xx whose details list them
        throw new ApiError(415, "not_an_image", "Not a recognised image",
          { rejected: names.map((n) => ({ filename: n, message: "Not a recognised image" })) });
      }
      if (calls === 2) throw new ApiError(0, "offline", "Cannot reach the server.");
      return { images: names.map((n, i) => ({ id: i, duplicate: false })), rejected: [] };
    },
  };
  const files = Array.from({ length: 2 * UPLOAD_BATCH + 1 }, (_, i) => file(`f${i}.jpg`));
  const out = await uploadFiles(api, files, () => {});
  assert.equal(calls, 3);
  assert.equal(out.rejected.length, 2 * UPLOAD_BATCH);
  assert.equal(out.rejected[0].message, "Not a recognised image");
  assert.equal(out.rejected[UPLOAD_BATCH].filename, `f${UPLOAD_BATCH}.jpg`);
  assert.equal(out.rejected[UPLOAD_BATCH].message, "Cannot reach the server.");
  assert.equal(uploadSummary(out), `1 added · ${2 * UPLOAD_BATCH} refused`);
});

test("FormData bodies go up as multipart with the CSRF header", async () => {
  const { createApi } = await import("../../frontend/src/api.js");
  const calls = [];
  const api = createApi({ fetchImpl: async (url, init) => {
    calls.push({ url, init });
    return { ok: true, status: 201, headers: { get: () => "application/json" }, json: async () => ({ images: [], rejected: [] }) };
  } });
  api.csrf = "tok";
  const form = new FormData();
  form.append("file", file("x.jpg"), "x.jpg");
  await api.upload("/images", form);
  assert.equal(calls[0].init.body, form);
  assert.equal(calls[0].init.headers["Content-Type"], undefined); // the browser adds the multipart boundary
  assert.equal(calls[0].init.headers["X-CSRF-Token"], "tok");
});

test("large photos go up in smaller batches, one too large for a batch alone", () => {
  const sized = (name, bytes) => ({ name, size: bytes });
  const mb = 1024 * 1024;
  const files = [sized("a", 30 * mb), sized("b", 30 * mb), sized("c", 30 * mb), sized("huge", UPLOAD_BATCH_BYTES + mb), sized("d", mb)];
  assert.deepEqual(uploadBatches(files).map((b) => b.map((f) => f.name)), [["a", "b"], ["c"], ["huge"], ["d"]]);
  const small = Array.from({ length: UPLOAD_BATCH + 1 }, (_, i) => sized(`s${i}`, 1000));
  assert.deepEqual(uploadBatches(small).map((b) => b.length), [UPLOAD_BATCH, 1]);
  assert.deepEqual(uploadBatches([]), []);
});
