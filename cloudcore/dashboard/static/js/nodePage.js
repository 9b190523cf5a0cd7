// One node: summary, link quality, CPU/memory/disk over the last hour, workloads (with logs),
// devices with their twins, app grants and routes with their counters, and recent events.
import { apiGet, apiGetOptional, ApiFailure, enc, useLive } from './api.js';
import { AppGrants, NodeRoutes } from './dataFlows.js';
import { html, useEffect, useRef, useState } from './html.js';
import { TimeChart } from './chart.js';
import { Ago, bytes, duration, ErrorNote, Labels, LiveNote, percent, StateBadge, useNow } from './format.js';
import { TwinTable } from './twin.js';

async function loadNode(name, signal) {
  const n = enc(name);
  // Read first: a change while the rest loads is then seen on the change stream.
  const { revision } = await apiGet('/healthz', { signal });
  const [node, workloads, devices, events, stats, grants, routes] = await Promise.all([
    apiGet(`/nodes/${n}`, { signal }),
    apiGet(`/workloads?node=${n}`, { signal }),
    apiGet(`/devices?node=${n}`, { signal }),
    apiGet(`/events?node=${n}&limit=20`, { signal }),
    apiGet(`/nodes/${n}/stats`, { signal }),
    // null from a cloudcore older than app grants or routes: the section says so.
    apiGetOptional(`/nodes/${n}/grants`, { signal }),
    apiGetOptional('/routes', { signal }),
  ]);
  return { node, workloads, devices, events: events.items, stats, grants, routes: routes?.items ?? null, revision };
}

function Summary({ node, stats, now }) {
  const s = node.status;
  const link = stats.link;
  return html`<dl class="summary">
    <div><dt>Status</dt><dd><span class=${`phase phase-${s.phase}`} data-phase=${s.phase}>${s.phase}</span> for ${duration(now - Date.parse(s.since))}</dd></div>
    <div><dt>Last seen</dt><dd><${Ago} iso=${s.lastSeen} now=${now} /></dd></div>
    <div><dt>edgecore</dt><dd>${s.agent ? `${s.agent.version} on ${s.agent.os}/${s.agent.arch} (${s.agent.hostname})` : 'not connected yet'}</dd></div>
    ${s.agent?.upgrade ? html`<div><dt>Agent upgrade</dt><dd data-col="agent-upgrade">${s.agent.upgrade.version}: ${s.agent.upgrade.phase} · <a href=${`#/upgrades/${encodeURIComponent(s.agent.upgrade.upgrade)}`}>${s.agent.upgrade.upgrade}</a>${s.agent.upgrade.message ? ` · ${s.agent.upgrade.message}` : ''}</dd></div>` : null}
    <div><dt>Labels</dt><dd data-col="labels"><${Labels} labels=${node.metadata.labels} /></dd></div>
    <div><dt>Link</dt><dd>${link
      ? `${link.connected ? 'connected' : 'not connected'} · round trip ${link.rttMs === null ? '—' : `${link.rttMs} ms (last ${link.lastRttMs} ms)`} · ${link.reconnectsLastHour}${link.reconnectsCapped ? '+' : ''} reconnects in the last hour`
      : 'no link since cloudcore started'}</dd></div>
    <div><dt>Synced revision</dt><dd>${s.ackedRevision}</dd></div>
  </dl>`;
}

function Resources({ stats }) {
  const points = stats.items;
  const times = points.map((p) => Date.parse(p.t) / 1000);
  const series = [
    { label: 'CPU %', values: points.map((p) => p.cpuPercent) },
    { label: 'Memory %', values: points.map((p) => percent(p.memoryUsedBytes, stats.memoryTotalBytes)) },
    { label: 'Disk %', values: points.map((p) => percent(p.diskUsedBytes, stats.diskTotalBytes)) },
  ];
  const last = points.at(-1);
  const summary = last ? `Latest: CPU ${last.cpuPercent} %, memory ${bytes(last.memoryUsedBytes)} of ${bytes(stats.memoryTotalBytes)}, disk ${bytes(last.diskUsedBytes)} of ${bytes(stats.diskTotalBytes)} (${points.length} samples).` : '';
  return html`<${TimeChart} id="node-resources" caption="CPU, memory and disk over the last hour (percent)" times=${times} series=${series} range=${[0, 100]} unit="%" summary=${summary} />`;
}

function Logs({ node, app }) {
  const [state, setState] = useState({ text: undefined, error: undefined, busy: false });
  // A log opens at its newest line, as kubectl logs and every log viewer do.
  const pre = useRef(null);
  useEffect(() => { if (pre.current) pre.current.scrollTop = pre.current.scrollHeight; }, [state.text]);
  const load = async () => {
    setState({ text: undefined, error: undefined, busy: true });
    try {
      setState({ text: await apiGet(`/nodes/${enc(node)}/workloads/${enc(app)}/logs?tail=100`, { text: true }), busy: false });
    } catch (err) {
      setState({ error: err instanceof ApiFailure ? err.message : `could not fetch: ${err.message}`, busy: false });
    }
  };
  return html`<div class="logs">
    <button type="button" class="secondary" onClick=${load} disabled=${state.busy} aria-controls=${`logs-${app}`}>
      ${state.text === undefined ? 'Show recent logs' : 'Refresh logs'}<span class="sr-only"> of ${app}</span></button>
    <div id=${`logs-${app}`} aria-live="polite">
      ${state.busy ? html`<p class="muted">Fetching through the node's link…</p>` : null}
      ${state.error ? html`<p class="error" role="alert">${state.error}</p>` : null}
      ${state.text !== undefined ? html`<pre ref=${pre} class="log" tabindex="0" aria-label=${`Last 100 log lines of ${app}`}>${state.text || '(empty)'}</pre>` : null}
    </div>
  </div>`;
}

function Workloads({ node, items, now }) {
  if (items.length === 0) return html`<p class="muted">No workloads are bound to this node.</p>`;
  return html`<table class="workloads">
    <caption>Workloads on ${node}</caption>
    <thead><tr><th scope="col">App</th><th scope="col">State</th><th scope="col">Ready</th><th scope="col">Restarts</th><th scope="col">Generation</th><th scope="col">Started</th><th scope="col">Last error</th><th scope="col">Logs</th></tr></thead>
    <tbody>${items.map((w) => {
      const s = w.status;
      return html`<tr key=${w.metadata.name} data-workload=${w.spec.app}>
        <th scope="row"><a href=${`#/apps/${enc(w.spec.app)}`}>${w.spec.app}</a></th>
        <td data-col="state"><${StateBadge} state=${s?.state ?? 'Pending'} /></td>
        <td>${s?.ready === true ? 'yes' : s?.ready === false ? 'no' : '—'}</td>
        <td>${s?.restarts ?? 0}</td>
        <td>${s ? `${s.generation} of ${w.spec.generation}` : w.spec.generation}</td>
        <td>${s?.startedAt ? html`<${Ago} iso=${s.startedAt} now=${now} />` : '—'}</td>
        <td class="wrap">${s?.lastError ?? ''}</td>
        <td><${Logs} node=${node} app=${w.spec.app} /></td>
      </tr>`;
    })}</tbody>
  </table>`;
}

function Devices({ items, now }) {
  if (items.length === 0) return html`<p class="muted">No devices are attached to this node.</p>`;
  return items.map((d) => html`<section key=${d.metadata.name} class="device-card" aria-labelledby=${`dev-${d.metadata.name}`}>
    <h3 id=${`dev-${d.metadata.name}`}><a href=${`#/devices/${enc(d.metadata.name)}`}>${d.metadata.name}</a>
      <small> ${d.spec.model} · ${d.status?.online ? 'online' : 'offline'}${d.status?.lastSeen ? html` · seen <${Ago} iso=${d.status.lastSeen} now=${now} />` : ''}</small></h3>
    <${TwinTable} device=${d} caption=${`Twin of ${d.metadata.name}`} />
  </section>`);
}

function Events({ items, now }) {
  if (items.length === 0) return html`<p class="muted">No events reported.</p>`;
  return html`<table class="events"><caption>Most recent first</caption>
    <thead><tr><th scope="col">When</th><th scope="col">Type</th><th scope="col">Reason</th><th scope="col">Workload</th><th scope="col">Message</th></tr></thead>
    <tbody>${[...items].reverse().map((e) => html`<tr key=${e.metadata.name} class=${e.spec.type === 'Warning' ? 'warn' : ''}>
      <td><${Ago} iso=${e.spec.time} now=${now} /></td><td>${e.spec.type}</td><td>${e.spec.reason}</td><td>${e.spec.workload ?? ''}</td><td class="wrap">${e.spec.message}</td>
    </tr>`)}</tbody></table>`;
}

export function NodePage({ name }) {
  const now = useNow();
  const { data, error, live, updatedAt } = useLive((signal) => loadNode(name, signal), [name], {
    // The node, its workloads, devices and events.
    watches: (d) => [{ path: `/fleet/changes?node=${enc(name)}&resourceVersion=${d.revision}&intervalMs=500` }],
    // Route and app grant counters arrive from the node every 5 s and have no watch event.
    refreshMs: 5000,
  });
  return html`<p class="crumbs"><a href="#/">Fleet</a> › node</p>
    <h1 tabindex="-1">Node ${name}</h1>
    <${LiveNote} live=${live} updatedAt=${updatedAt} />
    <${ErrorNote} error=${error} />
    ${data ? html`
      <${Summary} node=${data.node} stats=${data.stats} now=${now} />
      <section aria-labelledby="h-resources"><h2 id="h-resources">Resources</h2><${Resources} stats=${data.stats} /></section>
      <section aria-labelledby="h-workloads"><h2 id="h-workloads">Workloads</h2><${Workloads} node=${name} items=${data.workloads.items} now=${now} /></section>
      <section aria-labelledby="h-devices"><h2 id="h-devices">Devices</h2><${Devices} items=${data.devices.items} now=${now} /></section>
      <section aria-labelledby="h-grants"><h2 id="h-grants">App grants</h2><${AppGrants} node=${name} grants=${data.grants} now=${now} /></section>
      <section aria-labelledby="h-routes"><h2 id="h-routes">Routes</h2><${NodeRoutes} node=${name} routes=${data.routes} now=${now} /></section>
      <section aria-labelledby="h-events"><h2 id="h-events">Recent events</h2><${Events} items=${data.events} now=${now} /></section>
    ` : error ? null : html`<p class="loading">Loading…</p>`}`;
}
