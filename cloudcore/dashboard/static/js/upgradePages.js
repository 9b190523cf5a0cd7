// Agent upgrades: the list with a form to start one, and one upgrade with its waves, each node's
// attempt and the rollout commands (pause, resume, approve, abort). Same API as `edgectl upgrade`.
import { apiGet, apiGetOptional, ApiFailure, apiSend, enc, useLive } from './api.js';
import { html, useState } from './html.js';
import { Rollout } from './appPages.js';
import { count, ErrorNote, LiveNote, selectorText, useNow } from './format.js';

const ACTIVE = ['Progressing', 'Paused', 'AwaitingApproval'];

/** `zone=north,tier=edge` → {matchLabels}; an empty text selects every node. */
function parseLabels(text) {
  const matchLabels = {};
  for (const term of text.split(',').map((t) => t.trim()).filter(Boolean)) {
    const m = /^([^=\s]+)=(\S*)$/.exec(term);
    if (!m) throw new Error(`"${term}" is not key=value`);
    matchLabels[m[1]] = m[2];
  }
  return Object.keys(matchLabels).length ? { matchLabels } : {};
}

/** `1,50%,100%` → waves; empty → none (the default rolling strategy). */
function parseWaves(text) {
  if (!text.trim()) return undefined;
  return text.split(',').map((w) => w.trim()).map((w) => {
    if (/^\d+(\.\d+)?%$/.test(w)) return { percent: Number(w.slice(0, -1)) };
    if (/^[1-9]\d*$/.test(w)) return { count: Number(w) };
    throw new Error(`"${w}" is neither a node count nor a percent`);
  });
}

function StartForm({ versions, onStarted }) {
  const [errors, setErrors] = useState({});
  const [result, setResult] = useState({ ok: '', error: '' });
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const problems = {};
    const body = { version: String(form.get('version') ?? '').trim() };
    const name = String(form.get('name') ?? '').trim();
    if (name) body.name = name;
    if (!body.version) problems.version = 'Choose a version.';
    try { body.selector = parseLabels(String(form.get('selector') ?? '')); } catch (err) { problems.selector = err.message; }
    try {
      const waves = parseWaves(String(form.get('waves') ?? ''));
      const autoRollback = form.get('autoRollback') === 'on';
      if (waves || autoRollback) body.strategy = { ...(waves ? { type: 'waves', waves } : {}), ...(autoRollback ? { autoRollback } : {}) };
    } catch (err) { problems.waves = err.message; }
    setErrors(problems);
    setResult({ ok: '', error: '' });
    if (Object.keys(problems).length) return;
    setBusy(true);
    try {
      const u = await apiSend('POST', '/agent-upgrades', body);
      setResult({ ok: `Upgrade ${u.metadata.name} asks for version ${u.spec.version}.`, error: '' });
      onStarted(u.metadata.name);
    } catch (err) {
      const field = err instanceof ApiFailure && err.field ? err.field.split('.')[0] : undefined;
      if (field === 'strategy') setErrors({ waves: err.message });
      else if (field && ['version', 'selector', 'name'].includes(field)) setErrors({ [field]: err.message });
      else setResult({ ok: '', error: err.message });
    } finally {
      setBusy(false);
    }
  };
  const field = (id, label, input, hint) => html`<div class=${errors[id] ? 'field invalid' : 'field'} data-field=${id}>
      <label for=${`upgrade-${id}`}>${label}</label>${input}
      ${hint ? html`<small id=${`upgrade-${id}-hint`}>${hint}</small>` : null}
      <small id=${`upgrade-${id}-error`} class="field-error error" role="alert">${errors[id] ?? ''}</small>
    </div>`;
  const described = (id) => ({ 'aria-describedby': `upgrade-${id}-hint upgrade-${id}-error`, 'aria-invalid': errors[id] ? 'true' : 'false' });
  return html`<form class="desired" onSubmit=${submit} noValidate>
    ${field('version', 'Version', versions
      ? html`<select id="upgrade-version" name="version" ...${described('version')}>
          ${versions.map((v) => html`<option key=${v} value=${v}>${v}</option>`)}</select>`
      : html`<input id="upgrade-version" name="version" ...${described('version')} />`, 'A release cloudcore serves under /dist.')}
    ${field('selector', 'Nodes', html`<input id="upgrade-selector" name="selector" placeholder="zone=north" ...${described('selector')} />`, 'Labels, key=value separated by commas; empty: every node.')}
    ${field('waves', 'Waves', html`<input id="upgrade-waves" name="waves" placeholder="1,50%,100%" ...${described('waves')} />`, 'Cumulative node counts or percents, the last 100%; empty: 25% at a time.')}
    ${field('name', 'Name', html`<input id="upgrade-name" name="name" placeholder="edge-agent" ...${described('name')} />`, 'An upgrade of the same name is given the new version.')}
    <p class="inline-field"><input type="checkbox" id="upgrade-autoRollback" name="autoRollback" /><label for="upgrade-autoRollback">Roll back nodes that took the version when the failure threshold trips</label></p>
    <p><button type="submit" disabled=${busy}>Start upgrade</button></p>
    <p class="ok" role="status">${result.ok}</p><p class="error" role="alert">${result.error}</p>
  </form>`;
}

export function UpgradesPage() {
  const { data, error, live, updatedAt } = useLive(async (signal) => {
    const [list, dist] = await Promise.all([apiGet('/agent-upgrades', { signal }), fetch('/dist/index.json', { signal }).then((r) => (r.ok ? r.json() : null)).catch(() => null)]);
    return { list, versions: dist?.versions?.map((v) => v.version) ?? null };
  }, [], { watches: (d) => [{ path: `/agent-upgrades?watch=true&resourceVersion=${d.list.resourceVersion}` }], throttleMs: 1000 });
  return html`<h1 tabindex="-1">Agent upgrades</h1>
    <${LiveNote} live=${live} updatedAt=${updatedAt} />
    <${ErrorNote} error=${error} />
    ${data ? html`${data.list.items.length === 0 ? html`<p class="muted">No agent upgrades yet.</p>` : html`<table class="upgrades">
      <caption>${count(data.list.items.length)} upgrades</caption>
      <thead><tr><th scope="col">Upgrade</th><th scope="col">Version</th><th scope="col">Nodes</th><th scope="col">Phase</th><th scope="col">Message</th></tr></thead>
      <tbody>${data.list.items.map((u) => html`<tr key=${u.metadata.name} data-upgrade=${u.metadata.name}>
        <th scope="row"><a href=${`#/upgrades/${enc(u.metadata.name)}`}>${u.metadata.name}</a></th>
        <td>${u.spec.version}</td><td><code>${selectorText(u.spec.selector)}</code></td>
        <td><span class=${`rollout-phase rp-${u.status?.phase}`}>${u.status?.phase ?? 'starting'}</span></td><td class="wrap">${u.status?.message ?? ''}</td>
      </tr>`)}</tbody></table>`}
      <section aria-labelledby="h-start-upgrade"><h2 id="h-start-upgrade">Start an upgrade</h2>
        <${StartForm} versions=${data.versions} onStarted=${(name) => { location.hash = `#/upgrades/${enc(name)}`; }} /></section>`
    : error ? null : html`<p class="loading">Loading…</p>`}`;
}

function Commands({ upgrade }) {
  const [message, setMessage] = useState({ ok: '', error: '' });
  const phase = upgrade.status?.phase;
  const run = async (verb) => {
    setMessage({ ok: '', error: '' });
    try {
      const u = await apiSend('POST', `/agent-upgrades/${enc(upgrade.metadata.name)}/${verb}`, {});
      setMessage({ ok: `${verb}: now ${u.status.phase}.`, error: '' });
    } catch (err) {
      setMessage({ ok: '', error: err.message });
    }
  };
  const buttons = [
    ['pause', phase === 'Progressing' || phase === 'AwaitingApproval'],
    ['resume', phase === 'Paused'],
    ['approve', phase === 'AwaitingApproval'],
    ['abort', ACTIVE.includes(phase)],
  ].filter(([, shown]) => shown);
  return html`<p class="commands">${buttons.map(([verb]) => html`<button type="button" key=${verb} data-command=${verb} onClick=${() => run(verb)}>${verb[0].toUpperCase() + verb.slice(1)}</button> `)}</p>
    <p class="ok" role="status">${message.ok}</p><p class="error" role="alert">${message.error}</p>`;
}

export function UpgradePage({ name }) {
  const now = useNow();
  const { data, error, live, updatedAt } = useLive(async (signal) => {
    const [upgrade, nodes] = await Promise.all([apiGetOptional(`/agent-upgrades/${enc(name)}`, { signal }), apiGet('/nodes', { signal })]);
    return { upgrade, nodes: nodes.items.filter((n) => n.spec?.agent?.upgrade === name), resourceVersion: nodes.resourceVersion };
  }, [name], { watches: (d) => [{ path: `/agent-upgrades?watch=true&resourceVersion=${d.resourceVersion}` }], refreshMs: 5000 });
  const u = data?.upgrade;
  return html`<p class="crumbs"><a href="#/upgrades">Agent upgrades</a> › upgrade</p>
    <h1 tabindex="-1">Agent upgrade ${name}</h1>
    <${LiveNote} live=${live} updatedAt=${updatedAt} />
    <${ErrorNote} error=${error} />
    ${data && !u ? html`<p>No agent upgrade named ${name}.</p>` : null}
    ${u ? html`<dl class="summary">
        <div><dt>Version</dt><dd>${u.spec.version}</dd></div>
        <div><dt>Nodes</dt><dd><code>${selectorText(u.spec.selector)}</code></dd></div>
        <div><dt>Revisions</dt><dd>${u.spec.revisions.map((r) => `${r.revision}: ${r.version ?? 'each node\'s own version'}`).join(' · ')}</dd></div>
      </dl>
      <${Commands} upgrade=${u} />
      <section aria-labelledby="h-rollout"><h2 id="h-rollout">Rollout</h2><${Rollout} rollout=${u.status ? { status: u.status } : null} now=${now} /></section>
      <section aria-labelledby="h-upgrade-nodes"><h2 id="h-upgrade-nodes">Nodes</h2>
        ${data.nodes.length === 0 ? html`<p class="muted">No node has been told a version by this upgrade yet.</p>` : html`<table class="upgrade-nodes">
          <caption>${count(data.nodes.length)} nodes told a version</caption>
          <thead><tr><th scope="col">Node</th><th scope="col">Running</th><th scope="col">Wanted</th><th scope="col">Attempt</th><th scope="col">Message</th></tr></thead>
          <tbody>${data.nodes.map((n) => {
            const attempt = n.status.agent?.upgrade?.upgrade === name ? n.status.agent.upgrade : null;
            return html`<tr key=${n.metadata.name} data-node=${n.metadata.name}>
              <th scope="row"><a href=${`#/nodes/${enc(n.metadata.name)}`}>${n.metadata.name}</a></th>
              <td>${n.status.agent?.version ?? '—'}</td><td>${n.spec.agent.version}</td>
              <td>${attempt ? `${attempt.phase} (revision ${attempt.revision})` : '—'}</td><td class="wrap">${attempt?.message ?? ''}</td>
            </tr>`;
          })}</tbody></table>`}</section>`
    : error ? null : data ? null : html`<p class="loading">Loading…</p>`}`;
}
