import { test } from "node:test";
import assert from "node:assert/strict";
import { createApi, query, ApiError } from "../../frontend/src/api.js";
import { Taxonomy, parseShortcut, contrastText, UNSTYLED_COLOR } from "../../frontend/src/taxonomy.js";
import { countsFromStats } from "../../frontend/src/home.js";

function fakeFetch(responses) {
  const calls = [];
  const impl = async (url, init) => {
    calls.push({ url, init });
    const r = responses.shift();
    if (r instanceof Error) throw r;
    return {
      ok: r.status < 400,
      status: r.status,
      headers: { get: () => (r.body === undefined ? "text/html" : "application/json") },
      json: async () => r.body,
    };
  };
  return { impl, calls };
}

test("writes carry the CSRF header and JSON; reads do not", async () => {
  const { impl, calls } = fakeFetch([{ status: 200, body: { ok: 1 } }, { status: 200, body: { version: 2 } }]);
  const api = createApi({ fetchImpl: impl });
  api.csrf = "tok";
  await api.get("/images");
  await api.put("/images/1/annotation", { a: 1 });
  assert.equal(calls[0].url, "/api/v1/images");
  assert.equal(calls[0].init.headers["X-CSRF-Token"], undefined);
  assert.equal(calls[1].init.headers["X-CSRF-Token"], "tok");
  assert.equal(calls[1].init.headers["Content-Type"], "application/json");
  assert.equal(calls[1].init.body, '{"a":1}');
});

test("server errors keep code, message and details; network failures are status 0", async () => {
  let unauthorized = 0;
  const { impl } = fakeFetch([
    { status: 409, body: { error: { code: "stale_version", message: "stale", details: { current: { version: 3 } } } } },
    new TypeError("Failed to fetch"),
    { status: 502 },
    { status: 401, body: { error: { code: "unauthorized", message: "Log in", details: {} } } },
  ]);
  const api = createApi({ fetchImpl: impl });
  api.onUnauthorized = () => unauthorized++;
  await assert.rejects(api.put("/x", {}), (e) => e instanceof ApiError && e.status === 409 && e.code === "stale_version" && e.details.current.version === 3 && !e.transient);
  await assert.rejects(api.put("/x", {}), (e) => e.status === 0 && e.offline && e.transient);
  await assert.rejects(api.get("/x"), (e) => e.status === 502 && e.code === "http_502" && e.transient);
  await assert.rejects(api.get("/x"), (e) => e.status === 401);
  assert.equal(unauthorized, 1);
});

test("query strings leave out empty values", () => {
  assert.equal(query({ status: "new", style: "", page: 2, flag: null }), "?status=new&page=2");
  assert.equal(query({}), "");
});

test("taxonomy shortcuts by key code, colours and trainable flags", () => {
  const t = new Taxonomy({
    styles: [
      { key: "tribal", label: "Tribal", color: "#111827", shortcut: "3", trainable: true },
      { key: "geometric", label: "Geometric", color: "#2563eb", shortcut: "0" },
      { key: "realism", label: "Realism", color: "not-a-colour", shortcut: "shift+2", trainable: false },
    ],
    flags: [{ key: "not_tattoo", label: "Not a tattoo" }],
  });
  assert.equal(t.styleForEvent({ code: "Digit3", shiftKey: false }), "tribal");
  assert.equal(t.styleForEvent({ code: "Numpad3", shiftKey: false }), "tribal");
  assert.equal(t.styleForEvent({ code: "Digit2", shiftKey: true }), "realism");
  assert.equal(t.styleForEvent({ code: "KeyA", shiftKey: false }), null);
  assert.equal(t.shortcutText("geometric"), "Alt+0"); // 0 alone fits the view
  assert.equal(t.shortcutText("realism"), "Shift+2");
  assert.equal(t.color("realism"), UNSTYLED_COLOR, "an invalid colour falls back");
  assert.equal(t.trainable("realism"), false);
  assert.equal(t.flagLabel("not_tattoo"), "Not a tattoo");
  assert.deepEqual(parseShortcut("SHIFT+9"), { shift: true, digit: "9" });
  assert.equal(parseShortcut("ctrl+x"), null);
  assert.equal(contrastText("#111827"), "#fff");
  assert.equal(contrastText("#fde047"), "#000");
});

test("today's counts from /stats/me", () => {
  const counts = countsFromStats({ today: { saves: 12, images: 4, active_ms: 1_500_000, accepted: 1, rejected: 0 }, to_fix: 2 });
  assert.deepEqual(counts, [["images worked on today", 4], ["saves", 12], ["minutes active", 25], ["accepted", 1], ["rejected", 0], ["to fix after review →", 2, "#/?status=rejected"]]);
  assert.equal(countsFromStats({}), null);
  // "1 image", "1 minute" (issue 19 item 11)
  const one = countsFromStats({ today: { saves: 1, images: 1, active_ms: 60_000 } });
  assert.deepEqual(one.slice(0, 3), [["image worked on today", 1], ["save", 1], ["minute active", 1]]);
});
