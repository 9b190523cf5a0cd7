// Small time-series charts with uPlot (canvas). The canvas is decoration for sighted users:
// every chart carries a caption and a text summary of its latest values for everyone else.
import uPlot from 'uplot';
import { html, useEffect, useRef } from './html.js';

const COLOURS = ['#1f6feb', '#b35900', '#1a7f37', '#8250df', '#cf222e', '#0a7ea4'];

/**
 * `times`: seconds since the epoch; `series`: [{label, values}] of the same length.
 * `range`: fixed y range (e.g. [0, 100] for percentages) or undefined to fit the data.
 */
export function TimeChart({ id, caption, times, series, range, unit = '', summary }) {
  const holder = useRef(null);
  const plot = useRef(null);
  const shape = series.map((s) => s.label).join('|');

  useEffect(() => {
    const el = holder.current;
    if (!el || times.length === 0) return undefined;
    const opts = {
      width: Math.max(el.clientWidth, 280),
      height: 180,
      // Samples that all carry the same second (a device's first burst) give uPlot a zero span,
      // which it widens to 86,400,000 s for times in seconds: an axis of years. The range ends
      // at the newest sample instead and is at least a minute wide.
      scales: { x: { time: true, range: (u, min, max) => timeRange(min, Math.min(max, latest(u.data[0]) ?? max)) }, y: range ? { range: () => range } : {} },
      axes: [{}, { values: (_u, ticks) => ticks.map((v) => `${v}${unit}`), size: 60 }],
      // Away from the cursor uPlot's legend shows "--"; it shows the latest sample instead, read
      // from the plot's own data so it follows setData.
      series: [
        { value: (u, t, _s, idx) => timeText(idx == null ? latest(u.data[0]) : t) },
        ...series.map((s, i) => ({
          label: s.label, stroke: COLOURS[i % COLOURS.length], width: 2, spanGaps: false,
          value: (u, v, sidx, idx) => valueText(idx == null ? latest(u.data[sidx]) : v, unit),
        })),
      ],
      legend: { show: true },
      // The shown time span, in seconds, for the browser tests (the axis itself is canvas).
      hooks: { setScale: [(u, key) => { if (key === 'x') el.dataset.spanSeconds = String(Math.round(u.scales.x.max - u.scales.x.min)); }] },
    };
    plot.current = new uPlot(opts, [times, ...series.map((s) => s.values)], el);
    const resize = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(el.clientWidth, 280), height: 180 }));
    resize.observe(el);
    return () => { resize.disconnect(); plot.current?.destroy(); plot.current = null; };
  }, [shape, times.length === 0]);

  useEffect(() => {
    if (plot.current && times.length > 0) plot.current.setData([times, ...series.map((s) => s.values)]);
  }, [times, series]);

  return html`<figure class="chart" aria-labelledby=${`${id}-caption`}>
    <figcaption id=${`${id}-caption`}>${caption}</figcaption>
    ${times.length === 0
      ? html`<p class="muted">No samples yet.</p>`
      : html`<div ref=${holder} class="chart-canvas" aria-hidden="true" data-points=${times.length}></div>`}
    ${summary ? html`<p class="chart-summary">${summary}</p>` : null}
  </figure>`;
}

/** The x range: the data's own, at least a minute wide (ending at the newest sample). */
export function timeRange(min, max) {
  return max - min >= 60 ? [min, max] : [max - 60, max];
}

/** The last value that is not a gap, or null when the series has none. */
export function latest(values) {
  for (let i = values.length - 1; i >= 0; i--) if (values[i] != null) return values[i];
  return null;
}

function valueText(v, unit) {
  return v == null ? '—' : `${Number(v.toFixed(2))}${unit}`;
}

function timeText(t) {
  return t == null ? '—' : new Date(t * 1000).toLocaleTimeString();
}
