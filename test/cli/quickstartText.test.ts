import { describe, expect, it } from 'vitest';
import { edgeSummaryLines } from '../../scripts/quickstartText.js';

describe('npm start edge summary', () => {
  it('prints each edge its own `edgectl local status --url` (quickstart edges are not on the default 10350)', () => {
    expect(edgeSummaryLines('edge-1', 'http://127.0.0.1:10351', 'mqtt://127.0.0.1:1883')).toEqual([
      '  edge status  edge-1: http://127.0.0.1:10351/   (devices: mqtt://127.0.0.1:1883)',
      '               npx edgectl local status --url http://127.0.0.1:10351',
    ]);
    expect(edgeSummaryLines('edge-2', 'http://127.0.0.1:10352/', 'mqtt://127.0.0.1:1884')[1]).toBe('               npx edgectl local status --url http://127.0.0.1:10352');
  });
});
