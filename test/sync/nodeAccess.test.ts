import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, Fleet, runToEnd, type Cloud, type Edge } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';

/** Issue 3: `edgectl logs` and `edgectl exec` through cloudcore and the existing edge link. */
describe('logs and exec through the cloud', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  let edge: Edge;

  beforeAll(async () => {
    cloud = await fleet.startCloud();
    edge = await fleet.startEdge({ node: 'edge-1', cloudUrl: cloud.url, joinToken: await api(cloud).token('edge-1') });
    await api(cloud).call('POST', '/apps', {
      metadata: { name: 'talker' },
      spec: { template: { runtime: 'process', command: '/bin/sh', args: ['-c', 'i=0; while true; do i=$((i+1)); echo "line $i"; sleep 0.2; done'], env: { GREETING: 'hello from the edge' }, workingDir: '/tmp' } },
    });
    await waitFor('talker running', async () => (await fleet.edgeStatus(edge)).workloads[0]?.status?.state === 'Running');
  });
  afterAll(() => fleet.cleanup());

  const edgectl = (args: string[], token = cloud.token) => runToEnd('edgectl', args, { EF_SERVER: cloud.url, EF_TOKEN: token });

  it('edgectl logs prints the tail of the workload log', async () => {
    await waitFor('some output', async () => (await edgectl(['logs', 'edge-1', 'talker', '--tail', '3'])).out.includes('line 3'));
    const r = await edgectl(['logs', 'edge-1', 'talker', '--tail', '2']);
    expect(r.code).toBe(0);
    expect(r.out.split('\n').filter((l) => l.startsWith('line '))).toHaveLength(2);
  });

  it('logs -f streams new lines as they are written', async () => {
    const controller = new AbortController();
    const res = await fetch(`${cloud.url}/api/v1/nodes/edge-1/workloads/talker/logs?tail=1&follow=true`, { headers: { authorization: `Bearer ${cloud.token}` }, signal: controller.signal });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let text = '';
    const deadline = Date.now() + 15_000;
    while ((text.match(/line \d+/g) ?? []).length < 6 && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    controller.abort();
    const numbers = (text.match(/line (\d+)/g) ?? []).map((l) => Number(l.slice(5)));
    expect(numbers.length).toBeGreaterThanOrEqual(6);
    // Consecutive: nothing dropped or repeated once live.
    for (let i = 2; i < numbers.length; i++) expect(numbers[i]).toBe(numbers[i - 1]! + 1);
  });

  it('edgectl exec runs beside the workload (its env and working dir) and passes on the exit code', async () => {
    const ok = await edgectl(['exec', 'edge-1', 'talker', '--', '/bin/sh', '-c', 'echo "$GREETING in $(pwd)"']);
    expect(ok.code, ok.err).toBe(0);
    expect(ok.out).toContain('hello from the edge in /tmp');
    const fail = await edgectl(['exec', 'edge-1', 'talker', '--', '/bin/sh', '-c', 'echo oops >&2; exit 3']);
    expect(fail.code).toBe(3);
    expect(fail.err).toContain('oops');
    const ro = readFileSync(join(cloud.dataDir, 'readonly.token'), 'utf8').trim();
    const denied = await edgectl(['exec', 'edge-1', 'talker', '--', 'true'], ro);
    expect(denied.code).toBe(1);
    expect(denied.err).toContain('error:');
  });

  it('unknown workloads are 404 and an offline node gives a 503 naming it', async () => {
    expect((await api(cloud).call('GET', '/nodes/edge-1/workloads/nope/logs')).status).toBe(404);
    await edge.proc.stop();
    await waitFor('edge-1 offline', async () => (await api(cloud).call<{ status: { phase: string } }>('GET', '/nodes/edge-1')).body.status.phase === 'Offline');
    const r = await api(cloud).call<{ error: string }>('GET', '/nodes/edge-1/workloads/talker/logs');
    expect(r.status).toBe(503);
    expect(r.body.error).toContain('node "edge-1" is not connected');
    const cli = await edgectl(['exec', 'edge-1', 'talker', '--', 'true']);
    expect(cli.code).toBe(1);
    expect(cli.err).toContain('node "edge-1" is not connected');
  });
});
