// The quantize stage: from frozen statistics and the float weights to every layer's integer grid.
// Pure: no I/O, no runtime. The exporter turns a plan into ONNX; the report reads it back.
import type { Bounds, LayerInfo, Method, QuantConfig } from "../../../shared/types.ts";
import type { QuantLayer } from "../onnx/prepare.ts";
import type { Target } from "../targets/target.ts";
import { aciqAlpha, clipInterval } from "../quant/aciq.ts";
import { allocateBits } from "../quant/bitalloc.ts";
import { gridParams } from "../quant/grid.ts";
import { channelStats } from "../quant/stats.ts";
import { quantizeWeights } from "../quant/weights.ts";
import { weightClipIntervals } from "../quant/weight-clip.ts";
import { mseSearchInterval, percentileInterval } from "../quant/histogram.ts";
import { channelView } from "./histogram.ts";
import { channelCount, type TensorStatistics } from "./statistics.ts";

/** What the planner needs to know of a layer: the prepared model's description plus where its data is. */
export interface PlanLayer extends LayerInfo {
  /** the tensor the layer's activation quantizer sits on (see exactPlacement) */
  output: string;
  /** values outside this interval cannot matter at `output` */
  outputBounds: Bounds;
  weightName: string;
  /** axis of the weight tensor that indexes output channels */
  weightAxis: number;
  /** the activation tensor the layer reads, and Conv's groups: what a bias correction's expected effect sums over */
  input: string;
  groups: number;
}

/**
 * Where the exact target quantizes a layer's activation: the layer's own output (the paper's placement,
 * §5.2), cut to what the activation after it can use (a ReLU6's grid stops at 6, the grid's clamp does
 * the ReLU). Quantizing after a LeakyReLU instead was measured no better on Tiny Darknet at W8A8
 * (68.1 vs 68.5 top-1 on 1,000 images) and worse with ACIQ.
 */
export function exactPlacement(l: QuantLayer): PlanLayer {
  return { ...l.info, output: l.output, outputBounds: l.info.activationClamp, weightName: l.weight, weightAxis: l.weightAxis, input: l.input, groups: l.groups };
}

export interface WeightPlan {
  bits: number[];
  /** integer codes in [0, 2^bits − 1], in the weight tensor's own layout */
  codes: Uint8Array;
  /** value = code · scale[c] + offset[c], per output channel */
  scale: Float64Array;
  offset: Float64Array;
  /**
   * the grid's zero point in code units: value = (code − zeroPoint[c]) · scale[c] + residual, where the residual
   * offset[c] + zeroPoint[c]·scale[c] is what a correction added (0 without one). A later stage may re-choose
   * codes on this grid; integer targets store code − zeroPoint, and their bias correction takes the expected
   * effect of all that the stored weights miss, this residual included (expectedBiasShift).
   */
  zeroPoint: Float64Array;
  /** the weight grid is symmetric (integer targets): zeroPoint is 2^(bits−1) */
  symmetric: boolean;
  /** mean of |bias-correction shift| over channels, relative to the channel std */
  biasShift: number | null;
}

export interface ActivationPlan {
  tensor: string;
  granularity: "per-channel" | "per-tensor";
  bits: number[];
  lo: number[];
  range: number[];
  scale: number[];
  zeroPoint: number[];
  halfRange: boolean;
  /** values beyond these cannot matter (the activation maps them to its ends), so no quantizer needs them */
  bounds: Bounds;
  /** how the interval was chosen, for the report */
  source: "aciq" | "minmax" | "minmax-8bit" | "percentile" | "mse";
  rangeKept: number;
  /** false when the chosen intervals are, within 0.1% of the range seen, plain min/max */
  clipsDiffer: boolean;
}

export interface LayerPlan {
  layer: PlanLayer;
  precision: "low" | "8bit" | "float";
  weight: WeightPlan | null;
  activation: ActivationPlan | null;
  /** the methods that were switched on and actually applied to this layer */
  applied: Method[];
  /** integer targets: per output channel, the expected effect of the weight correction, added to the bias */
  biasCorrection: Float64Array | null;
}

export interface WeightSource {
  data: Float32Array;
  shape: number[];
}

/** The clip other tools' percentile calibrators default to. */
export const PERCENTILE = 99.99;

function has(config: QuantConfig, m: Method): boolean {
  return config.methods.includes(m);
}

export function layerPrecision(layer: LayerInfo, config: QuantConfig): LayerPlan["precision"] {
  const keep = config.keep[layer.name];
  if (keep === "float") return "float";
  if (keep === "8") return "8bit";
  if (config.keepFirstLast8 && layer.role !== "hidden") return "8bit";
  return "low";
}

/** Moves the channel axis first so each output channel's weights are contiguous. */
function channelMajor(w: WeightSource, axis: number): { data: Float32Array; channels: number; restore: (codes: Uint8Array) => Uint8Array } {
  const { shape, data } = w;
  const channels = shape[axis];
  if (axis === 0) return { data, channels, restore: (c) => c };
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const out = new Float32Array(data.length);
  const per = outer * inner;
  for (let o = 0; o < outer; o++)
    for (let c = 0; c < channels; c++)
      for (let i = 0; i < inner; i++) out[c * per + o * inner + i] = data[(o * channels + c) * inner + i];
  const restore = (codes: Uint8Array): Uint8Array => {
    const back = new Uint8Array(codes.length);
    for (let o = 0; o < outer; o++)
      for (let c = 0; c < channels; c++)
        for (let i = 0; i < inner; i++) back[(o * channels + c) * inner + i] = codes[c * per + o * inner + i];
    return back;
  };
  return { data: out, channels, restore };
}

export function planWeights(layer: PlanLayer, w: WeightSource, bits: number, config: QuantConfig, allocate: boolean, symmetric = false): WeightPlan {
  const cm = channelMajor(w, layer.weightAxis);
  const per = cm.data.length / cm.channels;
  // the reference drives weight allocation with each output channel's std (ALGORITHMS.md §3.2)
  const stds = channelStats(cm.data, 1, cm.channels, per).std;
  const perChannel = allocate
    ? allocateBits(stds, bits, { rounding: "round", strict: config.bitAllocMode === "strict" })
    : new Array<number>(cm.channels).fill(bits);
  const q = quantizeWeights(cm.data, cm.channels, perChannel, {
    biasCorrection: has(config, "biascorr"),
    varianceCorrection: has(config, "biascorr") && config.varianceCorrection,
    symmetric,
    intervals: has(config, "weight-clip") ? weightClipIntervals(cm.data, cm.channels, perChannel, "mse") : undefined,
  });
  let shift: number | null = null;
  if (has(config, "biascorr")) {
    let sum = 0;
    for (let c = 0; c < cm.channels; c++) sum += stds[c] > 0 ? Math.abs(q.meanShift[c]) / stds[c] : 0;
    shift = sum / cm.channels;
  }
  return { bits: perChannel, codes: cm.restore(q.codes), scale: q.scale, offset: q.offset, zeroPoint: q.zeroPoint, symmetric, biasShift: shift };
}

function minmaxInterval(min: number, max: number, halfRange: boolean): { lo: number; range: number } {
  if (halfRange) return { lo: 0, range: Math.max(max, 0) };
  return { lo: min, range: Math.max(max - min, 0) };
}

/**
 * The interval cut to what can matter: the activation's clamp (values beyond it give the same output) and,
 * where `top` is set, the largest value calibration saw (a grid above it is never used).
 */
function limitInterval(iv: { lo: number; range: number }, clamp: Bounds, top: number | null): { lo: number; range: number } {
  const lo = clamp[0] === null ? iv.lo : Math.max(iv.lo, clamp[0]);
  let hi = iv.lo + iv.range;
  if (clamp[1] !== null) hi = Math.min(hi, clamp[1]);
  if (top !== null) hi = Math.min(hi, Math.max(top, lo));
  return { lo, range: Math.max(hi - lo, 0) };
}

/** Per-channel (or one per-tensor) extremes: over every image ("global") or per-image averages ("reference"). */
function extremes(stats: TensorStatistics, perChannel: boolean, calibration: QuantConfig["calibration"]): { min: number[]; max: number[] } {
  if (perChannel) {
    const src = calibration === "global" ? stats.channelGlobal! : stats.perChannel!;
    return { min: Array.from(src.min), max: Array.from(src.max) };
  }
  return calibration === "global" ? { min: [stats.globalMin], max: [stats.globalMax] } : { min: [stats.perTensor.min], max: [stats.perTensor.max] };
}

export function planActivation(layer: PlanLayer, stats: TensorStatistics, bits: number, precision: LayerPlan["precision"], config: QuantConfig): ActivationPlan {
  const halfRange = layer.halfRange;
  const clamp = layer.outputBounds;
  const global = config.calibration === "global";
  // The classifier's channels are classes, and a calibration set rarely shows every class its own images
  // (300 images, 1,000 classes): per class, the calibration maximum misses the winning logit. One range for all
  // classes, as the reference's §5.4 rule does, was worth 0.8 top-1 on Tiny Darknet at W8A8 (1,000 images).
  if (precision === "8bit" && (!global || layer.role === "last")) {
    // §5.4: 8-bit per-tensor min/max, the classifier's extremes over all images, the rest per-image averages.
    // "global" instead treats a kept hidden or first layer like any other at 8 bits: its true range, per channel
    // where the activations are (a per-tensor first-layer output cost MobileNet v1 0.75 W8A8 0.8 top-1)
    const min = layer.role === "last" ? stats.globalMin : stats.perTensor.min;
    const max = layer.role === "last" ? stats.globalMax : stats.perTensor.max;
    const { lo, range } = limitInterval(minmaxInterval(min, max, halfRange), clamp, null);
    const g = gridParams(lo, range, 8);
    return {
      tensor: layer.output, granularity: "per-tensor", bits: [8], lo: [lo], range: [range], scale: [g.scale], zeroPoint: [g.zeroPoint],
      halfRange, bounds: clamp, source: "minmax-8bit", rangeKept: keptFraction([lo], [range], [stats.globalMin], [stats.globalMax], clamp), clipsDiffer: false,
    };
  }
  const perChannel = config.activations === "per-channel" && stats.perChannel !== null;
  const c = perChannel ? channelCount(stats) : 1;
  const pick = (key: "mean" | "mad" | "std"): number[] =>
    perChannel ? Array.from(stats.perChannel![key]) : [stats.perTensor[key]];
  const { min, max } = extremes(stats, perChannel, config.calibration);
  const trueRange = extremes(stats, perChannel, "global");
  const mean = pick("mean");
  const mad = pick("mad");
  const std = pick("std");
  let channelBits: number[] = new Array(c).fill(bits);
  if (perChannel && bits <= 4 && has(config, "bitalloc-a")) {
    channelBits = Array.from(allocateBits(std, bits, { rounding: "round", strict: config.bitAllocMode === "strict" }));
  }
  let intervals: { lo: number; range: number }[];
  let source: ActivationPlan["source"];
  // ACIQ is an analytical clip for low bit widths (§2.6: never applied to the reference's 8-bit tensors);
  // at 8 bits the true range is measured to be better: Tiny Darknet W8A8 68.4 top-1 with ACIQ, 69.4 without
  if (has(config, "aciq") && (bits < 8 || !global)) {
    source = "aciq";
    intervals = channelBits.map((b, i) => {
      const stat = config.prior === "laplace" ? mad[i] : std[i];
      const alpha = aciqAlpha(stat, b, config.prior, halfRange, config.aciqConstants);
      // the reference never shrinks ACIQ's interval to the range seen (§2.4); with the true range known
      // there is no reason to spend grid steps above the largest value calibration saw
      return limitInterval(clipInterval(alpha, mean[i], min[i], halfRange), clamp, global ? max[i] : null);
    });
  } else if (config.baseline !== "minmax" && precision !== "8bit" && stats.histogram) {
    source = config.baseline;
    intervals = channelBits.map((b, i) => {
      const view = channelView(stats.histogram!, i);
      return limitInterval(config.baseline === "percentile" ? percentileInterval(view, PERCENTILE, halfRange) : mseSearchInterval(view, b, halfRange), clamp, null);
    });
  } else {
    source = precision === "8bit" ? "minmax-8bit" : "minmax";
    intervals = min.map((m, i) => limitInterval(minmaxInterval(m, max[i], halfRange), clamp, null));
  }
  const lo = intervals.map((iv) => iv.lo);
  const range = intervals.map((iv) => iv.range);
  const scale: number[] = [];
  const zeroPoint: number[] = [];
  for (let i = 0; i < c; i++) {
    const g = gridParams(lo[i], range[i], channelBits[i]);
    scale.push(g.scale);
    zeroPoint.push(g.zeroPoint);
  }
  return {
    tensor: layer.output, granularity: perChannel ? "per-channel" : "per-tensor", bits: channelBits, lo, range, scale, zeroPoint,
    halfRange, bounds: clamp, source, rangeKept: keptFraction(lo, range, trueRange.min, trueRange.max, clamp),
    clipsDiffer: lo.some((l, i) => {
      const plain = limitInterval(minmaxInterval(min[i], max[i], halfRange), clamp, null);
      const tol = 1e-3 * Math.max(max[i] - min[i], 1e-12);
      return Math.abs(l - plain.lo) > tol || Math.abs(l + range[i] - plain.lo - plain.range) > tol;
    }),
  };
}

/** Σ kept width / Σ observed width over channels, counting only values inside `bounds` (the rest cannot matter). */
function keptFraction(lo: number[], range: number[], min: number[], max: number[], bounds: Bounds): number {
  let kept = 0;
  let seen = 0;
  for (let i = 0; i < lo.length; i++) {
    const sMin = bounds[0] === null ? min[i] : Math.max(min[i], bounds[0]);
    const sMax = bounds[1] === null ? max[i] : Math.min(max[i], bounds[1]);
    seen += Math.max(sMax - sMin, 0);
    kept += Math.max(Math.min(lo[i] + range[i], sMax) - Math.max(lo[i], sMin), 0);
  }
  return seen > 0 ? kept / seen : 1;
}

export function planLayer(layer: PlanLayer, weight: WeightSource, stats: TensorStatistics | undefined, config: QuantConfig, target: Target): LayerPlan {
  const precision = layerPrecision(layer, config);
  if (precision === "float") return { layer, precision, weight: null, activation: null, applied: [], biasCorrection: null };
  const wBits = precision === "8bit" ? 8 : config.wBits;
  const aBits = precision === "8bit" ? 8 : config.aBits;
  const allocW = precision === "low" && wBits <= 4 && has(config, "bitalloc-w") && target.mixedWeightBits;
  const applied: Method[] = [];
  const weightPlan = planWeights(layer, weight, wBits, config, allocW, target.symmetricWeights);
  if (allocW) applied.push("bitalloc-w");
  if (has(config, "weight-clip")) applied.push("weight-clip");
  if (has(config, "biascorr")) applied.push("biascorr");
  let activation: ActivationPlan | null = null;
  if (stats && target.placement === "layer-outputs") {
    activation = planActivation(layer, stats, aBits, precision, config);
    if (activation.source === "aciq") applied.push("aciq");
    if (activation.granularity === "per-channel" && aBits <= 4 && has(config, "bitalloc-a")) applied.push("bitalloc-a");
  }
  return { layer, precision, weight: weightPlan, activation, applied, biasCorrection: null };
}

/** What the correction added to each channel's weights beyond its grid: offset + zeroPoint·scale. */
export function weightResidual(w: WeightPlan): Float64Array {
  return w.offset.map((o, c) => o + w.zeroPoint[c] * w.scale[c]);
}

/**
 * The expected effect on the layer's output of the difference between its float weights and the integer
 * weights an integer target stores (the mean shift the paper's bias correction removes, §4.2): output channel
 * c moves by Σ (W − Ŵ)[c, i, k] · E[x_i] over the weights it reads, the calibration means giving each input
 * channel's E[x_i] (borders' padding ignored). The paper's correction takes each channel's mean error times the
 * sum of the input means, which is this sum only when the input channels' means are equal; at 8 bits the
 * difference was most of MobileNet v1 0.75's loss (below). Stored in the bias, the weights stay on their grid.
 */
export function expectedBiasShift(layer: PlanLayer, w: WeightPlan, weights: WeightSource, inputMeans: ArrayLike<number>): Float64Array {
  const shape = weights.shape;
  const axis = layer.weightAxis;
  const channels = shape[axis];
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const inputOf = weightInputIndex(layer, shape);
  const out = new Float64Array(channels);
  for (let j = 0; j < weights.data.length; j++) {
    const c = Math.floor(j / inner) % channels;
    const stored = (w.codes[j] - w.zeroPoint[c]) * w.scale[c];
    out[c] += (weights.data[j] - stored) * (inputMeans[inputOf(j, c)] ?? 0);
  }
  return out;
}

/** Which input channel (Conv) or feature (Gemm, MatMul) weight j multiplies, given its output channel c. */
function weightInputIndex(layer: PlanLayer, shape: number[]): (j: number, c: number) => number {
  if (layer.op === "Conv") {
    const perGroupIn = shape[1];
    const kernel = shape.slice(2).reduce((a, b) => a * b, 1);
    const perGroupOut = shape[0] / layer.groups;
    return (j, c) => Math.floor(c / perGroupOut) * perGroupIn + (Math.floor(j / kernel) % perGroupIn);
  }
  // a 2-D weight: [outputs, inputs] (Gemm with transB) or [inputs, outputs]
  const cols = shape[1];
  return layer.weightAxis === 0 ? (j) => j % cols : (j) => Math.floor(j / cols);
}

/**
 * An integer target's per-tensor grid for one group of tensors (placement.ts): the true range (or ACIQ
 * below 8 bits), cut to the group's bounds, always holding 0 so the zero point is an integer in range.
 * ACIQ takes an absorbed activation's pre-activation statistics, as the paper does (§2.3).
 */
export function planTensor(
  tensor: string,
  bounds: Bounds,
  stats: TensorStatistics,
  pre: TensorStatistics | undefined,
  bits: number,
  config: QuantConfig,
): ActivationPlan {
  const global = config.calibration === "global";
  const halfRange = bounds[0] === 0;
  const min = global ? stats.globalMin : stats.perTensor.min;
  const max = global ? stats.globalMax : stats.perTensor.max;
  let iv: { lo: number; range: number };
  let source: ActivationPlan["source"] = "minmax";
  if (has(config, "aciq") && (bits < 8 || !global)) {
    const s = halfRange && pre ? pre.perTensor : stats.perTensor;
    const alpha = aciqAlpha(config.prior === "laplace" ? s.mad : s.std, bits, config.prior, halfRange, config.aciqConstants);
    iv = limitInterval(clipInterval(alpha, s.mean, min, halfRange), bounds, global ? max : null);
    source = "aciq";
  } else {
    iv = limitInterval(minmaxInterval(min, max, halfRange), bounds, null);
  }
  const lo = Math.min(iv.lo, 0);
  const range = Math.max(iv.lo + iv.range, 0) - lo;
  const g = gridParams(lo, range, bits);
  const plain = limitInterval(minmaxInterval(min, max, halfRange), bounds, null);
  const tol = 1e-3 * Math.max(max - min, 1e-12);
  return {
    tensor, granularity: "per-tensor", bits: [bits], lo: [lo], range: [range], scale: [g.scale], zeroPoint: [g.zeroPoint],
    halfRange, bounds, source, rangeKept: keptFraction([lo], [range], [stats.globalMin], [stats.globalMax], bounds),
    clipsDiffer: Math.abs(iv.lo - plain.lo) > tol || Math.abs(iv.lo + iv.range - plain.lo - plain.range) > tol,
  };
}
