// Histogram-based baseline calibrators (percentile, MSE search) that users of other PTQ tools expect,
// for comparison with ACIQ. They choose an interval; the grid of §1 is the same.
import type { ClipInterval } from "./aciq.ts";
import { fakeQuantValue, gridParams } from "./grid.ts";

/** Fixed-width bins over [lo, hi]; plain data so a slice of a bigger per-channel table also fits. */
export interface HistogramView {
  lo: number;
  hi: number;
  counts: ArrayLike<number>;
}

/**
 * Streaming fixed-bin histogram. The range must be known up front (typically from a first min/max pass);
 * values outside it are counted in the edge bins rather than dropped, so totals stay exact. Histograms
 * with identical layout merge by adding counts, which lets calibration run in parallel.
 */
export class Histogram implements HistogramView {
  readonly lo: number;
  readonly hi: number;
  readonly counts: Float64Array;
  private readonly invWidth: number;

  constructor(lo: number, hi: number, bins = 2048) {
    if (!Number.isFinite(lo) || !Number.isFinite(hi) || hi < lo) throw new RangeError(`bad histogram range [${lo}, ${hi}]`);
    if (!Number.isInteger(bins) || bins < 1) throw new RangeError(`bins must be a positive integer, got ${bins}`);
    this.lo = lo;
    this.hi = hi;
    this.counts = new Float64Array(bins);
    // a constant tensor (hi = lo) puts everything in bin 0
    this.invWidth = hi > lo ? bins / (hi - lo) : 0;
  }

  add(x: ArrayLike<number>): void {
    const last = this.counts.length - 1;
    for (let i = 0; i < x.length; i++) {
      const k = Math.floor((x[i] - this.lo) * this.invWidth);
      this.counts[k < 0 ? 0 : k > last ? last : k]++;
    }
  }

  merge(other: Histogram): void {
    if (other.lo !== this.lo || other.hi !== this.hi || other.counts.length !== this.counts.length) {
      throw new RangeError("can only merge histograms with the same range and bin count");
    }
    for (let k = 0; k < this.counts.length; k++) this.counts[k] += other.counts[k];
  }
}

function totalCount(h: HistogramView): number {
  let n = 0;
  for (let k = 0; k < h.counts.length; k++) n += h.counts[k];
  if (!(n > 0)) throw new RangeError("empty histogram");
  return n;
}

/** Value below which a fraction q of the mass lies, treating each bin's mass as uniform across the bin. */
export function histogramQuantile(h: HistogramView, q: number): number {
  const target = Math.min(Math.max(q, 0), 1) * totalCount(h);
  const width = (h.hi - h.lo) / h.counts.length;
  let below = 0;
  for (let k = 0; k < h.counts.length; k++) {
    const c = h.counts[k];
    if (c > 0 && below + c >= target) return h.lo + (k + (target - below) / c) * width;
    below += c;
  }
  return h.hi;
}

/**
 * Keeps the central `percent` % of the mass on each side: [q(1 − p), q(p)] for signed tensors and
 * [0, q(p)] for half-range ones (percent as in other tools, e.g. 99.99).
 */
export function percentileInterval(h: HistogramView, percent: number, halfRange: boolean): ClipInterval {
  if (!(percent > 50 && percent <= 100)) throw new RangeError(`percent must be in (50, 100], got ${percent}`);
  const p = percent / 100;
  const top = histogramQuantile(h, p);
  if (halfRange) return { lo: 0, range: Math.max(top, 0) };
  const bottom = histogramQuantile(h, 1 - p);
  return { lo: bottom, range: top - bottom };
}

const COARSE_STEPS = 128;
const FINE_STEPS = 64;

/**
 * Searches the clip value minimising the histogram's quantization MSE on the actual §1 grid (bin centres
 * stand for their bin). The family of intervals is ACIQ's own (§2.4): [max(min, mean − a), +2a] signed,
 * [0, a] half-range where the target is ReLU(x), so the result is directly comparable with ACIQ's α.
 * A coarse sweep is refined around its best point; the MSE is not smooth in a (zero-point rounding).
 */
export function mseSearchInterval(h: HistogramView, bits: number, halfRange: boolean): ClipInterval & { mse: number } {
  const total = totalCount(h);
  const bins = h.counts.length;
  const width = (h.hi - h.lo) / bins;
  const centre = (k: number): number => h.lo + (k + 0.5) * width;
  let mean = 0;
  for (let k = 0; k < bins; k++) mean += h.counts[k] * centre(k);
  mean /= total;
  const interval = (a: number): ClipInterval =>
    halfRange ? { lo: 0, range: a } : { lo: Math.max(h.lo, mean - a), range: 2 * a };
  const mseOf = (iv: ClipInterval): number => {
    const p = gridParams(iv.lo, iv.range, bits);
    let sum = 0;
    for (let k = 0; k < bins; k++) {
      const c = h.counts[k];
      if (c === 0) continue;
      const x = centre(k);
      const d = (halfRange ? Math.max(x, 0) : x) - fakeQuantValue(x, p);
      sum += c * d * d;
    }
    return sum / total;
  };
  const aMax = halfRange ? Math.max(h.hi, 0) : Math.max(h.hi - mean, mean - h.lo);
  if (!(aMax > 0)) return { ...interval(0), mse: mseOf(interval(0)) };
  let best = { a: aMax, mse: mseOf(interval(aMax)) };
  const sweep = (from: number, to: number, steps: number): void => {
    for (let s = 0; s <= steps; s++) {
      const a = from + ((to - from) * s) / steps;
      if (!(a > 0)) continue;
      const mse = mseOf(interval(a));
      if (mse < best.mse) best = { a, mse };
    }
  };
  const coarse = aMax / COARSE_STEPS;
  sweep(coarse, aMax, COARSE_STEPS - 1);
  sweep(Math.max(best.a - coarse, 0), Math.min(best.a + coarse, aMax), FINE_STEPS);
  return { ...interval(best.a), mse: best.mse };
}
