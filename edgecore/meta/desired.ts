import type Database from 'better-sqlite3';
import type { z } from 'zod';
import { DeviceSchema, NodeRouteSchema, WorkloadSchema, type Device, type NodeRoute, type SyncFrame, type Workload } from '../../protocol/index.js';
import { STATE_KEYS, type Db, type StateTable } from './schema.js';

/**
 * The desired workload set: what the cloud wants this node to run. Written only by sync frames,
 * read by the reconciler. Rows are keyed by `spec.app` (the local name a runtime knows).
 */

export interface SyncResult {
  /** Apps added or whose stored object changed, sorted. */
  changed: string[];
  /** Apps no longer desired, sorted. */
  removed: string[];
  /** Devices added, changed or removed. */
  devicesChanged: boolean;
  /** Routes (NodeRoute objects) added, changed or removed. */
  routesChanged?: boolean;
}

/** Thrown when a sync frame would move the edge's revision backwards. Nothing is changed. */
export class RevisionRegressionError extends Error {
  constructor(readonly frameRevision: number, readonly lastRevision: number) {
    super(`sync frame revision ${frameRevision} is older than the committed revision ${lastRevision}`);
    this.name = 'RevisionRegressionError';
  }
}

/** Thrown when a frame carries an object bound to another node. Nothing is changed. */
export class ForeignObjectError extends Error {
  constructor(readonly app: string, readonly objectNode: string, readonly ownNode: string) {
    super(`workload ${app} is bound to node ${objectNode}, not to this node (${ownNode})`);
    this.name = 'ForeignObjectError';
  }
}

/**
 * JSON with object keys sorted, so "did this object change" does not depend on the key order
 * the cloud happened to serialize with.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}

/**
 * Compares the stored JSON of the touched apps before and after a sync. `undefined` means "no
 * row". Apps whose JSON ends up identical are neither changed nor removed.
 */
export function diffDesired(
  before: ReadonlyMap<string, string | undefined>,
  after: ReadonlyMap<string, string | undefined>,
): SyncResult {
  const changed: string[] = [];
  const removed: string[] = [];
  const apps = new Set([...before.keys(), ...after.keys()]);
  for (const app of apps) {
    const was = before.get(app);
    const now = after.get(app);
    if (now === undefined) {
      if (was !== undefined) removed.push(app);
    } else if (was !== now) {
      changed.push(app);
    }
  }
  return { changed: changed.sort(), removed: removed.sort(), devicesChanged: false };
}

interface DesiredRow { app: string; name: string; json: string }

/** A stored desired object this edgecore cannot read (see DesiredTable.readWorkloads). */
export interface UnreadableRow {
  kind: 'Workload' | 'Device';
  /** The workload's app, or the device's name. */
  name: string;
  error: string;
}

export class DesiredTable {
  private readonly byApp: Database.Statement<[string], DesiredRow>;
  private readonly byName: Database.Statement<[string], DesiredRow>;
  private readonly all: Database.Statement<[], DesiredRow>;
  private readonly upsert: Database.Statement<[string, string, string]>;
  private readonly deleteApp: Database.Statement<[string]>;
  private readonly deleteAll: Database.Statement<[]>;
  private readonly applyTx: (frame: SyncFrame, ownNode: string | undefined) => SyncResult;
  private readonly devices: {
    get: Database.Statement<[string], { json: string }>;
    all: Database.Statement<[], { name: string; json: string }>;
    upsert: Database.Statement<[string, string]>;
    delete: Database.Statement<[string]>;
    deleteAll: Database.Statement<[]>;
  };
  private readonly routes: DesiredTable['devices'];

  constructor(db: Db, private readonly state: StateTable) {
    this.routes = {
      get: db.prepare('SELECT json FROM desired_routes WHERE name = ?'),
      all: db.prepare('SELECT name, json FROM desired_routes ORDER BY name'),
      upsert: db.prepare('INSERT INTO desired_routes (name, json) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET json = excluded.json'),
      delete: db.prepare('DELETE FROM desired_routes WHERE name = ?'),
      deleteAll: db.prepare('DELETE FROM desired_routes'),
    };
    this.devices = {
      get: db.prepare('SELECT json FROM desired_devices WHERE name = ?'),
      all: db.prepare('SELECT name, json FROM desired_devices ORDER BY name'),
      upsert: db.prepare('INSERT INTO desired_devices (name, json) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET json = excluded.json'),
      delete: db.prepare('DELETE FROM desired_devices WHERE name = ?'),
      deleteAll: db.prepare('DELETE FROM desired_devices'),
    };
    this.byApp = db.prepare('SELECT app, name, json FROM desired WHERE app = ?');
    this.byName = db.prepare('SELECT app, name, json FROM desired WHERE name = ?');
    this.all = db.prepare('SELECT app, name, json FROM desired ORDER BY app');
    // The UNIQUE constraint on name rejects a frame that binds two apps to one object name.
    this.upsert = db.prepare(`INSERT INTO desired (app, name, json) VALUES (?, ?, ?)
      ON CONFLICT(app) DO UPDATE SET name = excluded.name, json = excluded.json`);
    this.deleteApp = db.prepare('DELETE FROM desired WHERE app = ?');
    this.deleteAll = db.prepare('DELETE FROM desired');
    const tx = db.transaction((frame: SyncFrame, ownNode: string | undefined) => this.applyInside(frame, ownNode));
    // IMMEDIATE: take the write lock up front so the revision check and the writes see one state.
    this.applyTx = (frame, ownNode) => tx.immediate(frame, ownNode);
  }

  lastRevision(): number {
    return this.state.getNumber(STATE_KEYS.lastRevision);
  }

  /** Applies a frame atomically; any throw (bad revision, foreign object, SQL error) rolls it all back. */
  apply(frame: SyncFrame, ownNode: string | undefined): SyncResult {
    return this.applyTx(frame, ownNode);
  }

  /** The desired workloads this edgecore can read; see readWorkloads() for the others. */
  list(): Workload[] {
    return this.readWorkloads().items;
  }

  get(app: string): Workload | undefined {
    const row = this.byApp.get(app);
    const read = row ? readStored(WorkloadSchema, row.json) : undefined;
    return read?.ok ? read.value : undefined;
  }

  listDevices(): Device[] {
    return this.readDevices().items;
  }

  /**
   * The stored workloads, read once: those that parse, and those that do not — written by an
   * edgecore whose schema this one no longer accepts (an upgrade), or edited by hand. Readers
   * skip the latter rather than fail, so the node keeps running what it can; the cloud's copy
   * replaces them at the next full sync.
   */
  readWorkloads(): StoredObjects<Workload> {
    return readAll(this.all.all(), WorkloadSchema, 'Workload', (row) => row.app);
  }

  /** The routes bound to this node; one that does not parse is left out and named in `unreadable`. */
  readRoutes(): { items: NodeRoute[]; unreadable: { name: string; error: string }[] } {
    const result: { items: NodeRoute[]; unreadable: { name: string; error: string }[] } = { items: [], unreadable: [] };
    for (const row of this.routes.all.all()) {
      const read = readStored(NodeRouteSchema, row.json);
      if (read.ok) result.items.push(read.value);
      else result.unreadable.push({ name: row.name, error: read.error });
    }
    return result;
  }

  /** The stored devices, read once (see readWorkloads). */
  readDevices(): StoredObjects<Device> {
    return readAll(this.devices.all.all(), DeviceSchema, 'Device', (row) => row.name);
  }

  private applyInside(frame: SyncFrame, ownNode: string | undefined): SyncResult {
    const last = this.lastRevision();
    // The cloud's revisions only grow; an older frame means a confused or replayed sender, and
    // applying it could resurrect deleted workloads. Refuse it rather than guess.
    if (frame.revision < last) throw new RevisionRegressionError(frame.revision, last);

    const before = new Map<string, string | undefined>();
    const remember = (app: string, json: string | undefined): void => {
      if (!before.has(app)) before.set(app, json);
    };

    let devicesChanged = false;
    let routesChanged = false;
    if (frame.mode === 'snapshot') {
      for (const row of this.all.all()) remember(row.app, row.json);
      this.deleteAll.run();
      devicesChanged = this.devices.deleteAll.run().changes > 0;
      routesChanged = this.routes.deleteAll.run().changes > 0;
    }
    for (const change of frame.changes) {
      if (change.op === 'put' && change.object.kind === 'NodeRoute') {
        const route = change.object;
        if (ownNode !== undefined && route.spec.nodeName !== ownNode) throw new ForeignObjectError(route.metadata.name, route.spec.nodeName, ownNode);
        const json = canonicalJson(route);
        if (frame.mode === 'snapshot' || this.routes.get.get(route.metadata.name)?.json !== json) routesChanged = true;
        this.routes.upsert.run(route.metadata.name, json);
      } else if (change.op === 'delete' && change.kind === 'NodeRoute') {
        routesChanged = this.routes.delete.run(change.name).changes > 0 || routesChanged;
      } else if (change.op === 'put' && change.object.kind === 'Device') {
        const device = change.object;
        if (ownNode !== undefined && device.spec.nodeName !== ownNode) {
          throw new ForeignObjectError(device.metadata.name, device.spec.nodeName, ownNode);
        }
        const json = canonicalJson(device);
        if (this.devices.get.get(device.metadata.name)?.json !== json) devicesChanged = true;
        this.devices.upsert.run(device.metadata.name, json);
        if (frame.mode === 'snapshot') devicesChanged = true;
      } else if (change.op === 'delete' && change.kind === 'Device') {
        devicesChanged = this.devices.delete.run(change.name).changes > 0 || devicesChanged;
      } else if (change.op === 'put' && change.object.kind === 'Workload') {
        const object = change.object;
        const app = object.spec.app;
        // Defense in depth: the cloud filters per node, but a node must never run another's work.
        if (ownNode !== undefined && object.spec.nodeName !== ownNode) {
          throw new ForeignObjectError(app, object.spec.nodeName, ownNode);
        }
        remember(app, this.byApp.get(app)?.json);
        this.upsert.run(app, object.metadata.name, canonicalJson(object));
      } else if (change.op === 'delete' && change.kind === 'Workload') {
        // Deletes name the cloud object (metadata.name, i.e. "<app>.<node>"), not the app.
        const row = this.byName.get(change.name);
        if (row === undefined) continue;
        remember(row.app, row.json);
        this.deleteApp.run(row.app);
      }
    }
    this.state.setNumber(STATE_KEYS.lastRevision, frame.revision);

    const after = new Map<string, string | undefined>();
    for (const app of before.keys()) after.set(app, this.byApp.get(app)?.json);
    return { ...diffDesired(before, after), devicesChanged, ...(routesChanged ? { routesChanged } : {}) };
  }
}

type Read<T> = { ok: true; value: T } | { ok: false; error: string };

function readStored<T>(schema: z.ZodType<T>, json: string): Read<T> {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    return { ok: false, error: `not JSON: ${(err as Error).message}` };
  }
  const parsed = schema.safeParse(raw);
  if (parsed.success) return { ok: true, value: parsed.data };
  const issue = parsed.error.issues[0]!;
  return { ok: false, error: `${issue.path.join('.') || 'object'}: ${issue.message}` };
}

/** Stored desired objects of one kind: those this edgecore can read, and the others. */
export interface StoredObjects<T> {
  items: T[];
  unreadable: UnreadableRow[];
}

function readAll<R extends { json: string }, T>(
  rows: readonly R[], schema: z.ZodType<T>, kind: UnreadableRow['kind'], nameOf: (row: R) => string,
): StoredObjects<T> {
  const result: StoredObjects<T> = { items: [], unreadable: [] };
  for (const row of rows) {
    const read = readStored(schema, row.json);
    if (read.ok) result.items.push(read.value);
    else result.unreadable.push({ kind, name: nameOf(row), error: read.error });
  }
  return result;
}
