// Charts: uPlot (vendored, MIT) for time series — it draws tens of thousands of points
// in milliseconds — and plain DOM for the heatmap and ranked bars.
import uPlot from "./vendor/uplot/uPlot.esm.js";
import { PALETTE, esc, num } from "./format.js";

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/** A time-series chart into ``el``; returns the uPlot instance (call .destroy()). */
export function lineChart(el, { ts, series, height = 220, value = num, stacked = false, range, marker }) {
  const grid = { stroke: css("--grid"), width: 1 };
  const axis = { stroke: css("--muted"), grid, ticks: grid };
  const opts = {
    width: Math.max(300, el.clientWidth),
    height,
    cursor: { drag: { x: false, y: false } },
    legend: { live: true },
    scales: { x: { time: true }, y: range ? { range } : {} },
    axes: [axis, { ...axis, size: 56, values: (_, ticks) => ticks.map(value) }],
    series: [
      {},
      ...series.map((s, i) => ({
        label: s.label,
        stroke: s.color || PALETTE[i % PALETTE.length],
        width: 1.6,
        fill: stacked ? `${s.color || PALETTE[i % PALETTE.length]}33` : undefined,
        spanGaps: false,
        points: { show: false },
        value: (_, v) => (v == null ? "–" : value(v)),
      })),
    ],
    hooks: marker ? { draw: [(u) => drawMarker(u, marker())] } : {},
  };
  const plot = new uPlot(opts, [ts, ...series.map((s) => s.values)], el);
  const observer = new ResizeObserver(() => plot.setSize({ width: Math.max(300, el.clientWidth), height }));
  observer.observe(el);
  const destroy = plot.destroy.bind(plot);
  plot.destroy = () => { observer.disconnect(); destroy(); };
  return plot;
}

function drawMarker(u, at) {
  if (at == null) return;
  const x = u.valToPos(at, "x", true);
  const ctx = u.ctx;
  ctx.save();
  ctx.strokeStyle = css("--accent");
  ctx.lineWidth = 2 * devicePixelRatio;
  ctx.beginPath();
  ctx.moveTo(x, u.bbox.top);
  ctx.lineTo(x, u.bbox.top + u.bbox.height);
  ctx.stroke();
  ctx.restore();
}

/** Day × hour (UTC) grid: red where pools were exhausted or critical, amber where near. */
export function heatmap(el, cells) {
  const days = new Map();
  for (const [ts, exhausted, near] of cells) {
    const day = new Date(ts * 1000).toISOString().slice(0, 10);
    if (!days.has(day)) days.set(day, new Array(24).fill(null));
    days.get(day)[new Date(ts * 1000).getUTCHours()] = [exhausted, near];
  }
  const crit = css("--crit"), warn = css("--warn"), ok = css("--ok");
  let html = `<div class="d"></div>${Array.from({ length: 24 }, (_, h) =>
    `<div class="h">${h % 3 === 0 ? h : ""}</div>`).join("")}`;
  for (const [day, hours] of days) {
    html += `<div class="d">${day.slice(5)}</div>`;
    hours.forEach((cell, h) => {
      if (!cell) { html += `<div class="cell" title="${day} ${h}:00 no data"></div>`; return; }
      const [exhausted, near] = cell;
      const colour = exhausted ? crit : near ? warn : ok;
      const alpha = exhausted ? Math.min(1, 0.45 + 0.25 * exhausted) : near ? 0.35 + 0.2 * near : 0.16;
      html += `<div class="cell" data-exhausted="${exhausted}" data-near="${near}" style="background:color-mix(in srgb, ${colour} ${Math.round(alpha * 100)}%, transparent)" title="${day} ${String(h).padStart(2, "0")}:00 UTC: ${exhausted} pool(s) exhausted or critical, ${near} near"></div>`;
    });
  }
  el.innerHTML = `<div class="heatmap">${html}</div>
    <div class="legend"><span><i style="background:${crit}"></i>exhausted / critical</span>
    <span><i style="background:${warn}"></i>near exhaustion</span>
    <span><i style="background:color-mix(in srgb, ${ok} 16%, transparent)"></i>fine</span><span>hours in UTC</span></div>`;
}

/** Ranked bars: [{id, used}] */
export function ranked(el, items, unit = "units") {
  const max = Math.max(1, ...items.map((i) => i.used));
  el.innerHTML = items.length
    ? `<div class="rank">${items.map((i) => `<span class="who" title="${esc(i.id)}">${esc(i.id)}</span>
      <div class="bar"><i style="width:${(100 * i.used) / max}%"></i></div>
      <span class="mono" style="text-align:right">${num(i.used)}</span>`).join("")}</div>
      <p class="muted" style="margin:6px 0 0;font-size:12px">${unit}</p>`
    : `<p class="muted">nothing recorded in this range</p>`;
}
