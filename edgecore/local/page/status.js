// edgecore status page: polls /status and fills the page. Plain DOM, no framework, no
// innerHTML (device values and log lines are shown as text, never parsed as markup).
'use strict';

(function () {
  const POLL_MS = 3000;
  const $ = (id) => document.getElementById(id);
  let last = null;        // last /status answer
  let fetchedAt = 0;      // browser time it arrived, to keep "down for" ticking between polls

  function setText(id, text) {
    const el = $(id);
    if (el && el.textContent !== text) el.textContent = text;
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return '—';
    let s = Math.max(0, Math.floor(seconds));
    const d = Math.floor(s / 86400); s -= d * 86400;
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    if (d > 0) return d + 'd ' + h + 'h';
    if (h > 0) return h + 'h ' + m + 'm';
    if (m > 0) return m + 'm ' + s + 's';
    return s + 's';
  }

  function bytes(n) {
    if (n === null || n === undefined) return '—';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n : n.toFixed(1)) + ' ' + units[i];
  }

  function when(iso) {
    if (!iso) return '—';
    const t = new Date(iso);
    return isNaN(t.getTime()) ? iso : t.toLocaleString();
  }

  function ago(iso) {
    if (!iso || !last) return '—';
    const secs = (Date.parse(last.generatedAt) - Date.parse(iso)) / 1000 + (Date.now() - fetchedAt) / 1000;
    return duration(secs) + ' ago';
  }

  function cut(text, max) {
    return text.length > max ? text.slice(0, max - 1) + '…' : text;
  }

  function cell(row, text, className) {
    const td = document.createElement('td');
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function stateClass(state) {
    if (state === 'Running' || state === 'connected' || state === 'online') return 'ok';
    if (state === 'Pending' || state === 'connecting' || state === 'Exited') return 'warn';
    return 'bad';
  }

  function renderLink(s) {
    const link = s.link;
    const extra = (Date.now() - fetchedAt) / 1000;
    const summary = $('link-summary');
    if (link.state === 'connected') {
      const up = link.connectedSince ? (Date.parse(s.generatedAt) - Date.parse(link.connectedSince)) / 1000 + extra : null;
      summary.textContent = 'Connected to the cloud' + (up !== null ? ' for ' + duration(up) : '');
    } else {
      const down = link.downForSeconds === null ? null : link.downForSeconds + extra;
      summary.textContent = 'Cloud link DOWN (' + link.state + ')' + (down !== null ? ' for ' + duration(down) : '');
    }
    summary.className = 'link-summary ' + stateClass(link.state);
    // Screen readers hear the state when it changes, not the seconds ticking.
    if (summary.dataset.state !== link.state) {
      setText('link-announce', link.state === 'connected' ? 'Cloud link connected' : 'Cloud link down (' + link.state + ')');
    }
    summary.dataset.state = link.state;
    const others = (link.cloudUrls || []).filter((u) => u !== link.cloudUrl);
    setText('link-cloud', link.cloudUrl + (others.length > 0 ? ' (other replicas: ' + others.join(', ') + ')' : ''));
    setText('link-down-since', link.downSince ? when(link.downSince) : '— (up)');
    // While up, "last connected" would read as now beside "Connected for 9m": say when this
    // connection was established instead; once down, when the link was last up.
    const up = link.state === 'connected';
    setText('link-last-connected-label', up ? 'Connected since' : 'Last connected');
    setText('link-last-connected', up ? when(link.connectedSince)
      : (link.lastConnectedAt ? when(link.lastConnectedAt) : 'never since edgecore started'));
    setText('link-error', link.lastError || '—');
  }

  // What each standing asks of the field engineer, in words.
  const STANDING_TEXT = {
    'valid': 'Valid',
    'renew-due': 'Renewal due (the node renews it itself)',
    'expired-in-grace': 'EXPIRED: renewing with the cloud (accepted within its grace window)',
    'needs-new-token': 'NEEDS A NEW JOIN TOKEN: the cloud no longer renews this identity; create one with `edgectl token create NODE` and restart edgecore with --join-token',
  };

  function renderIdentity(s) {
    const id = s.identity;
    const summary = $('identity-summary');
    if (!id) {
      summary.textContent = 'No identity yet (the node has not joined)';
      summary.className = 'link-summary warn';
      for (const field of ['mode', 'serial', 'not-after', 'renew-at', 'error']) setText('identity-' + field, '—');
      return;
    }
    summary.textContent = STANDING_TEXT[id.standing] || id.standing;
    summary.className = 'link-summary ' + (id.standing === 'valid' ? 'ok' : id.standing === 'renew-due' ? 'warn' : 'bad');
    setText('identity-mode', id.mode === 'certificate' ? 'certificate (mutual TLS)' : 'bearer credential (plain HTTP cloud)');
    setText('identity-serial', id.serial || '—');
    setText('identity-not-after', id.notAfter ? when(id.notAfter) : 'never');
    setText('identity-renew-at', id.renewAt ? when(id.renewAt) : '—');
    setText('identity-error', id.lastRenewalError || '—');
  }

  /** A table's only row, saying it is empty, across all `cols` columns. */
  function emptyRow(body, text, cols) {
    cell(body.insertRow(), text).colSpan = cols;
  }

  /** A new row whose first cell is a row header naming the thing the row is about. */
  function namedRow(body, name) {
    const row = body.insertRow();
    const th = document.createElement('th');
    th.scope = 'row';
    th.textContent = name;
    row.appendChild(th);
    return row;
  }

  function renderWorkloads(workloads) {
    const body = $('workload-rows');
    body.textContent = '';
    setText('workload-count', String(workloads.length));
    if (workloads.length === 0) return emptyRow(body, 'No workloads on this node.', 6);
    for (const w of workloads) {
      const row = namedRow(body, w.name);
      row.dataset.workload = w.name;
      cell(row, w.runtime);
      const st = w.status;
      const state = st ? st.state : 'Unknown';
      const stateCell = cell(row, state + (st && st.ready === false ? ' (not ready)' : ''), 'state ' + stateClass(state));
      stateCell.dataset.state = state;
      cell(row, st ? String(st.restarts) : '—', 'num');
      cell(row, st && st.startedAt ? ago(st.startedAt) : '—');
      const logs = cell(row, '');
      const lines = w.recentLogs || [];
      if (lines.length === 0) {
        logs.textContent = st && st.lastError ? st.lastError : '—';
      } else {
        const pre = document.createElement('pre');
        pre.textContent = lines.join('\n');
        logs.appendChild(pre);
      }
    }
  }

  function renderDevices(mqtt) {
    const body = $('device-rows');
    body.textContent = '';
    const devices = mqtt ? mqtt.devices : [];
    setText('device-count', String(devices.length));
    setText('mqtt-url', mqtt ? mqtt.url : 'not running');
    const clients = mqtt ? mqtt.clients : 0;
    setText('mqtt-clients', clients === 0 ? 'no clients connected' : clients === 1 ? '1 client connected' : clients + ' clients connected');
    // Settings that open the broker wider than loopback with passwords: shown for as long as they hold.
    const exposure = mqtt && mqtt.warnings ? mqtt.warnings : [];
    const exposed = $('mqtt-exposure');
    exposed.hidden = exposure.length === 0;
    exposed.textContent = exposure.length === 0 ? '' : 'Device broker exposed: ' + exposure.join('; ') + '.';
    // A failed commit means device reports went unacknowledged: usually a full or failing disk.
    const failed = mqtt && mqtt.commits ? mqtt.commits.rollbacks : 0;
    const failures = $('mqtt-commit-failures');
    failures.hidden = failed === 0;
    failures.textContent = failed === 0 ? '' : (failed === 1 ? '1 device commit' : failed + ' device commits')
      + ' failed since edgecore started: device reports were not acknowledged and will be resent. Check the disk.';
    // Stored broker packets (retained, queued, wills) that could not be read back were dropped.
    const unreadable = mqtt && mqtt.unreadableRows ? mqtt.unreadableRows : 0;
    const dropped = $('mqtt-unreadable');
    dropped.hidden = unreadable === 0;
    dropped.textContent = unreadable === 0 ? '' : (unreadable === 1 ? '1 stored broker message' : unreadable + ' stored broker messages')
      + ' could not be read back and ' + (unreadable === 1 ? 'was' : 'were') + ' dropped since edgecore started (the log names them).';
    // A persistent session away for long (or a device opening many) hit its queue limit: oldest messages went.
    const queueDrops = mqtt && mqtt.queuedDropped ? mqtt.queuedDropped : 0;
    const queueNotice = $('mqtt-queue-drops');
    queueNotice.hidden = queueDrops === 0;
    queueNotice.textContent = queueDrops === 0 ? '' : (queueDrops === 1 ? '1 queued message' : queueDrops + ' queued messages')
      + ' of persistent MQTT sessions ' + (queueDrops === 1 ? 'was' : 'were') + ' dropped (oldest first) for the per-session queue limit since edgecore started (the log names the sessions).';
    if (devices.length === 0) return emptyRow(body, 'No devices on this node.', 4);
    for (const d of devices) {
      const row = namedRow(body, d.name);
      row.dataset.device = d.name;
      // A device behind a mapper: why the mapper cannot reach it is what an engineer on site needs.
      cell(row, d.online ? 'online' : d.mapperError ? 'offline: ' + cut(d.mapperError, 120) : 'offline', 'state ' + (d.online ? 'ok' : 'bad'));
      cell(row, d.lastSeen ? ago(d.lastSeen) : 'never');
      const values = Object.keys(d.reported).sort().map((k) => k + ' = ' + JSON.stringify(d.reported[k]));
      cell(row, values.length ? values.join(', ') : '—', 'values');
    }
  }

  function renderGrants(mqtt) {
    const body = $('grant-rows');
    body.textContent = '';
    const grants = mqtt && mqtt.appGrants ? mqtt.appGrants : [];
    setText('grant-count', String(grants.length));
    if (grants.length === 0) return emptyRow(body, mqtt ? 'No workload on this node has an MQTT grant.' : 'The device broker is not running.', 7);
    for (const g of grants) {
      const row = namedRow(body, g.workload);
      row.dataset.grant = g.workload;
      cell(row, g.username);
      cell(row, g.publish.length ? g.publish.join(', ') : '—', 'values');
      cell(row, g.subscribe.length ? g.subscribe.join(', ') : '—', 'values');
      cell(row, String(g.published), 'num published');
      cell(row, String(g.delivered), 'num delivered');
      // Refusals are the grant doing its job, or a workload asking for more than it was given: worth a look.
      cell(row, String(g.refused), 'num refused' + (g.refused > 0 ? ' state warn' : ''));
    }
  }

  function renderRoutes(routes) {
    const body = $('route-rows');
    body.textContent = '';
    // Absent from an edgecore older than routes: say so rather than "none".
    const list = routes || [];
    setText('route-count', String(list.length));
    if (list.length === 0) return emptyRow(body, routes ? 'No routes on this node.' : 'This edgecore does not report routes.', 9);
    for (const r of list) {
      const row = namedRow(body, r.route);
      row.dataset.route = r.route;
      cell(row, r.destination);
      cell(row, r.connected ? 'yes' : 'no', 'reachable state ' + (r.connected ? 'ok' : 'bad'));
      cell(row, String(r.matched), 'num matched');
      cell(row, String(r.forwarded), 'num forwarded');
      cell(row, String(r.queueDepth) + ' (' + bytes(r.queueBytes) + ')', 'num queued');
      const drops = r.dropped.queueFull + r.dropped.oversized;
      cell(row, r.dropped.queueFull + ' / ' + r.dropped.oversized, 'num dropped' + (drops > 0 ? ' state warn' : ''));
      cell(row, r.lastForwardedAt ? ago(r.lastForwardedAt) : 'never');
      cell(row, r.lastError || '—', 'values');
    }
  }

  function renderHost(h) {
    setText('host-name', h.hostname);
    setText('host-platform', h.os + '/' + h.arch);
    setText('host-disk', h.disk ? bytes(h.disk.availableBytes) + ' free of ' + bytes(h.disk.totalBytes) + ' (' + h.disk.path + ')' : 'cannot be read');
    setText('host-memory', bytes(h.memory.availableBytes) + ' of ' + bytes(h.memory.totalBytes));
    setText('host-rss', bytes(h.memory.edgecoreRssBytes));
    setText('host-load', h.loadAverage.join(' / '));
    setText('host-uptime', duration(h.uptimeSeconds));
  }

  function render() {
    const s = last;
    if (!s) return;
    document.title = s.node + ' · ' + (s.link.state === 'connected' ? 'connected' : 'cloud link down') + ' · edgecore';
    setText('node-name', s.node);
    setText('edgecore-version', s.edgecore.version);
    setText('generated-at', when(s.generatedAt));
    setText('sync-revision', String(s.sync.lastRevision));
    setText('outbox-depth', String(s.outbox.depth));
    setText('outbox-dropped', String(s.outbox.dropped));
    renderLink(s);
    renderIdentity(s);
    renderHost(s.host);
  }

  async function poll() {
    try {
      const res = await fetch('/status', { cache: 'no-store', credentials: 'same-origin' });
      if (!res.ok) throw new Error('edgecore answered HTTP ' + res.status);
      last = await res.json();
      fetchedAt = Date.now();
      $('page-error').hidden = true;
      render();
      renderWorkloads(last.workloads);
      renderDevices(last.mqtt);
      renderGrants(last.mqtt);
      renderRoutes(last.routes);
    } catch (err) {
      const box = $('page-error');
      box.textContent = 'Cannot read /status from edgecore: ' + (err && err.message ? err.message : String(err)) + '. Showing the last answer.';
      box.hidden = false;
    } finally {
      setTimeout(poll, POLL_MS);
    }
  }

  // The link line ticks every second between polls, so "down for" does not jump by 3 s.
  setInterval(() => { if (last) renderLink(last); }, 1000);
  poll();
})();
