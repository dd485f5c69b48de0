// Cross-layer equalization (Nagel et al., "Data-free quantization", 2019) on the prepared, BatchNorm-folded
// graph. For two convolutions joined by a positively homogeneous chain (ReLU, LeakyReLU, bounded Clip,
// max/average pooling), dividing output channel i of the first by s_i and multiplying input channel i of the
// second by s_i leaves the network's function unchanged; s_i = sqrt(r1_i / r2_i) gives both the same range
// r_i = sqrt(r1_i·r2_i) (r1: the first layer's channel range, r2: the second's input-channel range). Pairs
// that share a layer (conv → depthwise → pointwise) are swept until the scales settle, which reaches the
// triplet solution AIMET computes in closed form.
//
// ReLU6 (Clip 0..6): relu6(x/s) = relu6(x)/s only while x/s stays under the bound. AIMET replaces ReLU6 with
// ReLU, which changes the model; here a channel is scaled only when the bound was never reached on the
// calibration data and stays out of reach after scaling (with a margin), otherwise it keeps s = 1, so the
// model keeps its ReLU6 and its outputs.
//
// High-bias absorption: a channel whose pre-activation is always at least c > 0 passes relu(x − c) + c
// = relu(x) through the activation, so c moves into the next layer's bias (b2 += W2·c) and the channel's
// range shrinks. It is exact when the next layer has no padding (a padded border would not see the c).
import { clone } from "@bufbuild/protobuf";
import { ModelProtoSchema, type GraphProto, type ModelProto, type NodeProto } from "onnx-buf";
import { addInitializer, attrFloat, attrInt, attrInts, attribute, consumersOf, constantOf, indexGraph, nameGenerator, type GraphIndex } from "./graph.ts";
import type { QuantLayer } from "./prepare.ts";
import { float32Tensor, tensorElementCount, tensorToFloat32 } from "./tensor.ts";

export type PairActivation = "none" | "relu" | "leakyrelu" | "bounded";

export interface EqualizePair {
  first: string;
  second: string;
  /** the first layer's output tensor (pre-activation), whose channel ranges decide bounds and absorption */
  tensor: string;
  activation: PairActivation;
  /** upper bound of a bounded Clip (6 for ReLU6), else Infinity */
  bound: number;
  /** the second layer reads no padding, so absorbed biases are exact */
  absorbable: boolean;
}

/** Per channel, the smallest and largest value a tensor took on the calibration data. */
export interface ChannelRange {
  min: Float64Array;
  max: Float64Array;
}

const POOLS = new Set(["MaxPool", "AveragePool"]);

function hasPadding(node: NodeProto): boolean {
  const autoPad = attribute(node, "auto_pad");
  const mode = autoPad && autoPad.s.length ? new TextDecoder().decode(autoPad.s) : "NOTSET";
  if (mode !== "NOTSET" && mode !== "VALID") return true;
  return (attrInts(node, "pads") ?? []).some((p) => p !== 0);
}

function clipRange(node: NodeProto, index: GraphIndex): [number, number] {
  if (node.attribute.some((a) => a.name === "min" || a.name === "max")) return [attrFloat(node, "min", -Infinity), attrFloat(node, "max", Infinity)];
  const bound = (k: number, fallback: number) => {
    if (!node.input[k]) return fallback;
    const t = constantOf(index, node.input[k]);
    return t && tensorElementCount(t) === 1 ? tensorToFloat32(t)[0] : NaN;
  };
  return [bound(1, -Infinity), bound(2, Infinity)];
}

/** Conv pairs joined only through channel-wise, positively homogeneous operators, each tensor read once. */
export function findEqualizePairs(model: ModelProto, layers: QuantLayer[]): EqualizePair[] {
  const graph = model.graph!;
  const index = indexGraph(graph);
  const byName = new Map(layers.map((l) => [l.info.name, l]));
  const nodeByName = new Map(graph.node.map((n) => [n.name, n]));
  const pairs: EqualizePair[] = [];
  for (const first of layers) {
    if (first.info.op !== "Conv") continue;
    let tensor = first.output;
    let activation: PairActivation = "none";
    let bound = Infinity;
    let ok = true;
    for (let steps = 0; ok && steps < 8; steps++) {
      const readers = consumersOf(index, tensor);
      if (readers.length !== 1 || index.outputs.has(tensor)) break;
      const n = readers[0];
      const layer = byName.get(n.name);
      if (layer && n.input[0] === tensor) {
        if (layer.info.op === "Conv" && layer.input === tensor) {
          pairs.push({ first: first.info.name, second: layer.info.name, tensor: first.output, activation, bound, absorbable: !hasPadding(nodeByName.get(layer.info.name)!) });
        }
        break;
      }
      if (n.domain !== "" && n.domain !== "ai.onnx") break;
      const isActivation = n.opType === "Relu" || n.opType === "LeakyRelu" || n.opType === "Clip";
      if (isActivation && activation !== "none") break;
      if (n.opType === "Relu") activation = "relu";
      else if (n.opType === "LeakyRelu" && attrFloat(n, "alpha", 0.01) >= 0) activation = "leakyrelu";
      else if (n.opType === "Clip") {
        const [lo, hi] = clipRange(n, index);
        if (lo !== 0 || !(hi > 0)) break;
        activation = Number.isFinite(hi) ? "bounded" : "relu";
        bound = hi;
      } else if (POOLS.has(n.opType)) {
        // an average over padding counts zeros, which a shift would not cancel
        if (n.opType === "AveragePool" && hasPadding(n) && attrInt(n, "count_include_pad", 0) === 1) ok = false;
      } else if (n.opType !== "Identity") break;
      tensor = n.output[0];
    }
  }
  return pairs;
}

export interface EqualizeOptions {
  /** sweeps over all pairs (default 20; stops early once no scale moves by more than 0.01%) */
  sweeps?: number;
  highBias?: boolean;
  /** a bounded channel is scaled only while its calibration maximum, times this, stays under the bound (default 2:
   * with 1.25, unseen MobileNet images moved its outputs by 6e-3 of their largest value; with 2, by 3e-6) */
  boundMargin?: number;
}

export interface PairReport {
  first: string;
  second: string;
  activation: PairActivation;
  channels: number;
  /** channels left unscaled because a bounded activation could not allow it */
  frozen: number;
  /** channels whose bias moved into the next layer */
  absorbed: number;
  /** geometric mean of the final scales' spread: exp(mean |ln s|) */
  typicalScale: number;
}

export interface EqualizeResult {
  model: ModelProto;
  pairs: PairReport[];
  sweeps: number;
}

interface LayerTensors {
  node: NodeProto;
  weight: Float32Array;
  shape: number[];
  bias: Float32Array;
}

function readLayer(graph: GraphProto, index: GraphIndex, layer: QuantLayer): LayerTensors | null {
  const node = graph.node.find((n) => n.name === layer.info.name)!;
  const w = index.initializers.get(layer.weight);
  // a weight or bias another node also reads cannot be rescaled for this pair alone
  if (!w || consumersOf(index, layer.weight).length !== 1) return null;
  const shape = w.dims.map(Number);
  const biasName = node.input[2];
  if (biasName) {
    const b = index.initializers.get(biasName);
    if (!b || consumersOf(index, biasName).length !== 1 || tensorElementCount(b) !== shape[0]) return null;
    return { node, weight: tensorToFloat32(w), shape, bias: tensorToFloat32(b) };
  }
  return { node, weight: tensorToFloat32(w), shape, bias: new Float32Array(shape[0]) };
}

/** max |w| over output channel c of a conv weight [OC, ...]. */
function outRange(t: LayerTensors, c: number): number {
  const per = t.weight.length / t.shape[0];
  let m = 0;
  for (let i = c * per; i < (c + 1) * per; i++) m = Math.max(m, Math.abs(t.weight[i]));
  return m;
}

/** The elements of a conv weight [OC, C/G, k...] that multiply input channel i. */
function inputChannelElements(t: LayerTensors, groups: number, i: number, visit: (index: number, out: number) => void): void {
  const [oc, cg] = t.shape;
  const kernel = t.weight.length / (oc * cg);
  const g = Math.floor(i / cg);
  const local = i % cg;
  const outPer = oc / groups;
  for (let o = g * outPer; o < (g + 1) * outPer; o++) {
    const base = (o * cg + local) * kernel;
    for (let k = 0; k < kernel; k++) visit(base + k, o);
  }
}

/**
 * Equalizes every pair on a copy of `model`. `ranges` holds, per pair tensor, the calibration minimum and
 * maximum of each channel; without them bounded pairs are skipped and no bias is absorbed.
 */
export function equalizeModel(model: ModelProto, layers: QuantLayer[], pairs: EqualizePair[], ranges: Map<string, ChannelRange>, options: EqualizeOptions = {}): EqualizeResult {
  const out = clone(ModelProtoSchema, model);
  const graph = out.graph!;
  const index = indexGraph(graph);
  const byName = new Map(layers.map((l) => [l.info.name, l]));
  const tensors = new Map<string, LayerTensors | null>();
  const get = (name: string) => {
    if (!tensors.has(name)) tensors.set(name, readLayer(graph, index, byName.get(name)!));
    return tensors.get(name)!;
  };
  const margin = options.boundMargin ?? 2;
  interface Work {
    pair: EqualizePair;
    a: LayerTensors;
    b: LayerTensors;
    groups: number;
    /** current channel range of the pair tensor (in current units), and the cumulative scale */
    min: Float64Array;
    max: Float64Array;
    total: Float64Array;
    frozen: Uint8Array;
  }
  const work: Work[] = [];
  for (const pair of pairs) {
    const a = get(pair.first);
    const b = get(pair.second);
    const r = ranges.get(pair.tensor);
    if (!a || !b || (pair.activation === "bounded" && !r)) continue;
    const channels = a.shape[0];
    if (b.shape[1] * byName.get(pair.second)!.groups !== channels) continue;
    const frozen = new Uint8Array(channels);
    if (pair.activation === "bounded") for (let c = 0; c < channels; c++) if (r!.max[c] * margin >= pair.bound) frozen[c] = 1;
    work.push({
      pair, a, b, groups: byName.get(pair.second)!.groups,
      min: r ? Float64Array.from(r.min) : new Float64Array(channels).fill(-Infinity),
      max: r ? Float64Array.from(r.max) : new Float64Array(channels).fill(Infinity),
      total: new Float64Array(channels).fill(1),
      frozen,
    });
  }
  const sweepLimit = options.sweeps ?? 20;
  let sweeps = 0;
  for (; sweeps < sweepLimit; sweeps++) {
    let change = 0;
    for (const w of work) {
      const channels = w.a.shape[0];
      const perOut = w.a.weight.length / channels;
      for (let c = 0; c < channels; c++) {
        if (w.frozen[c]) continue;
        const r1 = outRange(w.a, c);
        let r2 = 0;
        inputChannelElements(w.b, w.groups, c, (i) => (r2 = Math.max(r2, Math.abs(w.b.weight[i]))));
        if (!(r1 > 0 && r2 > 0)) continue;
        let s = Math.sqrt(r1 / r2);
        // keep a bounded activation's bound out of reach: max/s · margin < bound
        if (w.pair.activation === "bounded" && w.max[c] > 0) s = Math.max(s, (w.max[c] * margin) / w.pair.bound);
        if (Math.abs(Math.log(s)) < 1e-9) continue;
        change = Math.max(change, Math.abs(Math.log(s)));
        for (let i = c * perOut; i < (c + 1) * perOut; i++) w.a.weight[i] /= s;
        w.a.bias[c] /= s;
        inputChannelElements(w.b, w.groups, c, (i) => (w.b.weight[i] *= s));
        w.min[c] /= s;
        w.max[c] /= s;
        w.total[c] *= s;
      }
    }
    if (change < 1e-4) break;
  }
  const reports: PairReport[] = [];
  for (const w of work) {
    const channels = w.a.shape[0];
    let absorbed = 0;
    const canAbsorb = options.highBias !== false && w.pair.absorbable && ranges.has(w.pair.tensor) && w.pair.activation !== "none";
    if (canAbsorb) {
      for (let c = 0; c < channels; c++) {
        if (w.frozen[c]) continue;
        const shift = w.min[c];
        if (!(shift > 0) || !Number.isFinite(shift)) continue;
        w.a.bias[c] -= shift;
        inputChannelElements(w.b, w.groups, c, (i, o) => (w.b.bias[o] += shift * w.b.weight[i]));
        w.min[c] -= shift;
        w.max[c] -= shift;
        absorbed++;
      }
    }
    let logSum = 0;
    for (let c = 0; c < channels; c++) logSum += Math.abs(Math.log(w.total[c]));
    reports.push({
      first: w.pair.first, second: w.pair.second, activation: w.pair.activation, channels,
      frozen: w.frozen.reduce((a, b) => a + b, 0), absorbed, typicalScale: Math.exp(logSum / channels),
    });
  }
  const fresh = nameGenerator(graph);
  for (const [name, t] of tensors) {
    if (!t) continue;
    const layer = byName.get(name)!;
    const wi = graph.initializer.findIndex((x) => x.name === layer.weight);
    graph.initializer[wi] = float32Tensor(layer.weight, t.shape, t.weight);
    const biasName = t.node.input[2];
    if (biasName) {
      const bi = graph.initializer.findIndex((x) => x.name === biasName);
      graph.initializer[bi] = float32Tensor(biasName, [t.bias.length], t.bias);
    } else if (t.bias.some((v) => v !== 0)) {
      const nameB = fresh(`${name}_equalized_bias`);
      addInitializer(graph, float32Tensor(nameB, [t.bias.length], t.bias), Number(out.irVersion));
      while (t.node.input.length < 3) t.node.input.push("");
      t.node.input[2] = nameB;
    }
  }
  return { model: out, pairs: reports, sweeps };
}
