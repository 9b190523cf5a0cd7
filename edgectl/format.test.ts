import { describe, expect, it } from 'vitest';
import {
  appFields, appNodeRows, appRow, countReady, eventRow, formatAge, formatLabels, formatSelector, nodeRow,
  oneLine, renderData, renderFields, renderTable, workloadRow,
} from './format.js';
import { parseSelectorString } from '../protocol/index.js';
import { makeApp, makeEvent, makeNode, makeWorkload, minutesAgo, NOW } from '../test/helpers/edgectl/fixtures.js';
import YAML from 'yaml';

describe('formatAge', () => {
  it.each([
    [0, '0s'], [0.75, '45s'], [5, '5m'], [59, '59m'], [60, '1h'], [3 * 60 + 59, '3h'], [24 * 60, '1d'], [2 * 24 * 60 + 5, '2d'],
  ])('%s minutes ago reads %s', (minutes, expected) => {
    expect(formatAge(minutesAgo(minutes), NOW)).toBe(expected);
  });

  it('treats future times (clock skew) as 0s and reports missing or bad timestamps', () => {
    expect(formatAge(minutesAgo(-10), NOW)).toBe('0s');
    expect(formatAge(null, NOW)).toBe('<none>');
    expect(formatAge('yesterday-ish', NOW)).toBe('<unknown>');
  });
});

describe('labels and selectors', () => {
  it('lists labels sorted by key, <none> when empty', () => {
    expect(formatLabels({ zone: 'a', env: 'prod' })).toBe('env=prod,zone=a');
    expect(formatLabels({})).toBe('<none>');
    expect(formatLabels(undefined)).toBe('<none>');
  });

  it('summarises selectors in the -l syntax, and the summary parses back to the same selector', () => {
    const selector = {
      matchLabels: { env: 'prod' },
      matchExpressions: [
        { key: 'zone', operator: 'In' as const, values: ['a', 'b'] },
        { key: 'tier', operator: 'NotIn' as const, values: ['dev'] },
        { key: 'gpu', operator: 'Exists' as const },
        { key: 'legacy', operator: 'DoesNotExist' as const },
      ],
    };
    const text = formatSelector(selector);
    expect(text).toBe('env=prod,zone in (a,b),tier notin (dev),gpu,!legacy');
    expect(parseSelectorString(text)).toEqual(selector);
  });

  it('says an empty selector selects every node', () => {
    expect(formatSelector({})).toBe('<all nodes>');
    expect(formatSelector(undefined)).toBe('<all nodes>');
  });
});

describe('tables', () => {
  it('renders borderless aligned columns without trailing spaces', () => {
    const text = renderTable(['NAME', 'STATUS'], [['edge-1', 'Ready'], ['e2', 'Offline']]);
    expect(text).toBe('NAME     STATUS\nedge-1   Ready\ne2       Offline\n');
  });

  it('aligns key/value fields', () => {
    expect(renderFields([['Name', 'web'], ['Generation', '2']])).toBe('Name:       web\nGeneration: 2\n');
  });

  it('renders json and yaml that parse back to the data', () => {
    const data = { items: [{ a: 1 }], resourceVersion: 3 };
    expect(JSON.parse(renderData(data, 'json'))).toEqual(data);
    expect(YAML.parse(renderData(data, 'yaml'))).toEqual(data);
  });

  it('flattens multi-line errors and truncates long ones', () => {
    expect(oneLine('exit 1\n  at x')).toBe('exit 1 | at x');
    expect(oneLine(undefined)).toBe('');
    expect(oneLine('x'.repeat(200), 20)).toBe('x'.repeat(17) + '...');
  });
});

describe('rows', () => {
  it('node row: status, time in status, last seen, agent version, labels', () => {
    expect(nodeRow(makeNode('edge-1', { labels: { zone: 'a' }, version: '0.1.0' }), NOW))
      .toEqual(['edge-1', 'Ready', '3h', '1m', '0.1.0', 'zone=a']);
    expect(nodeRow(makeNode('edge-2', { phase: 'Pending' }), NOW))
      .toEqual(['edge-2', 'Pending', '3h', '<never>', '<none>', '<none>']);
  });

  it('counts only Running instances on the current generation as ready', () => {
    expect(countReady(2, [
      { state: 'Running', generation: 2 }, { state: 'Running', generation: 1 }, { state: 'CrashLoop', generation: 2 },
    ])).toBe('1/3');
    expect(countReady(undefined, [{ state: 'Running' }])).toBe('1/1');
    expect(countReady(1, [])).toBe('0/0');
  });

  it('app row and per-node rows', () => {
    const app = makeApp('web', {
      generation: 2,
      matchLabels: { zone: 'a' },
      status: { nodes: [
        { node: 'edge-1', state: 'Running', restarts: 0, generation: 2 },
        { node: 'edge-2', state: 'CrashLoop', restarts: 5, generation: 2, lastError: 'boom\ntrace' },
      ] },
    });
    expect(appRow(app, app.status!.nodes)).toEqual(['web', '2', '1/2', 'zone=a']);
    expect(appNodeRows(app)).toEqual([
      ['edge-1', 'Running', '0', '2', ''],
      ['edge-2', 'CrashLoop', '5', '2', 'boom | trace'],
    ]);
    expect(Object.fromEntries(appFields(app, NOW))).toMatchObject({
      Command: '/usr/bin/node server.js', Selector: 'zone=a', 'Nodes ready': '1/2', 'Restart policy': 'Always',
    });
  });

  it('workload row shows a generation still rolling out as observed->desired', () => {
    const w = makeWorkload('web', 'edge-1', 'Running', 3);
    w.status!.generation = 2;
    expect(workloadRow(w, NOW)).toEqual(['web.edge-1', 'edge-1', 'web', 'Running', '0', '2->3', '2m ago', '']);
    const pending = makeWorkload('web', 'edge-2', 'Pending');
    delete pending.status;
    expect(workloadRow(pending, NOW)).toEqual(['web.edge-2', 'edge-2', 'web', 'Pending', '0', '1', '<never>', '']);
  });

  it('event row', () => {
    expect(eventRow(makeEvent('edge-1', 'BackOff', 'restarting\nsoon', 5), NOW))
      .toEqual(['5m', 'edge-1', 'Warning', 'BackOff', '', 'restarting | soon']);
  });
});
