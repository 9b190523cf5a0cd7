import { workloadName, type UpstreamEntry, type Workload } from '../../protocol/index.js';
import { ConflictError, type Store } from '../store/store.js';

/**
 * Applies what an edge reports (its outbox) to the store. Each entry is idempotent so a
 * resend after a lost ack changes nothing: statuses are keyed by workload and ordered by the
 * edge's observation time; events are named by (node, epoch, seq) and a duplicate create is
 * ignored.
 */
export async function applyUpstreamEntry(store: Store, node: string, epoch: string, entry: UpstreamEntry): Promise<void> {
  if (entry.kind === 'workloadStatus') {
    await applyWorkloadStatus(store, node, entry.body.app, entry.body.status);
    return;
  }
  try {
    await store.create({
      kind: 'Event',
      metadata: { name: `${node}.${epoch.slice(0, 8).toLowerCase()}.${entry.seq}` },
      spec: { ...entry.body, node },
    });
  } catch (err) {
    if (!(err instanceof ConflictError)) throw err; // already recorded: a resend
  }
}

async function applyWorkloadStatus(store: Store, node: string, app: string, status: NonNullable<Workload['status']>): Promise<void> {
  const name = workloadName(app, node);
  for (let attempt = 0; attempt < 5; attempt++) {
    const current = await store.get('Workload', name);
    // The app may have been deleted or moved away meanwhile: the report is moot.
    if (!current || current.spec.nodeName !== node) return;
    if (current.status && current.status.observedAt > status.observedAt) return; // older than what we hold
    if (current.status && JSON.stringify(current.status) === JSON.stringify(status)) return;
    try {
      await store.update({ ...current, status });
      return;
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err; // the scheduler wrote it meanwhile: retry
    }
  }
  throw new Error(`could not record status of workload ${name}: too many concurrent writes`);
}
