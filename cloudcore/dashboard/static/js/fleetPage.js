// Fleet: every node, filtered, sorted and paged by the server (GET /fleet), kept live by the
// fleet's change stream (one coalesced line a second at most, however busy the fleet).
import { apiGet, enc, query, useLive } from './api.js';
import { html, useRef } from './html.js';
import { Ago, count, duration, ErrorNote, Labels, LiveNote, stateCounts, useNow } from './format.js';

const COLUMNS = [
  ['name', 'Node'], ['status', 'Status'], ['lastSeen', 'Last seen'], ['version', 'Version'], ['os', 'OS / arch'],
  [null, 'Labels'], ['workloads', 'Workloads'], ['devices', 'Devices'], ['rtt', 'Link'],
];
const PAGE_SIZES = [25, 50, 100, 200];
const DEFAULTS = { sort: 'name', order: 'asc', limit: '50', offset: '0' };

/** The fleet query lives in the URL hash, so a view can be bookmarked and Back works. */
function readParams(params) {
  const get = (k) => params.get(k) ?? DEFAULTS[k] ?? '';
  return {
    labelSelector: get('labelSelector'), status: get('status'), search: get('search'),
    sort: get('sort'), order: get('order'), limit: get('limit'), offset: get('offset'),
  };
}

function go(next) {
  const q = query(Object.fromEntries(Object.entries(next).filter(([k, v]) => DEFAULTS[k] !== v)));
  location.hash = `#/${q}`;
}

function Counts({ totals, onStatus }) {
  const { nodes, byPhase, workloads, devices } = totals;
  const item = (key, label, n, status) => html`<div class=${`count count-${key}`}>
    <dt>${label}</dt>
    <dd data-count=${key}>${status !== undefined ? html`<a href="#" onClick=${(e) => { e.preventDefault(); onStatus(status); }}
      title=${`Show ${label.toLowerCase()} nodes only`}>${count(n)}</a>` : count(n)}</dd></div>`;
  return html`<dl class="counts" aria-label="Fleet totals" aria-live="polite">
    ${item('nodes', 'Nodes', nodes, '')}
    ${item('Ready', 'Ready', byPhase.Ready, 'Ready')}
    ${item('Offline', 'Offline', byPhase.Offline, 'Offline')}
    ${item('Pending', 'Pending', byPhase.Pending, 'Pending')}
    ${item('workloads', 'Workloads running', workloads.byState.Running ?? 0)}
    ${item('workloads-total', 'Workloads', workloads.total)}
    ${item('devices', 'Devices online', devices.online)}
    ${item('devices-total', 'Devices', devices.total)}
  </dl>`;
}

function Filters({ q }) {
  const form = useRef(null);
  const submit = (e) => {
    e.preventDefault();
    const f = new FormData(form.current);
    go({ ...q, labelSelector: f.get('labelSelector').trim(), status: f.get('status'), search: f.get('search').trim(), limit: f.get('limit'), offset: '0' });
  };
  return html`<form class="filters" role="search" aria-label="Filter nodes" ref=${form} onSubmit=${submit} key=${JSON.stringify(q)}>
    <div><label for="f-selector">Label selector</label>
      <input id="f-selector" name="labelSelector" defaultValue=${q.labelSelector} placeholder="zone=north,gpu" aria-describedby="f-selector-hint" />
      <small id="f-selector-hint">e.g. <code>zone=north</code>, <code>env in (a,b)</code>, <code>!gpu</code></small></div>
    <div><label for="f-status">Status</label>
      <select id="f-status" name="status">
        ${['', 'Ready', 'Offline', 'Pending'].map((s) => html`<option key=${s} value=${s} selected=${q.status === s}>${s || 'Any'}</option>`)}
      </select></div>
    <div><label for="f-search">Name contains</label><input id="f-search" name="search" defaultValue=${q.search} /></div>
    <div><label for="f-limit">Rows per page</label>
      <select id="f-limit" name="limit">${PAGE_SIZES.map((n) => html`<option key=${n} value=${String(n)} selected=${q.limit === String(n)}>${n}</option>`)}</select></div>
    <div class="actions"><button type="submit">Apply</button>
      <button type="button" class="secondary" onClick=${() => go({ ...DEFAULTS })}>Clear</button></div>
  </form>`;
}

function SortHeader({ column, label, q }) {
  if (!column) return html`<th scope="col">${label}</th>`;
  const active = q.sort === column;
  const nextOrder = active && q.order === 'asc' ? 'desc' : 'asc';
  return html`<th scope="col" aria-sort=${active ? (q.order === 'asc' ? 'ascending' : 'descending') : 'none'}>
    <button type="button" class="sort" onClick=${() => go({ ...q, sort: column, order: nextOrder, offset: '0' })}>
      ${label}<span aria-hidden="true">${active ? (q.order === 'asc' ? ' ▲' : ' ▼') : ''}</span></button></th>`;
}

function LinkCell({ link }) {
  if (!link) return html`<span class="muted">—</span>`;
  const rtt = link.rttMs === null ? 'RTT —' : `RTT ${link.rttMs} ms`;
  const reconnects = `${link.reconnectsLastHour}${link.reconnectsCapped ? '+' : ''} reconnect${link.reconnectsLastHour === 1 ? '' : 's'}/h`;
  return html`<span class=${link.reconnectsLastHour >= 3 ? 'warn' : ''}>${rtt} · ${reconnects}</span>`;
}

function Row({ node, now }) {
  return html`<tr data-node=${node.name}>
    <th scope="row"><a href=${`#/nodes/${enc(node.name)}`}>${node.name}</a></th>
    <td><span class=${`phase phase-${node.phase}`}>${node.phase}</span> <small>for ${duration(now - Date.parse(node.since))}</small></td>
    <td><${Ago} iso=${node.lastSeen} now=${now} /></td>
    <td>${node.agent?.version ?? html`<span class="muted">—</span>`}</td>
    <td>${node.agent ? `${node.agent.os}/${node.agent.arch}` : html`<span class="muted">—</span>`}</td>
    <td class="labels-cell"><${Labels} labels=${node.labels} /></td>
    <td data-col="workloads">${stateCounts(node.workloads.byState)}</td>
    <td data-col="devices">${node.devices.total ? `${node.devices.online}/${node.devices.total} online` : html`<span class="muted">none</span>`}</td>
    <td><${LinkCell} link=${node.link} /></td>
  </tr>`;
}

export function FleetPage({ params }) {
  const q = readParams(params);
  const now = useNow();
  const path = `/fleet${query(q)}`;
  const { data, error, live, updatedAt } = useLive((signal) => apiGet(path, { signal }), [path], {
    watches: (page) => [{ path: `/fleet/changes?resourceVersion=${page.resourceVersion}` }],
    throttleMs: 1000,
  });
  // From the answer, not the URL: until the new page arrives, the pager describes the rows shown.
  const offset = data ? data.offset : Number(q.offset);
  const limit = data ? data.limit : Number(q.limit);
  return html`<h1 tabindex="-1">Fleet</h1>
    ${data ? html`<${Counts} totals=${data.totals} onStatus=${(status) => go({ ...q, status, offset: '0' })} />` : null}
    <${Filters} q=${q} />
    <${LiveNote} live=${live} updatedAt=${updatedAt} />
    <${ErrorNote} error=${error} />
    ${data ? html`<div class="table-wrap"><table class="fleet" aria-describedby="fleet-range">
      <caption id="fleet-range">${`Nodes ${data.matched ? `${count(offset + 1)}–${count(offset + data.items.length)}` : '0'} of `}<span data-count="matched">${count(data.matched)}</span>${data.matched !== data.totals.nodes ? ' matching' : ''}</caption>
      <thead><tr>${COLUMNS.map(([column, label]) => html`<${SortHeader} key=${label} column=${column} label=${label} q=${q} />`)}</tr></thead>
      <tbody>${data.items.map((node) => html`<${Row} key=${node.name} node=${node} now=${now} />`)}</tbody>
    </table></div>
    <nav class="pager" aria-label="Pages">
      <button type="button" disabled=${offset === 0} onClick=${() => go({ ...q, offset: String(Math.max(0, offset - limit)) })}>Previous</button>
      <span>Page ${count(Math.floor(offset / limit) + 1)} of ${count(Math.max(1, Math.ceil(data.matched / limit)))}</span>
      <button type="button" disabled=${offset + limit >= data.matched} onClick=${() => go({ ...q, offset: String(offset + limit) })}>Next</button>
    </nav>` : error ? null : html`<p class="loading">Loading nodes…</p>`}`;
}
