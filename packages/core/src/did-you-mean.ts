/**
 * "Did you mean …?" for names a person typed: workflows, roles, fields, commands.
 */
import { distance } from 'fastest-levenshtein';

/**
 * The candidate closest to `word` (Levenshtein distance, case-insensitive), when it is close enough
 * to be a typo: at most 2 edits, and fewer than half the word's length.
 *
 * @example closestName('software-delivry', ['software-delivery', 'quick-plan']) // 'software-delivery'
 */
export function closestName(word: string, candidates: Iterable<string>): string | undefined {
  const w = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = distance(w, c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance > 0 && bestDistance <= Math.min(2, Math.ceil(w.length / 2) - 1 || 1) ? best : undefined;
}

/** `' (did you mean "x"?)'` when a candidate is close to `word`, else `''`: to append to a message. */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const best = closestName(word, candidates);
  return best ? ` (did you mean "${best}"?)` : '';
}
