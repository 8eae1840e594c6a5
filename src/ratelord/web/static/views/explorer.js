// Identity & scope explorer: agents → identities → principals → pools, coloured by
// utilisation or risk; a node shows its history and the policies that target it.
import { api, historyReady } from "../api.js";
import { lineChart } from "../charts.js";
import { esc, heat, pct, when } from "../format.js";

const COLS = ["agent", "identity", "principal", "pool"];

export async function render(el, ctx) {
  const params = ctx.params();
  const colour = params.get("color") === "risk" ? "risk" : "utilisation";
  el.innerHTML = `
    <div class="toolbar"><h1>Identity &amp; scope explorer</h1>
      <span class="muted">colour by</span>
      <div class="seg" id="colour"><button type="button" data-c="utilisation" aria-pressed="${colour === "utilisation"}">utilisation</button>
      <button type="button" data-c="risk" aria-pressed="${colour === "risk"}">risk</button></div></div>
    <div class="card"><div id="map"></div></div>
    <div class="card" style="margin-top:14px"><div id="detail"><p class="muted">Click a node: its history and the policies that target it.</p></div></div>`;
  el.querySelector("#colour").addEventListener("click", (e) => {
    if (e.target.dataset.c) { ctx.setParams({ color: e.target.dataset.c }); ctx.refresh(); }
  });
  await historyReady();
  const [graph, pools, ids, hist, policy] = await Promise.all([
    api("/v1/graph"), api("/v1/pools"), api("/v1/identities"), api("/v1/history?since=7d&bucket=3600"), api("/v1/policy"),
  ]);
  const poolById = new Map(pools.pools.map((p) => [p.pool_id, p]));
  const score = (p) => (colour === "risk" ? p?.forecast?.p_exhaustion ?? 0 : p && p.limit ? 1 - p.remaining / p.limit : 0);
  const nodes = new Map();  // key → {kind, id, score, links:Set}
  const node = (kind, id) => {
    const key = `${kind}:${id}`;
    if (!nodes.has(key)) nodes.set(key, { key, kind, id, score: 0, links: new Set(), pools: new Set() });
    return nodes.get(key);
  };
  for (const p of graph.principals) {
    const principal = node("principal", `${p.provider_id}:${p.principal}`);
    for (const poolId of p.pools) {
      const pool = node("pool", poolId);
      pool.score = score(poolById.get(poolId));
      pool.pools.add(poolId);
      principal.links.add(pool.key);
      principal.pools.add(poolId);
    }
    for (const id of p.identities) {
      const identity = node("identity", id);
      identity.links.add(principal.key);
      p.pools.forEach((x) => identity.pools.add(x));
    }
  }
  for (const [agent, identities] of Object.entries(hist.agent_identities)) {
    const a = node("agent", agent);
    for (const id of identities) {
      a.links.add(`identity:${id}`);
      nodes.get(`identity:${id}`)?.pools.forEach((x) => a.pools.add(x));
    }
  }
  for (const n of nodes.values()) if (n.kind !== "pool") n.score = Math.max(0, ...[...n.pools].map((p) => nodes.get(`pool:${p}`)?.score ?? 0));
  const columns = COLS.map((kind) => [...nodes.values()].filter((n) => n.kind === kind).sort((a, b) => a.id.localeCompare(b.id)));
  const tallest = Math.max(...columns.map((c) => c.length));
  const rowH = 34, width = 210, gap = 70, top = 30;
  const pos = new Map();
  columns.forEach((col, c) => col.forEach((n, i) => pos.set(n.key, [c * (width + gap) + 10, top + i * rowH + ((tallest - col.length) * rowH) / 2])));
  let svg = COLS.map((k, c) => `<text class="col-title" x="${c * (width + gap) + 10}" y="16">${k === "identity" ? "identities" : `${k}s`}</text>`).join("");
  for (const n of nodes.values()) for (const target of n.links) {
    if (!pos.has(target)) continue;
    const [x1, y1] = pos.get(n.key), [x2, y2] = pos.get(target);
    svg += `<path class="edge" data-from="${esc(n.key)}" data-to="${esc(target)}" d="M${x1 + width},${y1 + 12} C${x1 + width + 45},${y1 + 12} ${x2 - 45},${y2 + 12} ${x2},${y2 + 12}"/>`;
  }
  for (const n of nodes.values()) {
    const [x, y] = pos.get(n.key);
    const label = n.id.length > 24 ? n.id.slice(0, 23) + "…" : n.id;
    svg += `<g class="node" data-node="${esc(n.key)}"><title>${esc(n.id)}: ${colour} ${pct(n.score)}</title>
      <rect x="${x}" y="${y}" width="${width}" height="24" fill="color-mix(in srgb, ${heat(n.score)} ${Math.round(25 + 50 * n.score)}%, var(--panel))"></rect>
      <text x="${x + 8}" y="${y + 16}">${esc(label)}</text><text x="${x + width - 8}" y="${y + 16}" text-anchor="end">${pct(n.score)}</text></g>`;
  }
  const map = el.querySelector("#map");
  map.innerHTML = `<svg width="100%" viewBox="0 0 ${4 * width + 3 * gap + 20} ${top + tallest * rowH + 10}" role="img" aria-label="agents, identities, principals and pools">${svg}</svg>`;
  map.querySelectorAll(".node").forEach((g) => g.addEventListener("click", () => select(g.dataset.node)));
  let chart = null;

  async function select(key) {
    ctx.setParams({ node: key });
    map.querySelectorAll(".node").forEach((g) => g.classList.toggle("selected", g.dataset.node === key));
    map.querySelectorAll(".edge").forEach((p) => p.classList.toggle("hot", p.dataset.from === key || p.dataset.to === key));
    const n = nodes.get(key);
    if (!n) return;
    const targeting = policy.policy.policies.filter((p) => targets(p.target, n));
    const detail = el.querySelector("#detail");
    detail.innerHTML = `<h2>${esc(n.kind)} <span class="mono">${esc(n.id)}</span></h2>
      <p class="muted">${colour} ${pct(n.score)} · draws from ${[...n.pools].map((p) => `<code>${esc(p)}</code>`).join(", ") || "no known pool"}</p>
      <h3>History (7 days)</h3><div class="chart" id="node-chart"></div><div id="node-events"></div>
      <h3>Policies that target it</h3>${targeting.length ? `<table><tbody>${targeting.map((p) =>
        `<tr><td><code>${esc(p.id)}</code></td><td>${esc(p.target)}</td><td>${esc(p.kind)}</td><td>${p.rules.map((r) => esc(r.name)).join(", ")}</td></tr>`).join("")}</tbody></table>` : `<p class="muted">none</p>`}`;
    chart?.destroy();
    chart = null;
    if (n.pools.size) {
      const h = await api(`/v1/history?since=7d&bucket=3600&pool_id=${encodeURIComponent([...n.pools].join(","))}`);
      chart = lineChart(detail.querySelector("#node-chart"), {
        ts: h.ts, height: 170, value: pct, range: [0, 1],
        series: h.pools.map((p) => ({ label: `${p.pool_id} used`, values: p.utilisation })),
      });
    }
    if (n.kind === "agent" || n.kind === "identity") {
      const recent = await api(`/v1/events?${n.kind}_id=${encodeURIComponent(n.id)}&type=intent_decided&limit=1000&after_seq=${Math.max(0, (await api("/v1/health")).high_water_seq - 5000)}`);
      detail.querySelector("#node-events").innerHTML = `<h3>Latest decisions</h3><table><tbody>${recent.events.slice(-8).reverse().map((e) =>
        `<tr><td class="mono">${when(e.ts_event)}</td><td>${esc(e.payload.decision.replace(/_/g, " "))}</td><td class="muted">${esc(e.payload.reason || "")}</td></tr>`).join("") || "<tr><td class='muted'>none recently</td></tr>"}</tbody></table>`;
    }
    el.dataset.ready = "true";
  }

  if (params.get("node") && nodes.has(params.get("node"))) await select(params.get("node"));
  el.dataset.ready = "true";
  return () => chart?.destroy();
}

/** Does a policy target (global, pool:<glob>, identity:<glob>, agent:<glob>…) reach this node? */
function targets(target, n) {
  if (target === "global") return true;
  const [dimension, ...rest] = target.split(":");
  const glob = rest.join(":");
  const re = new RegExp(`^${glob.replace(/[.+^${}()|\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`);
  if (dimension === n.kind) return re.test(n.id);
  if (dimension === "pool") return [...n.pools].some((p) => re.test(p));
  return false;
}
