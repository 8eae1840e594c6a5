// The constraint graph: identities → principals → pools, pools coloured by how used they are.
import { esc, heat, pct } from "../format.js";

export function constraintGraph(el, state) {
  const pools = new Map(state.pools.map((p) => [p.pool_id, p]));
  const principals = state.graph.principals;
  const identities = principals.flatMap((p) => p.identities.map((id) => ({ id, principal: `${p.provider_id}:${p.principal}` })));
  const poolIds = principals.flatMap((p) => p.pools);
  const rowH = 30;
  const height = Math.max(identities.length, principals.length, poolIds.length) * rowH + 30;
  const cols = [20, 230, 440];
  const y = (i, n) => 30 + i * rowH + ((Math.max(identities.length, principals.length, poolIds.length) - n) * rowH) / 2;
  const pos = new Map();
  identities.forEach((n, i) => pos.set(`i:${n.id}`, [cols[0], y(i, identities.length)]));
  principals.forEach((p, i) => pos.set(`p:${p.provider_id}:${p.principal}`, [cols[1], y(i, principals.length)]));
  poolIds.forEach((id, i) => pos.set(`o:${id}`, [cols[2], y(i, poolIds.length)]));
  const edge = (a, b) => {
    const [x1, y1] = pos.get(a), [x2, y2] = pos.get(b);
    return `<path class="edge" d="M${x1 + 170},${y1 + 10} C${x1 + 200},${y1 + 10} ${x2 - 30},${y2 + 10} ${x2},${y2 + 10}"/>`;
  };
  let svg = "";
  for (const n of identities) svg += edge(`i:${n.id}`, `p:${n.principal}`);
  for (const p of principals) for (const id of p.pools) svg += edge(`p:${p.provider_id}:${p.principal}`, `o:${id}`);
  const box = (key, label, fill, title) => {
    const [x, yy] = pos.get(key);
    return `<g class="node" data-node="${esc(key)}"><title>${esc(title)}</title><rect x="${x}" y="${yy}" width="170" height="20" fill="${fill}"></rect>
      <text x="${x + 8}" y="${yy + 14}">${esc(label.length > 24 ? label.slice(0, 23) + "…" : label)}</text></g>`;
  };
  for (const n of identities) svg += box(`i:${n.id}`, n.id, "var(--panel-2)", n.id);
  for (const p of principals) svg += box(`p:${p.provider_id}:${p.principal}`, `${p.provider_id}:${p.principal}`, "var(--panel-2)", "principal");
  for (const id of poolIds) {
    const p = pools.get(id);
    const used = p && p.limit ? 1 - p.remaining / p.limit : 0;
    svg += box(`o:${id}`, id, `color-mix(in srgb, ${heat(used)} 55%, var(--panel))`, `${id}: ${pct(used)} used, ${p?.status}`);
  }
  el.innerHTML = `<svg width="100%" viewBox="0 0 640 ${height}" role="img" aria-label="constraint graph">
    <text class="col-title" x="${cols[0]}" y="16">identities</text><text class="col-title" x="${cols[1]}" y="16">principals</text>
    <text class="col-title" x="${cols[2]}" y="16">pools</text>${svg}</svg>`;
}
