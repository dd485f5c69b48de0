// ACIQ (ALGORITHMS.md §2): the clipping value α that minimises the modelled MSE of clipping plus uniform
// quantization, α = k·b for a Laplace prior and α = k·σ for a Gaussian one.

export type Prior = "laplace" | "gaussian";
export type ConstantTable = "reference" | "exact";

interface PriorTables {
  signed: Readonly<Record<number, number>>;
  halfRange: Readonly<Record<number, number>>;
}

/**
 * The 2-decimal constants hard-coded in the authors' code, keyed by bit-width; the published accuracies
 * used these. They are mostly truncated and not quite consistent (5.03 signed vs 5.02 half-range), §2.2.
 */
export const REFERENCE_ACIQ_CONSTANTS: Readonly<Record<Prior, PriorTables>> = {
  laplace: {
    signed: { 0: 1.05, 1: 1.86, 2: 2.83, 3: 3.89, 4: 5.03, 5: 6.2, 6: 7.41, 7: 8.64, 8: 9.89 },
    halfRange: { 0: 1.86, 1: 2.83, 2: 3.89, 3: 5.02, 4: 6.2, 5: 7.41, 6: 8.64, 7: 9.89, 8: 11.16 },
  },
  gaussian: {
    signed: { 1: 1.24, 2: 1.71, 3: 2.15, 4: 2.55, 5: 2.93, 6: 3.28, 7: 3.61, 8: 3.92 },
    halfRange: { 1: 1.71, 2: 2.15, 3: 2.55, 4: 2.93, 5: 3.28, 6: 3.61, 7: 3.92, 8: 4.2 },
  },
};

const SQRT2 = Math.SQRT2;
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);

/**
 * Complementary error function to ~1e-15 relative, which the exact Gaussian constants need. Below 3 the
 * all-positive series erf(x) = 2/√π·e^{−x²}·Σ 2ⁿx^{2n+1}/(2n+1)!! cannot cancel; above 3 the continued
 * fraction for erfc converges in a few dozen terms and avoids 1 − erf losing every digit.
 */
function erfc(x: number): number {
  if (x < 0) return 2 - erfc(-x);
  if (x < 3) {
    const x2 = x * x;
    let term = x;
    let sum = x;
    for (let n = 1; term > 1e-17 * sum; n++) {
      term *= (2 * x2) / (2 * n + 1);
      sum += term;
    }
    return 1 - TWO_OVER_SQRT_PI * Math.exp(-x2) * sum;
  }
  let f = x;
  for (let k = 60; k >= 1; k--) f = x + k / 2 / f;
  return Math.exp(-x * x) / (Math.sqrt(Math.PI) * f);
}

/**
 * Modelled MSE (§2.1) of clipping a centred Laplace(b) or N(0, σ²) variable (`spread` = b or σ) to
 * [−α, α] and quantizing that interval uniformly into `bins` bins.
 */
export function clipMse(alpha: number, spread: number, bins: number, prior: Prior): number {
  const noise = (alpha * alpha) / (3 * bins * bins);
  if (prior === "laplace") return 2 * spread * spread * Math.exp(-alpha / spread) + noise;
  const s2 = spread * spread;
  return (
    (alpha * alpha + s2) * erfc(alpha / (spread * SQRT2)) -
    SQRT_2_OVER_PI * alpha * spread * Math.exp((-alpha * alpha) / (2 * s2)) +
    noise
  );
}

/** d clipMse / dα at unit spread; increasing in α, so its root is unique. */
function clipMseSlope(alpha: number, bins: number, prior: Prior): number {
  const noise = (2 * alpha) / (3 * bins * bins);
  if (prior === "laplace") return noise - 2 * Math.exp(-alpha);
  return 2 * alpha * erfc(alpha / SQRT2) - 2 * SQRT_2_OVER_PI * Math.exp((-alpha * alpha) / 2) + noise;
}

/** Optimal α ÷ spread for any positive (not necessarily power-of-two) bin count, by bisection to full precision. */
export function optimalClipMultiplier(bins: number, prior: Prior): number {
  if (!(bins > 0) || !Number.isFinite(bins)) throw new RangeError(`bin count must be positive and finite, got ${bins}`);
  let lo = 0;
  let hi = 1;
  while (clipMseSlope(hi, bins, prior) < 0) hi *= 2;
  for (;;) {
    const mid = (lo + hi) / 2;
    if (mid <= lo || mid >= hi) return mid;
    if (clipMseSlope(mid, bins, prior) < 0) lo = mid;
    else hi = mid;
  }
}

function checkBits(bits: number): void {
  if (!(bits >= 0) || !Number.isFinite(bits)) throw new RangeError(`bit-width must be a finite number ≥ 0, got ${bits}`);
}

/** The exact signed constant k_M for 2^M bins; fractional M is meaningful (2^M bins, not necessarily integral). */
export function solveAciqConstant(bits: number, prior: Prior): number {
  checkBits(bits);
  return optimalClipMultiplier(2 ** bits, prior);
}

const exactCache = new Map<string, number>();

/**
 * k for `bits`. Half-range (post-ReLU) tensors keep only half the density, which makes their optimum the
 * signed optimum one bit higher: k_pos(M) = k_sym(M + 1). The reference table covers Laplace 0–8 and
 * Gaussian 1–8 bits; any other width (fractional, 9+, Gaussian 0) falls back to the exact solution.
 */
export function aciqConstant(bits: number, prior: Prior, halfRange: boolean, table: ConstantTable): number {
  checkBits(bits);
  if (table === "reference") {
    const tables = REFERENCE_ACIQ_CONSTANTS[prior];
    const k = (halfRange ? tables.halfRange : tables.signed)[bits];
    if (k !== undefined) return k;
  }
  const m = halfRange ? bits + 1 : bits;
  const key = `${prior}:${m}`;
  let k = exactCache.get(key);
  if (k === undefined) {
    k = solveAciqConstant(m, prior);
    exactCache.set(key, k);
  }
  return k;
}

/** α = k·stat, where stat is b (mean |x − mean|) for Laplace and the unbiased std for Gaussian. */
export function aciqAlpha(stat: number, bits: number, prior: Prior, halfRange: boolean, table: ConstantTable): number {
  return aciqConstant(bits, prior, halfRange, table) * stat;
}

export interface ClipInterval {
  lo: number;
  range: number;
}

/**
 * The reference's interval (§2.4): centred on the mean, only the lower end limited by the observed min,
 * never shrunk to max − min. Half-range tensors start at 0 so the grid's clamp doubles as the ReLU.
 */
export function clipInterval(alpha: number, mean: number, min: number, halfRange: boolean): ClipInterval {
  if (halfRange) return { lo: 0, range: Math.max(mean, 0) + alpha };
  return { lo: Math.max(min, mean - alpha), range: 2 * alpha };
}
