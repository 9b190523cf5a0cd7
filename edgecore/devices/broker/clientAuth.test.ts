import { describe, expect, it } from 'vitest';
import { authenticateClient, CONNACK_BAD_USERNAME_OR_PASSWORD, CONNACK_IDENTIFIER_REJECTED, CONNACK_NOT_AUTHORIZED, type AuthContext } from './clientAuth.js';
import { CredentialVerifier, hashPassword } from './deviceCredentials.js';

const grant = { publish: ['apps/a'], subscribe: [] };

async function context(opts: Partial<AuthContext> & { appHash?: () => string | undefined } = {}): Promise<AuthContext> {
  const hash = await hashPassword('app-secret');
  return {
    allowAnonymous: false,
    verifier: new CredentialVerifier(),
    mapper: () => undefined,
    app: (username) => {
      const current = opts.appHash ? opts.appHash() : hash;
      return username === 'app-alerter' && current !== undefined ? { hash: current, workload: 'alerter', grant } : undefined;
    },
    deviceCredential: () => undefined,
    directory: () => new Map([['pump-1', 'virtual']]),
    ...opts,
  };
}

describe('authenticateClient: apps and general-purpose clients', () => {
  it('logs an app in as its identity with its grant', async () => {
    const result = await authenticateClient(await context(), 'app-alerter', 'app-alerter', Buffer.from('app-secret'));
    expect(result).toEqual({ ok: true, principal: { kind: 'app', username: 'app-alerter', workload: 'alerter', grant } });
    const wrong = await authenticateClient(await context(), 'app-alerter', 'app-alerter', Buffer.from('nope'));
    expect(wrong).toMatchObject({ ok: false, returnCode: CONNACK_BAD_USERNAME_OR_PASSWORD });
  });

  it('refuses the old password of a credential rotated while its check ran', async () => {
    const first = await hashPassword('app-secret');
    let calls = 0;
    const ctx = await context({ appHash: () => (calls++ === 0 ? first : 'scrypt$AAAA$BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB') });
    expect(await authenticateClient(ctx, 'app-alerter', 'app-alerter', Buffer.from('app-secret'))).toMatchObject({ ok: false, returnCode: CONNACK_BAD_USERNAME_OR_PASSWORD });
  });

  it('without a username: refused by default, a general client in general-purpose mode, the device its id names with anonymous access too', async () => {
    expect(await authenticateClient(await context(), 'paho', undefined, undefined)).toMatchObject({ ok: false, returnCode: CONNACK_NOT_AUTHORIZED });
    expect(await authenticateClient(await context({ generalPurpose: true }), 'paho', undefined, undefined))
      .toEqual({ ok: true, principal: { kind: 'general', clientId: 'paho' } });
    expect(await authenticateClient(await context({ generalPurpose: true }), 'pump-1', undefined, undefined)).toMatchObject({ ok: false, returnCode: CONNACK_IDENTIFIER_REJECTED });
    expect(await authenticateClient(await context({ generalPurpose: true, allowAnonymous: true }), 'pump-1', undefined, undefined))
      .toEqual({ ok: true, principal: { kind: 'anonymous', clientId: 'pump-1' } });
    expect(await authenticateClient(await context({ generalPurpose: true, allowAnonymous: true }), 'paho', undefined, undefined))
      .toEqual({ ok: true, principal: { kind: 'general', clientId: 'paho' } });
  });
});
