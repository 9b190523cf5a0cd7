import { describe, expect, it } from 'vitest';
import { decideAdmission } from './admission.js';

describe('decideAdmission', () => {
  it('admits while fewer sessions than the limit are settling', () => {
    expect(decideAdmission(0, 1)).toEqual({ admit: true });
    expect(decideAdmission(63, 64)).toEqual({ admit: true });
  });

  it('refuses at the limit with a Retry-After of 1 to 3 s, spread by the random draw', () => {
    expect(decideAdmission(64, 64, () => 0)).toEqual({ admit: false, retryAfterSeconds: 1 });
    expect(decideAdmission(64, 64, () => 0.5)).toEqual({ admit: false, retryAfterSeconds: 2 });
    expect(decideAdmission(100, 64, () => 0.999)).toEqual({ admit: false, retryAfterSeconds: 3 });
  });
});
