// Weight clipping: per output channel, the interval whose grid reproduces the channel's weights best, so a
// 4-bit grid spends its 16 levels on the bulk of the channel rather than on one outlier. The search is the
// one of GPTQ's `Quantizer.find_params(mse=True)` (shrink [min, max] towards 0 in 1% steps, keep the lowest
// error); an element weight (e.g. the layer's Hessian diagonal) turns it into an output-aware search.
// ACIQ's Laplace clip (ALGORITHMS.md §2) applied to weights is the closed-form alternative.
import { aciqAlpha } from "./aciq.ts";
import { fakeQuantValue, gridParams } from "./grid.ts";

export interface WeightInterval {
  lo: number;
  range: number;
}

export interface WeightClipOptions {
  /**
   * Symmetric grids have their zero point in the middle of the codes (2^(bits−1)), i.e. 0 in a signed
   * container: what integer runtimes require of weights. Asymmetric grids follow the channel's own range.
   */
  symmetric?: boolean;
  /** candidates tried: the interval shrunk by 1/steps at a time (default 100) */
  steps?: number;
  /** never shrink below this fraction of the full interval (default 0.2) */
  minFraction?: number;
  /** error exponent: 2 is the mean squared error (default); GPTQ's own search uses 2.4 */
  norm?: number;
  /** per-element weight of the error, laid out like one channel's weights (e.g. diag H per input) */
  importance?: ArrayLike<number>;
}

/** The full grid of a channel: [min, max] (asymmetric, 0 included) or ±max|w| (symmetric). */
export function fullInterval(w: ArrayLike<number>, start: number, count: number, bits: number, symmetric: boolean): WeightInterval {
  let min = 0;
  let max = 0;
  for (let i = start; i < start + count; i++) {
    if (w[i] < min) min = w[i];
    if (w[i] > max) max = w[i];
  }
  return symmetric ? symmetricInterval(Math.max(-min, max), bits) : { lo: min, range: max - min };
}

/**
 * The symmetric grid reaching ±alpha with codes 0 … 2^bits − 1 and zero point 2^(bits−1): step
 * alpha / (2^(bits−1) − 1), so +alpha is the top code and the extra negative code sits one step below −alpha.
 */
export function symmetricInterval(alpha: number, bits: number): WeightInterval {
  const half = 2 ** (bits - 1);
  const step = alpha / Math.max(half - 1, 1);
  return { lo: -half * step, range: (2 ** bits - 1) * step };
}

function intervalError(w: ArrayLike<number>, start: number, count: number, iv: WeightInterval, bits: number, norm: number, importance?: ArrayLike<number>): number {
  const g = gridParams(iv.lo, iv.range, bits);
  let err = 0;
  for (let i = 0; i < count; i++) {
    const d = Math.abs(w[start + i] - fakeQuantValue(w[start + i], g));
    const e = norm === 2 ? d * d : d ** norm;
    err += importance ? importance[i] * e : e;
  }
  return err;
}

/** The candidate interval with the lowest quantization error of w[start … start + count). */
export function mseWeightInterval(w: ArrayLike<number>, start: number, count: number, bits: number, options: WeightClipOptions = {}): WeightInterval {
  const symmetric = options.symmetric ?? false;
  const full = fullInterval(w, start, count, bits, symmetric);
  if (!(full.range > 0) || bits < 1) return full;
  const steps = options.steps ?? 100;
  const minFraction = options.minFraction ?? 0.2;
  const norm = options.norm ?? 2;
  let best = full;
  let bestErr = intervalError(w, start, count, full, bits, norm, options.importance);
  for (let s = 1; s < steps; s++) {
    const p = 1 - s / steps;
    if (p < minFraction) break;
    // shrinking lo and hi by the same factor keeps 0 where it was on the grid
    const iv = { lo: full.lo * p, range: full.range * p };
    const err = intervalError(w, start, count, iv, bits, norm, options.importance);
    if (err < bestErr) {
      bestErr = err;
      best = iv;
    }
  }
  return best;
}

/** ACIQ's Laplace clip on one channel of weights: α = k(bits)·b about the mean, within [min, max]. */
export function aciqWeightInterval(w: ArrayLike<number>, start: number, count: number, bits: number, symmetric = false): WeightInterval {
  let mean = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let i = start; i < start + count; i++) {
    mean += w[i];
    if (w[i] < min) min = w[i];
    if (w[i] > max) max = w[i];
  }
  mean /= count;
  let b = 0;
  for (let i = start; i < start + count; i++) b += Math.abs(w[i] - mean);
  b /= count;
  const alpha = aciqAlpha(b, bits, "laplace", false, "exact");
  if (symmetric) return symmetricInterval(Math.min(Math.abs(mean) + alpha, Math.max(-min, max)), bits);
  const lo = Math.max(min, mean - alpha);
  const hi = Math.min(max, mean + alpha);
  return { lo, range: Math.max(hi - lo, 0) };
}

export type WeightClipMethod = "mse" | "aciq";

/** One interval per output channel of w laid out [channels, inner]. Channels with 0 bits keep [min, max]. */
export function weightClipIntervals(
  w: ArrayLike<number>,
  channels: number,
  bits: ArrayLike<number>,
  method: WeightClipMethod,
  options: WeightClipOptions = {},
): { lo: Float64Array; range: Float64Array } {
  const inner = w.length / channels;
  const lo = new Float64Array(channels);
  const range = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    const b = bits[c];
    const iv =
      b < 1
        ? fullInterval(w, c * inner, inner, b, false)
        : method === "mse"
          ? mseWeightInterval(w, c * inner, inner, b, options)
          : aciqWeightInterval(w, c * inner, inner, b, options.symmetric);
    lo[c] = iv.lo;
    range[c] = iv.range;
  }
  return { lo, range };
}
