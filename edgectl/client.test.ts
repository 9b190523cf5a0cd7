import { describe, expect, it } from 'vitest';
import { warningText } from './client.js';

describe('warningText', () => {
  it('takes the quoted text of an RFC 7234 warning, unescaping it', () => {
    expect(warningText('299 - "node \\"edge-9\\" does not exist"')).toBe('node "edge-9" does not exist');
  });

  it('shows any other warning as it came', () => {
    expect(warningText('something odd')).toBe('something odd');
  });
});
