// Weight quantization (ALGORITHMS.md §4.2, §5.1 step 4): per output channel, the [min, max] grid of §1
// with no clipping, then the reference's data-free bias (mean) and variance correction.
import { gridParams, quantizeValue, type GridParams } from "./grid.ts";
import { channelStats } from "./stats.ts";

export interface WeightQuantOptions {
  /** -bcw: restore each channel's original mean */
  biasCorrection: boolean;
  /** -vcw: restore each channel's original std (ξ = std(W)/(std(Wq) + 1e-8)) */
  varianceCorrection: boolean;
  /**
   * "reference" (default): w ← ξ·(w_q − E[W_q]) + E[W], the code behind the published numbers.
   * "paper-eq13": the paper's literal w ← ξ·(w_q + μ), μ = E[W] − E[W_q], whose mean is ξ·E[W].
   */
  formula?: "reference" | "paper-eq13";
  /**
   * The integer targets' grid: zero point 0 in signed codes, step max|w|/(2^(bits−1) − 1), so codes run over
   * −(2^(bits−1) − 1) … 2^(bits−1) − 1 (stored here shifted by 2^(bits−1), like every code). Default: the
   * reference's asymmetric [min, max] grid.
   */
  symmetric?: boolean;
  /** per-channel grid intervals chosen elsewhere (weight clipping); default each channel's [min, max] */
  intervals?: { lo: ArrayLike<number>; range: ArrayLike<number> };
}

export interface QuantizedWeights {
  /** one code per weight, in [0, 2^bits[c] − 1], same layout as the input */
  codes: Uint8Array;
  /** the final (corrected) weight is code · scale[c] + offset[c]; this is what gets exported */
  scale: Float64Array;
  offset: Float64Array;
  /** the final weights, computed from that affine map */
  dequantized: Float32Array;
  /** the §1 grid before correction: Δ and the integer zero point */
  gridScale: Float64Array;
  zeroPoint: Float64Array;
  /** shift added to the channel's mean (E[W] − E[W_q]; 0 without bias correction) */
  meanShift: Float64Array;
  /** variance-correction factor (1 without it, or for a channel whose codes are all equal) */
  xi: Float64Array;
}

/** Zero point in the middle of the unsigned codes, step from the larger magnitude; a 0- or 1-bit grid holds only 0. */
function symmetricGrid(min: number, max: number, bits: number): GridParams {
  const half = bits > 0 ? 2 ** (bits - 1) : 0;
  const levels = Math.max(half - 1, 0);
  const scale = Math.max(levels > 0 ? Math.max(Math.abs(min), Math.abs(max)) / levels : 0, MIN_WEIGHT_SCALE);
  return { scale, zeroPoint: half, qmax: 2 ** bits - 1 };
}

/** The grid module's floor on a step, so that an all-zero channel still has a valid scale. */
const MIN_WEIGHT_SCALE = 1e-8;

/** The reference's guard against dividing by a vanishing quantized std. */
const STD_EPSILON = 1e-8;

/**
 * `w` is laid out [outChannels, …] (callers move the output-channel axis first). bitsPerChannel comes from
 * the layer's bit-width or from bit allocation; integers 0–8 so that codes fit a byte.
 */
export function quantizeWeights(
  w: Float32Array,
  outChannels: number,
  bitsPerChannel: ArrayLike<number>,
  options: WeightQuantOptions,
): QuantizedWeights {
  if (bitsPerChannel.length !== outChannels) throw new RangeError(`need ${outChannels} bit-widths, got ${bitsPerChannel.length}`);
  const inner = w.length / outChannels;
  const original = channelStats(w, 1, outChannels, inner);
  const codes = new Uint8Array(w.length);
  const result: QuantizedWeights = {
    codes,
    scale: new Float64Array(outChannels),
    offset: new Float64Array(outChannels),
    dequantized: new Float32Array(w.length),
    gridScale: new Float64Array(outChannels),
    zeroPoint: new Float64Array(outChannels),
    meanShift: new Float64Array(outChannels),
    xi: new Float64Array(outChannels),
  };
  for (let c = 0; c < outChannels; c++) {
    const bits = bitsPerChannel[c];
    if (!Number.isInteger(bits) || bits < 0 || bits > 8) throw new RangeError(`channel ${c}: bit-width must be an integer in 0–8, got ${bits}`);
    const iv = options.intervals;
    const lo = iv ? iv.lo[c] : original.min[c];
    const range = iv ? iv.range[c] : original.max[c] - original.min[c];
    const grid = options.symmetric ? symmetricGrid(lo, lo + range, bits) : gridParams(lo, range, bits);
    const start = c * inner;
    let codeSum = 0;
    for (let i = start; i < start + inner; i++) {
      codes[i] = quantizeValue(w[i], grid);
      codeSum += codes[i];
    }
    // W_q = (code − zp)·Δ is affine in the codes, so its mean and std follow from theirs
    const codeMean = codeSum / inner;
    let codeSq = 0;
    for (let i = start; i < start + inner; i++) codeSq += (codes[i] - codeMean) ** 2;
    const codeStd = inner > 1 ? Math.sqrt(codeSq / (inner - 1)) : 0;
    const meanQ = (codeMean - grid.zeroPoint) * grid.scale;
    const stdQ = codeStd * grid.scale;

    // all codes equal (e.g. 0 bits): nothing to rescale, and the 1e-8 guard alone would give a huge ξ
    const xi = options.varianceCorrection && codeStd > 0 ? original.std[c] / (stdQ + STD_EPSILON) : 1;
    const shift = options.biasCorrection ? original.mean[c] - meanQ : 0;
    const zeroValue = grid.zeroPoint * grid.scale;
    const scale = xi * grid.scale;
    const offset =
      options.formula === "paper-eq13"
        ? xi * (shift - zeroValue)
        : xi * (-zeroValue - meanQ) + meanQ + shift;

    result.scale[c] = scale;
    result.offset[c] = offset;
    result.gridScale[c] = grid.scale;
    result.zeroPoint[c] = grid.zeroPoint;
    result.meanShift[c] = shift;
    result.xi[c] = xi;
    for (let i = start; i < start + inner; i++) result.dequantized[i] = codes[i] * scale + offset;
  }
  return result;
}
