// The statistics ACIQ and bit allocation are driven by (ALGORITHMS.md §2.3, §6): min, max, mean,
// mad = mean |x − mean| (the Laplace b, about the MEAN, not the median) and the unbiased std.
// Accumulation is float64 over float32 data; the reference's float32 sums agree to ~1e-6 relative.

export interface TensorStats {
  min: number;
  max: number;
  mean: number;
  mad: number;
  std: number;
}

/** Struct of arrays: entry g holds the statistics of group g (a channel, a sample, or a sample's channel). */
export interface StatsArrays {
  min: Float64Array;
  max: Float64Array;
  mean: Float64Array;
  mad: Float64Array;
  std: Float64Array;
}

function allocStats(groups: number): StatsArrays {
  return {
    min: new Float64Array(groups),
    max: new Float64Array(groups),
    mean: new Float64Array(groups),
    mad: new Float64Array(groups),
    std: new Float64Array(groups),
  };
}

function checkLayout(x: Float32Array, outer: number, channels: number, inner: number): void {
  if (outer < 1 || channels < 1 || inner < 1 || x.length !== outer * channels * inner) {
    throw new RangeError(`tensor has ${x.length} elements, expected ${outer}×${channels}×${inner} (all ≥ 1)`);
  }
}

/**
 * Two-pass statistics of the elements first + k·stride + i (k < segments, i < length), written to entry `at`.
 * Two passes because mad needs the mean first, and Σ(x − mean)² is better conditioned than Σx² − n·mean².
 */
function reduceSegments(
  x: Float32Array,
  first: number,
  stride: number,
  segments: number,
  length: number,
  out: StatsArrays,
  at: number,
): void {
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  for (let k = 0, s = first; k < segments; k++, s += stride) {
    for (let i = s, end = s + length; i < end; i++) {
      const v = x[i];
      sum += v;
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  const count = segments * length;
  const mean = sum / count;
  let absDev = 0;
  let sqDev = 0;
  for (let k = 0, s = first; k < segments; k++, s += stride) {
    for (let i = s, end = s + length; i < end; i++) {
      const d = x[i] - mean;
      absDev += Math.abs(d);
      sqDev += d * d;
    }
  }
  out.min[at] = min;
  out.max[at] = max;
  out.mean[at] = mean;
  out.mad[at] = absDev / count;
  // torch returns NaN for a single element; 0 keeps a degenerate group from poisoning averages
  out.std[at] = count > 1 ? Math.sqrt(sqDev / (count - 1)) : 0;
}

function entry(s: StatsArrays, g: number): TensorStats {
  return { min: s.min[g], max: s.max[g], mean: s.mean[g], mad: s.mad[g], std: s.std[g] };
}

export function tensorStats(x: Float32Array): TensorStats {
  checkLayout(x, 1, 1, x.length);
  const s = allocStats(1);
  reduceSegments(x, 0, 0, 1, x.length, s, 0);
  return entry(s, 0);
}

/** Per channel over all outer·inner elements of the channel (N·H·W for NCHW; outer = 1 for weights). */
export function channelStats(x: Float32Array, outer: number, channels: number, inner: number): StatsArrays {
  checkLayout(x, outer, channels, inner);
  const s = allocStats(channels);
  for (let c = 0; c < channels; c++) reduceSegments(x, c * inner, channels * inner, outer, inner, s, c);
  return s;
}

/** Per sample and channel, over the inner elements only; entry n·channels + c. */
export function sampleChannelStats(x: Float32Array, outer: number, channels: number, inner: number): StatsArrays {
  checkLayout(x, outer, channels, inner);
  const s = allocStats(outer * channels);
  for (let g = 0; g < outer * channels; g++) reduceSegments(x, g * inner, 0, 1, inner, s, g);
  return s;
}

/** Per sample over all of that sample's elements; entry n. */
export function sampleTensorStats(x: Float32Array, outer: number): StatsArrays {
  const perSample = x.length / outer;
  checkLayout(x, outer, 1, perSample);
  const s = allocStats(outer);
  for (let n = 0; n < outer; n++) reduceSegments(x, n * perSample, 0, 1, perSample, s, n);
  return s;
}

function average(a: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i];
  return sum / a.length;
}

/**
 * The per-tensor min and max the reference's 8-bit min/max quantizers use (§6): each sample's extreme,
 * averaged over the samples — a mild clipping compared with the global extremes.
 */
export function sampleMinMaxMean(x: Float32Array, outer: number): { min: number; max: number } {
  const s = sampleTensorStats(x, outer);
  return { min: average(s.min), max: average(s.max) };
}

export interface StaticSummary {
  /** how many statistics units (samples or batches) were averaged */
  units: number;
  /** per channel, each statistic averaged over units: what static mode freezes */
  channel: StatsArrays;
  /** per channel, extremes over every element seen (the reference's min_min / max_max) */
  channelMin: Float64Array;
  channelMax: Float64Array;
  /** per tensor, each statistic averaged over units; sampleMin/Max average every sample's own extreme */
  tensor: TensorStats & { sampleMin: number; sampleMax: number };
  tensorMin: number;
  tensorMax: number;
}

const KEYS = ["min", "max", "mean", "mad", "std"] as const;

/**
 * Streaming static calibration (§6, the reference's "-sm collect"): every unit contributes its own
 * statistics and the summary is their average, so memory is O(channels) however many units arrive.
 * The unit is the caller's choice: addPerSample makes each image a unit (the README recipe collected
 * with batch size 1), addBatch makes a whole batch one unit.
 */
export class StaticStats {
  readonly channels: number;
  private units = 0;
  private readonly channelSum: StatsArrays;
  private readonly channelMin: Float64Array;
  private readonly channelMax: Float64Array;
  private readonly tensorSum = { min: 0, max: 0, mean: 0, mad: 0, std: 0, sampleMin: 0, sampleMax: 0 };
  private tensorMin = Infinity;
  private tensorMax = -Infinity;

  constructor(channels: number) {
    if (!Number.isInteger(channels) || channels < 1) throw new RangeError(`channels must be a positive integer, got ${channels}`);
    this.channels = channels;
    this.channelSum = allocStats(channels);
    this.channelMin = new Float64Array(channels).fill(Infinity);
    this.channelMax = new Float64Array(channels).fill(-Infinity);
  }

  get count(): number {
    return this.units;
  }

  /** Each of the n samples of x ([n, channels, inner]) is one unit. */
  addPerSample(x: Float32Array, n: number, channels: number, inner: number): void {
    this.checkChannels(channels);
    const perChannel = sampleChannelStats(x, n, channels, inner);
    const perTensor = sampleTensorStats(x, n);
    for (let s = 0; s < n; s++) {
      this.addChannelUnit(perChannel, s * channels);
      this.addTensorUnit(perTensor, s, perTensor.min[s], perTensor.max[s]);
      this.units++;
    }
  }

  /**
   * n units whose statistics were computed elsewhere (e.g. by reductions inside the model):
   * per-channel entry s·channels + c and per-tensor entry s, as sampleChannelStats/sampleTensorStats lay them out.
   */
  addSampleStats(perChannel: StatsArrays, perTensor: StatsArrays, n: number): void {
    if (perChannel.mean.length !== n * this.channels) throw new RangeError(`expected ${n}×${this.channels} channel statistics, got ${perChannel.mean.length}`);
    for (let s = 0; s < n; s++) {
      this.addChannelUnit(perChannel, s * this.channels);
      this.addTensorUnit(perTensor, s, perTensor.min[s], perTensor.max[s]);
      this.units++;
    }
  }

  /** The whole batch x ([n, channels, inner]) is one unit. */
  addBatch(x: Float32Array, n: number, channels: number, inner: number): void {
    this.checkChannels(channels);
    this.addChannelUnit(channelStats(x, n, channels, inner), 0);
    const whole = allocStats(1);
    reduceSegments(x, 0, 0, 1, x.length, whole, 0);
    const { min, max } = sampleMinMaxMean(x, n);
    this.addTensorUnit(whole, 0, min, max);
    this.units++;
  }

  summary(): StaticSummary {
    if (this.units === 0) throw new Error("no calibration data was added");
    const channel = allocStats(this.channels);
    for (const k of KEYS) for (let c = 0; c < this.channels; c++) channel[k][c] = this.channelSum[k][c] / this.units;
    const t = this.tensorSum;
    const u = this.units;
    return {
      units: u,
      channel,
      channelMin: Float64Array.from(this.channelMin),
      channelMax: Float64Array.from(this.channelMax),
      tensor: {
        min: t.min / u, max: t.max / u, mean: t.mean / u, mad: t.mad / u, std: t.std / u,
        sampleMin: t.sampleMin / u, sampleMax: t.sampleMax / u,
      },
      tensorMin: this.tensorMin,
      tensorMax: this.tensorMax,
    };
  }

  private checkChannels(channels: number): void {
    if (channels !== this.channels) throw new RangeError(`expected ${this.channels} channels, got ${channels}`);
  }

  private addChannelUnit(s: StatsArrays, base: number): void {
    for (let c = 0; c < this.channels; c++) {
      for (const k of KEYS) this.channelSum[k][c] += s[k][base + c];
      if (s.min[base + c] < this.channelMin[c]) this.channelMin[c] = s.min[base + c];
      if (s.max[base + c] > this.channelMax[c]) this.channelMax[c] = s.max[base + c];
    }
  }

  private addTensorUnit(s: StatsArrays, g: number, sampleMin: number, sampleMax: number): void {
    for (const k of KEYS) this.tensorSum[k] += s[k][g];
    this.tensorSum.sampleMin += sampleMin;
    this.tensorSum.sampleMax += sampleMax;
    if (s.min[g] < this.tensorMin) this.tensorMin = s.min[g];
    if (s.max[g] > this.tensorMax) this.tensorMax = s.max[g];
  }
}
