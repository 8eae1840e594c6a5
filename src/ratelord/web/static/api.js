// The daemon's HTTP API as the page uses it: bearer token from this tab's session,
// asked for once (never a 401 in the console: /ui/session says whether one is needed).
const KEY = "ratelord-token";

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail?.message || `HTTP ${status}`);
    this.status = status;
    this.code = detail?.code;
  }
}

async function session(token) {
  const headers = token ? { authorization: `Bearer ${token}` } : {};
  const response = await fetch("/ui/session", { headers });
  return response.json();
}

let signingIn = null;

/** Make sure we hold a token the daemon accepts (when it wants one). */
export function signIn() {
  if (!signingIn) signingIn = doSignIn();
  return signingIn;
}

async function doSignIn() {
  let state = await session(sessionStorage.getItem(KEY));
  if (!state.auth_required || state.authorized) return;
  const dialog = document.getElementById("login");
  const input = document.getElementById("login-token");
  const error = document.getElementById("login-error");
  error.hidden = true;
  dialog.showModal();
  for (;;) {
    await new Promise((resolve) =>
      document.getElementById("login-form").addEventListener("submit", resolve, { once: true }));
    const token = input.value.trim();
    state = await session(token);
    if (state.authorized) {
      sessionStorage.setItem(KEY, token);
      dialog.close();
      return;
    }
    error.hidden = false;
    dialog.showModal();
  }
}

/** GET (or POST with ``json``) an API path; the answer's JSON, or an ApiError. */
export async function api(path, { json, method } = {}) {
  await signIn();
  const headers = {};
  const token = sessionStorage.getItem(KEY);
  if (token) headers.authorization = `Bearer ${token}`;
  let body;
  if (json !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(json);
  }
  const response = await fetch(path, { method: method || (body ? "POST" : "GET"), headers, body });
  const data = await response.json();
  if (!response.ok) throw new ApiError(response.status, data.error);
  return data;
}

/** Wait until the history index has caught up with the log (it is built once, then tailed). */
export async function historyReady(onProgress) {
  for (;;) {
    const state = await api("/v1/history/status");
    if (state.ready) return state;
    onProgress?.(state);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
