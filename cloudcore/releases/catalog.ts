import type { KeyObject } from 'node:crypto';
import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { edgeArchOfNode, parseReleaseKey, type DistIndex, type DistVersion } from '../../protocol/index.js';
import { checkRelease, fileStamp, listVersionDirs, releaseStamp, type CheckedRelease, type ReleaseFile, type VerifiedRelease } from './releaseDir.js';

/**
 * What cloudcore's `/dist` may serve: the release directories under the dist dir whose
 * signature and sums verified under the release key. Checked at start and again whenever a
 * stat shows a directory, a file or the key changed (at most once a second for listings; a
 * download always compares the open file with what was checked, so a swapped file is never
 * served under the old sum).
 */
export interface CatalogOptions {
  distDir: string;
  releaseKeyFile: string;
  log: Logger;
  /** Listings re-stat the disk at most this often (ms). */
  refreshMs?: number;
}

export interface OpenedFile {
  file: ReleaseFile;
  handle: Awaited<ReturnType<typeof open>>;
}

export class ReleaseCatalog {
  private readonly releases = new Map<string, CheckedRelease>();
  private key: { stamp: string; key: KeyObject | undefined; pem: string | undefined } | undefined;
  private refreshing: Promise<void> | undefined;
  private refreshedAt = 0;

  constructor(private readonly opts: CatalogOptions) {}

  /** Re-stats the dist dir and re-checks what changed; concurrent callers share one pass. */
  refresh(force = false): Promise<void> {
    if (this.refreshing) return this.refreshing;
    if (!force && Date.now() - this.refreshedAt < (this.opts.refreshMs ?? 1000)) return Promise.resolve();
    this.refreshing = this.scan().finally(() => {
      this.refreshing = undefined;
      this.refreshedAt = Date.now();
    });
    return this.refreshing;
  }

  /** Refreshes every `intervalMs` until the returned function is called (a failed pass is logged, not fatal). */
  watch(intervalMs: number): () => void {
    const timer = setInterval(() => {
      this.refresh().catch((err: unknown) => this.opts.log.warn({ err: (err as Error).message, distDir: this.opts.distDir }, 'cannot read the dist dir'));
    }, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  /**
   * The tarball of a verified `version` for a node whose os.arch() is `nodeArch` (the hub names
   * it in an agentUpgrade frame); undefined when there is none.
   */
  find(version: string, nodeArch: string): { name: string; sha256: string; size: number } | undefined {
    const release = this.releases.get(version);
    const arch = edgeArchOfNode(nodeArch);
    if (!release?.ok || arch === undefined) return undefined;
    const file = [...release.files.values()].find((f) => f.arch === arch);
    return file ? { name: file.name, sha256: file.sha256, size: file.size } : undefined;
  }

  /** The release public key as canonical PEM (what the installer embeds), if one loaded. */
  get releaseKeyPem(): string | undefined {
    return this.key?.pem;
  }

  index(): DistIndex {
    const versions: DistVersion[] = this.verified().map((r) => ({
      version: r.version,
      files: [...r.files.values()].filter((f) => f.arch !== undefined).map((f) => ({ name: f.name, arch: f.arch!, size: f.size, sha256: f.sha256 })),
    }));
    return { versions };
  }

  /** Verified releases, newest first (numeric-aware order of the version strings). */
  verified(): VerifiedRelease[] {
    return [...this.releases.values()].filter((r): r is VerifiedRelease => r.ok)
      .sort((a, b) => b.version.localeCompare(a.version, 'en', { numeric: true }));
  }

  /**
   * Opens a served file, or answers why not: 'unknown' (no such verified version or file) or
   * 'changed' (the file on disk is no longer the one checked; it is re-checked before it is
   * served again).
   */
  async openFile(version: string, name: string): Promise<OpenedFile | 'unknown' | 'changed'> {
    const release = this.releases.get(version);
    const file = release?.ok ? release.files.get(name) : undefined;
    if (!file) return 'unknown';
    let handle;
    try {
      handle = await open(file.path, 'r');
    } catch {
      return 'changed';
    }
    // fstat of the open file: what is streamed is this inode, whatever is renamed over the path later.
    if (fileStamp(await handle.stat()) !== file.stamp) {
      await handle.close();
      return 'changed';
    }
    return { file, handle };
  }

  private verifiedCount(): number {
    return this.verified().length;
  }

  private async scan(): Promise<void> {
    const { distDir, log } = this.opts;
    await this.loadKey();
    const present = new Set(await listVersionDirs(distDir));
    for (const version of this.releases.keys()) {
      if (!present.has(version)) {
        this.releases.delete(version);
        log.info({ version }, 'release removed from the dist dir');
      }
    }
    for (const version of present) {
      const dir = join(distDir, version);
      const now = await releaseStamp(dir, this.key?.stamp ?? 'no-key').catch(() => undefined);
      if (!now) continue;
      if (this.releases.get(version)?.stamp === now.stamp) continue;
      // A file that vanishes or cannot be read mid-check refuses the release (checked again once its stamp moves).
      const checked = await checkRelease(dir, version, this.key?.key, now.stamp, now.stamps)
        .catch((err: unknown): CheckedRelease => ({ ok: false, version, stamp: now.stamp, reason: `cannot read it: ${(err as Error).message}` }));
      this.releases.set(version, checked);
      if (checked.ok) log.info({ version, files: [...checked.files.keys()] }, 'release verified: served under /dist');
      else log.warn({ version, reason: checked.reason }, 'release refused: not served under /dist');
    }
    if (present.size > 0 && this.verifiedCount() === 0 && !this.key?.key) {
      log.warn({ releaseKeyFile: this.opts.releaseKeyFile }, 'no release public key: no release is served');
    }
  }

  private async loadKey(): Promise<void> {
    const { releaseKeyFile, log } = this.opts;
    const st = await stat(releaseKeyFile).catch(() => undefined);
    const stamp = st ? fileStamp(st) : 'absent';
    if (this.key?.stamp === stamp) return;
    if (!st) {
      this.key = { stamp, key: undefined, pem: undefined };
      return;
    }
    try {
      const key = parseReleaseKey(await readFile(releaseKeyFile, 'utf8'));
      this.key = { stamp, key, pem: key.export({ type: 'spki', format: 'pem' }).toString() };
      log.info({ releaseKeyFile }, 'release public key loaded');
    } catch (err) {
      this.key = { stamp, key: undefined, pem: undefined };
      log.warn({ releaseKeyFile, err: (err as Error).message }, 'release public key unreadable: no release is served');
    }
  }
}
