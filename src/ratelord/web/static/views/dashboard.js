// The long view: 24 h, 7 or 30 days of burn, utilisation, decisions, exhaustion by
// day × hour, top consumers, and the risk of running dry in the next 24 hours.
import { api, historyReady } from "../api.js";
import { heatmap, lineChart, ranked } from "../charts.js";
import { duration, esc, heat, num, pct } from "../format.js";

const RANGES = { "24h": 300, "7d": 900, "30d": 3600 };

export async function render(el, ctx) {
  const params = ctx.params();
  const range = RANGES[params.get("range")] ? params.get("range") : "7d";
  const pool = params.get("pool") || "";
  el.innerHTML = `
    <div class="toolbar">
      <h1>Dashboard</h1>
      <div class="seg" id="ranges">${Object.keys(RANGES).map((r) =>
        `<button type="button" data-range="${r}" aria-pressed="${r === range}">${r}</button>`).join("")}</div>
      <select id="pool" aria-label="pool"><option value="">all pools</option></select>
      <span class="muted" id="span"></span>
    </div>
    <div class="kpis" id="kpis"></div>
    <div class="grid cols-2">
      <div class="card"><h2>Burn rate per pool <span class="muted">(units / hour)</span></h2><div class="chart" id="burn"></div></div>
      <div class="card"><h2>Peak utilisation per pool</h2><div class="chart" id="util"></div></div>
      <div class="card"><h2>Denials and throttles</h2><div class="chart" id="decisions"></div></div>
      <div class="card"><h2>Exhaustion by day × hour</h2><div id="heat"></div></div>
    </div>
    <div class="card" style="margin-top:14px"><h2>Risk of exhaustion in the next 24 h</h2><div id="risk"></div></div>
    <div class="grid cols-3" style="margin-top:14px">
      <div class="card"><h2>Top agents</h2><div id="agents"></div></div>
      <div class="card"><h2>Top workloads</h2><div id="workloads"></div></div>
      <div class="card"><h2>Top scopes</h2><div id="scopes"></div></div>
    </div>`;
  el.querySelector("#ranges").addEventListener("click", (e) => {
    const r = e.target.dataset.range;
    if (r) { ctx.setParams({ range: r }, { push: true }); ctx.refresh(); }
  });
  const charts = [];
  const cleanup = () => charts.forEach((c) => c.destroy());
  await historyReady((s) => ctx.status(`indexing history: ${Math.round((100 * s.indexed_seq) / s.high_water_seq)} %`));
  ctx.status("");
  const query = `/v1/history?since=${range}&bucket=${RANGES[range]}${pool ? `&pool_id=${encodeURIComponent(pool)}` : ""}`;
  const [hist, live] = await Promise.all([api(query), api("/v1/pools")]);
  const select = el.querySelector("#pool");
  for (const p of live.pools) select.insertAdjacentHTML("beforeend",
    `<option ${p.pool_id === pool ? "selected" : ""}>${esc(p.pool_id)}</option>`);
  select.addEventListener("change", () => {
    ctx.setParams({ pool: select.value }, { push: true });
    ctx.refresh();
  });
  el.querySelector("#span").textContent = `${new Date(hist.since * 1000).toISOString().slice(0, 16)}Z → now, ${duration(hist.bucket_seconds)} buckets`;
  const t = hist.totals;
  const kpi = (label, value) => `<div class="kpi"><b>${value}</b><span>${label}</span></div>`;
  el.querySelector("#kpis").innerHTML = [
    kpi("intents", num(t.intents)),
    kpi("denied", num(t.denied)),
    kpi("denial rate", pct(t.intents ? t.denied / t.intents : 0)),
    kpi("paced (waited)", num(t.waited)),
    kpi("deferred to reset", num(t.deferred)),
    kpi("throttle advisories", num(t.throttles)),
    kpi("events", num(t.events)),
  ].join("");
  const ts = hist.ts;
  charts.push(lineChart(el.querySelector("#burn"), {
    ts, series: hist.pools.map((p) => ({ label: p.pool_id, values: p.burn_per_hour })),
  }));
  charts.push(lineChart(el.querySelector("#util"), {
    ts, series: hist.pools.map((p) => ({ label: p.pool_id, values: p.utilisation })),
    value: (v) => pct(v), range: [0, 1],
  }));
  const css = (n) => getComputedStyle(document.documentElement).getPropertyValue(n).trim();
  charts.push(lineChart(el.querySelector("#decisions"), {
    ts,
    series: [
      { label: "denied", values: hist.denied, color: css("--crit") },
      { label: "deferred", values: hist.deferred, color: css("--warn") },
      { label: "paced", values: hist.waited, color: css("--accent") },
      { label: "throttle advisories", values: hist.throttles, color: "#c678dd" },
    ],
  }));
  heatmap(el.querySelector("#heat"), hist.heatmap);
  riskTable(el.querySelector("#risk"), live.pools, hist);
  ranked(el.querySelector("#agents"), hist.top_agents, "units approved");
  ranked(el.querySelector("#workloads"), hist.top_workloads, "units approved");
  ranked(el.querySelector("#scopes"), hist.top_scopes, "units approved");
  performance.mark("charts-drawn");
  el.dataset.ready = "true";
  return cleanup;
}

/**
 * The risk of running dry within 24 h: the live forecast for the current window, combined
 * with how many of the range's days the pool went critical (P(exhaustion) ≥ 50 % or < 5 % left).
 */
function riskTable(el, pools, hist) {
  const rows = pools.map((p) => {
    const series = hist.pools.find((s) => s.pool_id === p.pool_id);
    const days = new Map();
    if (series) series.posture.forEach((v, i) => {
      if (v == null) return;
      const day = Math.floor(hist.ts[i] / 86400);
      days.set(day, Math.max(days.get(day) ?? 0, v));
    });
    const critical = [...days.values()].filter((v) => v >= 2).length;
    const share = days.size ? critical / days.size : 0;
    const now = p.forecast?.p_exhaustion ?? 0;
    return { p, risk: 1 - (1 - now) * (1 - share), now, critical, seen: days.size };
  }).sort((a, b) => b.risk - a.risk);
  el.innerHTML = `<table><thead><tr><th>pool</th><th>now</th><th class="num">left</th>
    <th class="num">P(exhaustion before reset)</th><th class="num">TTE P50 / P99</th><th class="num">critical days</th><th>risk in 24 h</th></tr></thead>
    <tbody>${rows.map(({ p, risk, now, critical, seen }) => `<tr data-pool="${esc(p.pool_id)}">
      <td class="mono">${esc(p.pool_id)}</td><td><span class="pill ${p.status}">${p.status}</span></td>
      <td class="num">${num(p.remaining)} / ${num(p.limit)}</td><td class="num">${pct(now)}</td>
      <td class="num">${duration(p.forecast?.tte_p50_seconds)} / ${duration(p.forecast?.tte_p99_seconds)}</td>
      <td class="num">${critical} of ${seen}</td>
      <td><div style="display:flex;gap:8px;align-items:center"><div class="bar" style="flex:1"><i style="width:${100 * risk}%;background:${heat(risk)}"></i></div><b class="mono">${pct(risk)}</b></div></td>
    </tr>`).join("")}</tbody></table>
    <p class="muted" style="font-size:12px;margin:8px 0 0">Risk in 24 h: the live forecast for the current window, combined with the share of the range's days on which the pool went critical.</p>`;
}
