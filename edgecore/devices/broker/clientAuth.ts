import { clientIdRefusal, type DeviceDirectory, type Principal } from './deviceAcl.js';
import type { CredentialVerifier } from './deviceCredentials.js';
import type { CertificateLogin } from './deviceCertificate.js';
import type { AppCredential } from '../apps/appIdentities.js';

// CONNACK return codes (MQTT 3.1.1 §3.2.2.3). aedes' AuthErrorCode is a const enum, which does
// not exist at run time.
export const CONNACK_IDENTIFIER_REJECTED = 2;
export const CONNACK_SERVER_UNAVAILABLE = 3;
export const CONNACK_BAD_USERNAME_OR_PASSWORD = 4;
export const CONNACK_NOT_AUTHORIZED = 5;

export type AuthResult = { ok: true; principal: Principal } | { ok: false; returnCode: number; reason: string };

export interface AuthContext {
  allowAnonymous: boolean;
  /** Clients without a username are general-purpose clients (appAcl.ts), unless allowAnonymous makes them the device their id names. */
  generalPurpose?: boolean;
  verifier: CredentialVerifier;
  mapper(username: string): { hash: string; protocol: string } | undefined;
  app?(username: string): AppCredential | undefined;
  /** The device's credentialHash; undefined for an unknown device or one without a credential. */
  deviceCredential(name: string): string | undefined;
  /** Read after the password check: the devices may have changed while scrypt ran. */
  directory(): DeviceDirectory;
}

/**
 * Decides a CONNECT: a client certificate (TLS listener), when one was presented, decides alone:
 * it logs in as its device with no password, or refuses the login (a username, if given, must
 * be that device). Otherwise a mapper login (configured on this edge) wins over an app's, and
 * both over a device of the same name; no username is anonymous (only when allowed) or, in
 * general-purpose mode, a general-purpose client. Client ids are bound to principals
 * (clientIdRefusal) either way.
 */
export async function authenticateClient(ctx: AuthContext, clientId: string, username: string | undefined, password: Buffer | undefined,
  certificate: CertificateLogin | null = null): Promise<AuthResult> {
  let principal: Principal;
  if (certificate !== null) {
    if (!certificate.ok) return { ok: false, returnCode: CONNACK_NOT_AUTHORIZED, reason: `client certificate refused: ${certificate.reason}` };
    if (username !== undefined && username !== '' && username !== certificate.device) {
      return { ok: false, returnCode: CONNACK_NOT_AUTHORIZED, reason: `client certificate is device ${certificate.device}'s, but the username is ${username}` };
    }
    principal = { kind: 'device', device: certificate.device, certificateSerial: certificate.serial };
  } else if (username === undefined || username === '') {
    if (ctx.generalPurpose === true && !(ctx.allowAnonymous && ctx.directory().has(clientId))) {
      principal = { kind: 'general', clientId };
    } else {
      if (!ctx.allowAnonymous) return { ok: false, returnCode: CONNACK_NOT_AUTHORIZED, reason: 'anonymous clients are not allowed' };
      principal = { kind: 'anonymous', clientId };
    }
  } else {
    const mapper = ctx.mapper(username);
    const app = mapper === undefined ? ctx.app?.(username) : undefined;
    const stored = mapper?.hash ?? app?.hash ?? ctx.deviceCredential(username);
    // Without a password the check still runs (against nothing), so it costs the same.
    const ok = await ctx.verifier.verify(password === undefined ? undefined : stored, password ?? Buffer.alloc(0));
    principal = mapper !== undefined ? { kind: 'mapper', username, protocol: mapper.protocol }
      : app !== undefined ? { kind: 'app', username, workload: app.workload, grant: app.grant }
        : { kind: 'device', device: username };
    // A credential rotated or removed while scrypt ran must not let the old password in.
    const appGone = app !== undefined && ctx.app?.(username)?.hash !== app.hash;
    if (!ok || appGone || (principal.kind === 'device' && !ctx.directory().has(username))) {
      return { ok: false, returnCode: CONNACK_BAD_USERNAME_OR_PASSWORD, reason: 'bad username or password' };
    }
  }
  const refusal = clientIdRefusal(principal, clientId, ctx.directory());
  if (refusal !== null) return { ok: false, returnCode: CONNACK_IDENTIFIER_REJECTED, reason: refusal };
  return { ok: true, principal };
}
