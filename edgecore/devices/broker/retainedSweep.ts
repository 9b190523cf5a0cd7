import { TOPIC_ROOT, parseDeviceTopic } from '../../../protocol/index.js';
import type { SqlitePersistence } from '../persistence/index.js';

/**
 * The retained topics under `ef/devices/` whose device does not belong to the node any more:
 * what the hub's sweep clears after a removal (or a removal a crash interrupted).
 */
export async function orphanedRetainedTopics(persistence: SqlitePersistence, belongs: (device: string) => boolean): Promise<string[]> {
  const orphaned: string[] = [];
  for await (const retained of persistence.createRetainedStreamCombi([`${TOPIC_ROOT}/#`])) {
    const topic: unknown = (retained as { topic?: unknown }).topic;
    const device = typeof topic === 'string' ? parseDeviceTopic(topic)?.device : undefined;
    if (device !== undefined && !belongs(device)) orphaned.push(topic as string);
  }
  return orphaned;
}
