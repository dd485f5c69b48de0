// The quantize stage: from frozen statistics and the float weights to every layer's integer grid.
// Pure: no I/O, no runtime. The exporter turns a plan into ONNX; the report reads it back.
import type { LayerInfo, Method, QuantConfig } from "../../../shared/types.ts";
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
  /** output tensor that is quantized: the pre-activation conv/gemm output */
  output: string;
  weightName: string;
  /** axis of the weight tensor that indexes output channels */
  weightAxis: number;
}

export interface WeightPlan {
  bits: number[];
  /** integer codes in [0, 2^bits − 1], in the weight tensor's own layout */
  codes: Uint8Array;
  /** value = code · scale[c] + offset[c], per output channel */
  scale: Float64Array;
  offset: Float64Array;
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

export function planWeights(layer: PlanLayer, w: WeightSource, bits: number, config: QuantConfig, allocate: boolean): WeightPlan {
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
    intervals: has(config, "weight-clip") ? weightClipIntervals(cm.data, cm.channels, perChannel, "mse") : undefined,
  });
  let shift: number | null = null;
  if (has(config, "biascorr")) {
    let sum = 0;
    for (let c = 0; c < cm.channels; c++) sum += stds[c] > 0 ? Math.abs(q.meanShift[c]) / stds[c] : 0;
    shift = sum / cm.channels;
  }
  return { bits: perChannel, codes: cm.restore(q.codes), scale: q.scale, offset: q.offset, biasShift: shift };
}

function minmaxInterval(min: number, max: number, halfRange: boolean): { lo: number; range: number } {
  if (halfRange) return { lo: 0, range: Math.max(max, 0) };
  return { lo: min, range: Math.max(max - min, 0) };
}

export function planActivation(layer: PlanLayer, stats: TensorStatistics, bits: number, precision: LayerPlan["precision"], config: QuantConfig): ActivationPlan {
  // a ReLU6 also discards everything below 0, and nothing above 6 survives it, so its quantizer is
  // half-range with the top of the grid at 6 at most
  const relu6 = layer.activation === "relu6";
  const halfRange = layer.halfRange || relu6;
  if (precision === "8bit") {
    // §5.4: 8-bit per-tensor min/max; the classifier takes extremes over all images, the rest per-image averages
    const min = layer.role === "last" ? stats.globalMin : stats.perTensor.min;
    const max = layer.role === "last" ? stats.globalMax : stats.perTensor.max;
    const { lo, range } = minmaxInterval(min, max, halfRange);
    const g = gridParams(lo, range, 8);
    return {
      tensor: layer.output, granularity: "per-tensor", bits: [8], lo: [lo], range: [range], scale: [g.scale], zeroPoint: [g.zeroPoint],
      halfRange, source: "minmax-8bit", rangeKept: keptFraction([lo], [range], [min], [max]), clipsDiffer: false,
    };
  }
  const perChannel = config.activations === "per-channel" && stats.perChannel !== null;
  const c = perChannel ? channelCount(stats) : 1;
  const pick = (key: "min" | "max" | "mean" | "mad" | "std"): number[] =>
    perChannel ? Array.from(stats.perChannel![key]) : [stats.perTensor[key]];
  const min = pick("min");
  const max = pick("max");
  const mean = pick("mean");
  const mad = pick("mad");
  const std = pick("std");
  let channelBits: number[] = new Array(c).fill(bits);
  if (perChannel && bits <= 4 && has(config, "bitalloc-a")) {
    channelBits = Array.from(allocateBits(std, bits, { rounding: "round", strict: config.bitAllocMode === "strict" }));
  }
  const lo: number[] = [];
  const range: number[] = [];
  let source: ActivationPlan["source"];
  if (has(config, "aciq")) {
    source = "aciq";
    for (let i = 0; i < c; i++) {
      const stat = config.prior === "laplace" ? mad[i] : std[i];
      const alpha = aciqAlpha(stat, channelBits[i], config.prior, halfRange, config.aciqConstants);
      const iv = clipInterval(alpha, mean[i], min[i], halfRange);
      lo.push(iv.lo);
      range.push(iv.range);
    }
  } else if (config.baseline !== "minmax" && stats.histogram) {
    source = config.baseline;
    for (let i = 0; i < c; i++) {
      const view = channelView(stats.histogram, i);
      const iv = config.baseline === "percentile" ? percentileInterval(view, PERCENTILE, halfRange) : mseSearchInterval(view, channelBits[i], halfRange);
      lo.push(iv.lo);
      range.push(iv.range);
    }
  } else {
    source = "minmax";
    for (let i = 0; i < c; i++) {
      const iv = minmaxInterval(min[i], max[i], halfRange);
      lo.push(iv.lo);
      range.push(iv.range);
    }
  }
  if (relu6) for (let i = 0; i < c; i++) range[i] = Math.min(range[i], 6);
  const scale: number[] = [];
  const zeroPoint: number[] = [];
  for (let i = 0; i < c; i++) {
    const g = gridParams(lo[i], range[i], channelBits[i]);
    scale.push(g.scale);
    zeroPoint.push(g.zeroPoint);
  }
  return {
    tensor: layer.output, granularity: perChannel ? "per-channel" : "per-tensor", bits: channelBits, lo, range, scale, zeroPoint,
    halfRange, source, rangeKept: keptFraction(lo, range, min, max, halfRange),
    clipsDiffer: lo.some((l, i) => {
      const plain = minmaxInterval(min[i], max[i], halfRange);
      const tol = 1e-3 * Math.max(max[i] - min[i], 1e-12);
      return Math.abs(l - plain.lo) > tol || Math.abs(l + range[i] - plain.lo - plain.range) > tol;
    }),
  };
}

/** Σ kept width / Σ observed width, over channels; for half-range tensors only the positive side counts. */
function keptFraction(lo: number[], range: number[], min: number[], max: number[], halfRange = false): number {
  let kept = 0;
  let seen = 0;
  for (let i = 0; i < lo.length; i++) {
    const sMin = halfRange ? 0 : min[i];
    const sMax = halfRange ? Math.max(max[i], 0) : max[i];
    seen += Math.max(sMax - sMin, 0);
    kept += Math.max(Math.min(lo[i] + range[i], sMax) - Math.max(lo[i], sMin), 0);
  }
  return seen > 0 ? kept / seen : 1;
}

export function planLayer(layer: PlanLayer, weight: WeightSource, stats: TensorStatistics | undefined, config: QuantConfig): LayerPlan {
  const precision = layerPrecision(layer, config);
  if (precision === "float") return { layer, precision, weight: null, activation: null, applied: [] };
  const wBits = precision === "8bit" ? 8 : config.wBits;
  const aBits = precision === "8bit" ? 8 : config.aBits;
  const allocW = precision === "low" && wBits <= 4 && has(config, "bitalloc-w");
  const applied: Method[] = [];
  const weightPlan = planWeights(layer, weight, wBits, config, allocW);
  if (allocW) applied.push("bitalloc-w");
  if (has(config, "weight-clip")) applied.push("weight-clip");
  if (has(config, "biascorr")) applied.push("biascorr");
  let activation: ActivationPlan | null = null;
  if (stats) {
    activation = planActivation(layer, stats, aBits, precision, config);
    if (activation.source === "aciq") applied.push("aciq");
    if (activation.granularity === "per-channel" && aBits <= 4 && has(config, "bitalloc-a")) applied.push("bitalloc-a");
  }
  return { layer, precision, weight: weightPlan, activation, applied };
}
