import { describe, expect, it } from 'vitest';
import type { AppGrantStatus } from '../../../protocol/index.js';
import { RouteStatusFrameSchema } from '../../../protocol/index.js';
import { fitAppGrants } from './grantReport.js';

const grant = (workload: string, filters = 1): AppGrantStatus => ({
  workload, username: `app-${workload}`, publish: Array.from({ length: filters }, (_, i) => `apps/${workload}/${i}/#`), subscribe: ['ef/devices/+/telemetry'],
  published: 3, delivered: 5, refused: 1,
});

describe('fitAppGrants (the app grants in a routeStatus frame)', () => {
  it('sends every grant when they fit, none omitted', () => {
    const all = [grant('a'), grant('b')];
    expect(fitAppGrants(all)).toEqual({ appGrants: all, omitted: 0 });
    expect(fitAppGrants([])).toEqual({ appGrants: [], omitted: 0 });
  });

  it('stops at the byte budget with whole entries and counts the rest', () => {
    const all = Array.from({ length: 10 }, (_, i) => grant(`w${i}`, 8));
    const one = Buffer.byteLength(JSON.stringify(all[0])) + 1;
    const fitted = fitAppGrants(all, 2 + one * 3 + 1);
    expect(fitted.appGrants.map((g) => g.workload)).toEqual(['w0', 'w1', 'w2']);
    expect(fitted.omitted).toBe(7);
    expect(Buffer.byteLength(JSON.stringify(fitted.appGrants))).toBeLessThanOrEqual(2 + one * 3 + 1);
  });

  it('never more than the frame schema takes (1000), and the frame parses', () => {
    const many = Array.from({ length: 1200 }, (_, i) => grant(`w${i}`));
    const fitted = fitAppGrants(many, 10 * 1024 * 1024);
    expect(fitted.appGrants).toHaveLength(1000);
    expect(fitted.omitted).toBe(200);
    expect(RouteStatusFrameSchema.safeParse({ type: 'routeStatus', routes: [], appGrants: fitted.appGrants, appGrantsOmitted: fitted.omitted }).success).toBe(true);
  });
});
