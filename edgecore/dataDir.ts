import { chmodSync, lstatSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';

/** Where workloads' configs and secrets are written, each app's dir given to its user. */
export const WORKLOAD_DATA_DIR = 'workload-data';

/**
 * The edge's data dir holds the node's credential, its database, the mapper passwords and every
 * workload's log: nobody but edgecore may read any of it. Workloads running as their own user
 * must still reach their own configs and secrets under `workload-data/`, so where they can
 * (edgecore is root) the data dir and `workload-data/` let others pass but not list (0711);
 * everything else is closed to others at every start, which also fixes files an older version
 * made with the umask (one warning says how many).
 */
export function prepareEdgeDataDir(dir: string, opts: { workloadPassage: boolean }, log: Logger): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, opts.workloadPassage ? 0o711 : 0o700);
  const closed: string[] = [];
  const close = (path: string): void => {
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      const child = join(path, entry.name);
      if (path === dir && entry.name === WORKLOAD_DATA_DIR) {
        chmodSync(child, opts.workloadPassage ? 0o711 : 0o700); // its app dirs are their users' (runtime/dataRefs.ts)
        continue;
      }
      if (entry.isSymbolicLink()) continue;
      const mode = lstatSync(child).mode & 0o777;
      if (entry.isDirectory()) {
        if ((mode & 0o077) !== 0) { chmodSync(child, 0o700); closed.push(child); }
        // Container data volumes are the containers' own: their dir is closed, their content left as the container made it.
        if (!(path === dir && entry.name === 'volumes')) close(child);
      } else if ((mode & 0o077) !== 0) {
        chmodSync(child, 0o600);
        closed.push(child);
      }
    }
  };
  close(dir);
  if (closed.length > 0) log.warn({ count: closed.length, examples: closed.slice(0, 5) }, 'files or dirs in the data dir were readable by others: closed them');
}
