// Boot, login, routing (#/ home, #/image/<id> editor) and the shared app object the views use.

import { api, query } from "./api.js";
import { h, toast, clear } from "./dom.js";
import { Taxonomy } from "./taxonomy.js";
import { openHome, parseHomeParams, STRATEGY_KEY } from "./home.js";
import { openEditorPage } from "./editor/page.js";
import { consoleLinks, openConsolePage, parseConsoleRoute } from "./console/shell.js";

const root = document.getElementById("app");
const app = {
  api,
  user: null,
  taxonomy: null,
  current: null, // the open view: {leave(), dispose()}
  userMenu,
  openNext,
};

let routing = Promise.resolve();
let loginOpen = null;

function userMenu() {
  const out = h("button", { type: "button", class: "btn btn-quiet", title: "Log out" }, "Log out");
  out.addEventListener("click", logout);
  return h("div", { class: "user" }, consoleLinks(app.user), h("span", { class: "muted small", text: `${app.user.username} · ${app.user.role}` }), out);
}

async function logout() {
  if (app.current) await app.current.leave();
  try {
    await api.post("/auth/logout", {});
  } catch {
    /* the session may be gone already */
  }
  location.hash = "#/";
  location.reload();
}

function loginForm({ onDone, message }) {
  const user = h("input", { name: "username", autocomplete: "username", required: true, maxlength: 64, id: "login-user" });
  const pass = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true, id: "login-pass" });
  const error = h("p", { class: "form-error", role: "alert" });
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Log in");
  const form = h("form", { class: "login-form", "aria-label": "Log in" },
    message ? h("p", { class: "note", text: message }) : null,
    h("label", { class: "field", for: "login-user" }, h("span", { text: "User name" }), user),
    h("label", { class: "field", for: "login-pass" }, h("span", { text: "Password" }), pass),
    error, submit);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    submit.disabled = true;
    try {
      const me = await api.post("/auth/login", { username: user.value.trim(), password: pass.value });
      api.csrf = me.csrf_token;
      onDone(me.user);
    } catch (err) {
      error.textContent = err.status === 401 ? "Wrong user name or password." : err.message;
      pass.select();
    } finally {
      submit.disabled = false;
    }
  });
  setTimeout(() => user.focus(), 0);
  return form;
}

function showLoginPage() {
  root.replaceChildren(h("div", { class: "login-page" },
    h("div", { class: "login-card" },
      h("div", { class: "brand big" }, "ink", h("span", { text: "label" })),
      h("p", { class: "muted", text: "Tattoo annotation" }),
      loginForm({ onDone: (user) => start(user) }))));
}

/** The session ended while working: log in again in a dialog, without leaving the page (nothing is lost). */
function reauthenticate() {
  if (loginOpen || !app.user) return loginOpen;
  loginOpen = new Promise((resolve) => {
    const dlg = h("dialog", { class: "dialog login-dialog" }, h("h2", { text: "Log in again" }));
    dlg.append(loginForm({
      message: "Your session ended. Your work is kept; log in to carry on saving.",
      onDone: (user) => {
        dlg.close();
        dlg.remove();
        loginOpen = null;
        if (user.username !== app.user.username) location.reload();
        if (window.inklabel && window.inklabel.autosave) window.inklabel.autosave.retry();
        resolve(user);
      },
    }));
    dlg.addEventListener("cancel", (ev) => ev.preventDefault());
    document.body.append(dlg);
    dlg.showModal();
  });
  return loginOpen;
}
api.onUnauthorized = () => reauthenticate();

async function openNext({ after } = {}) {
  const strategy = localStorage.getItem(STRATEGY_KEY) || "uncertainty";
  let item = null;
  try {
    item = await api.post("/queue/next" + query({ strategy }));
  } catch (err) {
    if (err.status === 401) return;
    if (err.code === "queue_empty") {
      toast("The queue is empty: nothing left to annotate right now.", "ok", 6000);
      location.hash = "#/";
      return;
    }
    // no queue on this server: take the oldest new image
    try {
      const list = await api.get("/images" + query({ status: "new", per_page: 2 }));
      const found = ((list && list.items) || []).find((x) => x.id !== after);
      item = found ? { image_id: found.id, kind: "annotate" } : null;
    } catch (err2) {
      toast(`Could not find the next image: ${err2.message}`, "error");
      return;
    }
  }
  if (!item || !item.image_id) {
    toast("No new images left.", "ok", 6000);
    location.hash = "#/";
    return;
  }
  app.queueItem = item;
  const hash = item.kind === "agreement" ? `#/image/${item.image_id}?copy=agreement` : `#/image/${item.image_id}`;
  if (location.hash === hash) route();
  else location.hash = hash;
}

/** Open the longest-waiting submitted image someone else annotated (reviewers); false when none is left. */
async function openNextReview({ after } = {}) {
  try {
    const q = await api.get("/reviews/queue" + query({ per_page: 50 }));
    const item = ((q && q.items) || []).find((x) => x.image_id !== after && (app.user.role === "admin" || !x.annotator || x.annotator.id !== app.user.id));
    if (!item) {
      toast("Nothing is waiting for your review.", "ok", 5000);
      return false;
    }
    location.hash = `#/image/${item.image_id}`;
    return true;
  } catch (err) {
    toast(`Could not load the review queue: ${err.message}`, "error");
    return false;
  }
}
app.openNextReview = openNextReview;

/**
 * Keep the queue lease of an image alive while the annotator is working on it (activity in the last 5
 * minutes); a lease that was lost is reported, the edits are saved either way.
 */
function startLease(imageId, isActive) {
  const item = app.queueItem && app.queueItem.image_id === imageId ? app.queueItem : null;
  if (!item || !item.lease_expires_at) return null;
  let timer = null;
  let stopped = false;
  const schedule = (expires) => {
    if (stopped) return;
    const left = expires ? Date.parse(expires) - Date.now() : 240_000;
    timer = setTimeout(beat, Math.max(10_000, Math.min(240_000, left / 2)));
  };
  const beat = async () => {
    if (!isActive()) return schedule(null);
    try {
      const r = await api.post("/queue/heartbeat", { image_id: imageId });
      schedule(r && r.lease_expires_at);
    } catch (err) {
      if (err.status === 409) toast("Your hold on this image has ended, so the queue may hand it to someone else. Your edits are still saved.", "warn", 8000);
      else if (err.transient) timer = setTimeout(beat, 30_000);
    }
  };
  schedule(item.lease_expires_at);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
app.startLease = startLease;

function parseRoute() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, q] = hash.split("?");
  const m = /^\/image\/(\d+)$/.exec(path);
  if (m) return { name: "editor", id: Number(m[1]), copy: new URLSearchParams(q || "").get("copy") === "agreement" ? "agreement" : null };
  return parseConsoleRoute(path, q) || { name: "home", params: parseHomeParams(q) };
}

function route() {
  routing = routing.then(async () => {
    if (app.current) {
      await app.current.leave();
      app.current.dispose();
      app.current = null;
    }
    const r = parseRoute();
    clear(root);
    document.body.dataset.view = r.name;
    if (r.name === "editor") {
      app.current = await openEditorPage({ root, app, imageId: r.id, copy: r.copy });
      document.title = `Image ${r.id} · inklabel`;
    } else if (r.name === "console") {
      app.current = await openConsolePage({ root, app, page: r.page, params: r.params });
    } else {
      app.current = await openHome({ root, app, params: r.params });
      document.title = "inklabel";
    }
  }).catch((err) => {
    console.error(err);
    toast(`Something went wrong: ${err.message}`, "error", 8000);
  });
  return routing;
}

async function start(user) {
  app.user = user;
  try {
    app.taxonomy = new Taxonomy(await api.get("/taxonomy"));
  } catch (err) {
    root.replaceChildren(h("div", { class: "empty-state" }, h("h2", { text: "Could not load the taxonomy" }), h("p", { text: err.message })));
    return;
  }
  window.addEventListener("hashchange", route);
  await route();
  document.body.dataset.ready = "1";
}

async function boot() {
  try {
    const me = await api.get("/auth/me");
    api.csrf = me.csrf_token;
    await start(me.user);
  } catch (err) {
    if (err.status === 401) showLoginPage();
    else root.replaceChildren(h("div", { class: "empty-state" }, h("h2", { text: "The server cannot be reached" }), h("p", { text: err.message }),
      h("button", { class: "btn", type: "button", on: { click: () => location.reload() } }, "Try again")));
  }
}

boot();
