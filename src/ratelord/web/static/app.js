// The page: a client-side router over four views.  Every view keeps its state (time
// range, filters, selection, scenario parameters) in the URL, so any view is a link.
import { signIn } from "./api.js";
import * as dashboard from "./views/dashboard.js";
import * as timeline from "./views/timeline.js";
import * as scenario from "./views/scenario.js";
import * as explorer from "./views/explorer.js";

const VIEWS = { dashboard, timeline, scenario, explorer };
const THEME_KEY = "ratelord-theme";
let cleanup = null;
let renderId = 0;

function viewName() {
  const name = location.pathname.replace(/^\/ui\/?/, "").split("/")[0];
  return VIEWS[name] ? name : "dashboard";
}

/** The view's context: read and write its URL parameters, move to another view. */
const ctx = {
  params: () => new URLSearchParams(location.search),
  /** Record new parameters in the URL (replacing the entry unless ``push``). */
  setParams(values, { push = false } = {}) {
    const params = new URLSearchParams(location.search);
    for (const [key, value] of Object.entries(values)) {
      if (value === null || value === undefined || value === "") params.delete(key);
      else params.set(key, value);
    }
    const url = `${location.pathname}${params.toString() ? "?" + params : ""}`;
    if (push) history.pushState(null, "", url);
    else history.replaceState(null, "", url);
  },
  refresh() {
    render();
  },
  navigate(path) {
    history.pushState(null, "", path);
    render();
  },
  status(text) {
    document.getElementById("status").textContent = text || "";
  },
};

async function render() {
  const id = ++renderId;
  const name = viewName();
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.view === name));
  document.title = `ratelord · ${name}`;
  if (cleanup) { try { cleanup(); } catch (_) { /* the old view is gone anyway */ } cleanup = null; }
  const main = document.getElementById("view");
  main.innerHTML = "";
  main.dataset.view = name;
  delete main.dataset.ready;
  delete main.dataset.seq;
  try {
    const done = await VIEWS[name].render(main, ctx);
    if (id === renderId) cleanup = done || null;
    else if (done) done();
  } catch (error) {
    if (id !== renderId) return;
    main.innerHTML = `<div class="card error"><h2>Could not load this view</h2><p>${String(error.message || error)}</p></div>`;
  }
}

function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
  document.getElementById("theme").textContent = theme === "dark" ? "Light" : "Dark";
}

function setupTheme() {
  const requested = new URLSearchParams(location.search).get("theme");
  applyTheme(requested || localStorage.getItem(THEME_KEY) || "dark");
  document.getElementById("theme").addEventListener("click", () => {
    const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
    localStorage.setItem(THEME_KEY, next);
    applyTheme(next);
    render();  // charts read their colours when drawn
  });
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-link]");
  if (!link || event.metaKey || event.ctrlKey || event.shiftKey) return;
  event.preventDefault();
  ctx.navigate(link.getAttribute("href"));
});
window.addEventListener("popstate", render);
setupTheme();
if (location.pathname === "/ui" || location.pathname === "/ui/") history.replaceState(null, "", `/ui/dashboard${location.search}`);
signIn().then(render);
