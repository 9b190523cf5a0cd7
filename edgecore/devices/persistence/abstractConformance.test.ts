import assert from 'node:assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { SqlitePersistence } from './sqlitePersistence.js';

/**
 * aedes-persistence ships its conformance suite as `abstract.js`, written for node:test: each
 * test takes a node:test context and uses `t.plan`, `t.assert.*` and `t.diagnostic`. Here each of
 * its tests becomes a vitest test, with a context that behaves like node:test's for those three:
 * `t.assert` holds the same node:assert functions node:test puts there (loose `equal` and
 * `deepEqual` included), every call counts as an assertion, and a test that planned N
 * assertions fails unless exactly N ran, with node:test's message.
 */

type AssertionFn = (...args: unknown[]) => unknown;

interface NodeTestContext {
  plan(count: number): void;
  diagnostic(message: string): void;
  assert: Record<string, AssertionFn>;
}

type NodeTestFn = (t: NodeTestContext) => unknown;

interface AbstractSuiteOptions {
  test: (name: string, fn: NodeTestFn) => void;
  persistence: () => SqlitePersistence;
  /** The persistence is aedes-persistence's async interface: no callbacks, setup() awaited. */
  testAsync: true;
}

// The functions node:test (Node 20.15+) exposes on `t.assert`.
const NODE_TEST_ASSERTIONS = [
  'deepEqual', 'deepStrictEqual', 'doesNotMatch', 'doesNotReject', 'doesNotThrow', 'equal', 'fail',
  'ifError', 'match', 'notDeepEqual', 'notDeepStrictEqual', 'notEqual', 'notStrictEqual', 'rejects',
  'strictEqual', 'throws', 'ok',
] as const;

const requireHere = createRequire(import.meta.url);
const abstractSuitePath = requireHere.resolve('aedes-persistence/abstract.js');
const runAbstractSuite: (options: AbstractSuiteOptions) => void = requireHere(abstractSuitePath);
const abstractTestCount = (readFileSync(abstractSuitePath, 'utf8').match(/^ {2}test\(/gm) ?? []).length;

/** Runs one node:test-style test function, enforcing its plan. */
async function runNodeStyleTest(fn: NodeTestFn): Promise<void> {
  let planned: number | undefined;
  let made = 0;
  const assertions: Record<string, AssertionFn> = {};
  for (const name of NODE_TEST_ASSERTIONS) {
    const original: unknown = Reflect.get(assert, name);
    if (typeof original !== 'function') throw new Error(`node:assert has no ${name}`);
    assertions[name] = (...args: unknown[]): unknown => {
      made++;
      return Reflect.apply(original, assert, args);
    };
  }
  const context: NodeTestContext = {
    plan(count: number) {
      planned = count;
    },
    diagnostic() {
      // node:test prints these as TAP comments; nothing to check
    },
    assert: assertions,
  };
  await fn(context);
  if (planned !== undefined && planned !== made) {
    throw new Error(`plan expected ${planned} assertions but received ${made}`);
  }
}

/** Registers the whole abstract suite against persistences made by `makePersistence`. */
function registerAbstractSuite(makePersistence: () => SqlitePersistence): string[] {
  const registered: string[] = [];
  runAbstractSuite({
    test(name, fn) {
      registered.push(name);
      it(name, () => runNodeStyleTest(fn));
    },
    persistence: makePersistence,
    testAsync: true,
  });
  return registered;
}

const workDir = mkdtempSync(join(tmpdir(), 'mqtt-persistence-abstract-'));
const sharedHandles: Database.Database[] = [];
let fileNumber = 0;

afterAll(() => {
  for (const db of sharedHandles) db.close();
  rmSync(workDir, { recursive: true, force: true });
});

describe('aedes-persistence abstract suite: SqlitePersistence on its own database file', () => {
  const registered = registerAbstractSuite(
    () => new SqlitePersistence({ path: join(workDir, `own-${++fileNumber}.sqlite`) }));

  it('registered every test of the abstract suite', () => {
    expect(abstractTestCount).toBeGreaterThan(0);
    expect(registered).toHaveLength(abstractTestCount);
  });
});

// The edge will hand the broker its own database. Pages of one row make every stream cross page
// boundaries while the suite clears and rewrites rows under it.
describe('aedes-persistence abstract suite: SqlitePersistence on a shared handle, one-row pages', () => {
  const registered = registerAbstractSuite(() => {
    const db = new Database(join(workDir, `shared-${++fileNumber}.sqlite`));
    db.pragma('journal_mode = WAL');
    sharedHandles.push(db);
    return new SqlitePersistence({ db, pageSize: 1 });
  });

  it('registered every test of the abstract suite', () => {
    expect(registered).toHaveLength(abstractTestCount);
  });
});
