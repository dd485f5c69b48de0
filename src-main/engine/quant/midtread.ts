// The mid-tread, non-power-of-two-bins quantizer of the variable-length-coding study (ALGORITHMS.md §3.3).
// Not used for Table 1; the VLC study's entropy figures come from it.
import { optimalClipMultiplier } from "./aciq.ts";
import { eq10Bins } from "./bitalloc.ts";
import { roundHalfEven } from "./grid.ts";
import { channelStats } from "./stats.ts";

/** Eq. 10 bin counts rounded to integers (half-even, like torch), not to powers of two. */
export function midtreadBins(std: ArrayLike<number>, target: number): number[] {
  return Array.from(eq10Bins(std, target), roundHalfEven);
}

/**
 * The reference tabulates the Laplace optimum α/b (minimising 2e^{−a} + a²/(3ω²)) at 20 evenly spaced
 * bin counts per decade from 0.01 to 1000, plus (0, 0), and interpolates linearly. We rebuild the same
 * knots with the exact optimum, so lookups match the reference's interpolation, not the exact curve.
 */
let knots: { omega: Float64Array; alpha: Float64Array } | null = null;

function interpolationKnots(): { omega: Float64Array; alpha: Float64Array } {
  if (knots) return knots;
  const omega = [0];
  for (const [from, to] of [[0.01, 0.1], [0.1, 1], [1, 10], [10, 100], [100, 1000]]) {
    const step = (to - from) / 20;
    for (let k = 0; k < 20; k++) omega.push(k * step + from);
  }
  knots = {
    omega: Float64Array.from(omega),
    alpha: Float64Array.from(omega, (w) => (w === 0 ? 0 : optimalClipMultiplier(w, "laplace"))),
  };
  return knots;
}

/**
 * α/b for `bins` bins. Unsigned (half-range) tensors look up twice the bins, the same one-bit shift as
 * §2.1. Beyond the last knot (955 bins) the reference fails; we use the exact optimum there.
 */
export function midtreadAlphaMultiplier(bins: number, halfRange: boolean): number {
  const w = halfRange ? 2 * bins : bins;
  if (!(w > 0)) return 0;
  const { omega, alpha } = interpolationKnots();
  let i = 1;
  while (i < omega.length && omega[i] < w) i++;
  if (i === omega.length) return optimalClipMultiplier(w, "laplace");
  const slope = (alpha[i] - alpha[i - 1]) / (omega[i] - omega[i - 1]);
  return alpha[i] - slope * (omega[i] - w);
}

export interface MidtreadResult {
  output: Float32Array;
  bins: number[];
  alphaOverB: number[];
}

/**
 * Per-channel mid-tread fake-quant of an activation laid out [outer, channels, inner], with ω bins from
 * eq. 10 driven by the channel std. Signed: Δ = 2α/ω, codes clamped to mean/Δ ± ω/2 (not integers, so
 * clipped values land exactly on mean ± α). Half-range: as the reference ran when the test vectors were
 * made, the doubled bin count of the α lookup is also the step count (Δ = range/2ω; the reference doubles
 * ω in place, through a NumPy view of the CPU tensor) and codes are clamped to [0, max(mean, 0)/Δ + 2ω].
 * A channel with no bins or no spread collapses to its clamp limit: its mean if signed, 0 if half-range.
 */
export function midtreadQuantize(
  x: Float32Array,
  outer: number,
  channels: number,
  inner: number,
  target: number,
  halfRange: boolean,
): MidtreadResult {
  const stats = channelStats(x, outer, channels, inner);
  const bins = midtreadBins(stats.std, target);
  const alphaOverB = bins.map((w) => midtreadAlphaMultiplier(w, halfRange));
  const output = new Float32Array(x.length);
  for (let c = 0; c < channels; c++) {
    const mean = stats.mean[c];
    const alpha = alphaOverB[c] * stats.mad[c];
    const steps = halfRange ? 2 * bins[c] : bins[c];
    const range = halfRange ? Math.max(mean, 0) + alpha : 2 * alpha;
    const step = steps > 0 ? range / steps : 0;
    const lowCode = halfRange ? 0 : mean / step - steps / 2;
    const highCode = halfRange ? Math.max(mean, 0) / step + steps : mean / step + steps / 2;
    for (let n = 0; n < outer; n++) {
      const start = (n * channels + c) * inner;
      for (let i = start; i < start + inner; i++) {
        output[i] = step > 0 ? Math.min(Math.max(roundHalfEven(x[i] / step), lowCode), highCode) * step : halfRange ? 0 : mean;
      }
    }
  }
  return { output, bins, alphaOverB };
}
