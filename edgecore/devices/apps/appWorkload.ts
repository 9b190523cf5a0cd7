import type { WorkloadTemplate } from '../../../protocol/index.js';

/**
 * A workload whose template has `mqtt` gets its broker identity as `EF_MQTT_URL`,
 * `EF_MQTT_USERNAME` and `EF_MQTT_PASSWORD_FILE` (docs/mqtt.md, "Application identities and
 * grants"). The password stays in a file: it is in neither the template, the runtime record,
 * the environment nor `inspect`.
 */

/** Where a container finds its password: the node's file, bind-mounted read-only. */
export const APP_CREDENTIAL_MOUNT = '/run/edgefleet/mqtt.password';

export interface AppEndpoints {
  /** The device broker as a workload on this node reaches it, e.g. mqtt://127.0.0.1:1883. */
  mqttUrl: string;
  username: string;
  /** The node's password file for this workload (`<dataDir>/apps/<workload>.password`). */
  passwordFile: string;
}

/** Pure: the template the workload runs with its broker identity. A template without `mqtt` is returned as is. */
export function withAppAccess(template: WorkloadTemplate, endpoints: AppEndpoints): WorkloadTemplate {
  if (template.mqtt === undefined) return template;
  const inContainer = template.runtime === 'container';
  const env = {
    EF_MQTT_URL: endpoints.mqttUrl,
    EF_MQTT_USERNAME: endpoints.username,
    EF_MQTT_PASSWORD_FILE: inContainer ? APP_CREDENTIAL_MOUNT : endpoints.passwordFile,
    // The template's own env wins, as it does for mappers (e.g. a TLS broker URL).
    ...template.env,
  };
  if (!inContainer) return { ...template, env };
  return { ...template, env, volumes: [...template.volumes, { hostPath: endpoints.passwordFile, mountPath: APP_CREDENTIAL_MOUNT, readOnly: true }] };
}
