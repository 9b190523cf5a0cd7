import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditList, AuditRecord, OperatorTokenList } from '../../protocol/index.js';
import { api, Fleet, runToEnd, type Cloud, type Edge } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Issue 20, "An audit trail": named operator tokens and cloudcore's audit log, against real
 * cloudcore and edgecore processes and the edgectl binary. The log is made to rotate small
 * (--audit-log-max-bytes 4096, 2 files kept) so rotation is exercised too.
 */
describe('the audit trail', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  let edge: Edge;
  const maxBytes = 4096;

  beforeAll(async () => {
    cloud = await fleet.startCloud({ extra: ['--audit-log-max-bytes', String(maxBytes), '--audit-log-files', '2'] });
    edge = await fleet.startEdge({ node: 'edge-1', cloudUrl: cloud.url, joinToken: await api(cloud).token('edge-1') });
    await api(cloud).call('POST', '/apps', {
      metadata: { name: 'talker' },
      spec: { template: { runtime: 'process', command: '/bin/sh', args: ['-c', 'while true; do echo tick; sleep 0.2; done'] } },
    });
    await waitFor('talker running', async () => (await fleet.edgeStatus(edge)).workloads[0]?.status?.state === 'Running');
  }, 60_000);
  afterAll(() => fleet.cleanup());

  const edgectl = (args: string[], token = cloud.token) => runToEnd('edgectl', args, { EF_SERVER: cloud.url, EF_TOKEN: token });
  const auditFiles = () => readdirSync(cloud.dataDir).filter((f) => f.startsWith('audit.log')).map((f) => join(cloud.dataDir, f));
  const allAuditText = () => auditFiles().map((f) => readFileSync(f, 'utf8')).join('');
  const audit = async (query: string) => (await api(cloud).call<AuditList>('GET', `/audit?limit=10000&${query}`)).body.items;
  const processesUp = () => {
    expect(cloud.proc.exitCode).toBeUndefined();
    expect(edge.proc.exitCode).toBeUndefined();
  };

  it('edgectl token operator create prints the token once; list names it (never the token); revoke makes it 401', async () => {
    const created = await edgectl(['token', 'operator', 'create', 'alice', '--role', 'readonly', '--ttl', '90d']);
    expect(created.code, created.err).toBe(0);
    const alice = created.out.trim();
    expect(alice).toMatch(/^efo_[0-9a-f]{12}\.\S+$/);
    expect(created.err).toContain('not shown again');

    const list = await edgectl(['token', 'operator', 'list']);
    expect(list.code, list.err).toBe(0);
    expect(list.out).toMatch(/NAME\s+ID\s+ROLE\s+CREATED\s+EXPIRES\s+LAST-USED/);
    expect(list.out).toMatch(/alice\s+[0-9a-f]{12}\s+readonly\s+\S+\s+in 89d\s+<never>/);
    expect(list.out).not.toContain(alice.split('.')[1]);

    // alice reads; her write is refused, nothing changes, and the audit names her.
    expect((await edgectl(['get', 'nodes'], alice)).code).toBe(0);
    const denied = await edgectl(['delete', 'app', 'talker'], alice);
    expect(denied.code).toBe(1);
    expect(denied.err).toContain('alice has the readonly role');
    expect((await api(cloud).call('GET', '/apps/talker')).status).toBe(200);
    const refused = await audit('verb=delete&kind=app&name=talker');
    expect(refused).toEqual([expect.objectContaining({ tokenName: 'alice', role: 'readonly', status: 403, target: { kind: 'App', name: 'talker' } })]);

    // Readonly tokens cannot list or mint operator tokens, nor read the audit.
    expect((await edgectl(['token', 'operator', 'list'], alice)).err).toContain('needs an admin token');
    expect((await edgectl(['audit'], alice)).code).toBe(1);
    expect((await edgectl(['token', 'operator', 'create', 'mallory', '--role', 'admin'], alice)).code).toBe(1);
    const names = (await api(cloud).call<OperatorTokenList>('GET', '/operatortokens')).body.items.map((t) => t.name);
    expect(names).toEqual(['alice']);

    const revoked = await edgectl(['token', 'operator', 'revoke', 'alice']);
    expect(revoked.code, revoked.err).toBe(0);
    const after = await edgectl(['get', 'nodes'], alice);
    expect(after.code).toBe(1);
    expect(after.err).toContain('revoked');
    processesUp();
  });

  it('an exec through cloudcore: the audit line and the edge\'s log line share the request id', async () => {
    const bob = (await edgectl(['token', 'operator', 'create', 'bob', '--role', 'admin', '--ttl', '1d'])).out.trim();
    const ran = await edgectl(['exec', 'edge-1', 'talker', '--', '/bin/sh', '-c', 'echo hi; exit 3'], bob);
    expect(ran.code).toBe(3);
    expect(ran.out).toContain('hi');

    const shown = await edgectl(['audit', '--verb', 'exec', '--user', 'bob', '-o', 'json']);
    expect(shown.code, shown.err).toBe(0);
    const [record] = (JSON.parse(shown.out) as AuditList).items as [AuditRecord];
    expect(record).toMatchObject({
      tokenName: 'bob', tokenId: expect.stringMatching(/^[0-9a-f]{12}$/), role: 'admin', method: 'POST', verb: 'exec',
      route: '/api/v1/nodes/:name/workloads/:workload/exec', target: { kind: 'Workload', name: 'talker', node: 'edge-1' },
      status: 200, sourceAddress: '127.0.0.1',
    });
    const edgeLine = await waitFor('the edge logs the exec', () => edge.proc.lines.find((l) => l.msg === 'operator exec ran' && l.requestId === record.requestId));
    expect(edgeLine).toMatchObject({ workload: 'talker', command: '/bin/sh', exitCode: 3, timedOut: false });
    // argv[0] only: the rest of a command line may carry secrets.
    expect(JSON.stringify(edgeLine)).not.toContain('exit 3');

    // A command that outlives its timeout is logged as such on the edge, under its own id.
    const slow = await edgectl(['exec', 'edge-1', 'talker', '--timeout', '1', '--', 'sleep', '30'], bob);
    expect(slow.err).toContain('timed out');
    const [, slowRecord] = (await audit('verb=exec&token=bob')) as [AuditRecord, AuditRecord];
    expect(slowRecord.requestId).not.toBe(record.requestId);
    const slowLine = await waitFor('the edge logs the timeout', () => edge.proc.lines.find((l) => l.msg === 'operator exec ran' && l.requestId === slowRecord.requestId));
    expect(slowLine).toMatchObject({ command: 'sleep', timedOut: true });

    const table = await edgectl(['audit', '--verb', 'exec', '--kind', 'workload', '--name', 'edge-1']);
    expect(table.out).toMatch(/TIME\s+TOKEN\s+ROLE\s+VERB\s+TARGET\s+STATUS\s+SOURCE\s+REQUEST-ID/);
    expect(table.out).toContain(`workload/talker on edge-1`);
    expect(table.out).toContain(record.requestId);
    processesUp();
  });

  it('records who wrote a secret (never its value), minted a join token and deleted a node', async () => {
    const carol = (await edgectl(['token', 'operator', 'create', 'carol', '--role', 'admin'])).out.trim();
    const as = (method: string, path: string, body?: unknown) => api(cloud).call(method, path, body, carol);
    expect((await as('POST', '/secrets', { metadata: { name: 'db' }, data: { PASSWORD: 'hunter2-value' } })).status).toBe(201);
    expect((await as('PUT', '/secrets/db', { metadata: { name: 'db' }, data: { PASSWORD: 'hunter3-value' } })).status).toBe(200);
    expect((await as('POST', '/tokens', { node: 'edge-9', ttlSeconds: 600 })).status).toBe(201);
    expect((await as('DELETE', '/nodes/edge-9')).status).toBe(200);

    const byCarol = await audit('token=carol');
    expect(byCarol.map((r) => [r.verb, r.target, r.status])).toEqual([
      ['create', { kind: 'Secret', name: 'db' }, 201],
      ['update', { kind: 'Secret', name: 'db' }, 200],
      ['create', { kind: 'JoinToken', name: null, node: 'edge-9' }, 201],
      ['delete', { kind: 'Node', name: 'edge-9' }, 200],
    ]);
    const text = allAuditText();
    expect(text).not.toContain('hunter');
    expect(text).not.toContain(carol);
    processesUp();
  });

  it('logs requests are audited too, a followed one when it ends', async () => {
    expect((await edgectl(['logs', 'edge-1', 'talker', '--tail', '2'])).code).toBe(0);
    const controller = new AbortController();
    const res = await fetch(`${cloud.url}/api/v1/nodes/edge-1/workloads/talker/logs?tail=1&follow=true`, { headers: { authorization: `Bearer ${cloud.token}` }, signal: controller.signal });
    const reader = res.body!.getReader();
    await reader.read();
    controller.abort();
    const logs = await waitFor('two logs records', async () => {
      const items = await audit('verb=logs');
      return items.length >= 2 ? items : undefined;
    });
    expect(logs.map((r) => [r.tokenName, r.target?.name, r.target?.node])).toEqual([['bootstrap-admin', 'talker', 'edge-1'], ['bootstrap-admin', 'talker', 'edge-1']]);
  });

  it('records refused attempts without the token, stores nothing, and keeps audit.log 0600', async () => {
    // The node as an operator set it (its status moves with each heartbeat's liveness flush).
    const nodeAsSet = async () => {
      const { metadata, spec } = (await api(cloud).call<{ metadata: { uid: string; labels?: unknown }; spec: unknown }>('GET', '/nodes/edge-1')).body;
      return { uid: metadata.uid, labels: metadata.labels, spec };
    };
    const before = await nodeAsSet();
    const bare = await fetch(`${cloud.url}/api/v1/nodes/edge-1`, { method: 'DELETE' });
    expect(bare.status).toBe(401);
    expect((await api(cloud).call('DELETE', '/nodes/edge-1', undefined, 'stolen-guess-token')).status).toBe(401);
    expect((await api(cloud).call('GET', '/secrets', undefined, 'stolen-guess-token')).status).toBe(401);
    expect(await nodeAsSet()).toEqual(before);

    const refused = await audit('kind=node&name=edge-1&verb=delete');
    expect(refused.map((r) => [r.tokenName, r.tokenId, r.role, r.status])).toEqual([['anonymous', null, null, 401], ['unknown', null, null, 401]]);
    expect((await audit('kind=secret&verb=list')).map((r) => [r.tokenName, r.status])).toEqual([['unknown', 401]]);

    const text = allAuditText();
    expect(text).not.toContain('stolen-guess-token');
    expect(text).not.toContain(cloud.token);
    for (const file of auditFiles()) expect(statSync(file).mode & 0o777, file).toBe(0o600);
    processesUp();
  });

  it('rotates by size keeping the configured files, and GET /audit reads the rotated ones', async () => {
    // Each create/delete pair writes two ~400-byte lines: 40 pairs overflow 3 × 4 KiB files.
    for (let i = 0; i < 40; i++) {
      expect((await api(cloud).call('POST', '/configs', { metadata: { name: `c-${i}` }, data: { k: 'v' } })).status).toBe(201);
      expect((await api(cloud).call('DELETE', `/configs/c-${i}`)).status).toBe(200);
    }
    const files = auditFiles().map((f) => f.slice(cloud.dataDir.length + 1)).sort();
    expect(files).toEqual(['audit.log', 'audit.log.1', 'audit.log.2']);
    for (const file of auditFiles()) {
      expect(statSync(file).size).toBeLessThanOrEqual(maxBytes);
      expect(statSync(file).mode & 0o777).toBe(0o600);
    }
    const configs = await audit('kind=config');
    const inCurrent = readFileSync(join(cloud.dataDir, 'audit.log'), 'utf8').split('\n').filter((l) => l.includes('"Config"')).length;
    expect(configs.length).toBeGreaterThan(inCurrent);
    // Oldest first, and the newest is the last delete.
    expect(configs.at(-1)).toMatchObject({ verb: 'delete', target: { kind: 'Config', name: 'c-39' } });
    const times = configs.map((r) => Date.parse(r.time));
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    processesUp();
  });
});
