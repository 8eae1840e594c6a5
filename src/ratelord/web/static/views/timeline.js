// Time travel: scrub the log; every pool, the constraint graph and the latest events as
// they were at that instant (rebuilt by replay from the nearest checkpoint), and an
// inspector that shows any event with its full context.
import { api, historyReady } from "../api.js";
import { lineChart } from "../charts.js";
import { duration, esc, idText, num, pct, when } from "../format.js";
import { constraintGraph } from "./graph.js";

const RANGES = { "24h": 300, "7d": 900, "30d": 3600 };

export async function render(el, ctx) {
  const params = ctx.params();
  const range = RANGES[params.get("range")] ? params.get("range") : "7d";
  el.innerHTML = `
    <div class="toolbar">
      <h1>Time travel</h1>
      <div class="seg" id="ranges">${Object.keys(RANGES).map((r) =>
        `<button type="button" data-range="${r}" aria-pressed="${r === range}">${r}</button>`).join("")}</div>
      <button type="button" id="back" title="one hour earlier">−1 h</button>
      <button type="button" id="fwd" title="one hour later">+1 h</button>
      <b id="instant" class="mono"></b>
      <span class="muted" id="rebuilt"></span>
    </div>
    <div class="card">
      <div class="chart" id="density"></div>
      <input type="range" class="scrub" id="scrub" aria-label="instant">
    </div>
    <div class="grid cols-side" style="margin-top:14px">
      <div>
        <div class="card"><h2>Pools at this instant</h2><div id="pools"></div></div>
        <div class="card" style="margin-top:14px"><h2>Constraint graph</h2><div id="graph"></div></div>
      </div>
      <div>
        <div class="card"><h2>Inspector</h2><div id="inspector"><p class="muted">Select an event.</p></div></div>
        <div class="card" style="margin-top:14px">
          <h2>Events up to this instant</h2>
          <div class="seg" id="filter">
            <button type="button" data-filter="all">all</button>
            <button type="button" data-filter="decisions">decisions</button>
            <button type="button" data-filter="denials">denials</button>
          </div>
          <div class="events" id="events" style="margin-top:8px"></div>
        </div>
      </div>
    </div>`;
  el.querySelector("#ranges").addEventListener("click", (e) => {
    if (e.target.dataset.range) { ctx.setParams({ range: e.target.dataset.range, at: null }, { push: true }); ctx.refresh(); }
  });
  await historyReady((s) => ctx.status(`indexing history: ${Math.round((100 * s.indexed_seq) / s.high_water_seq)} %`));
  ctx.status("");
  const hist = await api(`/v1/history?since=${range}&bucket=${RANGES[range]}`);
  const since = hist.since, until = hist.until;
  let at = params.get("at") ? Date.parse(params.get("at")) / 1000 : until;
  at = Math.min(until, Math.max(since, at));
  let filter = params.get("filter") || "all";
  let selected = params.get("event") ? Number(params.get("event")) : null;
  let shown = null;
  const css = (n) => getComputedStyle(document.documentElement).getPropertyValue(n).trim();
  const chart = lineChart(el.querySelector("#density"), {
    ts: hist.ts, height: 150, marker: () => at,
    series: [
      { label: "intents", values: hist.intents, color: css("--accent") },
      { label: "denied", values: hist.denied, color: css("--crit") },
    ],
  });
  chart.over.addEventListener("click", () => {
    const idx = chart.cursor.idx;
    if (idx != null) go(hist.ts[idx] + hist.bucket_seconds / 2);
  });
  const scrub = el.querySelector("#scrub");
  Object.assign(scrub, { min: since, max: until, step: 60, value: at });
  let timer = null;
  scrub.addEventListener("input", () => {
    at = Number(scrub.value);
    el.querySelector("#instant").textContent = when(at);
    chart.redraw(false, false);
    clearTimeout(timer);
    timer = setTimeout(() => go(at), 150);
  });
  el.querySelector("#back").addEventListener("click", () => go(at - 3600));
  el.querySelector("#fwd").addEventListener("click", () => go(at + 3600));
  const filterBar = el.querySelector("#filter");
  const pressFilter = () => filterBar.querySelectorAll("button").forEach((b) =>
    b.setAttribute("aria-pressed", String(b.dataset.filter === filter)));
  pressFilter();
  filterBar.addEventListener("click", (e) => {
    if (!e.target.dataset.filter) return;
    filter = e.target.dataset.filter;
    ctx.setParams({ filter: filter === "all" ? null : filter });
    pressFilter();
    if (shown) events(shown);
  });

  let loading = 0;
  async function go(instant) {
    at = Math.min(until, Math.max(since, instant));
    scrub.value = at;
    chart.redraw(false, false);
    el.querySelector("#instant").textContent = when(at);
    ctx.setParams({ at: new Date(at * 1000).toISOString() });
    const id = ++loading;
    el.querySelector("#rebuilt").textContent = "rebuilding…";
    const state = await api(`/v1/history/state?at=${at}`);
    if (id !== loading) return;
    shown = state;
    el.dataset.seq = state.seq;
    el.querySelector("#rebuilt").textContent =
      `state after event #${num(state.seq)}: checkpoint #${num(state.checkpoint_seq)} + ${num(state.replayed)} events replayed in ${state.seconds.toFixed(2)} s`;
    pools(state);
    constraintGraph(el.querySelector("#graph"), state);
    events(state);
    el.dataset.ready = "true";
  }

  function pools(state) {
    el.querySelector("#pools").innerHTML = `<table><thead><tr><th>pool</th><th>posture</th><th class="num">remaining / limit</th>
      <th>used</th><th class="num">P(exh.)</th><th class="num">TTE P50</th><th class="num">reset</th></tr></thead><tbody>
      ${state.pools.map((p) => {
        const used = p.limit ? 1 - p.remaining / p.limit : null;
        return `<tr data-pool="${esc(p.pool_id)}"><td class="mono">${esc(p.pool_id)}</td>
          <td><span class="pill ${p.status}">${p.status}</span></td>
          <td class="num remaining">${num(p.remaining)} / ${num(p.limit)}</td>
          <td><div class="bar"><i style="width:${100 * (used ?? 0)}%"></i></div></td>
          <td class="num">${pct(p.forecast?.p_exhaustion)}</td>
          <td class="num">${duration(p.forecast?.tte_p50_seconds)}</td>
          <td class="num">${p.reset_at ? p.reset_at.slice(11, 19) : "–"}</td></tr>`;
      }).join("")}</tbody></table>`;
  }

  function events(state) {
    let list = state.recent;
    if (filter === "decisions") list = list.filter((e) => e.event_type === "intent_decided");
    if (filter === "denials") list = state.denials;
    const rows = [...list].reverse().map((e) => {
      const deny = e.payload?.decision === "deny_with_reason";
      const what = e.event_type === "intent_decided" ? e.payload.decision.replace(/_/g, " ") : (e.pool_id || "");
      return `<tr data-seq="${e.seq}" class="${deny ? "deny" : ""} ${e.seq === selected ? "selected" : ""}">
        <td class="mono">#${e.seq}</td><td class="mono">${when(e.ts_event).slice(11, 19)}</td>
        <td>${esc(e.event_type)}</td><td class="muted">${esc(idText(e.dimensions.agent_id))}</td><td>${esc(what)}</td></tr>`;
    });
    const box = el.querySelector("#events");
    box.innerHTML = rows.length ? `<table><tbody>${rows.join("")}</tbody></table>` : `<p class="muted">none</p>`;
    box.querySelectorAll("tr").forEach((tr) => tr.addEventListener("click", () => inspect(Number(tr.dataset.seq))));
  }

  async function inspect(seq) {
    selected = seq;
    ctx.setParams({ event: seq });
    el.querySelectorAll("#events tr").forEach((tr) => tr.classList.toggle("selected", Number(tr.dataset.seq) === seq));
    const { event, related } = await api(`/v1/history/events/${seq}`);
    el.querySelector("#inspector").innerHTML = inspector(event, related);
  }

  await go(at);
  if (selected) await inspect(selected);
  return () => chart.destroy();
}

function inspector(e, related) {
  const d = e.dimensions;
  const decided = e.event_type === "intent_decided" ? e : related.find((r) => r.event_type === "intent_decided");
  const submitted = related.find((r) => r.event_type === "intent_submitted") || (e.event_type === "intent_submitted" ? e : null);
  const fired = related.filter((r) => r.event_type === "policy_triggered").concat(e.event_type === "policy_triggered" ? [e] : []);
  const forecasts = related.filter((r) => r.event_type === "forecast_computed");
  let html = `<dl class="kv">
    <dt>event</dt><dd class="mono">#${e.seq} ${esc(e.event_type)}</dd>
    <dt>at</dt><dd class="mono">${when(e.ts_event)}</dd>
    <dt>agent</dt><dd>${esc(idText(d.agent_id))}</dd>
    <dt>identity</dt><dd>${esc(idText(d.identity_id))}</dd>
    <dt>workload</dt><dd>${esc(idText(d.workload_id))}</dd>
    <dt>scope</dt><dd>${esc(idText(d.scope_id))}</dd>
    <dt>pool</dt><dd class="mono">${esc(e.pool_id || decided?.pool_id || "–")}</dd>`;
  if (submitted) html += `<dt>asked</dt><dd>${esc(submitted.payload.urgency)} urgency, ${num(submitted.payload.cost)} × ${esc(submitted.payload.resource || "workload")}</dd>`;
  if (decided) {
    const p = decided.payload;
    html += `<dt>decision</dt><dd><b>${esc(p.decision.replace(/_/g, " "))}</b>${p.modifications?.wait_seconds ? `, wait ${p.modifications.wait_seconds.toFixed(1)} s` : ""}${p.modifications?.defer_until ? `, defer until ${esc(p.modifications.defer_until)}` : ""}</dd>
      <dt>forecast</dt><dd>P(exhaustion before reset) ${pct(p.p_exhaustion)} on ${esc(p.tightest_pool || "–")}</dd>
      <dt>rules fired</dt><dd>${(p.rules_fired || []).map((r) => `<code>${esc(r)}</code>`).join(", ") || "none"}</dd></dl>
      <div class="why ${p.decision === "deny_with_reason" ? "" : "ok"}" id="why"><b>Why:</b> ${esc(p.reason || "no rule fired; the pool can afford it")}</div>`;
  } else {
    html += `</dl>`;
  }
  if (fired.length) html += `<h3>Rules</h3><table><tbody>${fired.map((f) =>
    `<tr><td><code>${esc(f.payload.policy_id)}/${esc(f.payload.rule)}</code></td><td>${esc(f.payload.action)}</td><td>${esc(f.payload.reason)}</td></tr>`).join("")}</tbody></table>`;
  if (forecasts.length) html += `<h3>Forecast after the decision</h3>${forecasts.map((f) =>
    `<p class="mono" style="margin:2px 0">${esc(f.pool_id)}: ${num(f.payload.remaining)} left, TTE P50 ${duration(f.payload.tte_p50_seconds)}, P99 ${duration(f.payload.tte_p99_seconds)}, P(exh.) ${pct(f.payload.p_exhaustion)}</p>`).join("")}`;
  html += `<h3>Payload</h3><pre>${esc(JSON.stringify(e.payload, null, 2))}</pre>`;
  return html;
}
