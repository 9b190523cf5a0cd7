/**
 * The MQTT topic contract between devices (and mappers) and the edge broker. See docs/mqtt.md.
 * MQTT 3.1.1; payloads are JSON.
 */
export const TOPIC_ROOT = 'ef/devices';

/** Below `ef/devices/{id}/`: the one topic only a mapper may publish. */
export const MAPPER_STATE_SUFFIX = 'mapper/state';

export const deviceTopics = (id: string) => ({
  /** device → edge: `{"properties": {...}}`, a merge; null deletes. */
  reported: `${TOPIC_ROOT}/${id}/twin/reported`,
  /** edge → device, retained: `{"properties": {...}, "version": N}`. */
  desired: `${TOPIC_ROOT}/${id}/twin/desired`,
  /** edge → device: desired properties that differ from reported, with the desired version. */
  delta: `${TOPIC_ROOT}/${id}/twin/delta`,
  /** device → edge: ask for the whole twin; answered on `getResult`. */
  get: `${TOPIC_ROOT}/${id}/twin/get`,
  getResult: `${TOPIC_ROOT}/${id}/twin/get/result`,
  /** device → edge: time-series samples, not stored in the twin. */
  telemetry: `${TOPIC_ROOT}/${id}/telemetry`,
  /** edge → device: why a message was refused. */
  errors: `${TOPIC_ROOT}/${id}/errors`,
  /** online/offline, set by the edge from connect/disconnect and last will (retained). */
  status: `${TOPIC_ROOT}/${id}/status`,
  /** mapper → edge: `{"reachable": bool, "error"?}`, whether the mapper reaches the device (counts for `status`). */
  mapperState: `${TOPIC_ROOT}/${id}/${MAPPER_STATE_SUFFIX}`,
});

/** Every topic of one device, for ACLs: `ef/devices/{id}/#`. */
export const deviceTopicFilter = (id: string) => `${TOPIC_ROOT}/${id}/#`;

/** Parses `ef/devices/{id}/{rest}`; null for topics outside the contract. */
export function parseDeviceTopic(topic: string): { device: string; rest: string } | null {
  const prefix = `${TOPIC_ROOT}/`;
  if (!topic.startsWith(prefix)) return null;
  const tail = topic.slice(prefix.length);
  const slash = tail.indexOf('/');
  if (slash <= 0) return null;
  return { device: tail.slice(0, slash), rest: tail.slice(slash + 1) };
}
