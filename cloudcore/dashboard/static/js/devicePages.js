// Devices: the list, and one device with its twin, a telemetry chart of its numeric
// properties, and a form to set desired values (checked by the API against the model; its
// {error, field} is shown next to the field, and nothing is stored).
import { apiGet, ApiFailure, apiSend, enc, useLive } from './api.js';
import { html, useState } from './html.js';
import { TimeChart } from './chart.js';
import { Ago, count, ErrorNote, LiveNote, useNow, useShown } from './format.js';
import { delta, TwinTable } from './twin.js';

const NUMERIC = new Set(['int', 'float', 'double']);
const HOUR_MS = 60 * 60 * 1000;

export function DevicesPage() {
  const now = useNow();
  const [shown, more] = useShown(200);
  const { data, error, live, updatedAt } = useLive((signal) => apiGet('/devices', { signal }), [], {
    watches: (d) => [{ path: `/fleet/changes?resourceVersion=${d.resourceVersion}` }],
    throttleMs: 1000,
  });
  return html`<h1 tabindex="-1">Devices</h1>
    <${LiveNote} live=${live} updatedAt=${updatedAt} />
    <${ErrorNote} error=${error} />
    ${data ? (data.items.length === 0 ? html`<p class="muted">No devices yet.</p>` : html`<table class="devices">
      <caption>${count(data.items.length)} devices</caption>
      <thead><tr><th scope="col">Device</th><th scope="col">Node</th><th scope="col">Model</th><th scope="col">Online</th><th scope="col">Pending desired</th><th scope="col">Last seen</th></tr></thead>
      <tbody>${data.items.slice(0, shown).map((d) => html`<tr key=${d.metadata.name} data-device=${d.metadata.name}>
        <th scope="row"><a href=${`#/devices/${enc(d.metadata.name)}`}>${d.metadata.name}</a></th>
        <td><a href=${`#/nodes/${enc(d.spec.nodeName)}`}>${d.spec.nodeName}</a></td><td>${d.spec.model}</td>
        <td title=${d.status?.online ? undefined : d.status?.offlineReason}>${d.status?.online ? 'online' : 'offline'}</td>
        <td>${Object.keys(delta(d.spec.desired, d.status?.twin?.reported)).join(', ') || html`<span class="muted">none</span>`}</td>
        <td><${Ago} iso=${d.status?.lastSeen} now=${now} /></td>
      </tr>`)}</tbody></table>${more(data.items.length, 'devices')}`) : error ? null : html`<p class="loading">Loading…</p>`}`;
}

async function loadDevice(name, signal) {
  const d = enc(name);
  // Read first: a change while the rest loads is then seen on the change stream.
  const { revision } = await apiGet('/healthz', { signal });
  const since = new Date(Date.now() - HOUR_MS).toISOString();
  const [device, telemetry] = await Promise.all([
    apiGet(`/devices/${d}`, { signal }),
    apiGet(`/devices/${d}/telemetry?since=${enc(since)}&limit=10000`, { signal }).catch((err) => {
      if (err instanceof ApiFailure && err.status === 503) return null; // cloudcore keeps no telemetry
      throw err;
    }),
  ]);
  return { device, telemetry: telemetry?.items ?? null, revision };
}

function Telemetry({ device, samples }) {
  if (samples === null) return html`<p class="muted">This cloudcore keeps no telemetry.</p>`;
  const numeric = (device.spec.modelSpec?.properties ?? []).filter((p) => NUMERIC.has(p.type)).map((p) => p.name);
  const shown = numeric.filter((name) => samples.some((s) => typeof s.values[name] === 'number'));
  if (shown.length === 0) return html`<p class="muted">No numeric telemetry in the last hour.</p>`;
  const times = samples.map((s) => Date.parse(s.t) / 1000);
  const series = shown.map((name) => ({ label: name, values: samples.map((s) => (typeof s.values[name] === 'number' ? s.values[name] : null)) }));
  const last = samples.at(-1);
  const summary = `Latest (${new Date(last.t).toLocaleTimeString()}): ${shown.map((n) => `${n} = ${last.values[n] ?? '—'}`).join(', ')}; ${samples.length} samples.`;
  return html`<${TimeChart} id="telemetry" caption=${`Telemetry of ${device.metadata.name}, last hour`} times=${times} series=${series} summary=${summary} />`;
}

/** Text from the form → the JSON value the property takes; an Error names what is wrong. */
function parseInput(prop, text) {
  if (prop.type === 'boolean') return text === 'true';
  if (NUMERIC.has(prop.type)) {
    const n = Number(text);
    if (text.trim() === '' || !Number.isFinite(n)) throw new Error(`must be a number`);
    return n;
  }
  return text;
}

function DesiredForm({ device }) {
  const props = (device.spec.modelSpec?.properties ?? []).filter((p) => p.accessMode === 'ReadWrite');
  const [errors, setErrors] = useState({});
  const [result, setResult] = useState({ ok: '', error: '' });
  const [busy, setBusy] = useState(false);
  if (props.length === 0) return html`<p class="muted">The model has no writable properties.</p>`;
  const desired = device.spec.desired ?? {};

  const submit = async (e) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const patch = {};
    const problems = {};
    for (const p of props) {
      const text = String(form.get(p.name) ?? '');
      if (text === '') {
        if (p.name in desired) patch[p.name] = null; // cleared: remove the desired value
        continue;
      }
      try {
        const v = parseInput(p, text);
        if (v !== desired[p.name]) patch[p.name] = v;
      } catch (err) {
        problems[p.name] = err.message;
      }
    }
    setErrors(problems);
    setResult({ ok: '', error: '' });
    if (Object.keys(problems).length) return;
    if (Object.keys(patch).length === 0) { setResult({ ok: 'Nothing changed.', error: '' }); return; }
    setBusy(true);
    try {
      const twin = await apiSend('PATCH', `/devices/${enc(device.metadata.name)}/twin`, patch, 'application/merge-patch+json');
      setResult({ ok: `Saved: desired version ${twin.version.desired}. The edge passes it to the device.`, error: '' });
    } catch (err) {
      if (err instanceof ApiFailure && err.field && props.some((p) => p.name === err.field)) setErrors({ [err.field]: err.message });
      else setResult({ ok: '', error: err.message });
    } finally {
      setBusy(false);
    }
  };

  return html`<form class="desired" onSubmit=${submit} noValidate aria-describedby="desired-hint">
    <p id="desired-hint" class="hint">Only changed fields are sent (a JSON merge patch). Leave a field empty to remove its desired value.</p>
    ${props.map((p) => {
      const id = `desired-${p.name}`;
      const error = errors[p.name];
      const range = [p.minimum !== undefined ? `min ${p.minimum}` : '', p.maximum !== undefined ? `max ${p.maximum}` : ''].filter(Boolean).join(', ');
      const hint = `${p.type}${p.unit ? `, ${p.unit}` : ''}${range ? `, ${range}` : ''}`;
      const current = desired[p.name];
      return html`<div class=${error ? 'field invalid' : 'field'} key=${p.name} data-field=${p.name}>
        <label for=${id}>${p.name}</label>
        ${p.type === 'boolean'
          ? html`<select id=${id} name=${p.name} aria-describedby=${`${id}-hint ${id}-error`} aria-invalid=${error ? 'true' : 'false'}>
              ${[['', '(not set)'], ['true', 'true'], ['false', 'false']].map(([v, l]) => html`<option value=${v} selected=${String(current ?? '') === v}>${l}</option>`)}
            </select>`
          : html`<input id=${id} name=${p.name} defaultValue=${current === undefined ? '' : String(current)}
              inputmode=${NUMERIC.has(p.type) ? 'decimal' : undefined} aria-describedby=${`${id}-hint ${id}-error`} aria-invalid=${error ? 'true' : 'false'} />`}
        <small id=${`${id}-hint`}>${hint}</small>
        <span id=${`${id}-error`} class="error field-error" role=${error ? 'alert' : undefined}>${error ?? ''}</span>
      </div>`;
    })}
    <div class="actions"><button type="submit" disabled=${busy}>Set desired values</button></div>
    <p class="form-result" role="status" aria-live="polite">${result.ok}</p>
    ${result.error ? html`<p class="error" role="alert">${result.error}</p>` : null}
  </form>`;
}

export function DevicePage({ name }) {
  const now = useNow();
  const { data, error, live, updatedAt } = useLive((signal) => loadDevice(name, signal), [name], {
    watches: (d) => [{ path: `/fleet/changes?device=${enc(name)}&resourceVersion=${d.revision}&intervalMs=500` }],
    refreshMs: 10_000,
  });
  const device = data?.device;
  return html`<p class="crumbs"><a href="#/devices">Devices</a> › device</p>
    <h1 tabindex="-1">Device ${name}</h1>
    <${LiveNote} live=${live} updatedAt=${updatedAt} />
    <${ErrorNote} error=${error} />
    ${device ? html`<dl class="summary">
        <div><dt>Node</dt><dd><a href=${`#/nodes/${enc(device.spec.nodeName)}`}>${device.spec.nodeName}</a></dd></div>
        <div><dt>Model</dt><dd>${device.spec.model} (${device.spec.protocol.name})</dd></div>
        <div><dt>Online</dt><dd data-col="online">${device.status?.online ? 'yes' : device.status?.offlineReason ? `no (${device.status.offlineReason})` : 'no'}</dd></div>
        <div><dt>Last seen</dt><dd><${Ago} iso=${device.status?.lastSeen} now=${now} /></dd></div>
        <div><dt>Desired version</dt><dd data-col="desired-version">${device.spec.desiredVersion}</dd></div>
      </dl>
      <section aria-labelledby="h-twin"><h2 id="h-twin">Twin</h2><${TwinTable} device=${device} caption="Desired (set by operators) and reported (by the device)" /></section>
      <section aria-labelledby="h-set"><h2 id="h-set">Set desired values</h2><${DesiredForm} device=${device} /></section>
      <section aria-labelledby="h-telemetry"><h2 id="h-telemetry">Telemetry</h2><${Telemetry} device=${device} samples=${data.telemetry} /></section>`
    : error ? null : html`<p class="loading">Loading…</p>`}`;
}
