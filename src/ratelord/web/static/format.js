// Small formatting helpers shared by the views.
export const nf = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });
export const pct = (x) => (x == null ? "–" : `${(100 * x).toFixed(x < 0.1 && x > 0 ? 1 : 0)} %`);
export const num = (x) => (x == null ? "–" : nf.format(x));

export function duration(seconds) {
  if (seconds == null) return "–";
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${(seconds / 3600).toFixed(1)} h`;
  // A pool that burns nothing has a time to exhaustion of ages: no one reads "6e16 d".
  if (seconds >= 365 * 86400) return "> 1 y";
  return `${(seconds / 86400).toFixed(1)} d`;
}

export function when(ts) {
  const date = typeof ts === "number" ? new Date(ts * 1000) : new Date(ts);
  return date.toISOString().replace("T", " ").slice(0, 19) + "Z";
}

// The daemon's placeholders for "not given", in the words a person reads (as schema.display_id).
const SENTINEL_WORDS = { "sentinel:global": "global", "sentinel:unknown": "–", "sentinel:system": "ratelord" };
export const idText = (id) => SENTINEL_WORDS[id] ?? id;

export function esc(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) =>
    ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

export const PALETTE = ["#5aa9ff", "#e3a93b", "#3fb67b", "#c678dd", "#e5534b", "#56c7c7", "#d19a66", "#98c379"];

/** A colour from green (0) through amber to red (1). */
export function heat(x) {
  const v = Math.max(0, Math.min(1, x ?? 0));
  const hue = 130 - 130 * v;
  return `hsl(${hue}, 62%, ${45 - v * 4}%)`;
}
