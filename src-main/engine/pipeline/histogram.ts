// Per-channel histograms for the percentile and MSE calibrators. The range of each channel is not known
// before the data arrives, so it starts at the first batch's extreme and doubles (merging bin pairs)
// whenever a value falls outside: memory stays fixed and no value is ever dropped.
import type { HistogramView } from "../quant/histogram.ts";
import type { HistogramSummary } from "./statistics.ts";

export const HISTOGRAM_BINS = 512;

export class ChannelHistograms {
  private readonly counts: Float64Array;
  private readonly limit: Float64Array;

  constructor(
    readonly channels: number,
    readonly bins = HISTOGRAM_BINS,
  ) {
    this.counts = new Float64Array(channels * bins);
    this.limit = new Float64Array(channels);
  }

  add(x: Float32Array, n: number, channels: number, inner: number): void {
    const bins = this.bins;
    for (let c = 0; c < channels; c++) {
      let extreme = 0;
      for (let s = 0; s < n; s++) {
        const base = (s * channels + c) * inner;
        for (let i = base; i < base + inner; i++) {
          const a = Math.abs(x[i]);
          if (a > extreme) extreme = a;
        }
      }
      this.grow(c, extreme);
      const limit = this.limit[c];
      const toBin = bins / (2 * limit);
      const row = c * bins;
      for (let s = 0; s < n; s++) {
        const base = (s * channels + c) * inner;
        for (let i = base; i < base + inner; i++) {
          let k = Math.floor((x[i] + limit) * toBin);
          if (k >= bins) k = bins - 1;
          else if (k < 0) k = 0;
          this.counts[row + k]++;
        }
      }
    }
  }

  private grow(c: number, extreme: number): void {
    if (this.limit[c] === 0) {
      this.limit[c] = extreme > 0 ? extreme : 1e-8;
      return;
    }
    const bins = this.bins;
    const row = c * bins;
    while (extreme > this.limit[c]) {
      // the old range becomes the middle half of the new one
      const merged = new Float64Array(bins);
      for (let k = 0; k < bins; k++) merged[bins / 4 + (k >> 1)] += this.counts[row + k];
      this.counts.set(merged, row);
      this.limit[c] *= 2;
    }
  }

  summary(): HistogramSummary {
    return { bins: this.bins, channels: this.channels, limit: Float64Array.from(this.limit), counts: Float64Array.from(this.counts) };
  }
}

/** Channel c's histogram as the calibrators read it. */
export function channelView(h: HistogramSummary, c: number): HistogramView {
  return { lo: -h.limit[c], hi: h.limit[c], counts: h.counts.subarray(c * h.bins, (c + 1) * h.bins) };
}
