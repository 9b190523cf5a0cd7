import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { api, Fleet, markerApp, type Cloud } from '../helpers/fleet.js';
import { sleep, waitFor } from '../helpers/wait.js';

/**
 * Issue 2, test 6: bad frames and bad specs are refused with a clear error, the process keeps
 * running, and nothing stored changes (the store revision stays where it was).
 */
describe('bad input', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  let credential: string;

  beforeAll(async () => {
    cloud = await fleet.startCloud();
    const joinAs = async (node: string) => {
      const token = await api(cloud).token(node);
      const r = await fetch(`${cloud.url}/hub/v1/join`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ node, token }) });
      return ((await r.json()) as { credential: string }).credential;
    };
    credential = await joinAs('edge-1');
    const credential2 = await joinAs('edge-2');
    // Apps are bound to a node once it has linked (a never-joined node gets nothing): each says hello once.
    for (const [node, cred] of [['edge-1', credential], ['edge-2', credential2]] as const) {
      const ws = new WebSocket(`${cloud.url.replace('http', 'ws')}/hub/v1/connect`, { headers: { authorization: `Bearer ${cred}` } });
      const synced = new Promise<void>((res) => ws.on('message', (d) => { if ((JSON.parse(d.toString()) as { type: string }).type === 'sync') res(); }));
      await new Promise<void>((res, rej) => { ws.once('open', () => res()); ws.once('error', rej); });
      ws.send(JSON.stringify({ ...hello, node, epoch: `epoch-setup-${node}` }));
      await synced;
      ws.close();
    }
    await api(cloud).call('POST', '/apps', markerApp('web', '/dev/null'));
    await waitFor('scheduler bound web to both nodes', async () => (await api(cloud).call<{ items: unknown[] }>('GET', '/workloads')).body.items.length === 2);
  });
  afterAll(() => fleet.cleanup());

  const revision = async () => ((await (await fetch(`${cloud.url}/api/v1/healthz`)).json()) as { revision: number }).revision;
  /**
   * The store revision once the controllers are done reacting to the setup (the rollout
   * controller batches over 250 ms and writes counts once a tick): no write for 1.5 s.
   */
  const settledRevision = () => waitFor('the store to go quiet', async () => {
    const before = await revision();
    await sleep(1500);
    return (await revision()) === before ? before : undefined;
  }, 30_000, 0);

  /** A raw WebSocket client speaking as edge-1, collecting every frame the cloud sends. */
  async function rawEdge() {
    const ws = new WebSocket(`${cloud.url.replace('http', 'ws')}/hub/v1/connect`, { headers: { authorization: `Bearer ${credential}` } });
    const frames: { type: string; code?: string; message?: string; field?: string; mode?: string }[] = [];
    let closed: { code: number; reason: string } | undefined;
    ws.on('message', (d) => frames.push(JSON.parse(d.toString())));
    // Heartbeats, so a slow run never sees the session dropped (and the node marked Offline) mid-test.
    const beat = setInterval(() => { if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: 'ping', t: Date.now() })); }, 500);
    ws.on('close', (code, reason) => { clearInterval(beat); closed = { code, reason: reason.toString() }; });
    await new Promise<void>((res, rej) => { ws.once('open', () => res()); ws.once('error', rej); });
    return { ws, frames, closed: () => closed };
  }

  const hello = { type: 'hello', protocolVersion: 1, node: 'edge-1', epoch: 'epoch-1234567', lastRevision: 0, agent: { version: 't', os: 'linux', arch: 'x64', hostname: 'h' } };

  it('malformed JSON, unknown frame types and bad fields get an error frame naming the problem; the link stays up', async () => {
    const edge = await rawEdge();
    edge.ws.send(JSON.stringify(hello));
    await waitFor('welcome + snapshot', () => edge.frames.some((f) => f.type === 'sync'));
    const rev = await settledRevision();
    edge.ws.send('{not json');
    edge.ws.send(JSON.stringify({ type: 'teleport', to: 'mars' }));
    edge.ws.send(JSON.stringify({ type: 'upstream', entries: [{ seq: 1, kind: 'workloadStatus', key: 'web', body: { app: 'web', status: { state: 'Exploded', restarts: 0, generation: 1, observedAt: 'now' } } }] }));
    const errors = await waitFor('three errors', () => { const e = edge.frames.filter((f) => f.type === 'error'); return e.length >= 3 ? e : undefined; });
    expect(errors[0]!.message).toContain('malformed JSON');
    expect(errors[1]!.field).toBe('type');
    expect(errors[2]!.field).toBe('entries.0.body.status.state');
    // Still connected and answering.
    edge.ws.send(JSON.stringify({ type: 'ping', t: 1 }));
    await waitFor('pong', () => edge.frames.some((f) => f.type === 'pong' && (f as { t?: number }).t === 1));
    expect(edge.closed()).toBeUndefined();
    expect(await revision()).toBe(rev);
    edge.ws.close();
  });

  it('frames for another node are refused and logged; nothing is applied', async () => {
    const edge = await rawEdge();
    edge.ws.send(JSON.stringify(hello));
    await waitFor('sync', () => edge.frames.some((f) => f.type === 'sync'));
    const rev = await settledRevision();
    edge.ws.send(JSON.stringify({ type: 'upstream', node: 'edge-2', entries: [{ seq: 1, kind: 'event', key: 'x', body: { reason: 'Evil', message: 'spoof', type: 'Warning', time: new Date().toISOString() } }] }));
    const err = await waitFor('forbidden', () => edge.frames.find((f) => f.type === 'error' && f.code === 'forbidden'));
    expect(err.message).toContain('"edge-2"');
    expect(await revision()).toBe(rev);
    await waitFor('refusal logged', () => cloud.proc.lines.some((l) => String(l.msg).startsWith('refused frame') && l.claimed === 'edge-2'));
    edge.ws.close();
  });

  it("reports and telemetry about another node's device are refused and logged; the entries are acked, nothing is applied", async () => {
    await api(cloud).call('POST', '/devicemodels', { metadata: { name: 'gauge' }, spec: { protocol: 'virtual', properties: [{ name: 'level', type: 'float', accessMode: 'ReadOnly' }] } });
    expect((await api(cloud).call('POST', '/devices', { metadata: { name: 'tank-2' }, spec: { model: 'gauge', nodeName: 'edge-2', protocol: { name: 'virtual' } } })).status).toBe(201);
    const edge = await rawEdge();
    edge.ws.send(JSON.stringify(hello));
    await waitFor('sync', () => edge.frames.some((f) => f.type === 'sync'));
    const rev = await settledRevision();
    const now = new Date().toISOString();
    edge.ws.send(JSON.stringify({ type: 'upstream', entries: [
      { seq: 1, kind: 'twinReported', key: 'tank-2', body: { device: 'tank-2', twin: { reported: { level: 99 }, version: 1, metadata: { level: { updatedAt: now } } }, online: true, lastSeen: now, observedGeneration: 1 } },
      { seq: 2, kind: 'telemetry', key: 'tank-2', body: { device: 'tank-2', samples: [{ t: now, values: { level: 99 } }] } },
    ] }));
    const refused = await waitFor('two refusals', () => { const e = edge.frames.filter((f) => f.type === 'error' && f.code === 'forbidden' && f.message?.includes('"tank-2"')); return e.length >= 2 ? e : undefined; });
    expect(refused[0]!.message).toContain('node "edge-2"');
    await waitFor('acked anyway', () => edge.frames.some((f) => f.type === 'upstreamAck' && (f as { seq?: number }).seq === 2));
    await waitFor('refusals logged', () => cloud.proc.lines.filter((l) => String(l.msg).startsWith('refused frame') && l.device === 'tank-2').length >= 2);
    expect(await revision()).toBe(rev);
    expect((await api(cloud).call<{ status?: unknown }>('GET', '/devices/tank-2')).body.status).toBeUndefined();
    edge.ws.close();
  });

  it('a status stamped in the future is capped at the cloud\'s clock, so the true reports after it still land', async () => {
    const edge = await rawEdge();
    edge.ws.send(JSON.stringify(hello));
    await waitFor('sync', () => edge.frames.some((f) => f.type === 'sync'));
    const status = (state: string, observedAt: string) => ({ app: 'web', status: { state, restarts: 0, generation: 1, observedAt } });
    const before = Date.now();
    edge.ws.send(JSON.stringify({ type: 'upstream', entries: [{ seq: 101, kind: 'workloadStatus', key: 'web', body: status('Running', '2099-01-01T00:00:00.000Z') }] }));
    const statusOf = async () => (await api(cloud).call<{ items: { metadata: { name: string }; status?: { state: string; observedAt: string } }[] }>('GET', '/workloads')).body.items
      .find((w) => w.metadata.name === 'web.edge-1')?.status;
    const held = await waitFor('the status stored', async () => { const st = await statusOf(); return st?.state === 'Running' ? st : undefined; });
    expect(Date.parse(held.observedAt)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(held.observedAt)).toBeLessThanOrEqual(Date.now());
    // A true report a moment later wins, as it would have without the bogus one.
    await sleep(20);
    edge.ws.send(JSON.stringify({ type: 'upstream', entries: [{ seq: 102, kind: 'workloadStatus', key: 'web', body: status('Failed', new Date().toISOString()) }] }));
    await waitFor('the later status applied', async () => (await statusOf())?.state === 'Failed' || undefined);
    edge.ws.close();
  });

  it('a hello claiming another node closes the link', async () => {
    const edge = await rawEdge();
    edge.ws.send(JSON.stringify({ ...hello, node: 'edge-2' }));
    await waitFor('closed', () => edge.closed());
    expect(edge.closed()!.code).toBe(4003);
    expect(edge.frames.find((f) => f.type === 'error')!.code).toBe('forbidden');
    expect(edge.frames.some((f) => f.type === 'sync')).toBe(false);
  });

  it('an oversized frame closes that link with 1009; cloudcore keeps running', async () => {
    const edge = await rawEdge();
    edge.ws.send(JSON.stringify(hello));
    await waitFor('sync', () => edge.frames.some((f) => f.type === 'sync'));
    edge.ws.send('x'.repeat(2 * 1024 * 1024));
    await waitFor('closed', () => edge.closed());
    expect(edge.closed()!.code).toBe(1009);
    expect((await fetch(`${cloud.url}/api/v1/healthz`)).status).toBe(200);
  });

  it('invalid app specs are refused naming the field, and nothing is stored', async () => {
    const rev = await settledRevision();
    const bad: [unknown, string][] = [
      [{ metadata: { name: 'x' }, spec: { template: { runtime: 'process', args: [] } } }, 'spec.template.command'],
      [{ metadata: { name: 'Bad_Name' }, spec: { template: { runtime: 'process', command: 'x' } } }, 'metadata.name'],
      [{ metadata: { name: 'x' }, spec: { template: { runtime: 'process', command: 'x', restartPolicy: 'Sometimes' } } }, 'spec.template.restartPolicy'],
      [{ metadata: { name: 'x' }, spec: { template: { runtime: 'teleport', command: 'x' } } }, 'spec.template.runtime'],
      [{ metadata: { name: 'x' }, spec: { selector: { matchExpressions: [{ key: 'a', operator: 'Near' }] }, template: { runtime: 'process', command: 'x' } } }, 'spec.selector.matchExpressions.0.operator'],
    ];
    for (const [body, field] of bad) {
      const r = await api(cloud).call<{ error: string; field?: string }>('POST', '/apps', body);
      expect(r.status, JSON.stringify(r.body)).toBe(400);
      expect(r.body.field).toBe(field);
      expect(r.body.error).toContain(field);
    }
    const malformed = await api(cloud).call<{ error: string }>('POST', '/apps', '{"metadata":');
    expect(malformed.status).toBe(400);
    expect(await revision()).toBe(rev);
    expect((await api(cloud).call<{ items: unknown[] }>('GET', '/apps')).body.items).toHaveLength(1);
  });
});
