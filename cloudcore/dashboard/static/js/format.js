// Formatting shared by the pages. Durations and times are computed from `now` so a ticking
// clock re-renders "for 3 min" without new data.
import { html, useEffect, useState } from './html.js';

const numberFormat = new Intl.NumberFormat('en');
export const count = (n) => numberFormat.format(n);

/** "45 s", "3 min", "2 h 5 min", "4 d 2 h". */
export function duration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h${m % 60 ? ` ${m % 60} min` : ''}`;
  const d = Math.floor(h / 24);
  return `${d} d${h % 24 ? ` ${h % 24} h` : ''}`;
}

/** A <time> element reading "3 min ago", with the exact time as its title and datetime. */
export function Ago({ iso, now, suffix = ' ago' }) {
  if (!iso) return html`<span class="muted">never</span>`;
  const t = Date.parse(iso);
  return html`<time datetime=${iso} title=${new Date(t).toLocaleString()}>${duration(now - t)}${suffix}</time>`;
}

export function bytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

export const percent = (part, whole) => (whole ? Math.round((part / whole) * 1000) / 10 : null);

/** Current time, re-read every `everyMs` so relative times move on their own. */
export function useNow(everyMs = 5000) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(timer);
  }, [everyMs]);
  return now;
}

const STATE_ORDER = ['Running', 'Pending', 'Exited', 'CrashLoop', 'Failed', 'Stopped'];

/** "3 Running, 1 CrashLoop" from {Running: 3, CrashLoop: 1}. */
export function stateCounts(byState) {
  const entries = Object.entries(byState ?? {}).filter(([, n]) => n > 0)
    .sort(([a], [b]) => STATE_ORDER.indexOf(a) - STATE_ORDER.indexOf(b));
  if (entries.length === 0) return html`<span class="muted">none</span>`;
  return entries.map(([state, n], i) => html`${i > 0 ? ', ' : ''}<span class=${`state state-${state}`}>${n} ${state}</span>`);
}

export function StateBadge({ state }) {
  return html`<span class=${`state state-${state ?? 'Unknown'}`}>${state ?? 'Unknown'}</span>`;
}

export function Labels({ labels }) {
  const entries = Object.entries(labels ?? {});
  if (entries.length === 0) return html`<span class="muted">none</span>`;
  return html`<ul class="labels">${entries.map(([k, v]) => html`<li key=${k}><code>${k}=${v}</code></li>`)}</ul>`;
}

/** A label selector object as its string form (`zone=north,gpu`). */
export function selectorText(selector) {
  const parts = Object.entries(selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of selector?.matchExpressions ?? []) {
    if (e.operator === 'Exists') parts.push(e.key);
    else if (e.operator === 'DoesNotExist') parts.push(`!${e.key}`);
    else parts.push(`${e.key} ${e.operator === 'In' ? 'in' : 'notin'} (${(e.values ?? []).join(',')})`);
  }
  return parts.length ? parts.join(',') : 'every node';
}

export const value = (v) => (v === undefined ? html`<span class="muted">—</span>` : html`<code>${JSON.stringify(v)}</code>`);

/** The first `shown` items and a button for more: long lists (10,000 nodes of an app) stay light. */
export function useShown(step = 100) {
  const [shown, setShown] = useState(step);
  // A plain function, not a component: the button keeps its DOM node (and focus) across renders.
  const more = (total, what) => (total > shown
    ? html`<p class="more">Showing ${count(shown)} of ${count(total)} ${what}. <button type="button" class="secondary" onClick=${() => setShown(shown + step)}>Show ${count(Math.min(step, total - shown))} more</button></p>`
    : null);
  return [shown, more];
}

/** A failed load, shown in place (the page keeps what it had). */
export function ErrorNote({ error }) {
  if (!error) return null;
  return html`<p class="error" role="alert">Could not load: ${error.message}</p>`;
}

/** "Live" while the watch stream is open, with the time of the last update. */
export function LiveNote({ live, updatedAt }) {
  return html`<p class="live-note"><span class=${live ? 'dot live' : 'dot'} aria-hidden="true"></span>
    ${live ? 'Live' : 'Reconnecting…'}${updatedAt ? html` · updated <time datetime=${updatedAt.toISOString()}>${updatedAt.toLocaleTimeString()}</time>` : ''}</p>`;
}
