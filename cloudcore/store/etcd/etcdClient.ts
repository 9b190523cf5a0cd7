import { readFile } from 'node:fs/promises';
import { Etcd3, type IOptions } from 'etcd3';

/**
 * The etcd3 client as EdgeFleet opens it, and the parse of its settings. Every message names the
 * setting an operator fixes (`--etcd-endpoints`, `--etcd-ca`, `--etcd-cert`/`--etcd-key`).
 */

/** PEM files for TLS to etcd: the CA that signed the members' certificates, and an optional client certificate. */
export interface EtcdTlsFiles {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

export interface EtcdCredentials {
  rootCertificate: Buffer;
  privateKey?: Buffer;
  certChain?: Buffer;
}

/** Parses `--etcd-endpoints` entries: http(s)://host:port, one scheme for all (one TLS setting serves every member). */
export function parseEtcdEndpoints(endpoints: readonly string[]): { urls: URL[]; secure: boolean } {
  if (endpoints.length === 0) throw new Error('--etcd-endpoints is empty: give the client URLs of the etcd members, e.g. http://127.0.0.1:2379');
  const urls = endpoints.map((raw) => {
    let url: URL;
    try {
      url = new URL(raw.trim());
    } catch {
      throw new Error(`--etcd-endpoints: ${JSON.stringify(raw)} is not a URL (expected http://host:port or https://host:port)`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new Error(`--etcd-endpoints: ${raw} must start with http:// or https://`);
    }
    if (url.port === '' || (url.pathname !== '/' && url.pathname !== '') || url.search || url.username) {
      throw new Error(`--etcd-endpoints: ${raw} must be scheme://host:port, with the port and nothing after it`);
    }
    return url;
  });
  const secure = urls[0]!.protocol === 'https:';
  const mixed = urls.find((u) => (u.protocol === 'https:') !== secure);
  if (mixed) throw new Error(`--etcd-endpoints mixes http:// and https:// (${mixed.href}): every member must be reached the same way`);
  return { urls, secure };
}

export async function readEtcdCredentials(tls: EtcdTlsFiles | undefined, secure: boolean): Promise<EtcdCredentials | undefined> {
  if (!tls || (!tls.caFile && !tls.certFile && !tls.keyFile)) return undefined;
  if (Boolean(tls.certFile) !== Boolean(tls.keyFile)) {
    throw new Error(`--etcd-cert and --etcd-key go together: ${tls.certFile ? '--etcd-key' : '--etcd-cert'} is missing`);
  }
  if (!secure) throw new Error('--etcd-ca/--etcd-cert/--etcd-key are set but --etcd-endpoints are http://: use https:// endpoints for TLS');
  if (!tls.caFile) throw new Error('--etcd-cert/--etcd-key need --etcd-ca (the CA that signed the etcd members\' certificates)');
  const read = async (file: string, setting: string) => {
    try {
      return await readFile(file);
    } catch (error) {
      throw new Error(`${setting} ${file}: ${(error as Error).message}`);
    }
  };
  return {
    rootCertificate: await read(tls.caFile, '--etcd-ca'),
    privateKey: tls.keyFile ? await read(tls.keyFile, '--etcd-key') : undefined,
    certChain: tls.certFile ? await read(tls.certFile, '--etcd-cert') : undefined,
  };
}

/**
 * `attemptTimeoutMs` bounds each attempt on one member: etcd3 tries members in turn (and retries
 * the round), so an attempt stuck on a member that just died must not eat the whole deadline the
 * caller has (EtcdCalls puts that one around the call).
 */
export function newEtcdClient(endpoints: readonly string[], credentials: EtcdCredentials | undefined, attemptTimeoutMs: number): Etcd3 {
  const options: IOptions = {
    hosts: [...endpoints],
    dialTimeout: attemptTimeoutMs,
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + attemptTimeoutMs }),
  };
  if (credentials) options.credentials = credentials;
  return new Etcd3(options);
}
