import type { WorkloadTemplate } from '../../../protocol/index.js';

/**
 * A workload whose template names a `deviceMapper` is a mapper for that protocol on this node.
 * The operator writes one app for every node (`mapper modbus`, no per-node flags); edgecore
 * fills in what differs from node to node as the `EF_MAPPER_*` variables the `mapper` binary
 * reads (and any mapper of your own can read): the node, edgecore's local API, the broker and
 * the file holding this node's mapper password for the protocol. The password never enters the
 * template, so it is not stored with the workload's runtime record or shown by `inspect`.
 */

/** Where a container mapper finds its password: the node's file, bind-mounted read-only. */
export const MAPPER_CREDENTIAL_MOUNT = '/run/edgefleet/mapper.password';

export interface MapperEndpoints {
  node: string;
  /** edgecore's local API as a workload on this node reaches it, e.g. http://127.0.0.1:10350. */
  edgeUrl: string;
  /** The device broker as a workload on this node reaches it, e.g. mqtt://127.0.0.1:1883. */
  mqttUrl: string;
  /** The node's password file for the template's protocol (`<dataDir>/mappers/<protocol>.password`). */
  credentialFile: string;
}

/** Pure: the template a mapper workload runs. A template without `deviceMapper` is returned as is. */
export function withMapperAccess(template: WorkloadTemplate, endpoints: MapperEndpoints): WorkloadTemplate {
  if (template.deviceMapper === undefined) return template;
  const inContainer = template.runtime === 'container';
  const env = {
    EF_MAPPER_PROTOCOL: template.deviceMapper.protocol,
    EF_MAPPER_NODE: endpoints.node,
    EF_MAPPER_EDGE_URL: endpoints.edgeUrl,
    EF_MAPPER_MQTT: endpoints.mqttUrl,
    EF_MAPPER_CREDENTIAL_FILE: inContainer ? MAPPER_CREDENTIAL_MOUNT : endpoints.credentialFile,
    // The template's own env wins, as it does over configs and secrets (e.g. a TLS broker URL).
    ...template.env,
  };
  if (!inContainer) return { ...template, env };
  return {
    ...template,
    env,
    volumes: [...template.volumes, { hostPath: endpoints.credentialFile, mountPath: MAPPER_CREDENTIAL_MOUNT, readOnly: true }],
  };
}

/**
 * A URL a process on this node can connect to for a listener bound to `host`: a wildcard
 * address (every interface) is reached on loopback; IPv6 literals get their brackets.
 */
export function localUrl(scheme: string, host: string, port: number): string {
  const reachable = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `${scheme}://${reachable.includes(':') && !reachable.startsWith('[') ? `[${reachable}]` : reachable}:${port}`;
}
