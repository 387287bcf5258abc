// fetch wrapper for /api/v1: JSON in and out, the CSRF header on writes, errors turned into ApiError with the
// server's {code, message, details} (or status 0 / "offline" when the server cannot be reached).

export class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }

  get offline() {
    return this.status === 0;
  }

  /** Worth retrying later: the network, or the server being down or overloaded. */
  get transient() {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
}

const GENERIC = {
  0: "Cannot reach the server. Check the connection; your work is kept on this computer.",
  401: "Your session has ended. Log in again.",
  403: "You are not allowed to do this.",
  404: "Not found.",
  413: "This is larger than the server accepts.",
  429: "The server is busy. Retrying shortly.",
  500: "The server had a problem. Retrying shortly.",
};

export function messageFor(status) {
  return GENERIC[status] || (status >= 500 ? GENERIC[500] : `Request failed (${status}).`);
}

export function createApi({ base = "/api/v1", fetchImpl = (...a) => globalThis.fetch(...a) } = {}) {
  const api = {
    csrf: null,
    onUnauthorized: null, // called on a 401 from any call except login

    async request(method, path, body, options = {}) {
      const headers = { Accept: "application/json" };
      const form = typeof FormData !== "undefined" && body instanceof FormData; // multipart: the browser sets the type
      if (body !== undefined && !form) headers["Content-Type"] = "application/json";
      if (method !== "GET" && api.csrf) headers["X-CSRF-Token"] = api.csrf;
      let response;
      try {
        response = await fetchImpl(base + path, {
          method,
          headers,
          body: body === undefined || form ? body : JSON.stringify(body),
          credentials: "same-origin",
          signal: options.signal,
          keepalive: options.keepalive || false,
        });
      } catch (err) {
        if (err && err.name === "AbortError") throw err;
        throw new ApiError(0, "offline", messageFor(0));
      }
      let data = null;
      const type = response.headers.get("Content-Type") || "";
      if (type.includes("application/json")) {
        try {
          data = await response.json();
        } catch {
          data = null;
        }
      }
      if (!response.ok) {
        const e = data && data.error;
        const error = new ApiError(response.status, (e && e.code) || `http_${response.status}`, (e && e.message) || messageFor(response.status), e && e.details);
        if (response.status === 401 && path !== "/auth/login" && api.onUnauthorized) api.onUnauthorized(error);
        throw error;
      }
      return data;
    },
    get: (path, options) => api.request("GET", path, undefined, options),
    post: (path, body = {}, options) => api.request("POST", path, body, options),
    put: (path, body, options) => api.request("PUT", path, body, options),
    del: (path, options) => api.request("DELETE", path, undefined, options),
    /** POST a FormData (multipart), e.g. files to /images. */
    upload: (path, form, options) => api.request("POST", path, form, options),
  };
  return api;
}

/** Query string from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? "?" + s : "";
}

export const api = createApi();
