import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { api, Fleet, markerApp, runBin, runToEnd, type Cloud, type LogLine, type Proc } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';

/**
 * `--log-level` (and EF_*_LOG_LEVEL, and `logLevel:` in YAML) on the real binaries: pino JSON
 * lines, debug lines only at debug, a bad level refused naming where it came from; and the
 * context fields operators filter on (node, workload).
 */
const PINO_DEBUG = 20;

describe('log levels and structured log fields', () => {
  const fleet = new Fleet();
  const stopLater: Proc[] = [];
  afterAll(async () => {
    await Promise.all(stopLater.map((p) => p.stop()));
    await fleet.cleanup();
  });

  const refused = runToEnd;

  it('a bad level is refused by every binary, naming the flag, the env variable or the config file', async () => {
    const dir = fleet.tempDir();
    const levels = 'fatal, error, warn, info, debug, trace, silent';
    const cloud = await refused('cloudcore', ['--data-dir', dir, '--log-level', 'loud']);
    expect(cloud.code).toBe(2);
    expect(cloud.err).toContain(`cloudcore: invalid setting "logLevel" (from flag --log-level): must be one of: ${levels}`);
    const edge = await refused('edgecore', ['--node', 'n1', '--cloud-url', 'http://127.0.0.1:1', '--data-dir', dir], { EF_EDGE_LOG_LEVEL: 'verbose' });
    expect(edge.code).toBe(2);
    expect(edge.err).toContain('invalid setting "logLevel" (from env EF_EDGE_LOG_LEVEL)');
    writeFileSync(join(dir, 'mapper.yaml'), 'logLevel: chatty\n');
    const mapper = await refused('mapper', ['virtual', '--config', join(dir, 'mapper.yaml'), '--node', 'n1', '--edge-url', 'http://127.0.0.1:1'], { EF_MAPPER_PASSWORD: 'x' });
    expect(mapper.code).toBe(2);
    expect(mapper.err).toContain('mapper: invalid setting "logLevel" (from config file)');
  });

  it('cloudcore and edgecore write debug lines only at debug; hub and workload lines carry node and workload', async () => {
    // Default level (info): a request produces no debug line.
    const quiet = await fleet.startCloud({ dataDir: join(fleet.root, 'quiet') });
    await api(quiet).call('GET', '/nodes');
    // Debug, set through the environment.
    const dataDir = join(fleet.root, 'debug');
    const proc = runBin('cloudcore', ['--data-dir', dataDir, '--port', '0', '--offline-after-seconds', '3', '--insecure-plain-http', 'true'], { EF_CLOUD_LOG_LEVEL: 'debug' });
    stopLater.push(proc);
    const ready = await proc.waitForLog('cloudcore ready');
    const cloud: Cloud = { proc, url: String(ready.url), port: Number(new URL(String(ready.url)).port), dataDir, token: readFileSync(join(dataDir, 'admin.token'), 'utf8').trim(), caPin: null };
    await api(cloud).call('GET', '/nodes');
    const request = await waitFor('api request debug line', () => cloud.proc.lines.find((l) => l.msg === 'api request'));
    expect(request).toMatchObject({ level: PINO_DEBUG, method: 'GET', route: '/api/v1/nodes', status: 200 });
    expect(quiet.proc.lines.some((l) => l.level === PINO_DEBUG)).toBe(false);

    const edge = await fleet.startEdge({ node: 'edge-log', cloudUrl: cloud.url, joinToken: await api(cloud).token('edge-log'), extra: ['--log-level', 'debug'] });
    const quietEdge = await fleet.startEdge({ node: 'edge-quiet', cloudUrl: cloud.url, joinToken: await api(cloud).token('edge-quiet') });
    await api(cloud).call('POST', '/apps', markerApp('logged', join(fleet.root, 'logged.marker')));
    const committed = await waitFor('edge debug line', () => edge.proc.lines.find((l) => l.msg === 'desired state committed' && Array.isArray(l.changed) && (l.changed as string[]).includes('logged')));
    expect(committed.level).toBe(PINO_DEBUG);
    await waitFor('quiet edge runs it too', () => quietEdge.proc.lines.find((l) => l.msg === 'workload started' && l.workload === 'logged'));
    expect(quietEdge.proc.lines.some((l) => l.level === PINO_DEBUG)).toBe(false);

    // Every edgecore line names its node; workload lines name the workload; hub lines the node.
    // The quiet edge starting it says nothing about when this one does: wait for its own line.
    const started: LogLine = await waitFor('edge workload started', () => edge.proc.lines.find((l) => l.msg === 'workload started'));
    expect(started).toMatchObject({ svc: 'edgecore', node: 'edge-log', workload: 'logged' });
    expect(edge.proc.lines.every((l) => l.node === 'edge-log')).toBe(true);
    const hubLine = await waitFor('hub session line', () => cloud.proc.lines.find((l) => l.msg === 'sending full snapshot' && l.node === 'edge-log'));
    expect(hubLine.svc).toBe('cloudcore');
  });
});
