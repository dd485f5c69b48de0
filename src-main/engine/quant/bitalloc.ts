// Per-channel bit allocation (ALGORITHMS.md §3). The paper's closed form gives channel i a share of the
// bins proportional to α_i^{2/3} (eq. 10); the reference then iterates the target so that the mean of the
// rounded bits hits the goal. `alpha` is the driving statistic: the reference uses each channel's std.
import { roundHalfEven } from "./grid.ts";

export type BitRounding = "round" | "ceil";

/** The reference clamps every allocation to [0, 8] bits. */
export const MAX_CHANNEL_BITS = 8;

function checkAlpha(alpha: ArrayLike<number>): void {
  if (alpha.length === 0) throw new RangeError("bit allocation needs at least one channel");
  for (let i = 0; i < alpha.length; i++) {
    if (!(alpha[i] >= 0) || !Number.isFinite(alpha[i])) throw new RangeError(`channel ${i}: statistic must be finite and ≥ 0, got ${alpha[i]}`);
  }
}

/**
 * Eq. 10: bins_i = C·2^target·α_i^{2/3} / Σ_j α_j^{2/3}. If every channel is dead (all α = 0) the shares
 * are undefined; each channel then gets 2^target, the uniform allocation.
 */
export function eq10Bins(alpha: ArrayLike<number>, target: number): Float64Array {
  checkAlpha(alpha);
  const c = alpha.length;
  const p = Float64Array.from(alpha, (a) => Math.pow(a, 2 / 3));
  let sum = 0;
  for (let i = 0; i < c; i++) sum += p[i];
  const budget = c * 2 ** target;
  return sum > 0 ? p.map((v) => (budget * v) / sum) : new Float64Array(c).fill(2 ** target);
}

/** One pass of eq. 11: log2 of the eq. 10 bins, rounded (half-even, like torch) or ceiled, clamped to [0, 8]. */
export function bitsSinglePass(alpha: ArrayLike<number>, target: number, mode: BitRounding = "round"): number[] {
  const toInt = mode === "round" ? roundHalfEven : Math.ceil;
  return Array.from(eq10Bins(alpha, target), (b) => Math.min(Math.max(toInt(Math.log2(b)), 0), MAX_CHANNEL_BITS));
}

export interface AllocationStep {
  /** the target fed to the single pass */
  target: number;
  /** mean of the bits it produced */
  meanBits: number;
}

const GOAL_TOLERANCE = 0.01;
const MAX_ITERATIONS = 10;

function meanOf(bits: number[]): number {
  return bits.reduce((s, b) => s + b, 0) / bits.length;
}

/**
 * The reference's fixed-target loop, reproduced exactly (§3.2): half-step updates of the target, at most
 * 10 iterations, and the allocation of the LAST iteration is returned even when it misses the goal — in
 * either direction, since integer means move in steps of 1/C and bits saturate at 0 and 8.
 */
export function fixedTargetAllocation(
  alpha: ArrayLike<number>,
  goal: number,
  rounding: BitRounding = "round",
): { bits: number[]; steps: AllocationStep[] } {
  const steps: AllocationStep[] = [];
  let target = goal;
  let bits: number[] = [];
  let half = 1;
  while (Math.abs(2 * half) > GOAL_TOLERANCE && steps.length < MAX_ITERATIONS) {
    bits = bitsSinglePass(alpha, target, rounding);
    const meanBits = meanOf(bits);
    steps.push({ target, meanBits });
    half = (goal - meanBits) / 2;
    target += half;
  }
  return { bits, steps };
}

/**
 * A deliberate deviation (§3.2) that never exceeds the budget Σ M_i ≤ ⌊C·goal⌋. Bits are handed out one
 * at a time, each to the channel with the best gain per bin of eq. 10's objective: one more bit cuts
 * α²/(3·4^M) by ¾ and costs 2^M more bins, so the priority is α²/8^M. Equalising α²/8^M is exactly the
 * eq. 10 shape 2^M ∝ α^{2/3}, so the result tracks eq. 10 while meeting the bit budget. Because the
 * priorities of a channel fall with M, taking the ⌊C·goal⌋ best (channel, bit) pairs at once is the same
 * as the one-at-a-time greedy. Dead channels (α = 0) are constant and get no bits.
 */
export function greedyAllocation(alpha: ArrayLike<number>, goal: number): number[] {
  checkAlpha(alpha);
  const c = alpha.length;
  const budget = Math.min(Math.floor(c * goal + 1e-9), c * MAX_CHANNEL_BITS);
  const candidates: { channel: number; key: number }[] = [];
  for (let i = 0; i < c; i++) {
    if (alpha[i] === 0) continue;
    // log2(α²/8^m), compared in the log domain so tiny α cannot underflow
    const base = 2 * Math.log2(alpha[i]);
    for (let m = 0; m < MAX_CHANNEL_BITS; m++) candidates.push({ channel: i, key: base - 3 * m });
  }
  candidates.sort((a, b) => b.key - a.key || a.channel - b.channel);
  const bits = new Array<number>(c).fill(0);
  for (let k = 0; k < Math.min(budget, candidates.length); k++) bits[candidates[k].channel]++;
  return bits;
}

export interface AllocateOptions {
  rounding?: BitRounding;
  /** true: greedyAllocation (never over budget; `rounding` does not apply); false: the reference loop */
  strict?: boolean;
}

export function allocateBits(alpha: ArrayLike<number>, goal: number, options: AllocateOptions = {}): number[] {
  return options.strict ? greedyAllocation(alpha, goal) : fixedTargetAllocation(alpha, goal, options.rounding ?? "round").bits;
}
