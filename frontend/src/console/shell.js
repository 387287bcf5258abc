// The ML console: its pages (#/dashboard, #/gallery, #/exports, #/models, #/jobs, #/users), who may see each,
// and the frame around them (top bar with the page tabs). Each page module exports
// render({main, app, params, go}) and returns a dispose() that stops its polling and charts.

import { h } from "../dom.js";
import { query } from "../api.js";

const RANK = { annotator: 0, reviewer: 1, admin: 2 };

if (!document.querySelector('link[href="/console.css"]')) document.head.append(h("link", { rel: "stylesheet", href: "/console.css" }));

export const CONSOLE_PAGES = [
  { key: "dashboard", label: "Dashboard", role: "reviewer", load: () => import("./dashboard.js") },
  { key: "gallery", label: "Low concentration", role: "admin", load: () => import("./gallery.js") },
  { key: "exports", label: "Exports", role: "admin", load: () => import("./exports.js") },
  { key: "models", label: "Models", role: "admin", load: () => import("./models.js") },
  { key: "jobs", label: "Jobs", role: "admin", load: () => import("./jobs.js") },
  { key: "users", label: "Users", role: "admin", load: () => import("./users.js") },
];

export function canSee(user, page) {
  return !!user && (RANK[user.role] ?? -1) >= RANK[page.role];
}

/** The console pages this user may open (none for annotators). */
export function visiblePages(user) {
  return CONSOLE_PAGES.filter((p) => canSee(user, p));
}

/** {name: "console", page, params} for a console hash path, else null. */
export function parseConsoleRoute(path, q) {
  const m = /^\/([a-z]+)\/?$/.exec(path);
  const page = m && CONSOLE_PAGES.find((p) => p.key === m[1]);
  return page ? { name: "console", page: page.key, params: Object.fromEntries(new URLSearchParams(q || "")) } : null;
}

/** Links to the console for the top bar of other views (nothing for annotators). */
export function consoleLinks(user) {
  const pages = visiblePages(user);
  if (!pages.length) return null;
  return h("a", { class: "btn btn-quiet", href: `#/${pages[0].key}`, "data-testid": "console-link", title: "Datasets, exports, models, jobs and users" }, "Console");
}

export async function openConsolePage({ root, app, page: key, params }) {
  const page = CONSOLE_PAGES.find((p) => p.key === key);
  const tabs = visiblePages(app.user).map((p) => h("a", {
    href: `#/${p.key}`, class: ["c-tab", p.key === key ? "active" : ""], "aria-current": p.key === key ? "page" : undefined,
    "data-testid": `tab-${p.key}`,
  }, p.label));
  const main = h("main", { class: "c-main", "data-page": key });
  root.replaceChildren(h("div", { class: "console" },
    h("header", { class: "topbar" },
      h("a", { class: "brand", href: "#/", title: "Home" }, "ink", h("span", { text: "label" })),
      h("nav", { class: "c-tabs", "aria-label": "Console" }, tabs),
      h("div", { class: "spacer" }),
      app.userMenu()),
    main));
  document.title = `${page.label} · inklabel`;
  if (!canSee(app.user, page)) {
    main.append(h("div", { class: "empty-state", "data-testid": "not-allowed" },
      h("h2", { text: "Not available for your role" }),
      h("p", { text: `The ${page.label.toLowerCase()} page is for ${page.role}s. Ask an admin if you need it.` }),
      h("a", { class: "btn", href: "#/" }, "Back to the images")));
    return { leave: async () => true, dispose() {} };
  }
  const go = (next) => {
    location.hash = `#/${key}` + query(next);
  };
  let dispose = () => {};
  try {
    const mod = await page.load();
    dispose = (await mod.render({ main, app, params, go })) || dispose;
  } catch (err) {
    console.error(err);
    main.append(h("div", { class: "empty-state" }, h("h2", { text: `Could not open ${page.label}` }), h("p", { text: err.message })));
  }
  return { leave: async () => true, dispose: () => dispose() };
}
