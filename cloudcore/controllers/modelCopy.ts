import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import type { Device, DeviceModelSpec } from '../../protocol/index.js';
import { readModifyWrite } from '../store/readModifyWrite.js';
import type { Store, WatchEvent } from '../store/store.js';
import { MirrorController } from './mirrorController.js';
import type { StoreMirror } from './storeMirror.js';

/** Re-reads and retries a copy that lost to a concurrent device write (e.g. the hub's status report). */
const COPY_ATTEMPTS = 5;

/** Pure: the devices of the given models whose copy (`spec.modelSpec`) differs from their model's current spec. */
export function devicesWithStaleModel(devices: readonly Device[], models: ReadonlyMap<string, DeviceModelSpec>): Device[] {
  return devices.filter((d) => {
    const model = models.get(d.spec.model);
    return model !== undefined && !isDeepStrictEqual(d.spec.modelSpec, model);
  });
}

/**
 * Keeps each Device's copy of its model (`spec.modelSpec`, which the edge checks values
 * against offline) equal to the DeviceModel's spec: after a model is replaced, and at start
 * for every model (a replace whose copies a stopped cloudcore never finished). The API refuses
 * a model change that would break one of its devices, so a copy is always valid for its
 * device. Copies are eventual, as with any Kubernetes controller: a GET right after the PUT
 * may still show the old copy for a moment.
 */
export class ModelCopyController extends MirrorController<'DeviceModel'> {
  /** Models replaced since the last pass. */
  private readonly changed = new Set<string>();

  constructor(store: Store, log: Logger, batchMs = 20) {
    super(store, log, ['DeviceModel'], 'device model copy', batchMs);
  }

  protected override changes(event: WatchEvent): boolean {
    // A new model has no devices yet; a deleted one had none left (the API refuses otherwise).
    if (event.type !== 'MODIFIED') return false;
    this.changed.add(event.object.metadata.name);
    return true;
  }

  protected override seed(mirror: StoreMirror<'DeviceModel'>): void {
    for (const model of mirror.items('DeviceModel')) this.changed.add(model.metadata.name);
  }

  protected async reconcile(mirror: StoreMirror<'DeviceModel'>): Promise<void> {
    if (this.changed.size === 0) return;
    const wanted = new Set(this.changed);
    this.changed.clear();
    try {
      await this.copyModels(mirror, wanted);
    } catch (err) {
      for (const name of wanted) this.changed.add(name); // the runner retries the pass: it must still know what to copy
      throw err;
    }
  }

  private async copyModels(mirror: StoreMirror<'DeviceModel'>, wanted: ReadonlySet<string>): Promise<void> {
    const specOf = (model: string) => mirror.items('DeviceModel').find((m) => m.metadata.name === model)?.spec;
    const models = new Map(mirror.items('DeviceModel').filter((m) => wanted.has(m.metadata.name)).map((m) => [m.metadata.name, m.spec]));
    const stale = devicesWithStaleModel((await this.store.list('Device')).items, models);
    for (const device of stale) {
      const written = await this.tolerate(() => readModifyWrite(this.store, 'Device', device.metadata.name, (current) => {
        // Read afresh: the device may have moved to another model, or the model changed again.
        const spec = specOf(current.spec.model);
        if (!spec || isDeepStrictEqual(current.spec.modelSpec, spec)) return undefined;
        return { ...current, spec: { ...current.spec, modelSpec: structuredClone(spec) } };
      }, { attempts: COPY_ATTEMPTS }));
      // Lost every race (or the device vanished): the pass the runner adds looks at this model again.
      if (!written) this.changed.add(device.spec.model);
    }
    if (stale.length > 0) this.log.info({ models: [...models.keys()], devices: stale.length }, 'device model copied into its devices');
  }
}
