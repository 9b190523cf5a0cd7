import { describe, expect, it } from 'vitest';
import type { EdgeStatus } from '../../protocol/edgeStatus.js';
import { EdgeSettingsSchema } from '../../edgecore/config.js';
import { DEFAULT_LOCAL_URL } from './local.js';
import { formatBytes, formatDuration, identityFields, linkLine, renderLocalStatus } from './localFormat.js';

const now = new Date('2025-01-01T10:05:00Z');

function status(over: Partial<EdgeStatus> = {}): EdgeStatus {
  return {
    node: 'edge-1', version: '0.1.0', generatedAt: now.toISOString(),
    edgecore: { version: '0.1.0', pid: 4242, startedAt: '2025-01-01T10:00:00Z', uptimeSeconds: 300 },
    host: { hostname: 'gw-7', os: 'linux', arch: 'arm64', uptimeSeconds: 90_000, loadAverage: [0.5, 0.25, 0.1], memory: { totalBytes: 2 * 1024 ** 3, availableBytes: 1024 ** 3, edgecoreRssBytes: 60 * 1024 ** 2 }, disk: { path: '/var/lib/ef', totalBytes: 32 * 1024 ** 3, availableBytes: 8 * 1024 ** 3 } },
    link: { cloudUrl: 'http://cloud:8080', state: 'connecting', downSince: '2025-01-01T10:02:47Z', downForSeconds: 133, connectedSince: null, lastConnectedAt: '2025-01-01T10:02:47Z', lastError: 'connect ECONNREFUSED', stats: null },
    sync: { epoch: 'ep1', lastRevision: 12 },
    outbox: { depth: 3, dropped: 1, oldestSeq: 9 },
    mqtt: { url: 'mqtt://127.0.0.1:1883', clients: 1, messages: { received: 5, refused: 0 }, devices: [{ name: 'pump-1', online: true, lastSeen: '2025-01-01T10:04:50Z', reported: { rpm: 1200, mode: 'auto' }, desiredVersion: 1, reportedVersion: 4 }] },
    workloads: [
      { name: 'web', generation: 2, runtime: 'process', status: { state: 'Running', restarts: 1, generation: 2, startedAt: '2025-01-01T10:01:00Z', observedAt: '2025-01-01T10:01:00Z' }, recentLogs: ['listening on 8000', 'GET / 200'] },
      { name: 'later', generation: 1, runtime: 'container', status: null, recentLogs: [] },
    ],
    ...over,
  };
}

describe('edgectl local status formatting', () => {
  it('shows the previous agent version and the last upgrade attempt (docs/install.md, "Upgrade")', () => {
    const text = renderLocalStatus(status({
      upgrade: {
        previousVersion: '0.1.0',
        lastAttempt: { upgrade: 'north', revision: 2, version: '0.2.0', previousVersion: '0.1.0', phase: 'Downloading', message: 'downloading x', bytes: 1536, totalBytes: 3 * 1024 ** 2, since: '2025-01-01T10:04:00Z' },
      },
    }), now);
    expect(text).toMatch(/Previous version: +0\.1\.0/);
    expect(text).toMatch(/Last upgrade: +0\.2\.0 \(north revision 2\): Downloading 1\.5 KiB of 3\.0 MiB since 2025-01-01T10:04:00Z: downloading x/);
    expect(renderLocalStatus(status(), now)).not.toContain('Previous version');
  });

  it('durations and sizes read like a terminal tool', () => {
    expect(formatDuration(59)).toBe('59s');
    expect(formatDuration(133)).toBe('2m13s');
    expect(formatDuration(3900)).toBe('1h05m');
    expect(formatDuration(3 * 86_400 + 4 * 3600)).toBe('3d04h');
    expect(formatDuration(null)).toBe('<none>');
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
  });

  it('a down link says for how long (by the node\'s clock), since when and why', () => {
    expect(linkLine(status())).toBe('DOWN for 2m13s (connecting) to http://cloud:8080');
    const text = renderLocalStatus(status(), now);
    expect(text).toContain('Down since:');
    expect(text).toContain('2025-01-01T10:02:47Z');
    expect(text).toContain('Last error:');
    expect(text).toContain('connect ECONNREFUSED');
    expect(text).toMatch(/Queued for cloud:\s+3 waiting, 1 dropped/);
    expect(text).toMatch(/Disk:\s+8\.0 GiB free of 32\.0 GiB \(\/var\/lib\/ef\)/);
    expect(text).toMatch(/MQTT broker:\s+mqtt:\/\/127\.0\.0\.1:1883, 1 clients\n/);
  });

  it('failed device commits are called out next to the broker', () => {
    const mqtt = { ...status().mqtt!, commits: { transactions: 40, items: 900, rollbacks: 2 } };
    expect(renderLocalStatus(status({ mqtt }), now)).toMatch(/MQTT broker:\s+mqtt:\/\/127\.0\.0\.1:1883, 1 clients; 2 device commits failed \(check the disk\)/);
    expect(renderLocalStatus(status({ mqtt: { ...mqtt, unreadableRows: 3 } }), now))
      .toMatch(/; 2 device commits failed \(check the disk\); 3 stored messages unreadable, dropped \(see the log\)$/m);
  });

  it('queue drops and broker exposure warnings are called out next to the broker', () => {
    const mqtt = { ...status().mqtt!, queuedDropped: 7, warnings: ['anonymous MQTT clients are allowed (--mqtt-allow-anonymous): …'] };
    const text = renderLocalStatus(status({ mqtt }), now);
    expect(text).toMatch(/MQTT broker:\s+mqtt:\/\/127\.0\.0\.1:1883, 1 clients; 7 queued messages dropped \(session queue limit\)$/m);
    expect(text).toMatch(/BROKER EXPOSED:\s+anonymous MQTT clients are allowed/);
  });

  it('a connected link says for how long it is up', () => {
    const up = status({ link: { ...status().link, state: 'connected', downSince: null, downForSeconds: null, connectedSince: '2025-01-01T10:04:00Z' } });
    expect(linkLine(up)).toBe('connected for 1m00s to http://cloud:8080');
    expect(renderLocalStatus(up, now)).not.toContain('Down since');
  });

  it('workloads, devices and recent logs as tables', () => {
    const text = renderLocalStatus(status(), now);
    expect(text).toMatch(/WORKLOADS \(2\)\nNAME\s+RUNTIME\s+STATE\s+RESTARTS/);
    expect(text).toMatch(/web\s+process\s+Running\s+1\s+4m\s+2\s+GET \/ 200/);
    expect(text).toMatch(/later\s+container\s+Unknown/);
    expect(text).toMatch(/pump-1\s+yes\s+10s\s+mode="auto",rpm=1200/);
    expect(text).toContain('--- web\n  listening on 8000\n  GET / 200\n');
  });

  it('app grants as a table with their counters; none said plainly; no section from an edgecore older than grants', () => {
    const alerter = { workload: 'alerter', username: 'app-alerter', publish: ['apps/alerts/#'], subscribe: ['ef/devices/+/telemetry', 'apps/cmd/#'], published: 7, delivered: 12, refused: 2 };
    const quiet = { workload: 'reader', username: 'app-reader', publish: [], subscribe: ['apps/alerts/#'], published: 0, delivered: 0, refused: 0 };
    const text = renderLocalStatus(status({ mqtt: { ...status().mqtt!, appGrants: [alerter, quiet] } }), now);
    expect(text).toMatch(/APP GRANTS \(2\)\nWORKLOAD\s+USERNAME\s+PUBLISH\s+SUBSCRIBE\s+PUBLISHED\s+DELIVERED\s+REFUSED\n/);
    expect(text).toMatch(/alerter\s+app-alerter\s+apps\/alerts\/#\s+ef\/devices\/\+\/telemetry,apps\/cmd\/#\s+7\s+12\s+2\n/);
    expect(text).toMatch(/reader\s+app-reader\s+-\s+apps\/alerts\/#\s+0\s+0\s+0\n/);
    expect(renderLocalStatus(status({ mqtt: { ...status().mqtt!, appGrants: [] } }), now)).toContain('APP GRANTS (0)\nNo workload on this node has an MQTT grant.\n');
    expect(renderLocalStatus(status(), now)).not.toContain('APP GRANTS');
  });

  it('a device offline behind its mapper says why the mapper cannot reach it', () => {
    const meter = { name: 'meter-1', online: false, lastSeen: null, reported: {}, desiredVersion: 0, reportedVersion: 0, mapperError: 'connect: connect ECONNREFUSED 10.1.2.3:502' };
    const text = renderLocalStatus(status({ mqtt: { ...status().mqtt!, devices: [meter] } }), now);
    expect(text).toMatch(/meter-1\s+no: connect: connect ECONNREFUSED 10\.1\.2\.3:502\s+<never>/);
  });

  it('the default URL is where edgecore listens by default', () => {
    const defaults = EdgeSettingsSchema.parse({ node: 'n', cloudUrl: 'http://127.0.0.1:1' });
    expect(DEFAULT_LOCAL_URL).toBe(`http://${defaults.statusHost}:${defaults.statusPort}`);
  });

  it('the identity: its certificate and standing, and what to do when it needs a new token', () => {
    expect(identityFields(status())).toEqual([]);
    expect(identityFields(status({ identity: null }))).toEqual([['Identity', 'none yet (the node has not joined)']]);
    const stuck = status({ identity: { mode: 'certificate', serial: '1a2b', notAfter: '2025-01-01T09:00:00Z', renewAt: '2025-01-01T08:40:00Z', standing: 'needs-new-token', lastRenewalError: 'renewal refused: expired past grace' } });
    const text = renderLocalStatus(stuck, now);
    expect(text).toContain('certificate 1a2b, NEEDS A NEW JOIN TOKEN');
    expect(text).toContain('--join-token');
    expect(text).toContain('renewal refused: expired past grace');
    expect(identityFields(status({ identity: { mode: 'bearer', serial: null, notAfter: null, renewAt: null, standing: 'valid', lastRenewalError: null } })))
      .toEqual([['Identity', 'bearer credential, valid'], ['Identity expires', 'never']]);
  });
});
