import { existsSync } from 'node:fs';
import type { ContainerTemplate } from '../../../protocol/index.js';
import type { RuntimeLogger } from '../processRuntime.js';
import { IMAGE_NEVER_PULL_ERROR, imageAction } from './containerSpec.js';
import { EngineClient, isEngineUnavailable } from './engineClient.js';

/**
 * Makes the template's image present on the engine according to `imagePullPolicy` and
 * `imageArchive` (see `imageAction`). Throws with an operator-readable message when it cannot;
 * the runtime reports that as the workload's `lastError`.
 */
export async function prepareImage(
  client: EngineClient,
  template: ContainerTemplate,
  opts: { signal?: AbortSignal; logger: RuntimeLogger; workload: string },
): Promise<void> {
  const { image, imagePullPolicy, imageArchive } = template;
  const present = (await client.inspectImage(image)) !== null;
  const action = imageAction(imagePullPolicy, present, imageArchive !== undefined);
  if (action === 'use') return;
  if (action === 'fail') throw new Error(`${IMAGE_NEVER_PULL_ERROR} (image ${image})`);
  if (action === 'load') return loadArchive(client, image, imageArchive ?? '', opts);

  try {
    await client.pullImage(image, { signal: opts.signal });
  } catch (err) {
    if (isEngineUnavailable(err) || opts.signal?.aborted) throw err;
    const reason = err instanceof Error ? err.message : String(err);
    // Only `Always` pulls an image that is present or has an archive: fall back to those.
    if (present) {
      opts.logger.warn({ workload: opts.workload, image, err: reason }, 'image pull failed; running the local copy');
      return;
    }
    if (imageArchive !== undefined) {
      opts.logger.warn({ workload: opts.workload, image, err: reason }, 'image pull failed; loading imageArchive');
      return loadArchive(client, image, imageArchive, opts);
    }
    throw new Error(`cannot pull image ${image}: ${reason}`);
  }
  if ((await client.inspectImage(image)) === null) throw new Error(`pulled image ${image} but the engine does not list it`);
}

async function loadArchive(client: EngineClient, image: string, archive: string, opts: { signal?: AbortSignal; logger: RuntimeLogger; workload: string }): Promise<void> {
  if (!existsSync(archive)) throw new Error(`image ${image} is not present and its imageArchive ${archive} does not exist`);
  let loaded: string[];
  try {
    loaded = await client.loadImage(archive, { signal: opts.signal });
  } catch (err) {
    if (isEngineUnavailable(err)) throw err;
    throw new Error(`cannot load imageArchive ${archive}: ${err instanceof Error ? err.message : String(err)}`);
  }
  opts.logger.info({ workload: opts.workload, image, archive, loaded }, 'loaded image archive');
  if ((await client.inspectImage(image)) === null) {
    throw new Error(`imageArchive ${archive} does not contain image ${image}${loaded.length > 0 ? ` (${loaded.join('; ')})` : ''}`);
  }
}
