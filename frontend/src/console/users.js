// Users (admins): list, create, change role, deactivate / activate, reset password, list and revoke API tokens.

import { dialog, h, toast } from "../dom.js";
import { query } from "../api.js";
import { card, emptyRow, field, fmtDate, pager } from "./common.js";

const PER_PAGE = 50;
const ROLES = ["annotator", "reviewer", "admin"];

function roleSelect(user, onChange) {
  const s = h("select", { "aria-label": `Role of ${user.username}`, "data-testid": "role-select" }, ROLES.map((r) => h("option", { value: r, text: r })));
  s.value = user.role;
  s.addEventListener("change", () => onChange(s.value, () => { s.value = user.role; }));
  return s;
}

async function askPassword(username) {
  const input = h("input", { type: "password", minlength: 8, autocomplete: "new-password", "aria-label": "New password", "data-testid": "new-password" });
  setTimeout(() => input.focus(), 0);
  const ok = await dialog({ title: `New password for ${username}`, body: [h("p", { class: "small muted", text: "At least 8 characters. Their sessions and API tokens stop working." }), input],
    buttons: [{ label: "Cancel", value: false }, { label: "Set password", value: true, kind: "primary" }], cancelValue: false });
  return ok ? input.value : null;
}

function tokensPanel(api, user) {
  const body = h("div", {}, h("p", { class: "muted small", text: "Loading tokens…" }));
  const showRevoked = h("input", { type: "checkbox" });
  const secret = h("div", {});
  const load = async () => {
    const data = await api.get("/auth/tokens" + query({ user_id: user.id, include_revoked: showRevoked.checked ? "true" : "", per_page: 200 }));
    body.replaceChildren(h("table", { class: "c-table compact", "data-testid": "tokens-table" },
      h("thead", {}, h("tr", {}, ["Name", "Prefix", "Created", "Last used", "Status", ""].map((t) => h("th", { text: t })))),
      h("tbody", {}, data.items.length ? data.items.map((t) => h("tr", { "data-token-id": t.id },
        h("td", { text: t.name || "—" }), h("td", { class: "mono", text: t.prefix }), h("td", { class: "small", text: fmtDate(t.created_at) }),
        h("td", { class: "small", text: fmtDate(t.last_used_at) }), h("td", { text: t.revoked_at ? `revoked ${fmtDate(t.revoked_at)}` : "active" }),
        h("td", {}, t.revoked_at ? null : h("button", { type: "button", class: "btn btn-small btn-danger-quiet", "data-testid": "revoke-token", on: { click: async () => {
          try {
            await api.del(`/auth/tokens/${t.id}`);
            toast(`Token ${t.prefix}… revoked: requests with it now get 401.`, "ok");
            load();
          } catch (err) {
            toast(err.message, "error");
          }
        } } }, "Revoke")))) : emptyRow(6, "No tokens."))));
  };
  showRevoked.addEventListener("change", load);
  const name = h("input", { placeholder: "what it is for", maxlength: 128, "aria-label": "Token name" });
  const create = h("button", { type: "button", class: "btn btn-small", disabled: !user.active }, "New token");
  create.addEventListener("click", async () => {
    try {
      const t = await api.post("/auth/tokens", { user_id: user.id, name: name.value.trim() });
      secret.replaceChildren(h("p", { class: "note" }, "Copy this token now; it is never shown again: ", h("code", { class: "mono", "data-testid": "token-secret", text: t.token })));
      name.value = "";
      load();
    } catch (err) {
      toast(err.message, "error");
    }
  });
  load().catch((err) => body.replaceChildren(h("p", { class: "form-error", text: err.message })));
  return h("div", { class: "tokens", "data-testid": "tokens-panel" },
    h("div", { class: "row tight" }, h("strong", { text: `API tokens of ${user.username}` }),
      h("label", { class: "check" }, showRevoked, h("span", { class: "small", text: "show revoked" }))),
    body, h("div", { class: "row" }, name, create), secret);
}

function createForm(api, onCreated) {
  const username = h("input", { name: "username", required: true, maxlength: 64, pattern: "[A-Za-z0-9._\\-]{1,64}", autocomplete: "off" });
  const password = h("input", { name: "password", type: "password", required: true, minlength: 8, autocomplete: "new-password" });
  const role = h("select", { name: "role" }, ROLES.map((r) => h("option", { value: r, text: r })));
  const error = h("p", { class: "form-error", role: "alert" });
  const form = h("form", { class: "c-form", "aria-label": "New user" },
    h("div", { class: "c-row" }, field("User name", username), field("Password", password, "8 characters or more"), field("Role", role)),
    error, h("div", { class: "row" }, h("button", { type: "submit", class: "btn btn-primary", "data-testid": "create-user" }, "Create user")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    try {
      const user = await api.post("/users", { username: username.value.trim(), password: password.value, role: role.value });
      toast(`User ${user.username} created.`, "ok");
      form.reset();
      onCreated(user);
    } catch (err) {
      const first = err.details && err.details.errors && err.details.errors[0];
      error.textContent = first ? `${first.loc.join(".")}: ${first.message}` : err.message;
    }
  });
  return form;
}

export async function render({ main, app, params, go }) {
  const { api } = app;
  const page = Math.max(1, parseInt(params.page || "1", 10) || 1);
  const listBody = h("div", {}, h("p", { class: "muted", text: "Loading users…" }));
  const tokensHost = h("div", {});

  const update = async (user, change, undo) => {
    try {
      await api.put(`/users/${user.id}`, change);
      toast(`${user.username} updated.`, "ok");
      await load();
    } catch (err) {
      toast(err.message, "error", 7000);
      if (undo) undo();
    }
  };

  const load = async () => {
    const data = await api.get("/users" + query({ page, per_page: PER_PAGE }));
    listBody.replaceChildren(h("table", { class: "c-table", "data-testid": "users-table" },
      h("thead", {}, h("tr", {}, ["User", "Role", "Status", "Created", ""].map((t) => h("th", { text: t })))),
      h("tbody", {}, data.items.map((u) => h("tr", { "data-user": u.username, class: u.active ? "" : "inactive" },
        h("td", {}, h("strong", { text: u.username }), u.id === app.user.id ? h("span", { class: "muted small", text: " (you)" }) : null),
        h("td", {}, roleSelect(u, (role, undo) => update(u, { role }, undo))),
        h("td", { text: u.active ? "active" : "deactivated" }),
        h("td", { class: "small", text: fmtDate(u.created_at) }),
        h("td", { class: "actions" },
          h("button", { type: "button", class: "btn btn-small", on: { click: async () => {
            const pw = await askPassword(u.username);
            if (pw) update(u, { password: pw });
          } } }, "Reset password"),
          h("button", { type: "button", class: "btn btn-small", "data-testid": "show-tokens", on: { click: () => tokensHost.replaceChildren(card(null, tokensPanel(api, u))) } }, "Tokens"),
          h("button", { type: "button", class: u.active ? "btn btn-small btn-danger-quiet" : "btn btn-small", on: { click: () => update(u, { active: !u.active }) } },
            u.active ? "Deactivate" : "Activate")))))),
    pager({ page, perPage: PER_PAGE, total: data.total, onPage: (p) => go({ page: p }) }));
  };

  main.append(h("div", { class: "c-head" }, h("h1", { text: "Users" })),
    card("New user", createForm(api, () => load())),
    card("Users", listBody), tokensHost);
  await load();
  return () => {};
}
