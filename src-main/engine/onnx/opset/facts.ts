// What a rule may need to know about a tensor it does not produce: its constant value, its rank, its
// element type. Models rarely carry value_info, so ranks and types are also derived from the producing
// operator for the handful of cases rules ask about (Softmax's rank, Clip's and Pad's element type).
// Unknown stays unknown: every rule has a form that is correct without the fact, only less compact.
import { TensorProto_DataType as DT, type GraphProto, type NodeProto, type TensorProto } from "onnx-buf";
import { constantNodeValue, isDefaultDomain } from "../graph.ts";
import { tensorElementCount, tensorToIntegers } from "../tensor.ts";
import { findAttr } from "./attributes.ts";

/** Longest producer chain followed for one question; deeper graphs answer "unknown" rather than recurse without bound. */
const MAX_DEPTH = 64;

/** Ops whose output has the rank and element type of their first input. */
const SAME_AS_FIRST = new Set([
  "Abs", "Acos", "Asin", "Atan", "AveragePool", "BatchNormalization", "Ceil", "Celu", "Clip", "Conv", "ConvTranspose",
  "Cos", "CumSum", "DepthToSpace", "Dropout", "Elu", "Erf", "Exp", "Floor", "Gelu", "GlobalAveragePool", "GlobalLpPool",
  "GlobalMaxPool", "GroupNormalization", "HardSigmoid", "HardSwish", "Hardmax", "Identity", "ImageScaler",
  "InstanceNormalization", "LayerNormalization", "LeakyRelu", "Log", "LogSoftmax", "LpNormalization", "LpPool", "LRN",
  "MaxPool", "MeanVarianceNormalization", "Mish", "Neg", "PRelu", "Pad", "Reciprocal", "Relu", "Resize", "Round", "Selu",
  "Shrink", "Sigmoid", "Sign", "Sin", "Slice", "Softmax", "Softplus", "Softsign", "SpaceToDepth", "Split", "Sqrt", "Tan",
  "Tanh", "ThresholdedRelu", "Tile", "Upsample",
]);
/** Elementwise ops with multidirectional broadcasting: the output rank is the largest input rank. */
const BROADCAST = new Set(["Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Mod", "Where", "PRelu"]);
const BOOL_OUTPUT = new Set(["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "Not", "IsNaN", "IsInf"]);
const INT64_OUTPUT = new Set(["Shape", "Size", "NonZero", "ArgMax", "ArgMin", "NonMaxSuppression"]);

interface Declared {
  elemType: number | undefined;
  rank: number | undefined;
}

/** The facts of one graph; subgraphs see their parent's tensors too (outer-scope names). */
export class Scope {
  private readonly producers = new Map<string, NodeProto>();
  private readonly constants = new Map<string, TensorProto>();
  private readonly declared = new Map<string, Declared>();
  /** declared dims, a fixed size or undefined per axis */
  private readonly declaredDims = new Map<string, (number | undefined)[]>();
  private readonly ranks = new Map<string, number | undefined>();
  private readonly types = new Map<string, number | undefined>();

  constructor(readonly graph: GraphProto, readonly parent: Scope | null) {
    for (const t of graph.initializer) this.constants.set(t.name, t);
    for (const v of [...graph.input, ...graph.output, ...graph.valueInfo]) {
      const t = v.type?.value;
      if (t?.case !== "tensorType") continue;
      this.declared.set(v.name, { elemType: t.value.elemType || undefined, rank: t.value.shape ? t.value.shape.dim.length : undefined });
      if (t.value.shape) this.declaredDims.set(v.name, t.value.shape.dim.map((d) => (d.value.case === "dimValue" ? Number(d.value.value) : undefined)));
    }
    for (const n of graph.node) this.addNode(n);
  }

  /** Registers a node the conversion added (or keeps, after rewriting it). */
  addNode(node: NodeProto): void {
    for (const o of node.output) if (o) this.producers.set(o, node);
    if (node.opType === "Constant" && isDefaultDomain(node) && node.output[0]) {
      const value = constantNodeValue(node);
      if (value) this.constants.set(node.output[0], value);
    }
  }

  addInitializer(t: TensorProto): void {
    this.graph.initializer.push(t);
    this.constants.set(t.name, t);
  }

  constant(name: string): TensorProto | undefined {
    return this.constants.get(name) ?? (this.producers.has(name) ? undefined : this.parent?.constant(name));
  }

  /** Integer values of a constant integer tensor (axes, shapes), or undefined. */
  integers(name: string): number[] | undefined {
    const t = name ? this.constant(name) : undefined;
    if (!t || t.dataType === DT.FLOAT || t.dataType === DT.DOUBLE || t.dataType === DT.FLOAT16 || t.dataType === DT.BFLOAT16) return undefined;
    return tensorToIntegers(t);
  }

  rank(name: string, depth = 0): number | undefined {
    if (this.ranks.has(name)) return this.ranks.get(name);
    const r = this.findRank(name, depth);
    if (r !== undefined || depth === 0) this.ranks.set(name, r);
    return r;
  }

  elemType(name: string, depth = 0): number | undefined {
    if (this.types.has(name)) return this.types.get(name);
    const t = this.findType(name, depth);
    if (t !== undefined || depth === 0) this.types.set(name, t);
    return t;
  }

  channels(name: string): number | undefined {
    const d = this.declaredDims.get(name)?.[1];
    if (d !== undefined) return d;
    const node = this.producers.get(name);
    if (!node) return this.parent?.channels(name);
    const w = node.opType === "Conv" && isDefaultDomain(node) ? this.constant(node.input[1] ?? "") : undefined;
    return w && w.dims.length >= 3 ? Number(w.dims[0]) : undefined;
  }

  private findRank(name: string, depth: number): number | undefined {
    const declared = this.declared.get(name)?.rank;
    if (declared !== undefined) return declared;
    const c = this.constants.get(name);
    if (c) return c.dims.length;
    const node = this.producers.get(name);
    if (!node) return this.parent?.rank(name, depth);
    if (depth >= MAX_DEPTH || !isDefaultDomain(node)) return undefined;
    const input = (k: number) => (node.input[k] ? this.rank(node.input[k], depth + 1) : undefined);
    const axesCount = () => {
      const a = findAttr(node, "axes");
      return a ? a.ints.length : this.integers(node.input[1] ?? "")?.length;
    };
    switch (node.opType) {
      case "Gemm": case "Flatten": return 2;
      case "Shape": return 1;
      case "Size": return 0;
      case "Reshape": {
        const shape = this.constant(node.input[1] ?? "");
        return shape ? tensorElementCount(shape) : undefined;
      }
      case "Transpose": return findAttr(node, "perm")?.ints.length ?? input(0);
      case "Unsqueeze": { const r = input(0); const k = axesCount(); return r !== undefined && k !== undefined ? r + k : undefined; }
      case "Squeeze": { const r = input(0); const k = axesCount(); return r !== undefined && k !== undefined && k > 0 ? r - k : undefined; }
      case "Concat": return node.input.map((_, k) => input(k)).find((r) => r !== undefined);
      case "MatMul": { const a = input(0); const b = input(1); return a !== undefined && b !== undefined && a >= 2 && b >= 2 ? Math.max(a, b) : undefined; }
      default:
        if (node.opType.startsWith("Reduce") || node.opType === "ArgMax" || node.opType === "ArgMin") {
          const keep = findAttr(node, "keepdims");
          return keep === undefined || keep.i !== 0n ? input(0) : undefined;
        }
        if (BROADCAST.has(node.opType)) {
          const ranks = node.input.map((_, k) => input(k));
          return ranks.every((r) => r !== undefined) ? Math.max(...(ranks as number[])) : undefined;
        }
        return SAME_AS_FIRST.has(node.opType) && node.output[0] === name ? input(0) : undefined;
    }
  }

  private findType(name: string, depth: number): number | undefined {
    const declared = this.declared.get(name)?.elemType;
    if (declared !== undefined) return declared;
    const c = this.constants.get(name);
    if (c) return c.dataType;
    const node = this.producers.get(name);
    if (!node) return this.parent?.elemType(name, depth);
    if (depth >= MAX_DEPTH || !isDefaultDomain(node)) return undefined;
    const input = (k: number) => (node.input[k] ? this.elemType(node.input[k], depth + 1) : undefined);
    if (BOOL_OUTPUT.has(node.opType)) return DT.BOOL;
    if (INT64_OUTPUT.has(node.opType)) return DT.INT64;
    switch (node.opType) {
      case "Cast": return Number(findAttr(node, "to")?.i ?? 0) || undefined;
      case "CastLike": return input(1);
      case "Where": return input(1);
      case "TopK": return node.output[1] === name ? DT.INT64 : input(0);
      case "ConstantOfShape": return findAttr(node, "value")?.t?.dataType ?? DT.FLOAT;
      case "DequantizeLinear": return input(1);
      case "QuantizeLinear": return node.input[2] ? input(2) : DT.UINT8;
      default:
        // Everything else left in a CNN (arithmetic, shape edits, pooling, activations) keeps its input's type.
        return node.output[0] === name || node.opType === "Split" ? input(0) : undefined;
    }
  }
}
