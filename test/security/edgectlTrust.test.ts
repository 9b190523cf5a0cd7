import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { caBundlePin } from '../../protocol/index.js';
import { ApiClient } from '../../edgectl/client.js';
import { Fleet, runToEnd, type Cloud } from '../helpers/fleet.js';
import { runCli, runCliFromConfig } from '../helpers/edgectl/runCli.js';

/**
 * edgectl trusts the cloud's CA as kubectl trusts a kubeconfig's: `edgectl config set-cluster
 * --ca-pin` fetches the bundle unverified, keeps it only if it hashes to the pin, and from then
 * on every request (streams included) is verified against it alone. Real cloudcores over HTTPS
 * with their own CAs; no NODE_EXTRA_CA_CERTS anywhere.
 */
describe('edgectl trusts the cloud CA through its config file', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  let impostor: Cloud;
  let home: string;
  let tokenFile: string;

  /** edgectl in-process with nothing but the config file in `home` (no EF_* env, no extra CAs). */
  const edgectl = (args: string[]) => runCliFromConfig(args, home);
  const configPath = () => join(home, '.edgefleet', 'config.yaml');

  beforeAll(async () => {
    cloud = await fleet.startCloud({ tls: true });
    impostor = await fleet.startCloud({ tls: true, dataDir: join(fleet.tempDir(), 'impostor') });
    home = fleet.tempDir('edgectl-home-');
    tokenFile = join(fleet.tempDir(), 'admin.token');
    writeFileSync(tokenFile, `${cloud.token}\n`);
  });
  afterAll(() => fleet.cleanup());

  it('without a CA configured, an https cloudcore is refused with the way to trust it', async () => {
    const r = await runCli(['get', 'nodes'], { origin: cloud.url, token: cloud.token, homeDir: home });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/cannot reach cloudcore at https:.*edgectl config set-cluster --server URL --ca-pin PIN/);
  });

  it('a pin that does not match the served bundle is refused and nothing is written', async () => {
    expect(cloud.caPin).toMatch(/^[0-9a-f]{64}$/);
    const r = await edgectl(['--server', impostor.url, 'config', 'set-cluster', '--ca-pin', cloud.caPin!, '--token-file', tokenFile]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`the CA bundle served by ${impostor.url} has pin ${impostor.caPin}, not the pin given (${cloud.caPin})`);
    expect(r.err).toContain('Nothing was written');
    expect(() => statSync(configPath())).toThrow(/ENOENT/);
  });

  it('set-cluster --ca-pin stores the bundle 0600; every request then verifies against it, watches included', async () => {
    const set = await edgectl(['--server', cloud.url, 'config', 'set-cluster', '--ca-pin', cloud.caPin!.toUpperCase(), '--token-file', tokenFile]);
    expect(set).toMatchObject({ code: 0, err: '' });
    expect(set.out).toContain(`server ${cloud.url} stored in ${configPath()}`);
    expect(statSync(configPath()).mode & 0o777).toBe(0o600);
    expect(statSync(join(home, '.edgefleet')).mode & 0o777).toBe(0o700);
    const stored = YAML.parse(readFileSync(configPath(), 'utf8')) as Record<string, string>;
    expect(stored).toMatchObject({ server: cloud.url, token: cloud.token });
    // Byte for byte what the cloud serves: the stored bundle still hashes to the pin.
    expect(caBundlePin(stored.certificateAuthorityData!)).toBe(cloud.caPin);

    const created = await edgectl(['token', 'create', 'edge-1']);
    expect(created).toMatchObject({ code: 0, err: '' });
    expect(created.out).toMatch(new RegExp(`^EF1-${cloud.caPin}-`));
    expect((await edgectl(['get', 'nodes'])).out).toMatch(/edge-1\s+Pending/);

    // A streaming request over the same trust: the watch sees a node created after it started.
    const client = new ApiClient({ server: cloud.url, token: cloud.token, ca: stored.certificateAuthorityData });
    const list = await client.listNodes();
    const seen = client.watchNodes({ resourceVersion: list.resourceVersion }, (_type, node) => node.metadata.name === 'edge-2');
    await new Promise((r) => setTimeout(r, 200));
    expect((await edgectl(['token', 'create', 'edge-2'])).code).toBe(0);
    await expect(seen).resolves.toBeUndefined();
  });

  it('config view shows the server, the CA\'s pin and subjects, and never the token', async () => {
    const view = await edgectl(['config', 'view']);
    expect(view).toMatchObject({ code: 0, err: '' });
    expect(view.out).toContain(`server: ${cloud.url}\ntoken: (set)\ncertificate authority: certificateAuthorityData (pin ${cloud.caPin})`);
    expect(view.out).not.toContain(cloud.token);
  });

  it('the built edgectl binary works from the config file alone', async () => {
    const r = await runToEnd('edgectl', ['--config', configPath(), 'get', 'nodes'], { NODE_EXTRA_CA_CERTS: '', EF_SERVER: '', EF_TOKEN: '' });
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/edge-1/);
  });

  it('a server whose certificate does not chain to the configured CA is refused, naming the fix', async () => {
    const r = await edgectl(['--server', impostor.url, 'get', 'nodes']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/does not chain to the CA in your edgectl config: if the cloud's CA changed, run edgectl config set-cluster again/);
  });

  it('--ca-file embeds a bundle the operator already has; --ca-pin and --ca-file together are refused', async () => {
    const otherHome = fleet.tempDir('edgectl-home-');
    const config = join(otherHome, 'config.yaml');
    const set = await runCliFromConfig(['--config', config, '--server', cloud.url, 'config', 'set-cluster', '--ca-file', join(cloud.dataDir, 'pki', 'ca.crt'), '--token-file', tokenFile], otherHome);
    expect(set).toMatchObject({ code: 0, err: '' });
    expect(statSync(config).mode & 0o777).toBe(0o600);
    expect((await runCliFromConfig(['--config', config, 'get', 'nodes'], otherHome)).out).toMatch(/edge-1/);
    const both = await edgectl(['--server', cloud.url, 'config', 'set-cluster', '--ca-pin', cloud.caPin!, '--ca-file', 'x.pem']);
    expect(both.code).not.toBe(0);
    expect(both.err).toMatch(/--ca-pin.*cannot be used with.*--ca-file/);
  });

  it('--ca-pin over plain http, or a malformed pin, is refused before any request', async () => {
    const plain = await edgectl(['--server', 'http://127.0.0.1:1', 'config', 'set-cluster', '--ca-pin', cloud.caPin!]);
    expect(plain.err).toMatch(/--ca-pin needs an https:\/\/ server/);
    const bad = await edgectl(['--server', cloud.url, 'config', 'set-cluster', '--ca-pin', 'abc']);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/invalid --ca-pin "abc": must be the 64 hex digits/);
  });
});
