// Each layer's input Hessian H = Σ x xᵀ over every input column the layer computes with (im2col of its
// input for a conv, one column per group), summed over the calibration images. The products run inside
// onnxruntime, whose MLAS kernels are SIMD and multi-threaded (docs/KERNELS.md has the comparison with a
// typed-array loop): im2col is a grouped Conv with one-hot kernels, H one batched MatMul of the columns with
// their transpose. Only K x K numbers per layer and image cross into JavaScript, where they are summed in
// float64, so memory is O(Σ K²) whatever the number of images.
import { clone, create } from "@bufbuild/protobuf";
import { AttributeProtoSchema, AttributeProto_AttributeType as AT, ModelProtoSchema, NodeProtoSchema, type AttributeProto, type GraphProto, type ModelProto, type NodeProto } from "onnx-buf";
import { attrInt, nameGenerator, readsOf, tensorOutput } from "../onnx/graph.ts";
import { encodeModel } from "../onnx/model-io.ts";
import type { QuantLayer } from "../onnx/prepare.ts";
import { float32Tensor, int64Tensor } from "../onnx/tensor.ts";
import { StageProgress, throwIfAborted, type ProgressListener } from "./progress.ts";
import { upgradeOpset } from "../onnx/opset/index.ts";
import { closeSession, openSession, runFeeds, tensorData, type Feeds, type ort } from "./runtime.ts";

/** How a layer turns its input tensor into columns: a conv's window (attributes copied from the node) or a matrix row. */
export interface GramTap {
  layer: string;
  /** tensor whose columns give H */
  input: string;
  /** a second tensor of the same shape (the float model's copy of `input`): also Σ x_ref xᵀ and Σ x_ref */
  reference?: string;
  groups: number;
  /** inputs per group: (input channels / groups) · kernel size */
  k: number;
  conv: { channels: number; kernel: number[]; attributes: AttributeProto[] } | null;
  /** Gemm with transA = 1 reads its input as [K, M] */
  transposed: boolean;
}

export interface LayerGram {
  groups: number;
  k: number;
  /** groups blocks of k x k, row-major: Σ x xᵀ */
  h: Float64Array;
  /** groups x k: Σ x, for the mean input column */
  sum: Float64Array;
  /** with a reference: Σ x_ref xᵀ (groups x k x k) and Σ x_ref (groups x k) */
  cross: Float64Array | null;
  refSum: Float64Array | null;
  /** columns summed per group */
  count: number;
}

const WINDOW_ATTRIBUTES = new Set(["strides", "pads", "dilations", "auto_pad"]);

/** The tap of a prepared layer; `node` is the layer's node in the graph the tap will be built on. */
export function gramTapFor(layer: QuantLayer, node: NodeProto, weightShape: number[]): GramTap {
  if (layer.info.op !== "Conv") {
    return { layer: layer.info.name, input: layer.input, groups: 1, k: weightShape[layer.weightLayout === "IC_OC" ? 0 : 1], conv: null, transposed: node.opType === "Gemm" && attrInt(node, "transA", 0) === 1 };
  }
  const groups = layer.groups;
  const kernel = weightShape.slice(2);
  const channels = weightShape[1] * groups;
  const attributes = node.attribute.filter((a) => WINDOW_ATTRIBUTES.has(a.name));
  const size = kernel.reduce((a, b) => a * b, 1);
  return { layer: layer.info.name, input: layer.input, groups, k: weightShape[1] * size, conv: { channels, kernel, attributes }, transposed: false };
}

function isPointwiseIdentity(tap: GramTap): boolean {
  const c = tap.conv!;
  if (c.kernel.some((d) => d !== 1)) return false;
  for (const a of c.attributes) {
    if (a.name === "auto_pad" && a.s.length > 0 && new TextDecoder().decode(a.s) !== "NOTSET" && new TextDecoder().decode(a.s) !== "VALID") return false;
    if ((a.name === "strides" || a.name === "dilations") && a.ints.some((v) => v !== 1n)) return false;
    if (a.name === "pads" && a.ints.some((v) => v !== 0n)) return false;
  }
  return true;
}

export interface GramOutputs {
  tap: GramTap;
  gram: string;
  sum: string;
  shape: string;
  cross: string | null;
  refSum: string | null;
}

/**
 * A copy of `source` whose extra outputs are, per tap, H, Σ x and the column matrix's shape (plus the
 * cross terms with the reference tensor). Nodes no output needs are dropped, so a tap early in the
 * network costs only the part of the network before it.
 */
export function buildGramModel(source: ModelProto, taps: GramTap[]): { model: ModelProto; outputs: GramOutputs[] } {
  const model = clone(ModelProtoSchema, source);
  const graph = model.graph!;
  const unique = nameGenerator(graph);
  upgradeOpset(model, unique);
  const nodes: NodeProto[] = [];
  const op = (type: string, inputs: string[], base: string, attrs: AttributeProto[] = []): string => {
    const out = unique(base);
    nodes.push(create(NodeProtoSchema, { opType: type, input: inputs, output: [out], name: out, attribute: attrs }));
    return out;
  };
  const ints = (name: string, values: number[]) => create(AttributeProtoSchema, { name, type: AT.INTS, ints: values.map(BigInt) });
  const int = (name: string, value: number) => create(AttributeProtoSchema, { name, type: AT.INT, i: BigInt(value) });
  const constant = (base: string, dims: number[], values: number[]): string => {
    const name = unique(base);
    graph.initializer.push(int64Tensor(name, dims, values));
    return name;
  };
  const imageAxis = constant("nibble_gram_axis0", [1], [0]);
  const columnAxes = constant("nibble_gram_axes03", [2], [0, 3]);
  const outputs: GramOutputs[] = [];
  for (const tap of taps) {
    const base = `nibble_gram_${tap.layer}`;
    let oneHot: string | null = null;
    const columns = (x: string, side: string): string => {
      if (!tap.conv) {
        // rows of [M, K] (or [K, M] with transA) → [1, 1, K, M]
        const flat = tap.transposed ? x : op("Transpose", [op("Reshape", [x, constant(`${base}_rows`, [2], [-1, tap.k])], `${base}_${side}_rows`)], `${base}_${side}_t`, [ints("perm", [1, 0])]);
        return op("Reshape", [flat, constant(`${base}_cols_shape`, [4], [1, 1, tap.k, -1])], `${base}_${side}_cols`);
      }
      const c = tap.conv;
      let im2col = x;
      if (!isPointwiseIdentity(tap)) {
        if (!oneHot) {
          const size = c.kernel.reduce((a, b) => a * b, 1);
          const w = new Float32Array(c.channels * size * size);
          for (let ch = 0; ch < c.channels; ch++) for (let j = 0; j < size; j++) w[(ch * size + j) * size + j] = 1;
          oneHot = unique(`${base}_one_hot`);
          graph.initializer.push(float32Tensor(oneHot, [c.channels * size, 1, ...c.kernel], w));
        }
        const attrs = [...c.attributes.map((a) => clone(AttributeProtoSchema, a)), int("group", c.channels), ints("kernel_shape", c.kernel)];
        im2col = op("Conv", [x, oneHot], `${base}_${side}_im2col`, attrs);
      }
      // [N, G·k, ...] → [N, G, k, P]: per image and group, k x P columns (no data moves)
      return op("Reshape", [im2col, constant(`${base}_split`, [4], [0, tap.groups, tap.k, -1])], `${base}_${side}_cols`);
    };
    const a = columns(tap.input, "x");
    // onnxruntime fuses a Transpose of the last two axes into the MatMul (FusedMatMul, transB)
    const at = op("Transpose", [a], `${base}_x_t`, [ints("perm", [0, 1, 3, 2])]);
    const perImage = (lhs: string, name: string) => op("ReduceSum", [op("MatMul", [lhs, at], `${name}_per_image`), imageAxis], name, [int("keepdims", 0)]);
    const entry: GramOutputs = {
      tap,
      gram: perImage(a, `${base}_h`),
      sum: op("ReduceSum", [a, columnAxes], `${base}_sum`, [int("keepdims", 0)]),
      shape: op("Shape", [a], `${base}_shape`),
      cross: null,
      refSum: null,
    };
    if (tap.reference) {
      const r = columns(tap.reference, "ref");
      entry.cross = perImage(r, `${base}_cross`);
      entry.refSum = op("ReduceSum", [r, columnAxes], `${base}_ref_sum`, [int("keepdims", 0)]);
    }
    outputs.push(entry);
  }
  graph.node.push(...nodes);
  const wanted = outputs.flatMap((o) => [o.gram, o.sum, o.shape, ...(o.cross ? [o.cross, o.refSum!] : [])]);
  graph.output = wanted.map((n) => tensorOutput(n, outputs.some((o) => o.shape === n) ? 7 : 1));
  prune(graph);
  return { model, outputs };
}

/** Drops nodes, initializers and value infos that no graph output depends on. */
export function prune(graph: GraphProto): void {
  const needed = new Set(graph.output.map((o) => o.name));
  const kept: NodeProto[] = [];
  for (let i = graph.node.length - 1; i >= 0; i--) {
    const n = graph.node[i];
    if (!n.output.some((o) => needed.has(o))) continue;
    kept.push(n);
    for (const r of readsOf(n)) needed.add(r);
  }
  graph.node = kept.reverse();
  graph.initializer = graph.initializer.filter((t) => needed.has(t.name));
  graph.valueInfo = graph.valueInfo.filter((v) => needed.has(v.name));
}

/**
 * One graph holding both `quantized` and `reference` (the float model), fed the same input: every tensor of
 * the reference keeps its name behind `prefix`, so a tap can read a quantized tensor and its float twin.
 * Both must have been through the same opset upgrade (the exporter's output and buildGramModel's input).
 */
export const REFERENCE_PREFIX = "nibble_fp32/";

/** The name `tensor` of the reference model has inside a mergeWithReference graph. */
export function referenceName(reference: ModelProto, tensor: string, prefix = REFERENCE_PREFIX): string {
  return reference.graph!.input.some((v) => v.name === tensor) ? tensor : `${prefix}${tensor}`;
}

export function mergeWithReference(quantized: ModelProto, reference: ModelProto, prefix = REFERENCE_PREFIX): ModelProto {
  const model = clone(ModelProtoSchema, quantized);
  const ref = clone(ModelProtoSchema, reference);
  upgradeOpset(ref, nameGenerator(ref.graph!));
  const graph = model.graph!;
  const inputs = new Set(ref.graph!.input.map((v) => v.name));
  const rename = (n: string) => (n === "" || inputs.has(n) ? n : `${prefix}${n}`);
  for (const t of ref.graph!.initializer) {
    if (inputs.has(t.name)) continue;
    t.name = rename(t.name);
    graph.initializer.push(t);
  }
  for (const n of ref.graph!.node) {
    n.input = n.input.map(rename);
    n.output = n.output.map(rename);
    if (n.name) n.name = rename(n.name);
    graph.node.push(n);
  }
  return model;
}

export interface GramInput {
  /** a model from buildGramModel */
  model: ModelProto;
  outputs: GramOutputs[];
  images: number;
  batches: AsyncIterable<{ feeds: Feeds; count: number }>;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
  progressMessage?: string;
}

export async function collectGrams(input: GramInput): Promise<Map<string, LayerGram>> {
  const session = await openSession(encodeModel(input.model));
  const grams = new Map<string, LayerGram>();
  for (const o of input.outputs) {
    const { groups, k } = o.tap;
    grams.set(o.tap.layer, {
      groups,
      k,
      h: new Float64Array(groups * k * k),
      sum: new Float64Array(groups * k),
      cross: o.cross ? new Float64Array(groups * k * k) : null,
      refSum: o.refSum ? new Float64Array(groups * k) : null,
      count: 0,
    });
  }
  const fetches = input.outputs.flatMap((o) => [o.gram, o.sum, o.shape, ...(o.cross ? [o.cross, o.refSum!] : [])]);
  const progress = new StageProgress("quantize", input.images, input.onProgress, input.progressMessage);
  let done = 0;
  const add = (into: Float64Array, t: ort.Tensor) => {
    const d = tensorData(t);
    for (let i = 0; i < d.length; i++) into[i] += d[i];
  };
  try {
    const iterator = input.batches[Symbol.asyncIterator]();
    let next = await iterator.next();
    // onnxruntime runs batch k+1 while this thread adds up batch k
    let pending = next.done ? null : runFeeds(session, next.value.feeds, fetches);
    while (pending && !next.done) {
      const count = next.value.count;
      const out = await pending;
      throwIfAborted(input.signal);
      next = await iterator.next();
      pending = next.done ? null : runFeeds(session, next.value.feeds, fetches);
      for (const o of input.outputs) {
        const g = grams.get(o.tap.layer)!;
        add(g.h, out[o.gram]);
        add(g.sum, out[o.sum]);
        if (o.cross) {
          add(g.cross!, out[o.cross]);
          add(g.refSum!, out[o.refSum!]);
        }
        const dims = out[o.shape].data as BigInt64Array;
        g.count += Number(dims[0]) * Number(dims[3]);
      }
      for (const t of Object.values(out)) t.dispose();
      done += count;
      progress.update(done);
    }
    if (pending) await pending.catch(() => undefined);
  } finally {
    await closeSession(session);
  }
  return grams;
}
