// The emitter of the integer targets (ort, int4-npu): the placement of placement.ts written as QDQ units a
// runtime fuses. Every quantized tensor gets one QuantizeLinear (UINT8, per tensor) and one DequantizeLinear
// under its own name, so every reader, float or integer, sees the quantized values; weights are symmetric
// signed codes (zero point 0) behind a per-channel DequantizeLinear; biases are INT32 with scale = input
// scale × weight scale; activations the quantizer's range performs are removed.
import { clone, create } from "@bufbuild/protobuf";
import { AttributeProtoSchema, AttributeProto_AttributeType, ModelProtoSchema, NodeProtoSchema, type NodeProto, type TensorProto } from "onnx-buf";
import { nameGenerator } from "../onnx/graph.ts";
import { float32Tensor, int32Tensor, packedIntTensor, tensorToFloat32 } from "../onnx/tensor.ts";
import type { ActivationPlan, LayerPlan } from "../pipeline/plan.ts";
import { upgradeOpset } from "../onnx/opset/index.ts";
import { spliceQuantizers } from "./splice.ts";
import type { ExportedLayer, ExportInput, ExportResult, Target } from "./target.ts";

const INT32_MAX = 2 ** 31 - 1;

function node(opType: string, name: string, input: string[], output: string[], axis?: number): NodeProto {
  const attribute = axis === undefined ? [] : [create(AttributeProtoSchema, { name: "axis", type: AttributeProto_AttributeType.INT, i: BigInt(axis) })];
  return create(NodeProtoSchema, { opType, name, input, output, attribute });
}

/** The activation grid of a group as QuantizeLinear parameters: UINT8 scale and zero point. */
function activationParams(a: ActivationPlan): { scale: number; zero: number } {
  const zero = a.zeroPoint[0];
  if (!(zero >= 0 && zero <= 255) || a.bits[0] !== 8) throw new Error(`internal: tensor ${a.tensor} has no UINT8 grid (zero point ${zero}, ${a.bits[0]} bits)`);
  return { scale: Math.fround(a.scale[0]), zero };
}

export function exportInteger(target: Target, input: ExportInput): ExportResult {
  const placement = input.placement!;
  const model = clone(ModelProtoSchema, input.model);
  const graph = model.graph!;
  const unique = nameGenerator(graph);
  const notes = upgradeOpset(model, unique);
  const before = new Map<NodeProto, NodeProto[]>();
  const after = new Map<NodeProto, NodeProto[]>();
  const push = (m: Map<NodeProto, NodeProto[]>, at: NodeProto, ns: NodeProto[]) => m.set(at, [...(m.get(at) ?? []), ...ns]);
  const producer = () => new Map(graph.node.flatMap((n) => n.output.map((o) => [o, n] as const)));

  // activations the quantizer's range performs: the layer writes straight into the tensor the activation wrote
  const removed = new Set<NodeProto>();
  let made = producer();
  for (const [out, { input: pre }] of placement.absorbed) {
    const act = made.get(out)!;
    const src = made.get(pre)!;
    src.output = src.output.map((o) => (o === pre ? out : o));
    removed.add(act);
  }
  graph.node = graph.node.filter((n) => !removed.has(n));
  made = producer();

  const originalName = new Map<string, string>();
  const groupPlan = (t: string): ActivationPlan => {
    const g = placement.groupOf.get(originalName.get(t) ?? t);
    const a = g && input.tensors.get(g.root);
    if (!a) throw new Error(`internal: tensor ${t} is placed but has no plan`);
    return a;
  };

  // one Q and one DQ per quantized tensor, the DQ keeping the tensor's name
  const graphInputs = new Set(graph.input.map((v) => v.name));
  const renamedInputs = new Map<string, string>();
  for (const g of placement.groups) {
    const { scale, zero } = activationParams(input.tensors.get(g.root)!);
    const s = unique(`${g.root}_scale`);
    const z = unique(`${g.root}_zero_point`);
    graph.initializer.push(float32Tensor(s, [], [scale]), packedIntTensor(z, [], Uint8Array.of(zero), "UINT8"));
    for (const t of g.members) {
      const q = unique(`${t}_quantized`);
      const p = made.get(t);
      if (!p && graphInputs.has(t)) {
        const dq = unique(`${t}_dequantized`);
        renamedInputs.set(t, dq);
        originalName.set(dq, t);
        const qn = node("QuantizeLinear", unique(`${t}_q`), [t, s, z], [q]);
        const dqn = node("DequantizeLinear", unique(`${t}_dq`), [q, s, z], [dq]);
        graph.node.unshift(qn, dqn);
        continue;
      }
      const pre = unique(`${t}_float`);
      p!.output = p!.output.map((o) => (o === t ? pre : o));
      push(after, p!, [node("QuantizeLinear", unique(`${t}_q`), [pre, s, z], [q]), node("DequantizeLinear", unique(`${t}_dq`), [q, s, z], [t])]);
    }
  }
  for (const n of graph.node) if (n.opType !== "QuantizeLinear") n.input = n.input.map((i) => renamedInputs.get(i) ?? i);

  // weights and INT32 biases of the weighted units
  const byNode = new Map(input.plans.filter((p) => p.weight).map((p) => [p.layer.name, p]));
  const inits = new Map(graph.initializer.map((t) => [t.name, t]));
  const dropped = new Set<string>();
  const layers: ExportedLayer[] = [];
  for (const unit of placement.units) {
    if (unit.rule.role !== "weighted" || !unit.layer) continue;
    const plan = byNode.get(unit.layer);
    const n = graph.node.find((x) => x.name === unit.layer);
    if (!plan || !n) continue;
    const w = plan.weight!;
    const shape = input.weightShapes.get(plan.layer.weightName)!;
    const axis = plan.layer.weightAxis;
    const container = target.weightContainer(Math.max(...w.bits));
    const half = w.zeroPoint;
    const channels = shape[axis];
    const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
    const codes = Int8Array.from(w.codes, (code, i) => code - half[Math.floor(i / inner) % channels]);
    const wScale = Float32Array.from(w.scale, (v) => Math.fround(v));
    const sx = groupPlan(n.input[0]).scale[0];
    // the bias scale must let the bias fit INT32; a channel whose weights are all (nearly) zero may need a coarser weight step
    const bias = plan.layer.op === "MatMul" ? null : biasValues(n, plan, inits, channels);
    if (bias) for (let c = 0; c < channels; c++) wScale[c] = Math.fround(Math.max(wScale[c], Math.abs(bias[c]) / (sx * INT32_MAX * 0.5)));
    const names = { q: unique(`${plan.layer.weightName}_quantized`), s: unique(`${plan.layer.weightName}_scale`), z: unique(`${plan.layer.weightName}_zero_point`) };
    const wOut = unique(`${plan.layer.weightName}_dequantized`);
    graph.initializer.push(
      packedIntTensor(names.q, shape, codes, container),
      float32Tensor(names.s, [channels], wScale),
      packedIntTensor(names.z, [channels], new Int8Array(channels), container),
    );
    const weightNodes = [node("DequantizeLinear", unique(`${plan.layer.name}_weight_dq`), [names.q, names.s, names.z], [wOut], axis)];
    n.input[1] = wOut;
    dropped.add(plan.layer.weightName);
    if (bias) {
      const bScale = Float32Array.from(wScale, (v) => Math.fround(v * sx));
      const bq = Int32Array.from(bias, (b, c) => Math.max(-INT32_MAX, Math.min(INT32_MAX, Math.round(b / bScale[c]))));
      const bn = { q: unique(`${plan.layer.name}_bias_quantized`), s: unique(`${plan.layer.name}_bias_scale`), z: unique(`${plan.layer.name}_bias_zero_point`) };
      const bOut = unique(`${plan.layer.name}_bias_dequantized`);
      graph.initializer.push(int32Tensor(bn.q, [channels], bq), float32Tensor(bn.s, [channels], bScale), int32Tensor(bn.z, [channels], new Int32Array(channels)));
      weightNodes.push(node("DequantizeLinear", unique(`${plan.layer.name}_bias_dq`), [bn.q, bn.s, bn.z], [bOut], 0));
      if (n.input[2]) dropped.add(n.input[2]);
      n.input[2] = bOut;
    }
    push(before, n, weightNodes);
    const out = unit.output ? groupPlan(unit.output.root) : null;
    layers.push({
      name: plan.layer.name,
      form: out ? [] : ["output left in float (no quantized operator reads it)"],
      weightContainer: `${container}${Math.max(...w.bits) < (container === "INT4" ? 4 : 8) ? ` (${Math.max(...w.bits)}-bit grid)` : ""}`,
      activationContainer: out ? "UINT8" : null,
    });
  }

  spliceQuantizers(model, before, after, dropped, input.metadata);
  return { model, layers, notes };
}

/** The float bias plus the correction's expected effect, one per output channel (zeros when the layer has none). */
function biasValues(n: NodeProto, plan: LayerPlan, inits: Map<string, TensorProto>, channels: number): Float64Array | null {
  const existing = n.input[2] ? inits.get(n.input[2]) : undefined;
  if (n.input[2] && !existing) return null;
  const b = new Float64Array(channels);
  if (existing) b.set(tensorToFloat32(existing));
  if (plan.biasCorrection) for (let c = 0; c < channels; c++) b[c] += plan.biasCorrection[c];
  return b;
}
