import { HUB_PATHS, JoinResponseSchema } from '../../protocol/index.js';
import { describeCloudError } from '../link/cloudError.js';

export class JoinRefusedError extends Error {}

/**
 * Presents a join token once and returns the node credential. A refusal (bad, expired,
 * reused or other-node token) is final and throws JoinRefusedError; a network failure
 * throws a plain Error so the caller can retry.
 */
export async function joinCloud(cloudUrl: string, node: string, token: string): Promise<string> {
  const url = new URL(HUB_PATHS.join, cloudUrl);
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ node, token }),
    });
  } catch (err) {
    throw new Error(`cannot reach cloudcore at ${url.origin}: ${describeCloudError(err)}`);
  }
  const body: unknown = await res.json().catch(() => ({}));
  if (!res.ok) {
    const message = typeof body === 'object' && body !== null && 'error' in body ? String(body.error) : `HTTP ${res.status}`;
    if (res.status >= 400 && res.status < 500) throw new JoinRefusedError(`join refused: ${message}`);
    throw new Error(`join failed: ${message}`);
  }
  const parsed = JoinResponseSchema.safeParse(body);
  if (!parsed.success || parsed.data.node !== node || !('credential' in parsed.data)) throw new Error('join failed: unexpected answer from cloud');
  return parsed.data.credential;
}
