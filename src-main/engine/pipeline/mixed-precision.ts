// Automatic mixed precision (--max-drop P): the smallest model whose measured drop on the evaluation images is
// at most P points. Layers are promoted to 8-bit weights most sensitive first; the sensitivity is the proxy
// the reconstruct stage already measured (each layer's output error relative to its output energy on the
// calibration data; scripts/bench/sensitivity.ts shows how it ranks against the measured one-layer drop).
// Candidates are exported and measured on the evaluation images (binary search on the number of promoted
// layers, so about log2(layers) + 2 measurements). Each candidate is a fresh run with its promoted layers kept
// at 8 bits, as `--keep NAME=8` would give: with reconstruction on, every layer's rounding and folded bias is
// fitted on the quantized inputs of that candidate's own network, since those of the all-low-bit network
// compensate upstream 4-bit errors the candidate no longer has. Every number is measured on exported bytes,
// and the model returned is one of the measured candidates, byte for byte; everything at 8 bits is the last
// resort, and when even that misses P the report says so.
//
// A drop measured on a few hundred images is noisy (on 500 ImageNet images a 4-bit MobileNet measured 0.4 on one
// half and 2.8 on the other), so a candidate is accepted when its drop plus one standard error of that paired
// difference is at most P: the target then holds on images like these, not only on these. When no candidate
// clears that margin, the fewest-8-bit one whose measured drop alone meets P is returned, said to be within
// the noise; everything at 8 bits is always measured before giving up.
import { clone } from "@bufbuild/protobuf";
import { ModelProtoSchema, type ModelProto } from "onnx-buf";
import type { MixedPrecisionReport, Progress, QuantConfig } from "../../../shared/types.ts";
import type { ImageSet } from "../data/scan.ts";
import { DataError } from "../data/errors.ts";
import type { DetectionSettings } from "./detection.ts";
import type { EvaluationResult, Predictions } from "./evaluate.ts";
import { evaluateQuantized, quantizeCalibrated, type Calibrated, type Quantized } from "./quantize.ts";
import { planWeights, type LayerPlan } from "./plan.ts";
import { throwIfAborted, type ProgressListener } from "./progress.ts";
import { float32Tensor, tensorToFloat32 } from "../onnx/tensor.ts";

export interface MixedPrecisionInput {
  c: Calibrated;
  config: QuantConfig;
  /** the all-low-bit result (after reconstruction when that was on) */
  base: Quantized;
  evalSet: ImageSet;
  maxDrop: number;
  metadata: Record<string, string>;
  detection?: Partial<DetectionSettings>;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
}

export interface MixedPrecisionResult {
  chosen: Quantized;
  report: MixedPrecisionReport;
}

/** Points lost against FP32: top-1 with labels, 100 − top-1 agreement without, 100 − detections kept for a detector. */
export function dropOf(e: EvaluationResult): { drop: number; metric: MixedPrecisionReport["metric"] } {
  if (e.fp32.top1 !== null && e.quantized?.top1 !== null && e.quantized?.top1 !== undefined) return { drop: e.fp32.top1 - e.quantized.top1, metric: "top1" };
  if (e.agreement) return { drop: 100 - e.agreement.agreement, metric: "agreement" };
  if (e.detection && e.detection.keptPercent !== null) return { drop: 100 - e.detection.keptPercent, metric: "detection" };
  throw new DataError("--max-drop measures each candidate by top-1, by agreement with FP32's top-1 or by the detections FP32 finds; this model has neither a class output nor detector outputs, and on these samples FP32 finds no detection. Choose the layers to keep at 8 bits with --keep instead.");
}

/**
 * One standard error of the measured drop, in its points: the paired per-image difference (FP32 right and
 * quantized wrong counts +1, the reverse −1) for top-1, the per-image disagreement for agreement. 0 for a
 * detector, whose fidelity is not kept per image.
 */
export function dropMargin(e: EvaluationResult, metric: MixedPrecisionReport["metric"]): number {
  const q = e.predictions.quantized;
  if (!q || metric === "detection") return 0;
  const f = e.predictions.fp32;
  let n = 0;
  let sum = 0;
  let squares = 0;
  for (let i = 0; i < f.top1.length; i++) {
    let d: number;
    if (metric === "top1") {
      if (f.labels[i] < 0) continue;
      d = Number(f.top1[i] === f.labels[i]) - Number(q.top1[i] === f.labels[i]);
    } else d = Number(f.top1[i] !== q.top1[i]);
    n++;
    sum += d;
    squares += d * d;
  }
  if (n < 2) return 0;
  const mean = sum / n;
  return 100 * Math.sqrt(Math.max(0, squares / n - mean * mean) / n);
}

/** Average weight bits over the quantized layers' weights. */
export function averageBits(plans: LayerPlan[]): number {
  let bits = 0;
  let count = 0;
  for (const p of plans) {
    if (!p.weight) continue;
    const per = p.weight.codes.length / p.weight.bits.length;
    for (const b of p.weight.bits) bits += b * per;
    count += p.weight.codes.length;
  }
  return count ? bits / count : 32;
}

/** Spearman's rank correlation (average ranks for ties). */
export function spearman(a: number[], b: number[]): number | null {
  if (a.length < 3 || a.length !== b.length) return null;
  const ranks = (x: number[]) => {
    const order = x.map((v, i) => [v, i] as const).sort((p, q) => p[0] - q[0]);
    const r = new Array<number>(x.length);
    for (let i = 0; i < order.length; ) {
      let j = i;
      while (j + 1 < order.length && order[j + 1][0] === order[i][0]) j++;
      for (let k = i; k <= j; k++) r[order[k][1]] = (i + j) / 2;
      i = j + 1;
    }
    return r;
  };
  const ra = ranks(a);
  const rb = ranks(b);
  const mean = (x: number[]) => x.reduce((s, v) => s + v, 0) / x.length;
  const ma = mean(ra);
  const mb = mean(rb);
  let num = 0;
  let da = 0;
  let db = 0;
  for (let i = 0; i < ra.length; i++) {
    num += (ra[i] - ma) * (rb[i] - mb);
    da += (ra[i] - ma) ** 2;
    db += (rb[i] - mb) ** 2;
  }
  return da > 0 && db > 0 ? num / Math.sqrt(da * db) : null;
}

/** Without a reconstruction (no Hessians), each layer's relative weight error ‖W − Ŵ‖² / ‖W‖². */
export function weightErrorProxy(c: Calibrated, plans: LayerPlan[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const p of plans) {
    if (!p.weight) continue;
    const w = c.weights.get(p.layer.weightName)!;
    const axis = p.layer.weightAxis;
    const inner = w.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
    const channels = w.shape[axis];
    let err = 0;
    let energy = 0;
    for (let i = 0; i < w.data.length; i++) {
      const ch = Math.floor(i / inner) % channels;
      err += (w.data[i] - (p.weight.codes[i] * p.weight.scale[ch] + p.weight.offset[ch])) ** 2;
      energy += w.data[i] ** 2;
    }
    out.set(p.layer.name, energy > 0 ? err / energy : 0);
  }
  return out;
}

/** `plans` with the weights of `names` at 8 bits (nearest rounding, same clipping method); activations unchanged. */
export function promote(c: Calibrated, plans: LayerPlan[], names: Set<string>, config: QuantConfig): LayerPlan[] {
  return plans.map((p) => {
    if (!names.has(p.layer.name) || !p.weight) return p;
    const weight = planWeights(p.layer, c.weights.get(p.layer.weightName)!, 8, config, false);
    return { ...p, precision: "8bit" as const, weight };
  });
}

/** `model` with the biases of `names` as in the prepared model (undoing a bias fold made for their low-bit weights). */
export function restoreBiases(c: Calibrated, model: ModelProto, names: Set<string>): ModelProto {
  if (model === c.prepared.model || names.size === 0) return model;
  const original = new Map(c.prepared.model.graph!.node.map((n) => [n.name, n.input[2]]));
  const inits = new Map(c.prepared.model.graph!.initializer.map((t) => [t.name, t]));
  const copy = clone(ModelProtoSchema, model);
  for (const n of copy.graph!.node) {
    if (!names.has(n.name) || !n.input[2]) continue;
    const from = original.get(n.name);
    const values = from ? tensorToFloat32(inits.get(from)!) : null;
    const at = copy.graph!.initializer.findIndex((t) => t.name === n.input[2]);
    if (at < 0) continue;
    const dims = copy.graph!.initializer[at].dims.map(Number);
    copy.graph!.initializer[at] = float32Tensor(n.input[2], dims, values ?? new Float32Array(dims[0]));
  }
  return copy;
}

/** `config` with `names` kept at 8 bits, as `--keep NAME=8` gives. */
export function withEightBit(config: QuantConfig, names: Iterable<string>): QuantConfig {
  return { ...config, keep: { ...config.keep, ...Object.fromEntries([...names].map((n) => [n, "8" as const])) } };
}

/** The measured candidate with the fewest layers at 8 bits (then the smallest) whose drop alone meets `maxDrop`. */
function fewestMeeting(candidates: MixedPrecisionReport["candidates"], maxDrop: number): number | null {
  let at: number | null = null;
  candidates.forEach((x, i) => {
    if (x.drop > maxDrop) return;
    if (at === null || x.layers8 < candidates[at].layers8 || (x.layers8 === candidates[at].layers8 && x.bytes < candidates[at].bytes)) at = i;
  });
  return at;
}

export async function searchMixedPrecision(input: MixedPrecisionInput): Promise<MixedPrecisionResult> {
  const { c, config, base, evalSet, maxDrop } = input;
  const req = { preprocess: c.preprocess, layerErrors: false, detection: input.detection, signal: input.signal };
  // FP32's predictions from the first measurement, reused by the others where top-1 is the metric
  let fp32Predictions: Predictions | undefined;
  const proxy = base.reconstruction ? new Map(base.reconstruction.layers.map((l) => [l.name, l.relativeError])) : weightErrorProxy(c, base.plans);
  const low = base.plans.filter((p) => p.precision === "low" && p.weight);
  const order = [...low].sort((a, b) => (proxy.get(b.layer.name) ?? 0) - (proxy.get(a.layer.name) ?? 0) || a.layer.params - b.layer.params);
  const candidates: MixedPrecisionReport["candidates"] = [];
  const built = new Map<number, Quantized>();
  let metric: MixedPrecisionReport["metric"] = "top1";
  const planned = Math.ceil(Math.log2(order.length + 1)) + 2;
  /** measures the candidate with the `k` most sensitive layers at 8 bits; whether it meets the target with its margin */
  const measure = async (k: number, q?: Quantized): Promise<boolean> => {
    throwIfAborted(input.signal);
    input.onProgress?.({ stage: "sensitivity", done: candidates.length, total: planned, etaSeconds: null, message: `${k} layer${k === 1 ? "" : "s"} at 8 bits` });
    const names = new Set(order.slice(0, k).map((p) => p.layer.name));
    // the reconstruct stage's progress per layer shows while a candidate is fitted; its other stages would only flicker
    const onProgress = (p: Progress) => {
      if (p.stage === "reconstruct") input.onProgress?.(p);
    };
    q ??= await quantizeCalibrated(c, withEightBit(config, names), input.metadata, onProgress, input.signal);
    const e = await evaluateQuantized(c, q.bytes, evalSet, req, fp32Predictions);
    fp32Predictions = e.predictions.fp32;
    const d = dropOf(e);
    metric = d.metric;
    const margin = dropMargin(e, d.metric);
    const meets = d.drop + margin <= maxDrop;
    candidates.push({ layers8: k, kept: [...names], averageBits: averageBits(q.plans), bytes: q.bytes.length, drop: d.drop, margin, meets });
    built.set(candidates.length - 1, q);
    return meets;
  };
  const indexOf = (k: number) => candidates.findIndex((x) => x.layers8 === k);
  let chosenK: number | null = null;
  if (await measure(0, base)) chosenK = 0;
  else if (order.length > 0 && (await measure(order.length))) {
    let lo = 0;
    let hi = order.length;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (await measure(mid)) hi = mid;
      else lo = mid;
    }
    chosenK = hi;
  }
  const withinNoise = chosenK === null ? fewestMeeting(candidates, maxDrop) : null;
  const chosen: number | null = chosenK === null ? withinNoise : indexOf(chosenK);
  const best = candidates.reduce((a, b, i) => (b.drop < candidates[a].drop ? i : a), 0);
  const unit = { top1: "top-1 points", agreement: "points of FP32 agreement", detection: "points of FP32's detections" }[metric];
  const measured = (x: MixedPrecisionReport["candidates"][number]) => `drop ${x.drop.toFixed(2)}${x.margin > 0 ? ` ± ${x.margin.toFixed(2)}` : ""} ${unit}`;
  const of = (x: MixedPrecisionReport["candidates"][number]) => `${x.layers8} of ${order.length} layers at 8 bits`;
  const summary =
    chosen === null
      ? `No model met the target of ${maxDrop} ${unit}: the closest, with ${of(candidates[best])}, lost ${candidates[best].drop.toFixed(2)}. It is returned; keep more layers in float or give more calibration images.`
      : withinNoise !== null
        ? `${of(candidates[chosen])} meet the target on these ${evalSet.files.length} images (${measured(candidates[chosen])}), but no candidate met it with its standard error added, so it may not hold on other images; evaluate on more images to be sure.`
        : `${of(candidates[chosen])} meet the target: ${measured(candidates[chosen])} on ${evalSet.files.length} evaluation images, at most ${maxDrop} with one standard error added; ${candidates[chosen].averageBits.toFixed(2)} weight bits on average.`;
  input.onProgress?.({ stage: "sensitivity", done: planned, total: planned, etaSeconds: 0 });
  return {
    chosen: built.get(chosen ?? best)!,
    report: {
      maxDrop,
      metric,
      images: evalSet.files.length,
      sensitivity: order.map((p) => ({ layer: p.layer.name, params: p.layer.params, proxy: proxy.get(p.layer.name) ?? 0, measuredDrop: null })),
      rankCorrelation: null,
      candidates,
      chosen,
      summary,
    },
  };
}
