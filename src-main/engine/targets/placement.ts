// Where the integer targets quantize activations: at the inputs of quantized operators and at their outputs,
// per tensor, as onnxruntime's own quantizer does (qdq_quantizer.py). Pure graph analysis over the rules of
// qdq-rules.ts: which tensors get a QuantizeLinear/DequantizeLinear pair, which share a scale (a MaxPool or
// Reshape keeps its input's, so the runtime runs it on the integers) and which activations the quantizer's
// range replaces. Calibration measures the groups' roots; the emitter writes exactly this placement.
import type { GraphProto, NodeProto } from "onnx-buf";
import type { Bounds } from "../../../shared/types.ts";
import { activationAfter } from "../onnx/activations.ts";
import { constantOf, indexGraph, isDefaultDomain, type GraphIndex } from "../onnx/graph.ts";
import { weightedSupported, type QdqRule } from "./qdq-rules.ts";

/** Tensors that share one scale and zero point; the root is the one calibration measures. */
export interface QuantGroup {
  root: string;
  /** every tensor with this scale and zero point, root first */
  members: string[];
  /** what the values can be before calibration (an absorbed ReLU6 gives [0, 6]) */
  bounds: Bounds;
  /** the pre-activation tensor of an absorbed activation: ACIQ takes its statistics there (§2.3) */
  preActivation: string | null;
}

export interface QuantUnit {
  node: NodeProto;
  rule: QdqRule;
  /** the layer name for weighted units */
  layer: string | null;
  /** the group its output goes to; null when the output stays float (a classifier Gemm's logits) */
  output: QuantGroup | null;
}

export interface Placement {
  groups: QuantGroup[];
  groupOf: Map<string, QuantGroup>;
  /** activations the quantizer's range performs: removed by the emitter (keyed by their output tensor) */
  absorbed: Map<string, { node: NodeProto; input: string }>;
  units: QuantUnit[];
}

export interface PlacementInput {
  graph: GraphProto;
  rules: Readonly<Record<string, QdqRule>>;
  /** weighted layers to quantize: node name → layer name */
  layers: Map<string, string>;
  /** quantize the result of a Gemm/MatMul that no quantized operator reads too (QNN's every-op-a-unit form) */
  quantizeFloatOutputs: boolean;
}

/** Bounds that operators give their output whatever their input (Sigmoid [0, 1], ...). */
const OUTPUT_BOUNDS: Record<string, Bounds> = { Sigmoid: [0, 1], HardSigmoid: [0, 1], Tanh: [-1, 1], Softmax: [0, 1], HardSwish: [-0.375, null] };

export function placeActivations(input: PlacementInput): Placement {
  const { graph, rules } = input;
  const index = indexGraph(graph);
  const ruleOf = (n: NodeProto): QdqRule | undefined => (isDefaultDomain(n) ? rules[n.opType] : undefined);
  const floats = floatTensors(graph);
  const isData = (t: string) => t !== "" && floats.has(t) && !constantOf(index, t);
  const dataInputs = (n: NodeProto, r: QdqRule) => r.data(n).map((i) => n.input[i]).filter((t) => t !== undefined && t !== "");

  // an operator that becomes an integer unit whatever surrounds it
  const isAnchor = (n: NodeProto): boolean => {
    const r = ruleOf(n);
    if (!r) return false;
    if (r.role === "weighted") return input.layers.has(n.name) && weightedSupported(n);
    // an Add or Mul with a constant operand is preprocessing or scaling, left in float
    return r.role === "multi" && dataInputs(n, r).length > 0 && dataInputs(n, r).every(isData);
  };

  // backwards: the tensors some quantized operator must read from a DequantizeLinear
  const feeds = new Set<string>();
  for (let i = graph.node.length - 1; i >= 0; i--) {
    const n = graph.node[i];
    const r = ruleOf(n);
    if (!r) continue;
    if (isAnchor(n)) dataInputs(n, r).forEach((t) => feeds.add(t));
    else if ((r.role === "passthrough" || r.role === "unary") && n.output.some((o) => feeds.has(o)) && isData(n.input[0])) feeds.add(n.input[0]);
  }

  const groups: QuantGroup[] = [];
  const groupOf = new Map<string, QuantGroup>();
  const absorbed = new Map<string, { node: NodeProto; input: string }>();
  const units: QuantUnit[] = [];
  const newGroup = (root: string, bounds: Bounds, preActivation: string | null = null): QuantGroup => {
    const g: QuantGroup = { root, members: [root], bounds, preActivation };
    groups.push(g);
    groupOf.set(root, g);
    return g;
  };
  const ensure = (t: string): QuantGroup => groupOf.get(t) ?? newGroup(t, [null, null]);
  const join = (t: string, g: QuantGroup) => {
    g.members.push(t);
    groupOf.set(t, g);
  };

  for (const n of graph.node) {
    if (absorbed.has(n.output[0])) continue;
    const r = ruleOf(n);
    if (!r) continue;
    if (isAnchor(n)) {
      dataInputs(n, r).forEach(ensure);
      const out = outputGroup(n, r, index, input.quantizeFloatOutputs ? null : feeds, absorbed, rules, newGroup);
      units.push({ node: n, rule: r, layer: input.layers.get(n.name) ?? null, output: out });
      continue;
    }
    const source = isData(n.input[0]) ? groupOf.get(n.input[0]) ?? (feeds.has(n.input[0]) ? ensure(n.input[0]) : undefined) : undefined;
    if (!source || n.output.length !== 1) continue;
    if (r.role === "passthrough") {
      join(n.output[0], source);
      units.push({ node: n, rule: r, layer: null, output: source });
    } else if (r.role === "unary" && feeds.has(n.output[0])) {
      units.push({ node: n, rule: r, layer: null, output: newGroup(n.output[0], OUTPUT_BOUNDS[n.opType] ?? [null, null]) });
    }
  }
  return { groups, groupOf, absorbed, units };
}

/**
 * The group an anchor writes. A ReLU-family activation (lower clamp 0) right after it is absorbed: its
 * output becomes the group, with zero point 0, and onnxruntime's fusion needs no separate node. A Gemm or
 * MatMul whose result no quantized operator reads keeps a float output (QGemm and MatMulIntegerToFloat
 * take float outputs; a classifier's logits stay exact). Every other anchor writes its own group: Conv,
 * Add and Concat fuse only with a QuantizeLinear after them.
 */
function outputGroup(
  n: NodeProto,
  r: QdqRule,
  index: GraphIndex,
  /** null: every anchor's output is quantized */
  feeds: Set<string> | null,
  absorbed: Placement["absorbed"],
  rules: Readonly<Record<string, QdqRule>>,
  newGroup: (root: string, bounds: Bounds, pre?: string | null) => QuantGroup,
): QuantGroup | null {
  const o = n.output[0];
  const act = activationAfter(o, index);
  const actNode = act.nodes.length === 1 ? act.nodes[0] : null;
  if (actNode && act.output && act.clamp[0] === 0 && rules[actNode.opType]?.role === "absorbed") {
    absorbed.set(act.output, { node: actNode, input: o });
    return newGroup(act.output, act.range, o);
  }
  if (feeds && r.role === "weighted" && n.opType !== "Conv" && !feeds.has(o)) return null;
  return newGroup(o, [null, null]);
}

/** operators whose outputs are integers or booleans whatever their inputs: shape arithmetic, indices, masks */
const NON_FLOAT_OUTPUTS = new Set(["Shape", "Size", "ArgMax", "ArgMin", "NonZero", "TopK", "Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "Not", "And", "Or", "IsNaN", "IsInf", "NonMaxSuppression"]);

/**
 * The tensors computed from the float graph inputs: only those are quantized (a converter's shape
 * arithmetic, Shape → Gather → Concat → Reshape, runs on int64 and goes through the same operator types).
 */
function floatTensors(graph: GraphProto): Set<string> {
  const FLOAT = 1;
  const out = new Set(graph.input.filter((v) => v.type?.value.case === "tensorType" && v.type.value.value.elemType === FLOAT).map((v) => v.name));
  for (const n of graph.node) {
    // left out whole: TopK's values (its indices are not), a Cast (float only when cast to float)
    if (NON_FLOAT_OUTPUTS.has(n.opType) || n.opType === "Cast") continue;
    if (n.input.some((t) => out.has(t))) for (const o of n.output) out.add(o);
  }
  return out;
}
