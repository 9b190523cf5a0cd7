import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { caBundlePin, HUB_PATHS, pemBlocks } from '../protocol/index.js';
import { errorText, UsageError, type CliSettings } from './parse.js';
import { networkReason, sendOverWire } from './transport.js';

/**
 * How edgectl comes to trust the cloud's CA, the K3s way: the operator gives the CA's pin (the
 * SHA-256 cloudcore prints at start and every pinned join token carries); edgectl fetches the
 * bundle from `GET /hub/v1/ca` WITHOUT verifying (it cannot yet), and keeps it only if its pin
 * matches. From then on every request verifies the server against that bundle.
 */

/** A CA bundle is a few certificates; anything much larger is not one. */
const MAX_BUNDLE_BYTES = 256 * 1024;

export interface CaBundleSummary { certificates: number; subjects: string[]; validTo: string[] }

/** Checks that `text` holds at least one readable certificate, and nothing else parses as one badly. */
export function parseCaBundle(text: string, source: string): CaBundleSummary {
  const blocks = pemBlocks(text);
  if (blocks.length === 0) throw new UsageError(`${source} holds no PEM CERTIFICATE block: it is not a CA bundle`);
  const certificates = blocks.map((pem, i) => {
    try {
      return new X509Certificate(pem);
    } catch (err) {
      throw new UsageError(`${source}: certificate ${i + 1} cannot be read: ${errorText(err)}`);
    }
  });
  return {
    certificates: certificates.length,
    subjects: certificates.map((c) => c.subject.replace(/\n/g, ', ')),
    validTo: certificates.map((c) => c.validTo),
  };
}

/** `--ca-pin`: 64 hex digits (case ignored), optionally written `sha256:…`. */
export function parseCaPin(value: string): string {
  const pin = value.trim().toLowerCase().replace(/^sha256:/, '');
  if (!/^[0-9a-f]{64}$/.test(pin)) {
    throw new UsageError(`invalid --ca-pin "${value}": must be the 64 hex digits of the CA bundle's SHA-256 (cloudcore prints it at start; it is also the part after EF1- of a pinned join token)`);
  }
  return pin;
}

/** The CA bundle the settings name (inline data, or the file at the path), or undefined for the system store. */
export function configuredCa(settings: CliSettings, readFile: (path: string) => string = (p) => readFileSync(p, 'utf8')): string | undefined {
  if (settings.certificateAuthority !== undefined) {
    let text: string;
    try {
      text = readFile(settings.certificateAuthority);
    } catch (err) {
      throw new UsageError(`cannot read certificateAuthority file ${settings.certificateAuthority}: ${errorText(err)}`);
    }
    parseCaBundle(text, `certificateAuthority file ${settings.certificateAuthority}`);
    return text;
  }
  if (settings.certificateAuthorityData !== undefined) {
    parseCaBundle(settings.certificateAuthorityData, 'certificateAuthorityData');
    return settings.certificateAuthorityData;
  }
  return undefined;
}

/**
 * Fetches the CA bundle from an https cloudcore and keeps it only if its pin is `pin`; then
 * proves the server's own certificate verifies against it (chain and host name), so a config
 * that would fail every later request is never written.
 */
export async function fetchPinnedCaBundle(server: string, pin: string, timeoutMs = 15_000): Promise<{ bundle: string; summary: CaBundleSummary }> {
  const url = caUrl(server);
  if (url.protocol !== 'https:') throw new UsageError(`--ca-pin needs an https:// server (a CA is what https is verified with), got ${server}`);
  const bundle = await fetchUnverified(url, timeoutMs);
  const served = caBundlePin(bundle);
  if (served !== pin) {
    throw new UsageError(`the CA bundle served by ${server} has pin ${served}, not the pin given (${pin}): this is not the cloudcore you meant, or its CA changed. Nothing was written`);
  }
  const summary = parseCaBundle(bundle, `the CA bundle served by ${server}`);
  try {
    const check = await sendOverWire(url.href, { method: 'GET', headers: {}, ca: bundle, signal: AbortSignal.timeout(timeoutMs) });
    await check.arrayBuffer();
  } catch (err) {
    throw new UsageError(`the CA bundle of ${server} matches the pin, but the server's certificate does not verify against it: ${networkReason(err, true)}. Nothing was written`);
  }
  return { bundle, summary };
}

function caUrl(server: string): URL {
  let base: URL;
  try {
    base = new URL(server);
  } catch {
    throw new UsageError(`invalid --server "${server}": must be an http(s) URL like https://cloud.example:8080`);
  }
  return new URL(base.href.replace(/\/+$/, '') + HUB_PATHS.ca);
}

/** The one request edgectl makes without verifying the server: its answer is trusted only if it hashes to the pin. */
function fetchUnverified(url: URL, timeoutMs: number): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const fail = (reason: string) => reject(new UsageError(`cannot fetch the CA bundle from ${url.href}: ${reason}`));
    const req = httpsRequest(url, { method: 'GET', rejectUnauthorized: false, signal: AbortSignal.timeout(timeoutMs) }, (answer) => {
      if (answer.statusCode !== 200) {
        answer.resume();
        fail(`answered ${answer.statusCode ?? '?'} (is this cloudcore, and new enough to serve ${HUB_PATHS.ca}?)`);
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      answer.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BUNDLE_BYTES) {
          answer.destroy();
          fail(`the answer is larger than ${MAX_BUNDLE_BYTES} bytes: not a CA bundle`);
          return;
        }
        chunks.push(chunk);
      });
      answer.on('end', () => resolvePromise(Buffer.concat(chunks).toString('utf8')));
      answer.on('error', (err) => fail(errorText(err)));
    });
    req.on('error', (err) => fail(networkReason(err, false)));
    req.end();
  });
}
