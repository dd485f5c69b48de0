// The exact target: the plan as a standard opset-21 ONNX graph in the paper's placement, weights as INT4/INT8
// codes behind DequantizeLinear, each layer's output through per-channel QuantizeLinear/DequantizeLinear, so
// onnxruntime computes exactly the grid the plan chose: a faithful simulation, any bits, every method.
import { clone, create } from "@bufbuild/protobuf";
import { AttributeProtoSchema, AttributeProto_AttributeType, ModelProtoSchema, NodeProtoSchema, type NodeProto, type TensorProto } from "onnx-buf";
import { nameGenerator } from "../onnx/graph.ts";
import { float32Tensor, int64Tensor, packedIntTensor } from "../onnx/tensor.ts";
import type { ActivationPlan, LayerPlan, WeightPlan } from "../pipeline/plan.ts";
import { upgradeOpset } from "../onnx/opset/index.ts";
import { spliceQuantizers } from "./splice.ts";
import type { ExportedLayer, ExportInput, ExportResult, Target } from "./target.ts";

type IntType = "INT4" | "UINT4" | "INT8" | "UINT8";
const RANGES: Record<IntType, [number, number]> = {
  INT4: [-8, 7],
  UINT4: [0, 15],
  INT8: [-128, 127],
  UINT8: [0, 255],
};

function node(opType: string, name: string, input: string[], output: string[], axis?: number): NodeProto {
  const attribute = axis === undefined ? [] : [create(AttributeProtoSchema, { name: "axis", type: AttributeProto_AttributeType.INT, i: BigInt(axis) })];
  return create(NodeProtoSchema, { opType, name, input, output, attribute });
}

/** A shape of ones with `channels` on `axis`, so a per-channel constant broadcasts against the tensor. */
function broadcastShape(rank: number, axis: number, channels: number): number[] {
  return Array.from({ length: rank }, (_, i) => (i === axis ? channels : 1));
}

interface Emitted {
  nodes: NodeProto[];
  initializers: TensorProto[];
}

/** The elements of the channels `picked` (indices along `axis`), in that order. */
function selectChannels(codes: Uint8Array, shape: number[], axis: number, picked: number[]): Uint8Array {
  const channels = shape[axis];
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const out = new Uint8Array(outer * picked.length * inner);
  let k = 0;
  for (let o = 0; o < outer; o++)
    for (const c of picked) {
      const from = (o * channels + c) * inner;
      out.set(codes.subarray(from, from + inner), k);
      k += inner;
    }
  return out;
}

/**
 * One DequantizeLinear over the channels `picked`, stored in the narrowest container their bits allow.
 * DQ gives (q − z)·s with q = code − half; the plan wants code·s + offset, so z = −half − offset/s
 * where that is an integer in range, and whatever is left over is returned as a per-channel remainder.
 */
function dequantizeGroup(weight: WeightPlan, shape: number[], axis: number, picked: number[], base: string, nodeName: string, out: string, unique: (s: string) => string) {
  const maxBits = Math.max(...picked.map((c) => weight.bits[c]));
  const container: IntType = maxBits <= 4 ? "INT4" : "INT8";
  const half = container === "INT4" ? 8 : 128;
  const [zMin, zMax] = RANGES[container];
  const codes = selectChannels(weight.codes, shape, axis, picked);
  const signed = Int8Array.from(codes, (v) => v - half);
  const scale = new Float32Array(picked.length);
  const zero = new Int8Array(picked.length);
  const remainder = new Float32Array(picked.length);
  picked.forEach((c, i) => {
    const s = Math.fround(weight.scale[c]);
    scale[i] = s;
    zero[i] = Math.min(zMax, Math.max(zMin, Math.round(-half - weight.offset[c] / s)));
    remainder[i] = weight.offset[c] + (half + zero[i]) * s;
  });
  const groupShape = shape.map((d, i) => (i === axis ? picked.length : d));
  const names = { q: unique(`${base}_quantized`), s: unique(`${base}_scale`), z: unique(`${base}_zero_point`) };
  return {
    container,
    remainder,
    initializers: [packedIntTensor(names.q, groupShape, signed, container), float32Tensor(names.s, [picked.length], scale), packedIntTensor(names.z, [picked.length], zero, container)],
    node: node("DequantizeLinear", unique(nodeName), [names.q, names.s, names.z], [out], axis),
  };
}

function exportWeight(plan: LayerPlan, weight: WeightPlan, shape: number[], out: string, unique: (s: string) => string): Emitted & { container: string; exact: boolean } {
  const axis = plan.layer.weightAxis;
  const channels = shape[axis];
  const base = plan.layer.weightName;
  const all = Array.from({ length: channels }, (_, c) => c);
  const narrow = all.filter((c) => weight.bits[c] <= 4);
  const wide = all.filter((c) => weight.bits[c] > 4);
  const nodes: NodeProto[] = [];
  const initializers: TensorProto[] = [];
  const remainder = new Float32Array(channels);
  let dequantized: string;
  let container: string;
  if (narrow.length && wide.length) {
    // bit allocation gave a few channels more than 4 bits: keep the rest at INT4 rather than widen the whole layer
    const order = [...narrow, ...wide];
    const parts = [narrow, wide].map((picked, g) =>
      dequantizeGroup(weight, shape, axis, picked, base, `${plan.layer.name}_weight_dq`, unique(`${base}_dequantized_part${g}`), unique),
    );
    const concat = unique(`${base}_dequantized_grouped`);
    const inverse = new Array<number>(channels);
    order.forEach((c, i) => (inverse[c] = i));
    const indices = unique(`${base}_channel_order`);
    dequantized = unique(`${base}_dequantized`);
    parts.forEach((p, g) => {
      nodes.push(p.node);
      initializers.push(...p.initializers);
      [narrow, wide][g].forEach((c, i) => (remainder[c] = p.remainder[i]));
    });
    initializers.push(int64Tensor(indices, [channels], inverse));
    nodes.push(node("Concat", unique(`${plan.layer.name}_weight_concat`), parts.map((p) => p.node.output[0]), [concat], axis));
    nodes.push(node("Gather", unique(`${plan.layer.name}_weight_order`), [concat, indices], [dequantized], axis));
    container = "INT4+INT8";
  } else {
    dequantized = unique(`${base}_dequantized`);
    const p = dequantizeGroup(weight, shape, axis, all, base, `${plan.layer.name}_weight_dq`, dequantized, unique);
    nodes.push(p.node);
    initializers.push(...p.initializers);
    remainder.set(p.remainder);
    container = p.container;
  }
  const exact = remainder.every((r, c) => Math.abs(r) <= 1e-5 * Math.fround(weight.scale[c]));
  if (exact) {
    nodes[nodes.length - 1].output[0] = out;
  } else {
    const off = unique(`${base}_correction`);
    initializers.push(float32Tensor(off, broadcastShape(shape.length, axis, channels), remainder));
    nodes.push(node("Add", unique(`${plan.layer.name}_weight_correction`), [dequantized, off], [out]));
  }
  return { nodes, initializers, container, exact };
}

interface ChannelGrid {
  scale: number;
  zero: number;
  qmax: number;
}

/** A channel with 0 bits holds one value; any grid through that value reproduces it. */
function channelGrid(a: ActivationPlan, c: number): ChannelGrid {
  const qmax = 2 ** a.bits[c] - 1;
  if (qmax > 0) return { scale: a.scale[c], zero: a.zeroPoint[c], qmax };
  const v = -a.zeroPoint[c] * a.scale[c];
  return v === 0 ? { scale: 1, zero: 0, qmax: 0 } : { scale: Math.abs(v), zero: -Math.sign(v), qmax: 0 };
}

/**
 * Per-tensor activations use UINT4 when their grid fits it, so a runtime can execute them as 4-bit integers.
 * Per-channel ones always sit in UINT8 (with a float clip where a channel has fewer bits): onnxruntime-node
 * 1.30's per-axis UINT4 QuantizeLinear gave wrong values, and corrupted its heap, depending on which other
 * tensors were graph outputs. Returns the container, its zero points and whether the clip is needed.
 */
function chooseContainer(grids: ChannelGrid[]): { type: IntType; zeros: number[]; clip: boolean } | null {
  const candidates: IntType[] = grids.length === 1 ? ["UINT4", "UINT8"] : ["UINT8"];
  for (const type of candidates) {
    const [cmin, cmax] = RANGES[type];
    const zeros: number[] = [];
    let clip = false;
    for (const g of grids) {
      // codes round(x/s) + z must stay inside [cmin, cmax] for x on the grid: z ∈ [cmin + zp, cmax − qmax + zp]
      const lower = Math.max(cmin, cmin + g.zero);
      const upper = Math.min(cmax, cmax - g.qmax + g.zero);
      if (lower > upper) break;
      const z = Math.min(upper, Math.max(lower, g.zero));
      if (z - g.zero !== cmin || g.qmax !== cmax - cmin) clip = true;
      zeros.push(z);
    }
    if (zeros.length === grids.length) return { type, zeros, clip };
  }
  return null;
}

function exportActivation(plan: LayerPlan, a: ActivationPlan, rank: number, input: string, out: string, unique: (s: string) => string): (Emitted & { container: IntType }) | null {
  const perChannel = a.granularity === "per-channel";
  const grids = a.bits.map((_, c) => channelGrid(a, c));
  const chosen = chooseContainer(grids);
  if (!chosen) return null;
  const n = grids.length;
  const dims = perChannel ? [n] : [];
  const nodes: NodeProto[] = [];
  const initializers: TensorProto[] = [];
  const base = `${a.tensor}`;
  let current = input;
  if (chosen.clip) {
    const lowName = unique(`${base}_clip_low`);
    const highName = unique(`${base}_clip_high`);
    const clipDims = perChannel ? broadcastShape(rank - 1, 0, n) : [];
    initializers.push(
      float32Tensor(lowName, clipDims, Float32Array.from(grids, (g) => -g.zero * g.scale)),
      float32Tensor(highName, clipDims, Float32Array.from(grids, (g) => (g.qmax - g.zero) * g.scale)),
    );
    const lowOut = unique(`${base}_clipped_low`);
    const highOut = unique(`${base}_clipped`);
    nodes.push(node("Max", unique(`${plan.layer.name}_clip_low`), [current, lowName], [lowOut]));
    nodes.push(node("Min", unique(`${plan.layer.name}_clip_high`), [lowOut, highName], [highOut]));
    current = highOut;
  }
  const s = unique(`${base}_scale`);
  const z = unique(`${base}_zero_point`);
  const q = unique(`${base}_quantized`);
  const zeros = Uint8Array.from(chosen.zeros);
  initializers.push(float32Tensor(s, dims, Float32Array.from(grids, (g) => g.scale)), packedIntTensor(z, dims, zeros, chosen.type));
  const axis = perChannel ? 1 : undefined;
  nodes.push(node("QuantizeLinear", unique(`${plan.layer.name}_output_q`), [current, s, z], [q], axis));
  nodes.push(node("DequantizeLinear", unique(`${plan.layer.name}_output_dq`), [q, s, z], [out], axis));
  return { nodes, initializers, container: chosen.type };
}

export function exportExact(input: ExportInput): ExportResult {
  const model = clone(ModelProtoSchema, input.model);
  const graph = model.graph!;
  const unique = nameGenerator(graph);
  const notes = upgradeOpset(model, unique);

  const byNode = new Map(input.plans.filter((p) => p.precision !== "float").map((p) => [p.layer.name, p]));
  const before = new Map<NodeProto, NodeProto[]>();
  const after = new Map<NodeProto, NodeProto[]>();
  const layers: ExportedLayer[] = [];
  const dropped = new Set<string>();

  for (const n of graph.node) {
    const plan = byNode.get(n.name);
    if (!plan) continue;
    const reasons: string[] = [];
    let weightContainer: string | null = null;
    let activationContainer: IntType | null = null;
    if (plan.weight) {
      const shape = input.weightShapes.get(plan.layer.weightName)!;
      const out = unique(`${plan.layer.weightName}_dequantized_weight`);
      const w = exportWeight(plan, plan.weight, shape, out, unique);
      weightContainer = w.container;
      before.set(n, w.nodes);
      graph.initializer.push(...w.initializers);
      n.input = n.input.map((i) => (i === plan.layer.weightName ? out : i));
      dropped.add(plan.layer.weightName);
      if (!w.exact) reasons.push("bias correction adds a per-channel float offset to the weights");
    }
    if (plan.activation) {
      const a = plan.activation;
      const rank = input.activationRanks.get(a.tensor) ?? 4;
      const produced = unique(`${a.tensor}_float`);
      const e = exportActivation(plan, a, rank, produced, a.tensor, unique);
      if (e) {
        n.output = n.output.map((o) => (o === a.tensor ? produced : o));
        after.set(n, e.nodes);
        graph.initializer.push(...e.initializers);
        activationContainer = e.container;
        if (a.granularity === "per-channel") reasons.push("per-channel activation scales are simulated (QDQ), not run as integer kernels");
        if (e.nodes[0].opType === "Max") reasons.push(`activation channels use fewer bits than their ${e.container} container, so a float clip keeps each channel on its grid`);
      } else {
        notes.push(`The output of layer "${plan.layer.name}" has a grid no integer type can hold; it is left in float.`);
        reasons.push("output left in float");
      }
    }
    layers.push({ name: plan.layer.name, form: reasons, weightContainer, activationContainer });
  }

  spliceQuantizers(model, before, after, dropped, input.metadata);
  return { model, layers, notes };
}

/** The exact export of layer plans alone (no tensor groups): what the reconstruct stage runs between layers. */
export function exportQuantizedModel(input: Omit<ExportInput, "tensors" | "placement">): ExportResult {
  return exportExact({ ...input, tensors: new Map(), placement: null });
}

export const EXACT: Target = {
  id: "exact",
  placement: "layer-outputs",
  rules: null,
  perChannelActivations: true,
  symmetricWeights: false,
  mixedWeightBits: true,
  integerBias: false,
  quantizeFloatOutputs: false,
  weightContainer: (bits) => (bits <= 4 ? "INT4" : "INT8"),
  emit: exportExact,
};
