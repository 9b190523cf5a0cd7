import type { AnyObject } from '../../../protocol/index.js';

/**
 * What the API shows of a stored object. Secret values never leave cloudcore through the
 * operator API: Secrets and the secret copies inside Workloads show their keys only. A Device's
 * credential hash is never shown (its password is shown once, when issued).
 */
export const REDACTED = '(redacted)';

function redactData(data: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.keys(data).map((k) => [k, REDACTED]));
}

export function present<T extends AnyObject>(obj: T): T {
  if (obj.kind === 'Device' && obj.spec.credentialHash !== undefined) {
    const { credentialHash: _hidden, ...spec } = obj.spec;
    return { ...obj, spec };
  }
  if (obj.kind === 'Secret') return { ...obj, data: redactData(obj.data) };
  if (obj.kind === 'Workload' && obj.spec.resolved) {
    const secrets = Object.fromEntries(Object.entries(obj.spec.resolved.secrets).map(([name, data]) => [name, redactData(data)]));
    return { ...obj, spec: { ...obj.spec, resolved: { ...obj.spec.resolved, secrets } } };
  }
  return obj;
}
