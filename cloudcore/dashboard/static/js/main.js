// Shell of the dashboard: sign-in, navigation and hash routes (#/, #/nodes/x, #/apps/x, #/devices/x, #/routes, #/upgrades/x).
import { apiGet, ApiFailure, session } from './api.js';
import { html, render, useEffect, useRef, useState } from './html.js';
import { FleetPage } from './fleetPage.js';
import { NodePage } from './nodePage.js';
import { AppPage, AppsPage } from './appPages.js';
import { DevicePage, DevicesPage } from './devicePages.js';
import { UpgradePage, UpgradesPage } from './upgradePages.js';
import { RoutesPage } from './dataFlows.js';

function parseRoute(hash) {
  const [path, search = ''] = hash.replace(/^#/, '').split('?');
  const parts = (path || '/').split('/').filter(Boolean).map(decodeURIComponent);
  return { parts, params: new URLSearchParams(search) };
}

function useRoute() {
  const [route, setRoute] = useState(parseRoute(location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseRoute(location.hash));
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

function SignIn({ onSignedIn }) {
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const input = useRef(null);
  useEffect(() => input.current?.focus(), []);
  const submit = async (e) => {
    e.preventDefault();
    const token = input.current.value.trim();
    if (!token) { setError('Enter the operator token.'); return; }
    setBusy(true);
    session.signIn(token);
    try {
      await apiGet('/fleet?limit=1');
      onSignedIn();
    } catch (err) {
      session.signOut();
      setError(err instanceof ApiFailure && err.status === 401 ? 'That token was not accepted.' : `Could not reach cloudcore: ${err.message}`);
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="signin">
    <h1>EdgeFleet</h1>
    <form onSubmit=${submit} noValidate>
      <label for="token">Operator token</label>
      <p class="hint" id="token-hint">The admin or readonly token from cloudcore's data directory (<code>admin.token</code>). It is kept for this browser tab only.</p>
      <input id="token" name="token" type="password" autocomplete="current-password" ref=${input}
        aria-describedby="token-hint token-error" aria-invalid=${error ? 'true' : 'false'} />
      <p id="token-error" class="error" role="alert">${error}</p>
      <button type="submit" disabled=${busy}>Sign in</button>
    </form>
  </main>`;
}

const NAV = [['#/', 'Fleet', 'fleet'], ['#/apps', 'Apps', 'apps'], ['#/devices', 'Devices', 'devices'], ['#/routes', 'Routes', 'routes'], ['#/upgrades', 'Upgrades', 'upgrades']];

function Page({ route }) {
  const [section, name] = route.parts;
  if (!section) return html`<${FleetPage} params=${route.params} />`;
  // Keyed by name: going from one node, app or device to another starts a fresh page. Reused,
  // it kept the last one's typed form values and results, which the next submit would send
  // to the new object.
  if (section === 'nodes' && name) return html`<${NodePage} key=${name} name=${name} />`;
  if (section === 'apps') return name ? html`<${AppPage} key=${name} name=${name} />` : html`<${AppsPage} />`;
  if (section === 'devices') return name ? html`<${DevicePage} key=${name} name=${name} />` : html`<${DevicesPage} />`;
  if (section === 'routes') return html`<${RoutesPage} />`;
  if (section === 'upgrades') return name ? html`<${UpgradePage} key=${name} name=${name} />` : html`<${UpgradesPage} />`;
  return html`<h1 tabindex="-1">Not found</h1><p>No page at <code>${location.hash}</code>. <a href="#/">Back to the fleet</a>.</p>`;
}

function App() {
  const [signedIn, setSignedIn] = useState(Boolean(session.token()));
  const route = useRoute();
  const main = useRef(null);
  useEffect(() => {
    const onSignedOut = () => setSignedIn(false);
    window.addEventListener('edgefleet:signed-out', onSignedOut);
    return () => window.removeEventListener('edgefleet:signed-out', onSignedOut);
  }, []);
  // Tell assistive technology the page changed: focus the new page's heading.
  const key = route.parts.join('/');
  useEffect(() => { main.current?.querySelector('h1')?.focus({ preventScroll: true }); }, [key, signedIn]);
  if (!signedIn) return html`<${SignIn} onSignedIn=${() => setSignedIn(true)} />`;
  const current = route.parts[0] === 'nodes' || !route.parts[0] ? 'fleet' : route.parts[0];
  return html`
    <a class="skip" href="#main" onClick=${(e) => { e.preventDefault(); main.current?.focus(); }}>Skip to content</a>
    <header class="top">
      <span class="brand">EdgeFleet</span>
      <nav aria-label="Main">
        <ul>${NAV.map(([href, label, id]) => html`<li key=${id}><a href=${href} aria-current=${current === id ? 'page' : undefined}>${label}</a></li>`)}</ul>
      </nav>
      <button type="button" class="link" onClick=${() => session.signOut()}>Sign out</button>
    </header>
    <main id="main" tabindex="-1" ref=${main}><${Page} route=${route} /></main>`;
}

const root = document.getElementById('app');
root.textContent = ''; // the static "Loading…" note
render(html`<${App} />`, root);
