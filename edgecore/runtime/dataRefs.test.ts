import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WorkloadTemplateSchema, type Workload } from '../../protocol/index.js';
import { materializeTemplate } from './dataRefs.js';

const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

function workload(secrets: Record<string, Record<string, string>>): Workload {
  const template = WorkloadTemplateSchema.parse({ runtime: 'process', command: 'true', secrets: Object.keys(secrets).map((name) => ({ name })) });
  return { kind: 'Workload', metadata: { name: 'app.edge-1' }, spec: { nodeName: 'edge-1', app: 'app', generation: 1, template, resolved: { configs: {}, secrets, missing: [] } } };
}

describe('materializeTemplate', () => {
  it('writing secret "db" leaves secret "db.new" alone (its staging dir is no name a secret can have)', () => {
    const root = mkdtempSync(join(tmpdir(), 'ef-data-'));
    dirs.push(root);
    materializeTemplate(workload({ 'db.new': { key: 'other' }, db: { key: 'v1' } }), root);
    materializeTemplate(workload({ 'db.new': { key: 'other' }, db: { key: 'v2' } }), root);
    const secrets = join(root, 'app', 'secrets');
    expect(readFileSync(join(secrets, 'db.new', 'key'), 'utf8')).toBe('other');
    expect(readFileSync(join(secrets, 'db', 'key'), 'utf8')).toBe('v2');
    expect(readdirSync(secrets).sort()).toEqual(['db', 'db.new']);
  });
});
