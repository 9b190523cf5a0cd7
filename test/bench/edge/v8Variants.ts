/**
 * V8 flag sets to try on edgecore, to decide whether the edge binary should ship with some.
 * `--jitless` is in the list because it is the most aggressive memory saver, but it also turns
 * off WebAssembly (Node's fetch parses HTTP with a wasm llhttp), so a set is only eligible as
 * "best" when edgecore still did its job under it (link connected, every workload Running).
 */

export interface FlagSet { name: string; flags: string[] }

export const FLAG_SETS: FlagSet[] = [
  { name: 'default', flags: [] },
  { name: 'semi1', flags: ['--max-semi-space-size=1'] },
  { name: 'lite', flags: ['--lite-mode'] },
  { name: 'size', flags: ['--optimize-for-size'] },
  { name: 'semi1+size', flags: ['--max-semi-space-size=1', '--optimize-for-size'] },
  { name: 'semi1+lite', flags: ['--max-semi-space-size=1', '--lite-mode'] },
  { name: 'semi1+lite+size', flags: ['--max-semi-space-size=1', '--lite-mode', '--optimize-for-size'] },
  { name: 'semi1+lite+size+1gc', flags: ['--max-semi-space-size=1', '--lite-mode', '--optimize-for-size', '--single-threaded-gc'] },
  // No optimizing compiler but the baseline compiler and the rest of V8 as usual: a middle way
  // between the default and --lite-mode for device-heavy nodes (the hub is CPU-bound).
  { name: 'noopt', flags: ['--no-opt'] },
  { name: 'semi1+noopt', flags: ['--max-semi-space-size=1', '--no-opt'] },
  { name: 'jitless+semi1', flags: ['--jitless', '--max-semi-space-size=1'] },
];

export function flagSetsNamed(names: readonly string[] | null): FlagSet[] {
  if (names === null) return FLAG_SETS;
  const unknown = names.filter((n) => !FLAG_SETS.some((f) => f.name === n));
  if (unknown.length > 0) throw new Error(`unknown flag set(s) ${unknown.join(', ')}; known: ${FLAG_SETS.map((f) => f.name).join(', ')}`);
  // "default" is always measured: it is what the others are compared with.
  return FLAG_SETS.filter((f) => f.name === 'default' || names.includes(f.name));
}

export interface VariantOutcome {
  name: string;
  flags: string[];
  rssEndMiB: number;
  /** edgecore worked under these flags: link connected and every workload Running. */
  healthy: boolean;
}

/**
 * The healthy non-default set with the lowest idle RSS, when it beats the default by at least
 * `minSavingMiB` (a smaller saving is noise on a loaded box and not worth a flag); else null.
 */
export function bestFlagSet(outcomes: readonly VariantOutcome[], minSavingMiB = 1): VariantOutcome | null {
  const baseline = outcomes.find((o) => o.name === 'default');
  const candidates = outcomes.filter((o) => o.name !== 'default' && o.healthy).sort((a, b) => a.rssEndMiB - b.rssEndMiB);
  const best = candidates[0];
  if (!best) return null;
  if (baseline && baseline.rssEndMiB - best.rssEndMiB < minSavingMiB) return null;
  return best;
}

/**
 * Flag sets worth a cold-start run: the best overall and, when that one is jitless (slower to
 * start, no WebAssembly), also the best that keeps the JIT, so the trade-off is visible.
 */
export function coldStartCandidates(outcomes: readonly VariantOutcome[], minSavingMiB = 1): VariantOutcome[] {
  const best = bestFlagSet(outcomes, minSavingMiB);
  if (!best) return [];
  if (!best.flags.includes('--jitless')) return [best];
  const withJit = bestFlagSet(outcomes.filter((o) => !o.flags.includes('--jitless')), minSavingMiB);
  return withJit ? [best, withJit] : [best];
}
