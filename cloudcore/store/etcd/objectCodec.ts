import type { AnyObject, Kind } from '../../../protocol/index.js';
import { readStoredObject } from '../objectMeta.js';
import { openStoredBody, type SecretSealer } from '../secretSealing.js';
import { UnreadableError } from '../store.js';

/**
 * An object's stored form in etcd. The body carries no resourceVersion: an object's version is
 * its key's mod_revision, which etcd assigns at commit (a txn cannot write its own revision), so
 * readers stamp it from the key. Secret bodies are sealed as in SQLite (kind and name are the
 * seal's additional data, so a body copied onto another key does not open there).
 */
export class ObjectCodec {
  constructor(private readonly sealer: SecretSealer | undefined) {}

  encode(obj: AnyObject): string {
    const { resourceVersion: _assignedByEtcd, ...metadata } = obj.metadata;
    const body = JSON.stringify({ ...obj, metadata });
    return this.sealer ? this.sealer.seal(obj.kind, obj.metadata.name, body) : body;
  }

  /** The object, stamped with `revision`, or why it cannot be read. */
  decode(kind: Kind, name: string, stored: Buffer | string, revision: number): { object: AnyObject } | { reason: string } {
    const text = typeof stored === 'string' ? stored : stored.toString('utf8');
    const opened = this.sealer ? this.sealer.open(kind, name, text) : openStoredBody(kind, name, text, NO_KEYS);
    if ('reason' in opened) return opened;
    const read = readStoredObject(kind, name, opened.body);
    if ('reason' in read) return read;
    read.object.metadata.resourceVersion = revision;
    return read;
  }

  decodeOrThrow(kind: Kind, name: string, stored: Buffer | string, revision: number): AnyObject {
    const read = this.decode(kind, name, stored, revision);
    if ('reason' in read) throw new UnreadableError([{ kind, name, reason: read.reason }]);
    return read.object;
  }
}

const NO_KEYS: ReadonlyMap<string, Buffer> = new Map();
