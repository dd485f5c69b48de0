// Finding weights that exporters hide behind a few float ops. PyTorch and TF exporters sometimes
// emit a Conv or Gemm whose weight comes out of a Constant node, an Identity, a Transpose (TF's HWIO
// kernels), a Reshape/Unsqueeze, or a Cast from float16. The quantizer needs an initializer it can
// replace, so such chains are evaluated once and turned into initializers.
import { clone } from "@bufbuild/protobuf";
import { TensorProtoSchema, TensorProto_DataType as DT, type GraphProto, type NodeProto, type TensorProto } from "onnx-buf";
import {
  addInitializer,
  attrInt,
  attrInts,
  constantNodeValue,
  indexGraph,
  isDefaultDomain,
  removeNodes,
  removeUnusedInitializers,
  type GraphIndex,
} from "./graph.ts";
import { float32Tensor, isFloatType, tensorToFloat32, tensorToIntegers } from "./tensor.ts";

/** Ops whose output is a function of constant inputs that we can compute without a runtime. */
const FOLDABLE = new Set(["Constant", "Identity", "Transpose", "Reshape", "Unsqueeze", "Squeeze", "Cast"]);

/** Inputs that must be constant for the layer or BatchNormalization to be quantized or folded. */
const WEIGHT_INPUTS: Record<string, number[]> = {
  Conv: [1, 2],
  Gemm: [1, 2],
  MatMul: [1],
  BatchNormalization: [1, 2, 3, 4],
};

/**
 * Turns every computable weight input (see WEIGHT_INPUTS) into an initializer of the same name,
 * removes the nodes that computed it once nothing else reads them, and returns how many weights
 * were materialized.
 */
export function materializeWeights(graph: GraphProto, opset: number, irVersion: number): number {
  const index = indexGraph(graph);
  const memo = new Map<string, TensorProto | null>();
  const removed = new Set<NodeProto>();
  let count = 0;
  for (const node of graph.node) {
    if (!isDefaultDomain(node)) continue;
    for (const k of WEIGHT_INPUTS[node.opType] ?? []) {
      const name = node.input[k];
      if (!name || index.initializers.has(name) || !index.producers.has(name)) continue;
      const value = evaluate(index, name, opset, memo);
      if (!value) continue;
      const tensor = clone(TensorProtoSchema, value);
      tensor.name = name;
      addInitializer(graph, tensor, irVersion);
      index.initializers.set(name, tensor);
      removed.add(index.producers.get(name)!);
      count++;
    }
  }
  if (count > 0) removeDeadConstants(graph, removed);
  return count;
}

// After a weight became an initializer, the chain that computed it (and the initializers it read)
// is usually dead; remove it, but only the constant-computing ops, so nothing else changes.
function removeDeadConstants(graph: GraphProto, seed: Set<NodeProto>): void {
  const inputsOfRemoved = new Set<string>();
  let dead = seed;
  while (dead.size > 0) {
    for (const n of dead) n.input.forEach((i) => inputsOfRemoved.add(i));
    removeNodes(graph, dead);
    const index = indexGraph(graph);
    dead = new Set(
      graph.node.filter(
        (n) =>
          isDefaultDomain(n) &&
          FOLDABLE.has(n.opType) &&
          n.output.every((o) => !index.consumers.has(o) && !index.outputs.has(o)) &&
          n.output.some((o) => inputsOfRemoved.has(o)),
      ),
    );
  }
  removeUnusedInitializers(graph, inputsOfRemoved);
}

function evaluate(index: GraphIndex, name: string, opset: number, memo: Map<string, TensorProto | null>): TensorProto | null {
  const init = index.initializers.get(name);
  if (init) return init;
  if (memo.has(name)) return memo.get(name)!;
  memo.set(name, null); // a cycle would be a broken graph; treat it as not constant
  const node = index.producers.get(name);
  const result = node && isDefaultDomain(node) && FOLDABLE.has(node.opType) ? evalNode(node, index, opset, memo) : null;
  memo.set(name, result);
  return result;
}

function evalNode(node: NodeProto, index: GraphIndex, opset: number, memo: Map<string, TensorProto | null>): TensorProto | null {
  if (node.opType === "Constant") return constantNodeValue(node) ?? null;
  const x = node.input[0] ? evaluate(index, node.input[0], opset, memo) : null;
  if (!x) return null;
  const dims = x.dims.map(Number);
  const ints = (k: number): number[] | null => {
    const t = node.input[k] ? evaluate(index, node.input[k], opset, memo) : null;
    return t && !isFloatType(t.dataType) ? tensorToIntegers(t) : null;
  };
  // Axes moved from an attribute to an input in opset 13.
  const axesOf = (): number[] | null => (opset >= 13 ? (node.input[1] ? ints(1) : []) : (attrInts(node, "axes") ?? []));
  switch (node.opType) {
    case "Identity":
      return x;
    case "Cast": {
      // Only casts to float32 keep the graph's types unchanged when replaced by an initializer.
      if (attrInt(node, "to", 0) !== DT.FLOAT) return null;
      const values = isFloatType(x.dataType) ? tensorToFloat32(x) : tensorToIntegers(x);
      return float32Tensor(node.output[0], dims, values);
    }
    case "Transpose": {
      if (!isFloatType(x.dataType)) return null;
      const perm = attrInts(node, "perm") ?? dims.map((_, i) => dims.length - 1 - i);
      const t = transpose(tensorToFloat32(x), dims, perm);
      return t && x.dataType === DT.FLOAT ? float32Tensor(node.output[0], t.dims, t.data) : null;
    }
    case "Reshape": {
      const shape = ints(1);
      const out = shape && reshapeDims(dims, shape, attrInt(node, "allowzero", 0) === 1);
      return out ? withDims(x, out) : null;
    }
    case "Unsqueeze": {
      const axes = axesOf();
      if (!axes) return null;
      const rank = dims.length + axes.length;
      const at = new Set(axes.map((a) => (a < 0 ? a + rank : a)));
      const out: number[] = [];
      for (let i = 0, j = 0; i < rank; i++) out.push(at.has(i) ? 1 : dims[j++]);
      return at.size === axes.length ? withDims(x, out) : null;
    }
    case "Squeeze": {
      const axes = axesOf();
      if (!axes) return null;
      const at = new Set(axes.map((a) => (a < 0 ? a + dims.length : a)));
      if ([...at].some((a) => dims[a] !== 1)) return null;
      return withDims(x, dims.filter((d, i) => (at.size === 0 ? d !== 1 : !at.has(i))));
    }
    default:
      return null;
  }
}

function withDims(t: TensorProto, dims: number[]): TensorProto {
  const out = clone(TensorProtoSchema, t);
  out.dims = dims.map((d) => BigInt(d));
  return out;
}

/** Reshape's target shape with 0 (copy) and -1 (infer) resolved; null when invalid. */
export function reshapeDims(dims: number[], shape: number[], allowZero: boolean): number[] | null {
  const total = dims.reduce((a, b) => a * b, 1);
  const out = shape.map((s, i) => (s === 0 && !allowZero ? dims[i] : s));
  const known = out.filter((s) => s !== -1).reduce((a, b) => a * b, 1);
  const inferred = out.filter((s) => s === -1).length;
  if (inferred > 1 || out.some((s) => s === undefined || s < -1)) return null;
  if (inferred === 1) {
    if (known === 0 || total % known !== 0) return null;
    return out.map((s) => (s === -1 ? total / known : s));
  }
  return known === total ? out : null;
}

/** N-d transpose of a dense row-major array; null when perm is not a permutation of the axes. */
export function transpose(data: Float32Array, dims: number[], perm: number[]): { data: Float32Array; dims: number[] } | null {
  const rank = dims.length;
  if (perm.length !== rank || new Set(perm).size !== rank || perm.some((p) => p < 0 || p >= rank)) return null;
  const outDims = perm.map((p) => dims[p]);
  const inStrides = new Array<number>(rank);
  for (let i = rank - 1, s = 1; i >= 0; i--) {
    inStrides[i] = s;
    s *= dims[i];
  }
  const strides = perm.map((p) => inStrides[p]);
  const out = new Float32Array(data.length);
  const counter = new Array<number>(rank).fill(0);
  let src = 0;
  for (let i = 0; i < out.length; i++) {
    out[i] = data[src];
    for (let a = rank - 1; a >= 0; a--) {
      counter[a]++;
      src += strides[a];
      if (counter[a] < outDims[a]) break;
      src -= strides[a] * outDims[a];
      counter[a] = 0;
    }
  }
  return { data: out, dims: outDims };
}
