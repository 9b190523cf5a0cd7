import { randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Device } from '../../../protocol/index.js';
import { hashPassword } from '../broker/deviceCredentials.js';

/**
 * Mapper credentials and the device list mappers read. One credential per protocol on this
 * node (`mapper-<protocol>`): it lets a mapper act, on the broker, for every device of that
 * protocol here and nowhere else. The password lives in `<dataDir>/mappers/<protocol>.password`
 * (0600) for mappers started by hand or as workloads (`mapper <protocol> --credential-file …`).
 */
export interface MapperCredentialSink {
  addMapperCredential(username: string, passwordHashScrypt: string, protocol: string): void;
}

export class MapperAccess {
  private readonly passwords = new Map<string, string>();
  /**
   * Registration per protocol, done or under way. Callers that come while it runs (a device sync
   * and mapper workloads starting in parallel) share it: a second registration would hash the
   * password again with a new salt, which the broker takes for a changed credential and answers
   * by disconnecting that protocol's mapper.
   */
  private readonly registrations = new Map<string, Promise<string>>();

  constructor(private readonly dir: string, private readonly broker: MapperCredentialSink) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  passwordFile(protocol: string): string {
    return join(this.dir, `${protocol.replace(/[^A-Za-z0-9_.-]/g, '_')}.password`);
  }

  /** Makes sure every protocol in use has a credential the broker knows. */
  async ensureFor(devices: Device[]): Promise<void> {
    for (const protocol of new Set(devices.map((d) => d.spec.protocol.name))) await this.ensureProtocol(protocol);
  }

  /**
   * Makes sure `protocol` has a credential the broker knows (a mapper workload may start before
   * any device of its protocol exists) and returns the file holding its password.
   */
  ensureProtocol(protocol: string): Promise<string> {
    let registration = this.registrations.get(protocol);
    if (registration === undefined) {
      registration = this.register(protocol);
      this.registrations.set(protocol, registration);
      // A failed one (the disk) is tried afresh by the next caller.
      registration.catch(() => this.registrations.delete(protocol));
    }
    return registration;
  }

  private async register(protocol: string): Promise<string> {
    const file = this.passwordFile(protocol);
    const existing = existsSync(file);
    const password = existing ? readFileSync(file, 'utf8').trim() : randomBytes(24).toString('base64url');
    this.passwords.set(protocol, password);
    this.broker.addMapperCredential(`mapper-${protocol}`, await hashPassword(password), protocol);
    // A new file appears only once the broker knows its password: a mapper that waits for the
    // file (or is started when it exists) is never refused for coming too early.
    if (!existing) writeFileSync(file, password + '\n', { mode: 0o600 });
    return file;
  }

  /** True when `authorization` carries the mapper password of `protocol`. */
  authorized(protocol: string, authorization: string | undefined): boolean {
    const expected = this.passwords.get(protocol);
    const given = authorization?.startsWith('Bearer ') ? authorization.slice(7) : '';
    if (!expected || given.length !== expected.length) return false;
    return timingSafeEqual(Buffer.from(given), Buffer.from(expected));
  }
}
