// Folding BatchNormalization into the Conv or Gemm before it (ALGORITHMS.md §5.1). The paper folds
// only groups == 1 convs; folding is exact per output channel for grouped and depthwise convs too,
// so we fold those as well and the quantizer sees one layer instead of a layer plus a float BN.
import { TensorProto_DataType as DT, type GraphProto, type NodeProto, type TensorProto } from "onnx-buf";
import {
  attrFloat,
  attrInt,
  attribute,
  consumersOf,
  constantOf,
  indexGraph,
  isDefaultDomain,
  nameGenerator,
  removeNodes,
  removeUnusedInitializers,
  replaceInput,
  addInitializer,
  type GraphIndex,
} from "./graph.ts";
import { float32Tensor, isFloatType, tensorElementCount, tensorToFloat32 } from "./tensor.ts";

export interface BatchNormParams {
  weight: Float32Array;
  weightDims: readonly number[];
  /** Axis of `weight` that indexes output channels. */
  outAxis: number;
  bias: Float32Array | null;
  gamma: ArrayLike<number>;
  beta: ArrayLike<number>;
  mean: ArrayLike<number>;
  variance: ArrayLike<number>;
  eps: number;
}

/**
 * Per output channel c: s = γ_c / sqrt(var_c + eps), W'_c = W_c · s, b'_c = (b_c − mean_c) · s + β_c
 * (b_c = 0 without a bias). Computed in float64, stored as float32.
 */
export function foldBatchNorm(p: BatchNormParams): { weight: Float32Array; bias: Float32Array } {
  const channels = p.weightDims[p.outAxis];
  const inner = p.weightDims.slice(p.outAxis + 1).reduce((a, b) => a * b, 1);
  const s = new Float64Array(channels);
  const bias = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    s[c] = p.gamma[c] / Math.sqrt(p.variance[c] + p.eps);
    bias[c] = ((p.bias ? p.bias[c] : 0) - p.mean[c]) * s[c] + p.beta[c];
  }
  const weight = new Float32Array(p.weight.length);
  for (let i = 0; i < weight.length; i++) weight[i] = p.weight[i] * s[Math.floor(i / inner) % channels];
  return { weight, bias };
}

export interface BatchNormFoldResult {
  folded: number;
  /** BatchNormalization nodes left in the graph, with the reason in plain words. */
  unfolded: { name: string; reason: string }[];
}

/** Folds every foldable BatchNormalization of the graph in place. */
export function foldBatchNorms(graph: GraphProto, irVersion: number): BatchNormFoldResult {
  const result: BatchNormFoldResult = { folded: 0, unfolded: [] };
  const bns = graph.node.filter((n) => n.opType === "BatchNormalization" && isDefaultDomain(n));
  for (const [k, bn] of bns.entries()) {
    const index = indexGraph(graph);
    const reason = foldOne(bn, index, irVersion);
    if (reason) result.unfolded.push({ name: bn.name || `BatchNormalization #${k + 1}`, reason });
    else result.folded++;
  }
  return result;
}

function floatConstant(index: GraphIndex, name: string | undefined): TensorProto | null {
  const t = name ? constantOf(index, name) : undefined;
  return t && isFloatType(t.dataType) ? t : null;
}

// Returns why `bn` cannot be folded, or null after folding it.
function foldOne(bn: NodeProto, index: GraphIndex, irVersion: number): string | null {
  const graph = index.graph;
  if (attrInt(bn, "training_mode", 0) === 1) return "it is in training mode";
  if (attrInt(bn, "spatial", 1) === 0) return "it normalizes every element separately (spatial = 0)";
  if (bn.output.slice(1).some((o) => o && (consumersOf(index, o).length > 0 || index.outputs.has(o)))) {
    return "its running statistics are used by other operators";
  }
  const x = bn.input[0];
  const layer = index.producers.get(x);
  if (!layer || !isDefaultDomain(layer) || (layer.opType !== "Conv" && layer.opType !== "Gemm")) {
    return "it does not directly follow a Conv or Gemm";
  }
  if (consumersOf(index, x).length !== 1 || index.outputs.has(x)) {
    return `the output of "${layer.name || layer.opType}" is also used elsewhere, so it cannot absorb the normalization`;
  }
  const w = index.initializers.get(layer.input[1]);
  if (!w || w.dataType !== DT.FLOAT) return `the weights of "${layer.name || layer.opType}" are not constant float32 values`;
  const dims = w.dims.map(Number);
  const isGemm = layer.opType === "Gemm";
  if (isGemm && dims.length !== 2) return "the Gemm weight is not a matrix";
  const outAxis = isGemm && attrInt(layer, "transB", 0) === 0 ? 1 : 0;
  const channels = dims[outAxis];
  const params = [1, 2, 3, 4].map((k) => floatConstant(index, bn.input[k]));
  if (params.some((p) => !p)) return "its scale, bias, mean or variance is not a constant";
  const [gamma, beta, mean, variance] = params.map((p) => tensorToFloat32(p!));
  if ([gamma, beta, mean, variance].some((p) => p.length !== channels)) {
    return `its parameters do not match the ${channels} output channels of "${layer.name || layer.opType}"`;
  }
  const bias = layerBias(layer, index, channels);
  if (bias === undefined) return `the bias of "${layer.name || layer.opType}" is not a per-channel constant`;

  const folded = foldBatchNorm({
    weight: tensorToFloat32(w), weightDims: dims, outAxis, bias, gamma, beta, mean, variance,
    eps: attrFloat(bn, "epsilon", 1e-5),
  });
  const fresh = nameGenerator(graph);
  const stale = [w.name, ...bn.input.slice(1)];
  setInitializer(graph, layer, 1, float32Tensor(w.name, dims, folded.weight), index, fresh, irVersion);
  const biasName = layer.input[2] || fresh(`${layer.name || w.name}_bias`);
  setInitializer(graph, layer, 2, float32Tensor(biasName, [channels], folded.bias), index, fresh, irVersion);
  if (layer.input[2]) stale.push(layer.input[2]);
  // The folded bias already includes Gemm's beta factor.
  const betaAttr = attribute(layer, "beta");
  if (isGemm && betaAttr) betaAttr.f = 1;

  // The layer takes over the BN's output name, so every reader and the graph outputs stay valid.
  layer.output[0] = bn.output[0];
  removeNodes(graph, [bn]);
  graph.valueInfo = graph.valueInfo.filter((v) => v.name !== x);
  removeUnusedInitializers(graph, stale);
  return null;
}

/** The layer's bias expanded to one value per channel; null when absent, undefined when unusable. */
function layerBias(layer: NodeProto, index: GraphIndex, channels: number): Float32Array | null | undefined {
  if (!layer.input[2]) return null;
  const t = floatConstant(index, layer.input[2]);
  if (!t) return undefined;
  const n = tensorElementCount(t);
  if (layer.opType === "Conv") return n === channels ? tensorToFloat32(t) : undefined;
  // Gemm's C broadcasts against [M, N]: a scalar or a row of N values is per channel, [M, N] is not.
  const dims = t.dims.map(Number);
  if (n !== 1 && !(n === channels && dims[dims.length - 1] === channels)) return undefined;
  const scale = attrFloat(layer, "beta", 1);
  const values = tensorToFloat32(t);
  return Float32Array.from({ length: channels }, (_, c) => scale * values[n === 1 ? 0 : c]);
}

// Writes `tensor` as input `k` of `layer`: replaces the initializer when only this layer reads it,
// otherwise adds a new one under a fresh name so other readers keep the original values.
function setInitializer(
  graph: GraphProto,
  layer: NodeProto,
  k: number,
  tensor: TensorProto,
  index: GraphIndex,
  fresh: (base: string) => string,
  irVersion: number,
): void {
  const current = layer.input[k];
  const at = current ? graph.initializer.findIndex((t) => t.name === current) : -1;
  if (at >= 0 && consumersOf(index, current).length === 1 && !index.outputs.has(current)) {
    graph.initializer[at] = tensor;
    return;
  }
  if (at >= 0 || index.producers.has(tensor.name)) tensor.name = fresh(`${tensor.name}_folded`);
  addInitializer(graph, tensor, irVersion);
  while (layer.input.length <= k) layer.input.push("");
  if (current) replaceInput(layer, current, tensor.name);
  else layer.input[k] = tensor.name;
}
