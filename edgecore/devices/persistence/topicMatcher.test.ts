import { describe, expect, it } from 'vitest';
import { coveringPrefixes, literalPrefixOf, SubscriptionMatcher, topicMatchesFilter } from './topicMatcher.js';

describe('topicMatchesFilter', () => {
  it.each([
    ['a/b', 'a/b', true],
    ['a/b', 'a/c', false],
    ['a/b', 'a/b/c', false],
    ['a/+', 'a/b', true],
    ['a/+', 'a', false],
    ['a/+', 'a/b/c', false],
    ['+/b', 'a/b', true],
    ['a/+/c', 'a//c', true],
    ['a/#', 'a', true],
    ['a/#', 'a/b/c', true],
    ['a/#', 'ab', false],
    ['#', 'anything/at/all', true],
    ['+/#', 'a', true],
    ['hello/+/world/#', 'hello/there/world/creatures', true],
    ['a/#/c', 'a/b/c', false],
  ])('%s against %s is %s', (filter, topic, expected) => {
    expect(topicMatchesFilter(filter, topic)).toBe(expected);
  });
});

describe('literalPrefixOf / coveringPrefixes', () => {
  it('stops at the first wildcard level, without its separator', () => {
    expect(literalPrefixOf('a/b/+/c')).toBe('a/b');
    expect(literalPrefixOf('a/#')).toBe('a');
    expect(literalPrefixOf('+/x')).toBe('');
    expect(literalPrefixOf('a/b')).toBe('a/b');
  });

  it('keeps only prefixes not covered by another', () => {
    expect(coveringPrefixes(['a/b', 'a', 'c', 'a/bc', 'c'])).toEqual(['a', 'c']);
    expect(coveringPrefixes(['x', ''])).toEqual(['']);
  });
});

describe('SubscriptionMatcher', () => {
  it('reports # branches before exact and + ones, with the subscription options', () => {
    const matcher = new SubscriptionMatcher();
    matcher.add('hello', 'c1', { qos: 1, rh: 0, rap: true, nl: false });
    matcher.add('hello/#', 'c1', { qos: 2 });
    matcher.add('+', 'c2', { qos: 1 });
    matcher.add('other', 'c2', { qos: 1 });
    expect(matcher.match('hello')).toStrictEqual([
      { clientId: 'c1', topic: 'hello/#', qos: 2, rh: undefined, rap: undefined, nl: undefined },
      { clientId: 'c1', topic: 'hello', qos: 1, rh: 0, rap: true, nl: false },
      { clientId: 'c2', topic: '+', qos: 1, rh: undefined, rap: undefined, nl: undefined },
    ]);
    expect(matcher.match('hello/x/y').map((s) => s.topic)).toEqual(['hello/#']);
    expect(matcher.match('nothing/here')).toEqual([]);
  });

  it('matches + against an empty level, as aedes routes live messages', () => {
    const matcher = new SubscriptionMatcher();
    matcher.add('a/+/c', 'c1', { qos: 1 });
    expect(matcher.match('a//c')).toHaveLength(1);
  });

  it('counts one entry per (filter, client) and replaces on re-add', () => {
    const matcher = new SubscriptionMatcher();
    matcher.add('t', 'c1', { qos: 1 });
    matcher.add('t', 'c1', { qos: 2 });
    matcher.add('t', 'c2', { qos: 1 });
    expect(matcher.size).toBe(2);
    expect(matcher.match('t').map((s) => [s.clientId, s.qos])).toEqual([['c1', 2], ['c2', 1]]);
  });

  it('removes entries, and keeps matching after whole branches are emptied', () => {
    const matcher = new SubscriptionMatcher();
    matcher.add('a/b/c', 'c1', { qos: 1 });
    matcher.add('a/b', 'c2', { qos: 1 });
    expect(matcher.remove('a/b/c', 'c2')).toBe(false);
    expect(matcher.remove('a/b/c', 'c1')).toBe(true);
    expect(matcher.remove('a/b/c', 'c1')).toBe(false);
    expect(matcher.size).toBe(1);
    expect(matcher.match('a/b/c')).toEqual([]);
    expect(matcher.match('a/b')).toHaveLength(1);
    expect(matcher.remove('a/b', 'c2')).toBe(true);
    expect(matcher.size).toBe(0);
    // The emptied branches are gone, and the matcher still works from its root.
    matcher.add('a', 'c3', { qos: 1 });
    expect(matcher.match('a')).toHaveLength(1);
  });
});
