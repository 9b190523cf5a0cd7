// Apps: the list, and one app with its revisions, rollout progress per wave and per-node state.
// Rollouts and revisions come from /apps/{a}/rollout and /revisions; an app without them (or a
// cloudcore without rollouts) simply shows none.
import { apiGet, apiGetOptional, enc, useLive } from './api.js';
import { html, useState } from './html.js';
import { Ago, count, ErrorNote, LiveNote, selectorText, stateCounts, StateBadge, useNow, useShown } from './format.js';

function templateText(t) {
  if (!t) return '';
  return t.runtime === 'container' ? `container ${t.image}` : `process ${[t.command, ...(t.args ?? [])].join(' ')}`;
}

function byState(nodes) {
  const out = {};
  for (const n of nodes ?? []) out[n.state] = (out[n.state] ?? 0) + 1;
  return out;
}

export function AppsPage() {
  const { data, error, live, updatedAt } = useLive((signal) => apiGet('/apps', { signal }), [], {
    watches: (d) => [{ path: `/fleet/changes?resourceVersion=${d.resourceVersion}` }],
    throttleMs: 1000,
  });
  return html`<h1 tabindex="-1">Apps</h1>
    <${LiveNote} live=${live} updatedAt=${updatedAt} />
    <${ErrorNote} error=${error} />
    ${data ? (data.items.length === 0 ? html`<p class="muted">No apps yet. Create one with <code>edgectl apply -f app.yaml</code>.</p>` : html`<table class="apps">
      <caption>${count(data.items.length)} apps</caption>
      <thead><tr><th scope="col">App</th><th scope="col">Generation</th><th scope="col">Runs</th><th scope="col">Selector</th><th scope="col">Nodes by state</th></tr></thead>
      <tbody>${data.items.map((a) => html`<tr key=${a.metadata.name} data-app=${a.metadata.name}>
        <th scope="row"><a href=${`#/apps/${enc(a.metadata.name)}`}>${a.metadata.name}</a></th>
        <td>${a.metadata.generation}</td><td class="wrap"><code>${templateText(a.spec.template)}</code></td>
        <td><code>${selectorText(a.spec.selector)}</code></td><td>${stateCounts(byState(a.status?.nodes))}</td>
      </tr>`)}</tbody></table>`) : error ? null : html`<p class="loading">Loading…</p>`}`;
}

async function loadApp(name, signal) {
  const a = enc(name);
  // Read first: a change while the rest loads is then seen on the change stream.
  const { revision } = await apiGet('/healthz', { signal });
  const [app, rollout, revisions] = await Promise.all([
    apiGet(`/apps/${a}`, { signal }),
    apiGetOptional(`/apps/${a}/rollout`, { signal }).catch(() => null),
    apiGetOptional(`/apps/${a}/revisions`, { signal }).catch(() => null),
  ]);
  return { app, rollout, revisions: revisions?.items ?? null, revision };
}

function Counts({ counts }) {
  if (!counts) return null;
  return html`<span class="rollout-counts">${['healthy', 'updating', 'pending', 'failed', 'offline']
    .filter((k) => counts[k] > 0).map((k, i) => html`${i ? ', ' : ''}<span class=${`rc rc-${k}`}>${counts[k]} ${k}</span>`)}</span>`;
}

export function Rollout({ rollout, now }) {
  if (!rollout?.status) return html`<p class="muted" data-rollout="none">No rollout recorded for this app: every matching node runs the current template.</p>`;
  const s = rollout.status;
  return html`<dl class="summary" data-rollout=${s.phase}>
      <div><dt>Phase</dt><dd><span class=${`rollout-phase rp-${s.phase}`}>${s.phase}</span></dd></div>
      <div><dt>Revision</dt><dd>${s.revision}${s.stableRevision ? ` (stable: ${s.stableRevision})` : ''}</dd></div>
      <div><dt>Nodes</dt><dd><${Counts} counts=${s.counts} /></dd></div>
      <div><dt>Started</dt><dd><${Ago} iso=${s.startedAt} now=${now} />${s.finishedAt ? html`, finished <${Ago} iso=${s.finishedAt} now=${now} />` : ''}</dd></div>
      ${s.message ? html`<div><dt>Message</dt><dd>${s.message}</dd></div>` : null}
    </dl>
    ${(s.waves ?? []).length ? html`<table class="waves"><caption>Waves (cumulative targets)</caption>
      <thead><tr><th scope="col">Wave</th><th scope="col">State</th><th scope="col">Progress</th><th scope="col">Nodes</th><th scope="col">Approval</th></tr></thead>
      <tbody>${s.waves.map((w) => html`<tr key=${w.index} class=${w.index === s.wave ? 'current' : ''} data-wave=${w.index}>
        <th scope="row">${w.index + 1}${w.index === s.wave ? html`<span class="sr-only"> (current)</span>` : ''}</th>
        <td>${w.state}</td>
        <td><progress max=${Math.max(w.size, 1)} value=${w.counts.healthy} aria-label=${`Wave ${w.index + 1}: ${w.counts.healthy} of ${w.size} nodes healthy`}></progress>
          <span class="progress-text">${w.counts.healthy}/${w.size} (up to ${w.target} in all)</span></td>
        <td><${Counts} counts=${w.counts} /></td>
        <td>${w.approval ? (w.approved ? 'approved' : 'awaiting approval') : '—'}</td>
      </tr>`)}</tbody></table>` : null}`;
}

function Revisions({ items, rollout }) {
  if (items === null) return html`<p class="muted">This cloudcore keeps no app revisions.</p>`;
  if (items.length === 0) return html`<p class="muted">No revisions recorded yet.</p>`;
  const s = rollout?.status;
  const current = s && !['Succeeded', 'Failed', 'RolledBack', 'Aborted'].includes(s.phase) ? s.revision : undefined;
  const stable = s?.stableRevision;
  // As in `edgectl rollout history`: a revision the rollout rolled back from is marked bad.
  const bad = new Set(s?.badRevisions ?? []);
  return html`<table class="revisions"><caption>Newest first</caption>
    <thead><tr><th scope="col">Revision</th><th scope="col">Template</th><th scope="col">Variants</th><th scope="col">Created</th></tr></thead>
    <tbody>${[...items].sort((a, b) => b.spec.revision - a.spec.revision).map((r) => html`<tr key=${r.metadata.name}>
      <th scope="row">${r.spec.revision}${r.spec.revision === current ? ` (${s.phase === 'RolledBack' ? 'rolled back to' : 'rolling out'})` : ''}${r.spec.revision === stable ? ' (stable)' : ''}${bad.has(r.spec.revision) ? ' (bad, rolled back)' : ''}</th>
      <td class="wrap"><code>${templateText(r.spec.template)}</code></td><td>${r.spec.variants?.length ?? 0}</td>
      <td>${r.metadata.creationTimestamp ? new Date(r.metadata.creationTimestamp).toLocaleString() : ''}</td>
    </tr>`)}</tbody></table>`;
}

function NodeStates({ nodes: all }) {
  const [state, setState] = useState('');
  const [shown, more] = useShown(100);
  if (!all?.length) return html`<p class="muted">No node matches this app's selector.</p>`;
  const states = [...new Set(all.map((n) => n.state))].sort();
  // Trouble first: an operator looking at 10,000 nodes wants the failing ones.
  const rank = (s) => (s === 'Running' ? 1 : 0);
  const nodes = all.filter((n) => !state || n.state === state)
    .sort((a, b) => rank(a.state) - rank(b.state) || (a.node < b.node ? -1 : 1)).slice(0, shown);
  const matching = state ? all.filter((n) => n.state === state).length : all.length;
  return html`<p class="inline-field"><label for="app-state">Show nodes in state</label>
    <select id="app-state" onChange=${(e) => setState(e.currentTarget.value)}>
      <option value="" selected=${state === ''}>any</option>
      ${states.map((s) => html`<option key=${s} value=${s} selected=${state === s}>${s}</option>`)}
    </select></p>
    <table class="app-nodes"><caption>${count(matching)} nodes${state ? ` in state ${state}` : ''}, not running first</caption>
    <thead><tr><th scope="col">Node</th><th scope="col">State</th><th scope="col">Restarts</th><th scope="col">Generation</th><th scope="col">Last error</th></tr></thead>
    <tbody>${nodes.map((n) => html`<tr key=${n.node} data-node=${n.node}>
      <th scope="row"><a href=${`#/nodes/${enc(n.node)}`}>${n.node}</a></th><td><${StateBadge} state=${n.state} /></td>
      <td>${n.restarts}</td><td>${n.generation ?? '—'}</td><td class="wrap">${n.lastError ?? ''}</td>
    </tr>`)}</tbody></table>
    ${more(matching, 'nodes')}`;
}

export function AppPage({ name }) {
  const now = useNow();
  const { data, error, live, updatedAt } = useLive((signal) => loadApp(name, signal), [name], {
    // The app, its rollout, revisions and workloads.
    watches: (d) => [{ path: `/fleet/changes?app=${enc(name)}&resourceVersion=${d.revision}&intervalMs=500` }],
    refreshMs: 5000,
  });
  const app = data?.app;
  return html`<p class="crumbs"><a href="#/apps">Apps</a> › app</p>
    <h1 tabindex="-1">App ${name}</h1>
    <${LiveNote} live=${live} updatedAt=${updatedAt} />
    <${ErrorNote} error=${error} />
    ${app ? html`<dl class="summary">
        <div><dt>Generation</dt><dd>${app.metadata.generation}</dd></div>
        <div><dt>Runs</dt><dd><code>${templateText(app.spec.template)}</code></dd></div>
        <div><dt>Selector</dt><dd><code>${selectorText(app.spec.selector)}</code></dd></div>
        <div><dt>Strategy</dt><dd>${app.spec.strategy?.type ?? 'rolling'}</dd></div>
        <div><dt>Nodes by state</dt><dd>${stateCounts(byState(app.status?.nodes))}</dd></div>
      </dl>
      <section aria-labelledby="h-rollout"><h2 id="h-rollout">Rollout</h2><${Rollout} rollout=${data.rollout} now=${now} /></section>
      <section aria-labelledby="h-revisions"><h2 id="h-revisions">Revisions</h2><${Revisions} items=${data.revisions} rollout=${data.rollout} /></section>
      <section aria-labelledby="h-app-nodes"><h2 id="h-app-nodes">Per-node state</h2><${NodeStates} nodes=${app.status?.nodes} /></section>`
    : error ? null : html`<p class="loading">Loading…</p>`}`;
}
