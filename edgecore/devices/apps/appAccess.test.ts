import { mkdtempSync, readFileSync, rmSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { MqttGrant, WorkloadTemplate } from '../../../protocol/index.js';
import { CredentialVerifier } from '../broker/deviceCredentials.js';
import { AppAccess } from './appAccess.js';
import { APP_CREDENTIAL_MOUNT, withAppAccess } from './appWorkload.js';

const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'app-access-'));
  dirs.push(dir);
  const calls: { username: string; hash?: string; grant?: MqttGrant }[] = [];
  const sink = { setAppCredential: (username: string, c: { hash: string; grant: MqttGrant } | undefined) => { calls.push({ username, ...(c ? { hash: c.hash, grant: c.grant } : {}) }); } };
  return { dir: join(dir, 'apps'), calls, sink };
}

const grant: MqttGrant = { publish: ['apps/a'], subscribe: ['apps/b'] };
const verify = (hash: string, password: string) => new CredentialVerifier().verify(hash, Buffer.from(password));

describe('AppAccess', () => {
  it('makes a 0600 password file, gives the broker only its hash, and keeps it across restarts while the grant holds', async () => {
    const { dir, calls, sink } = setup();
    const access = new AppAccess(dir, sink);
    const file = await access.ensure('alerter', grant);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const password = readFileSync(file, 'utf8').trim();
    expect(calls).toHaveLength(1);
    expect(calls[0]!.username).toBe('app-alerter');
    expect(calls[0]!.hash).not.toContain(password);
    expect(await verify(calls[0]!.hash!, password)).toBe(true);
    // Every reconcile asks again: nothing new while nothing changed (entry order does not count).
    await access.ensure('alerter', { publish: ['apps/a'], subscribe: ['apps/b'] });
    expect(calls).toHaveLength(1);
    const restarted = new AppAccess(dir, sink);
    await restarted.ensure('alerter', grant);
    expect(readFileSync(file, 'utf8').trim()).toBe(password);
    expect(await verify(calls[1]!.hash!, password)).toBe(true);
  });

  it('rotates the password when the grant changes, and forgets workloads without mqtt or gone', async () => {
    const { dir, calls, sink } = setup();
    const access = new AppAccess(dir, sink);
    const file = await access.ensure('alerter', grant);
    const before = readFileSync(file, 'utf8');
    await access.ensure('alerter', { ...grant, publish: ['apps/c'] });
    expect(readFileSync(file, 'utf8')).not.toBe(before);
    expect(calls.map((c) => c.grant?.publish)).toEqual([['apps/a'], ['apps/c']]);
    await access.ensure('other', grant);
    access.keepOnly(new Set(['other']));
    expect(existsSync(file)).toBe(false);
    expect(calls.at(-1)).toEqual({ username: 'app-alerter' });
    // Files left by a run that did not see the removal go at the next reconcile.
    const next = new AppAccess(dir, sink);
    next.keepOnly(new Set());
    expect(existsSync(access.passwordFile('other'))).toBe(false);
  });
});

describe('withAppAccess', () => {
  const endpoints = { mqttUrl: 'mqtt://127.0.0.1:1883', username: 'app-alerter', passwordFile: '/data/apps/alerter.password' };
  it('gives a process its broker, username and password file; a container the file mounted read-only', () => {
    const process: WorkloadTemplate = { runtime: 'process', command: 'x', args: [], env: { EF_MQTT_URL: 'mqtts://other' }, restartPolicy: 'Always', probes: {}, configs: [], secrets: [], mqtt: grant };
    expect(withAppAccess(process, endpoints).env).toEqual({ EF_MQTT_URL: 'mqtts://other', EF_MQTT_USERNAME: 'app-alerter', EF_MQTT_PASSWORD_FILE: '/data/apps/alerter.password' });
    const container = { runtime: 'container', image: 'a:1', imagePullPolicy: 'IfNotPresent', env: {}, ports: [], volumes: [], resources: {}, restartPolicy: 'Always', probes: {}, configs: [], secrets: [], mqtt: grant } as WorkloadTemplate;
    const run = withAppAccess(container, endpoints);
    expect(run.env.EF_MQTT_PASSWORD_FILE).toBe(APP_CREDENTIAL_MOUNT);
    expect(run.runtime === 'container' && run.volumes).toEqual([{ hostPath: '/data/apps/alerter.password', mountPath: APP_CREDENTIAL_MOUNT, readOnly: true }]);
  });

  it('leaves a template without mqtt alone: no broker credential at all', () => {
    const plain: WorkloadTemplate = { runtime: 'process', command: 'x', args: [], env: {}, restartPolicy: 'Always', probes: {}, configs: [], secrets: [] };
    expect(withAppAccess(plain, endpoints)).toBe(plain);
  });
});
