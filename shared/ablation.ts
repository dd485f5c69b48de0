// The method combinations an ablation measures, shared by the engine's job and the app's plan of it.
import { KNOWN_METHODS, type Method } from "./types.ts";

/** Up to this many switches, every subset is measured: the paper's table of its four methods. */
const EVERY_SUBSET_UP_TO = 4;

/**
 * The rows of an ablation of the chosen methods, smallest first. Up to four switches: every subset (the paper's
 * table). More: each alone, all but each, all of them and none,
 * 2n + 2 rows, each method's contribution both ways, where every subset would be 2^n runs, some of them
 * reconstructions.
 */
export function methodCombinations(methods: readonly Method[]): Method[][] {
  const chosen = KNOWN_METHODS.filter((m) => methods.includes(m));
  const rows: Method[][] = [];
  if (chosen.length <= EVERY_SUBSET_UP_TO) {
    for (let mask = 0; mask < 1 << chosen.length; mask++) rows.push(chosen.filter((_, i) => mask & (1 << i)));
  } else {
    rows.push([], ...chosen.map((m) => [m]), ...chosen.map((m) => chosen.filter((x) => x !== m)), chosen);
  }
  return rows.sort((a, b) => a.length - b.length);
}
