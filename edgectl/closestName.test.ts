import { describe, expect, it } from 'vitest';
import { closestName, editDistance } from './closestName.js';

describe('editDistance', () => {
  it('counts insertions, deletions and substitutions', () => {
    expect(editDistance('comand', 'command')).toBe(1);
    expect(editDistance('command', 'comand')).toBe(1);
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('same', 'same')).toBe(0);
  });
});

describe('closestName', () => {
  it('finds the key a typo most likely meant', () => {
    expect(closestName('comand', ['runtime', 'command', 'args', 'env'])).toBe('command');
    expect(closestName('Args', ['runtime', 'command', 'args'])).toBe('args');
    expect(closestName('restartPolicy', ['restartPolicy'])).toBe('restartPolicy');
    expect(closestName('selectr', ['selector', 'template', 'rollout'])).toBe('selector');
  });

  it('suggests nothing when no key is close', () => {
    expect(closestName('foo', ['env', 'args'])).toBeUndefined();
    expect(closestName('credentialHash', ['model', 'nodeName', 'protocol'])).toBeUndefined();
    expect(closestName('x', [])).toBeUndefined();
  });
});
