import { describe, expect, it } from 'vitest';
import { loadCloudSettings } from '../../cloudcore/config.js';
import { loadEdgeSettings } from '../../edgecore/config.js';
import { Fleet, runToEnd } from '../helpers/fleet.js';

/**
 * Plain HTTP off loopback (issue 21's first step, a hole the issue-20 audit also left): cloudcore
 * served plain HTTP on any address and edgecore linked to any http:// URL, silently, so a passive
 * listener on the path got the join token, the node credential and secret values. cloudcore now
 * serves HTTPS unless told otherwise (and says so loudly when told); edgecore refuses a plain URL
 * off loopback before opening anything, naming the setting.
 * The refusals run the real binaries; nothing here connects to, or listens on, a non-loopback address.
 */
describe('plain HTTP off loopback', () => {
  it('edgecore refuses an http:// cloud URL that is not loopback, before any connection, naming the way out', async () => {
    const fleet = new Fleet();
    try {
      const r = await runToEnd('edgecore', ['--node', 'edge-1', '--cloud-url', 'http://cloud.example:8080', '--data-dir', fleet.tempDir(), '--join-token-file', '/nonexistent']);
      expect(r.code).toBe(2);
      expect(r.err).toContain('invalid setting "cloudUrl"');
      expect(r.err).toContain('http://cloud.example:8080 is plain HTTP to a host that is not loopback');
      expect(r.err).toContain('insecurePlainHttp');
    } finally {
      await fleet.cleanup();
    }
  });

  it('cloudcore serves HTTPS by default; plain HTTP only when asked for, and says so loudly', async () => {
    const fleet = new Fleet();
    try {
      const secure = await fleet.startCloud({ tls: true });
      expect(secure.url).toMatch(/^https:\/\/127\.0\.0\.1:/);
      expect(secure.caPin).toMatch(/^[0-9a-f]{64}$/);
      const plain = await fleet.startCloud({ dataDir: fleet.tempDir() });
      expect(plain.url).toMatch(/^http:\/\//);
      expect(plain.proc.lines.find((l) => l.level === 40 && String(l.msg).startsWith('PLAIN HTTP (--insecure-plain-http)'))).toBeDefined();
    } finally {
      await fleet.cleanup();
    }
  });

  it('loopback, https:// or the explicit setting are accepted', () => {
    const edge = (flags: Record<string, unknown>) => loadEdgeSettings({ node: 'edge-1', ...flags }, {});
    expect(edge({ cloudUrl: 'http://127.0.0.1:8080' }).cloudUrl).toBe('http://127.0.0.1:8080');
    expect(edge({ cloudUrl: 'http://localhost:8080' }).insecurePlainHttp).toBe(false);
    expect(edge({ cloudUrl: 'https://cloud.example:8443' }).cloudUrl).toBe('https://cloud.example:8443');
    expect(edge({ cloudUrl: 'http://cloud.example:8080', insecurePlainHttp: 'true' }).insecurePlainHttp).toBe(true);
    const cloud = (flags: Record<string, unknown>) => loadCloudSettings(flags, {});
    expect(cloud({ host: '::1' }).host).toBe('::1');
    // Off loopback the default is HTTPS with the cloud's own certificate; plain HTTP is an explicit choice.
    expect(cloud({ host: '0.0.0.0' }).insecurePlainHttp).toBe(false);
    expect(cloud({ host: '0.0.0.0', insecurePlainHttp: 'true' }).insecurePlainHttp).toBe(true);
    expect(() => cloud({ insecurePlainHttp: 'true', tlsCert: 'c.pem', tlsKey: 'k.pem' })).toThrow(/exclude each other/);
    expect(cloud({ host: '0.0.0.0', tlsCert: 'c.pem', tlsKey: 'k.pem' }).host).toBe('0.0.0.0');
  });
});
