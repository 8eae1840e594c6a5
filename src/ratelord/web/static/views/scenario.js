// The scenario lab: a recorded period as the baseline, modifiers, a sandboxed replay
// through the real engine, and the comparison with what really happened.
import { api, historyReady } from "../api.js";
import { duration, esc, num, pct, when } from "../format.js";

const FIELDS = ["since", "until", "traffic", "limit", "clone", "clones", "policy"];

export async function render(el, ctx) {
  const params = ctx.params();
  const value = (k, d) => params.get(k) ?? d;
  el.innerHTML = `
    <div class="toolbar"><h1>Scenario lab</h1>
      <span class="muted">Replays a recorded period through the real engine in a sandbox: the live daemon and its log are never touched.</span></div>
    <div class="grid cols-side">
      <form class="card form" id="form">
        <label for="since">baseline from</label><input id="since" name="since" value="${esc(value("since", "24h"))}" title="a duration ago (24h, 7d) or a time (RFC 3339)">
        <label for="until">until</label><input id="until" name="until" value="${esc(value("until", "now"))}">
        <label for="traffic">traffic ×</label><input id="traffic" name="traffic" type="number" step="0.1" min="0.1" max="100" value="${esc(value("traffic", "1"))}">
        <label for="limit">limits ×</label><input id="limit" name="limit" type="number" step="0.1" min="0.1" max="100" value="${esc(value("limit", "1"))}">
        <label for="clone">add agents like</label>
        <div style="display:flex;gap:8px"><select id="clone" name="clone"><option value="">(none)</option></select>
          <input id="clones" name="clones" type="number" min="0" max="1000" value="${esc(value("clones", "0"))}" style="width:90px" aria-label="how many"></div>
        <label for="policy">policy</label>
        <textarea id="policy" name="policy" placeholder="empty: the active policy. Paste a policy file, or an edited copy, to replay under it.">${esc(value("policy", ""))}</textarea>
        <span></span><div><button class="primary" type="submit" id="run">Run scenario</button> <span class="muted" id="note"></span></div>
      </form>
      <div class="card"><h2>Recorded vs scenario</h2><div id="result"><p class="muted">Choose a period and modifiers, then run.</p></div></div>
    </div>
    <div class="grid cols-2" style="margin-top:14px">
      <div class="card"><h2>Policy triggers — recorded</h2><div id="heat-base"></div></div>
      <div class="card"><h2>Policy triggers — scenario</h2><div id="heat-scen"></div></div>
    </div>`;
  await historyReady((s) => ctx.status(`indexing history: ${Math.round((100 * s.indexed_seq) / s.high_water_seq)} %`));
  ctx.status("");
  const hist = await api("/v1/history?since=30d&bucket=86400");
  const select = el.querySelector("#clone");
  for (const agent of Object.keys(hist.agent_identities).sort())
    select.insertAdjacentHTML("beforeend", `<option ${agent === params.get("clone") ? "selected" : ""}>${esc(agent)}</option>`);
  const form = el.querySelector("#form");
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const values = Object.fromEntries(FIELDS.map((k) => [k, form.elements[k].value]));
    ctx.setParams({ ...values, run: "1" }, { push: true });
    run(values);
  });

  async function run(values) {
    el.querySelector("#note").textContent = "replaying…";
    el.dataset.ready = "false";
    const body = {
      since: values.since || "24h", until: values.until || "now",
      traffic: Number(values.traffic || 1), limit: Number(values.limit || 1),
    };
    if (values.clone && Number(values.clones)) Object.assign(body, { clone_agent: values.clone, clones: Number(values.clones) });
    if (values.policy && values.policy.trim()) body.policy = values.policy;
    try {
      const result = await api("/v1/replay", { json: body });
      el.querySelector("#note").textContent = `${num(result.events_read)} recorded events → ${num(result.events_produced)} in the sandbox, ${result.seconds.toFixed(2)} s`;
      el.querySelector("#result").innerHTML = compare(result);
      triggers(el.querySelector("#heat-base"), result.baseline.triggers);
      triggers(el.querySelector("#heat-scen"), result.scenario.triggers);
    } catch (error) {
      el.querySelector("#note").textContent = "";
      el.querySelector("#result").innerHTML = `<p class="error" id="replay-error">${esc(error.message)}</p>`;
    }
    el.dataset.ready = "true";
  }

  if (params.get("run") === "1") await run(Object.fromEntries(FIELDS.map((k) => [k, params.get(k) || ""])));
  else el.dataset.ready = "true";
}

function compare(r) {
  const b = r.baseline, s = r.scenario;
  const row = (label, key, fmt, worseUp = true) => {
    const x = b[key], y = s[key];
    const cls = x == null || y == null || x === y ? "" : (y > x) === worseUp ? "up" : "down";
    return `<tr data-metric="${key}"><td>${label}</td><td class="num">${fmt(x)}</td><td class="num ${cls}">${fmt(y)}</td></tr>`;
  };
  return `<p class="muted">${when(r.since)} → ${when(r.until)} · traffic × ${r.modifiers.traffic}, limits × ${r.modifiers.limit}${r.modifiers.clones ? `, + ${r.modifiers.clones} × ${esc(r.modifiers.clone_agent)}` : ""} · policy <code>${esc(r.policy_version)}</code></p>
  <table class="compare"><thead><tr><th></th><th class="num">recorded</th><th class="num">scenario</th></tr></thead><tbody>
    <tr data-metric="intents"><td>intents</td><td class="num">${num(b.intents)}</td><td class="num">${num(s.intents)}</td></tr>
    ${row("denied", "denied", num)}
    ${row("denial rate", "denial_rate", pct)}
    ${row("paced or deferred", "wait_rate", pct)}
    ${row("429s the calls would meet", "rate_limited", num)}
    ${row("units approved", "units_approved", num, false)}
    ${row("shortest projected time to exhaustion (P50)", "min_tte_p50_seconds", duration, false)}
    <tr><td>first exhaustion</td><td class="num">${b.first_exhaustion ? when(b.first_exhaustion) : "never"}</td><td class="num">${s.first_exhaustion ? when(s.first_exhaustion) : "never"}</td></tr>
    <tr><td>pools that went critical</td><td class="num">${b.pools_critical.length}</td><td class="num">${s.pools_critical.length}</td></tr>
  </tbody></table>`;
}

function triggers(el, rows) {
  const entries = Object.entries(rows);
  if (!entries.length) { el.innerHTML = `<p class="muted">no rule fired</p>`; return; }
  const max = Math.max(1, ...entries.flatMap(([, v]) => v));
  const hours = entries[0][1].length;
  el.innerHTML = `<div style="display:grid;grid-template-columns:220px repeat(${hours}, minmax(3px,1fr));gap:2px;font-size:11.5px">${entries.map(([rule, counts]) =>
    `<div class="mono" title="${esc(rule)}" style="overflow:hidden;text-overflow:ellipsis;white-space:nowrap">${esc(rule)}</div>${counts.map((c, h) =>
      `<div title="hour ${h}: ${c}" style="height:16px;border-radius:2px;background:color-mix(in srgb, var(--accent) ${Math.round((100 * c) / max)}%, var(--panel-2))"></div>`).join("")}`).join("")}</div>
    <p class="muted" style="font-size:12px;margin:6px 0 0">one column per hour of the period; darker = fired more often</p>`;
}
