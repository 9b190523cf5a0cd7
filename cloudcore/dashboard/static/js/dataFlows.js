// Local data flows: the Routes page (every route, with each node's counters), and the tables the
// node page shows for its app grants and its routes. Counters come from the nodes every few
// seconds and live in cloudcore's memory (no watch event for them), so these pages also poll.
import { apiGet, enc, useLive } from './api.js';
import { html } from './html.js';
import { Ago, bytes, count, ErrorNote, LiveNote, selectorText, useNow } from './format.js';

function destinationText(d) {
  return d.type === 'cloud' ? 'cloud' : `${d.url}${d.topicPrefix ? ` (prefix ${d.topicPrefix})` : ''}`;
}

const num = (n) => (n === undefined ? html`<span class="muted">—</span>` : count(n));

/** One row per node (or per route, on a node's page): `rows` are [{key, label, counters}]. */
export function RouteCounterTable({ caption, firstHeader, rows, now }) {
  return html`<div class="table-wrap"><table class="route-counters">
    <caption>${caption}</caption>
    <thead><tr><th scope="col">${firstHeader}</th><th scope="col">Reachable</th><th scope="col">Matched</th><th scope="col">Forwarded</th><th scope="col">Queued now</th><th scope="col">Dropped (queue full / oversized)</th><th scope="col">Last forwarded</th><th scope="col">Last report</th><th scope="col">Last error</th></tr></thead>
    <tbody>${rows.map(({ key, label, counters: c }) => {
      const reported = c.observedAt !== undefined;
      const drops = reported ? c.dropped.queueFull + c.dropped.oversized : 0;
      return html`<tr key=${key} data-row=${key}>
        <th scope="row">${label}</th>
        <td data-col="reachable">${reported ? (c.connected ? 'yes' : html`<span class="unreachable">no</span>`) : html`<span class="muted">not reported</span>`}</td>
        <td data-col="matched">${num(c.matched)}</td>
        <td data-col="forwarded">${num(c.forwarded)}</td>
        <td data-col="queued">${reported ? `${count(c.queueDepth)} (${bytes(c.queueBytes)})` : num(undefined)}</td>
        <td data-col="dropped" class=${drops > 0 ? 'warn' : ''}>${reported ? `${count(c.dropped.queueFull)} / ${count(c.dropped.oversized)}` : num(undefined)}</td>
        <td>${reported ? html`<${Ago} iso=${c.lastForwardedAt} now=${now} />` : num(undefined)}</td>
        <td>${reported ? html`<${Ago} iso=${c.observedAt} now=${now} />` : num(undefined)}</td>
        <td class="wrap" data-col="error">${c.lastError ?? ''}</td>
      </tr>`;
    })}</tbody></table></div>`;
}

function RouteSection({ route, now }) {
  const name = route.metadata.name;
  const nodes = route.status?.nodes ?? [];
  return html`<section class="route-card" data-route=${name} aria-labelledby=${`route-${name}`}>
    <h2 id=${`route-${name}`}>${name}</h2>
    <dl class="summary">
      <div><dt>Source topics</dt><dd data-col="source">${route.spec.source.topics.join(', ')}</dd></div>
      <div><dt>Destination</dt><dd data-col="destination">${destinationText(route.spec.destination)}</dd></div>
      <div><dt>Nodes</dt><dd>${selectorText(route.spec.selector)}</dd></div>
      <div><dt>Limits</dt><dd>${route.spec.limits.maxMessagesPerSecond} msg/s, ${bytes(route.spec.limits.maxMessageBytes)} a message, queue ${count(route.spec.limits.maxQueuedMessages)} messages or ${bytes(route.spec.limits.maxQueuedBytes)}</dd></div>
    </dl>
    ${nodes.length === 0 ? html`<p class="muted">No node matches the selector yet.</p>`
      : html`<${RouteCounterTable} caption=${`Counters of ${name} on each node, as the node last reported them (it sends them when they change)`} firstHeader="Node"
          rows=${nodes.map((n) => ({ key: n.node, label: html`<a href=${`#/nodes/${enc(n.node)}`}>${n.node}</a>`, counters: n }))} now=${now} />`}
  </section>`;
}

export function RoutesPage() {
  const now = useNow();
  const { data, error, live, updatedAt } = useLive((signal) => apiGet('/routes', { signal }), [], {
    watches: (d) => [{ path: `/routes?watch=true&resourceVersion=${d.resourceVersion}` }],
    refreshMs: 5000,
  });
  return html`<h1 tabindex="-1">Routes</h1>
    <p class="muted">Chosen local MQTT topics of nodes, forwarded to the cloud or an operator's broker; each node queues them while its destination is away.</p>
    <${LiveNote} live=${live} updatedAt=${updatedAt} />
    <${ErrorNote} error=${error} />
    ${data ? (data.items.length === 0 ? html`<p class="muted">No routes yet (<code>edgectl apply -f route.yaml</code>, docs/edge-data.md).</p>`
      : data.items.map((r) => html`<${RouteSection} key=${r.metadata.name} route=${r} now=${now} />`))
      : error ? null : html`<p class="loading">Loading…</p>`}`;
}

/** The routes bound to one node, with that node's counters. */
export function NodeRoutes({ node, routes, now }) {
  if (routes === null) return html`<p class="muted">This cloudcore has no routes.</p>`;
  const rows = routes.flatMap((r) => (r.status?.nodes ?? []).filter((n) => n.node === node)
    .map((n) => ({ key: r.metadata.name, label: html`<a href="#/routes">${r.metadata.name}</a> <small class="muted">→ ${destinationText(r.spec.destination)}</small>`, counters: n })));
  if (rows.length === 0) return html`<p class="muted">No routes on this node.</p>`;
  return html`<${RouteCounterTable} caption=${`Routes on ${node}`} firstHeader="Route" rows=${rows} now=${now} />`;
}

/** A node's app identities on its broker, with messages since its edgecore started. */
export function AppGrants({ node, grants, now }) {
  if (grants === null) return html`<p class="muted">This cloudcore does not show app grants.</p>`;
  if (grants.observedAt === null) return html`<p class="muted">Not reported to this cloudcore since it started (the node is not linked to it, or its edgecore is older than app grants).</p>`;
  if (grants.items.length === 0) return html`<p class="muted">No workload on this node has an MQTT grant.</p>`;
  const filters = (list) => (list.length ? list.map((f) => html`<code key=${f}>${f}</code> `) : html`<span class="muted">—</span>`);
  return html`<div class="table-wrap"><table class="app-grants">
    <caption>App grants on ${node}: messages since its edgecore started; last report <${Ago} iso=${grants.observedAt} now=${now} /> (the node sends them when they change)${grants.omitted > 0 ? ` (${grants.omitted} more not reported)` : ''}</caption>
    <thead><tr><th scope="col">Workload</th><th scope="col">Username</th><th scope="col">May publish</th><th scope="col">May subscribe</th><th scope="col">Published</th><th scope="col">Delivered</th><th scope="col">Refused</th></tr></thead>
    <tbody>${grants.items.map((g) => html`<tr key=${g.workload} data-grant=${g.workload}>
      <th scope="row"><a href=${`#/apps/${enc(g.workload)}`}>${g.workload}</a></th>
      <td><code>${g.username}</code></td>
      <td class="wrap">${filters(g.publish)}</td>
      <td class="wrap">${filters(g.subscribe)}</td>
      <td data-col="published">${count(g.published)}</td>
      <td data-col="delivered">${count(g.delivered)}</td>
      <td data-col="refused" class=${g.refused > 0 ? 'warn' : ''}>${count(g.refused)}</td>
    </tr>`)}</tbody></table></div>`;
}
