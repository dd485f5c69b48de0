// Turns a loaded model into the form the quantizer works on: a private copy with weights as
// initializers and BatchNorms folded, plus the list of layers to quantize and what surrounds them.
import { clone } from "@bufbuild/protobuf";
import { ModelProtoSchema, TensorProto_DataType as DT, type GraphProto, type ModelProto, type NodeProto } from "onnx-buf";
import type { Layout, LayerInfo, TensorInfo } from "../../../shared/types.ts";
import { activationAfter, isHalfRange } from "./activations.ts";
import { foldBatchNorms } from "./batchnorm.ts";
import { materializeWeights } from "./constant-fold.ts";
import {
  attrInt,
  attrInts,
  consumersOf,
  constantOf,
  indexGraph,
  isDefaultDomain,
  nameGenerator,
  readsOf,
  tensorInfoOf,
  type GraphIndex,
} from "./graph.ts";
import { ModelError } from "./errors.ts";
import type { LoadedModel } from "./model-io.ts";
import { dataTypeLabel, tensorElementCount } from "./tensor.ts";

/**
 * How a weight's axes are ordered: OC_IC_K is Conv's [OC, IC/groups, k...]; OC_IC is Gemm's B with
 * transB = 1, [N, K]; IC_OC is Gemm's B with transB = 0 and MatMul's B, [K, N].
 */
export type WeightLayout = "OC_IC_K" | "OC_IC" | "IC_OC";

export interface QuantLayer {
  /** What the UI and reports show; info.name is unique and is also set on the node. */
  info: LayerInfo;
  /** Activation tensor the layer reads. */
  input: string;
  /** Initializer holding the weights (float32). */
  weight: string;
  weightLayout: WeightLayout;
  /** Weight axis that indexes output channels. */
  weightAxis: number;
  groups: number;
  /** Initializer holding one bias per output channel, or null. */
  bias: string | null;
  output: string;
  /** Output of the activation after the layer (activations.ts), or null when the layer's output is used as it is. */
  activationOutput: string | null;
  /** Reads the graph input with no quantizable layer before it. */
  isFirst: boolean;
  /** Reaches a graph output with no quantizable layer after it (the classifier). */
  isLast: boolean;
}

export interface ModelInput extends TensorInfo {
  layout: Layout | null;
  channels: number | null;
  height: number | null;
  width: number | null;
  /** Batch size when the model fixes it; such a model must be fed exactly that many images. */
  fixedBatch: number | null;
  /** An image input whose height or width the model leaves open: the user chooses the size fed. */
  dynamicSize: boolean;
}

/** A ModelInput whose geometry is fully known. */
export interface ImageInput {
  name: string;
  layout: Layout;
  channels: number;
  height: number;
  width: number;
  fixedBatch: number | null;
}

export interface PreparedModel {
  source: LoadedModel;
  /** A deep copy of source.model, rewritten as described in prepareModel. */
  model: ModelProto;
  /** The first real graph input (initializers listed as inputs are skipped). */
  input: ModelInput;
  /** Every real graph input, in graph order (input is the first). */
  inputs: ModelInput[];
  /** The first graph output (the logits of a classifier). */
  output: string;
  /** Size of the original model: file plus external data. */
  sourceBytes: number;
  layers: QuantLayer[];
  foldedBatchNorms: number;
  unfoldedBatchNorms: { name: string; reason: string }[];
  /** Weights that were computed by Constant/Identity/Transpose/... nodes and are now initializers. */
  materializedWeights: number;
  /** Plain-language facts for the user: loader notes, BatchNorms left unfolded, layers left in float. */
  notes: string[];
}

/**
 * Never touches `loaded.model`. The copy has computed weights turned into initializers, foldable
 * BatchNormalizations folded into their Conv/Gemm, and a unique name on every quantizable layer.
 */
export function prepareModel(loaded: LoadedModel): PreparedModel {
  const model = clone(ModelProtoSchema, loaded.model);
  const graph = model.graph!;
  const materializedWeights = materializeWeights(graph, loaded.opset, loaded.irVersion);
  const bn = foldBatchNorms(graph, loaded.irVersion);
  const notes = [
    ...loaded.notes,
    ...bn.unfolded.map((u) => `BatchNormalization "${u.name}" was not folded: ${u.reason}. It stays in float and its output is not quantized.`),
  ];
  const index = indexGraph(graph);
  const inputs = index.inputs.map((name) => describeInput(index, tensorInfoOf(graph.input.find((v) => v.name === name)!)));
  if (inputs.length === 0) {
    throw new ModelError(`"${loaded.path}" has no input to feed images to (all its inputs are constants). Check that you chose the right file.`, { file: loaded.path });
  }
  const layers = findLayers(index, notes);
  return {
    source: loaded,
    model,
    input: inputs[0],
    inputs,
    output: graph.output[0].name,
    sourceBytes: loaded.fileBytes + loaded.externalBytes,
    layers,
    foldedBatchNorms: bn.folded,
    unfoldedBatchNorms: bn.unfolded,
    materializedWeights,
    notes,
  };
}

/** Operator domains onnxruntime ships kernels for; anything else needs a custom-op library Nibble does not load. */
const RUNTIME_DOMAINS = new Set(["", "ai.onnx", "ai.onnx.ml", "com.microsoft", "com.microsoft.nchwc", "com.ms.internal.nhwc"]);

/**
 * Refuses, with a ModelError naming the file, what onnxruntime would otherwise reject later with its own
 * wording: operators from custom domains (unless the model itself defines them as functions).
 */
export function requireRunnable(prepared: PreparedModel): void {
  const file = prepared.source.path;
  const graph = prepared.model.graph!;
  const local = new Set(prepared.model.functions.map((f) => `${f.domain}:${f.name}`));
  const foreign = [...new Set(graph.node.filter((n) => !RUNTIME_DOMAINS.has(n.domain) && !local.has(`${n.domain}:${n.opType}`)).map((n) => `${n.domain}:${n.opType}`))];
  if (foreign.length > 0) {
    throw new ModelError(
      `"${file}" uses ${foreign.length === 1 ? "an operator" : "operators"} from outside standard ONNX (${foreign.slice(0, 5).join(", ")}), which onnxruntime cannot run, ` +
        `so Nibble cannot measure the model. Re-export it with standard ONNX operators.`,
      { file },
    );
  }
}

const TENSOR_FOLDER_HINT = "Calibrate and evaluate it with a folder of .npy or .npz files instead (see nibble --help, non-image data).";

/**
 * The input geometry an image folder needs; a ModelError when images cannot feed the model. `inputSize` ([H, W])
 * is the size the user chose for a model whose height and width are open; it must match a model's fixed size.
 */
export function requireImageInput(prepared: PreparedModel, inputSize?: readonly [number, number]): ImageInput {
  requireRunnable(prepared);
  const file = prepared.source.path;
  const quoted = (names: string[]) => names.map((n) => `"${n}"`).join(", ");
  if (prepared.inputs.length > 1) {
    const names = prepared.inputs.map((i) => i.name);
    throw new ModelError(
      `"${file}" has ${names.length} inputs (${quoted(names)}); a folder of images fills only one and cannot fill ${quoted(names.slice(1))}. ` +
        `Use a folder of .npz files, each holding one array per input named after it (${quoted(names)}).`,
      { file },
    );
  }
  const { name, layout, channels, fixedBatch, shape, elemType } = prepared.input;
  if (elemType !== "float32") {
    throw new ModelError(`"${file}" takes input "${name}" as ${elemType} values, not float32 images. ${TENSOR_FOLDER_HINT}`, { file });
  }
  if (layout === null || channels === null) {
    throw new ModelError(
      `"${file}" takes input "${name}" of shape [${shape.join(", ")}], which Nibble cannot read as a batch of images ` +
        `(it needs [N, C, H, W] or [N, H, W, C] with 1, 3 or 4 channels). ${TENSOR_FOLDER_HINT}`,
      { file },
    );
  }
  const { height, width } = prepared.input;
  if (inputSize) {
    const [h, w] = inputSize;
    if ((height !== null && height !== h) || (width !== null && width !== w)) {
      throw new ModelError(
        `The input size ${h}x${w} does not fit "${file}": its input "${name}" is fixed at ${height ?? "any"}x${width ?? "any"} (height x width). ` +
          `${height !== null && width !== null ? "Leave the input size empty for this model." : `Choose a size with ${height !== null ? `height ${height}` : `width ${width}`}.`}`,
        { file },
      );
    }
    return { name, layout, channels, height: h, width: w, fixedBatch };
  }
  if (height === null || width === null) {
    const stride = inputStride(prepared);
    throw new ModelError(
      `"${file}" takes images of any size (input "${name}" [${shape.join(", ")}]), so Nibble needs to know which size to feed. ` +
        `Choose one: --input-size HxW on the command line, or the input size on the Model screen (a multiple of ${stride}, close to your images' size).`,
      { file },
    );
  }
  return { name, layout, channels, height, width, fixedBatch };
}

const STRIDED = new Set(["Conv", "MaxPool", "AveragePool", "LpPool"]);

/**
 * How much the model downsamples its first input: the largest product of Conv/pool strides on any path from it.
 * A dynamic-size input should be a multiple of this (feature pyramids add maps of different strides). At least 1.
 */
export function inputStride(prepared: PreparedModel): number {
  const scale = new Map<string, number>([[prepared.input.name, 1]]);
  let largest = 1;
  for (const node of prepared.model.graph!.node) {
    const reached = readsOf(node).map((r) => scale.get(r)).filter((v): v is number => v !== undefined);
    if (reached.length === 0) continue;
    const strides = STRIDED.has(node.opType) && isDefaultDomain(node) ? (attrInts(node, "strides") ?? [1]) : [1];
    const s = Math.max(...reached) * Math.max(...strides);
    largest = Math.max(largest, s);
    for (const o of node.output) scale.set(o, s);
  }
  return largest;
}

/** What describeLayer can tell from the node alone, before looking at neighbours. */
interface LayerDraft {
  op: LayerInfo["op"];
  kind: LayerInfo["kind"];
  input: string;
  weight: string;
  weightShape: number[];
  weightLayout: WeightLayout;
  weightAxis: number;
  groups: number;
  bias: string | null;
  output: string;
}

function findLayers(index: GraphIndex, notes: string[]): QuantLayer[] {
  const graph = index.graph;
  const fresh = nameGenerator(graph);
  const taken = new Set<string>();
  const drafts = new Map<NodeProto, LayerDraft>();
  for (const node of graph.node) {
    if (!isDefaultDomain(node)) continue;
    const draft = describeLayer(node, index, notes);
    if (draft) drafts.set(node, draft);
  }
  const first = firstLayers(graph, index, drafts);
  const last = lastLayers(graph, drafts);
  const layers: QuantLayer[] = [];
  for (const [i, node] of graph.node.entries()) {
    const d = drafts.get(node);
    if (!d) continue;
    // Node names are optional and not always unique; layers are addressed by name, so fix both.
    if (!node.name || taken.has(node.name)) node.name = fresh(`${node.opType}_${i}`);
    taken.add(node.name);
    const act = activationAfter(d.output, index);
    const isFirst = first.has(node);
    const isLast = last.has(node);
    const info: LayerInfo = {
      name: node.name,
      op: d.op,
      kind: d.kind,
      weightShape: d.weightShape,
      outChannels: d.weightShape[d.weightAxis],
      params: d.weightShape.reduce((a, b) => a * b, 1),
      halfRange: isHalfRange(act),
      activation: act.kind,
      activationClamp: act.clamp,
      activationRange: act.range,
      role: isFirst ? "first" : isLast ? "last" : "hidden",
    };
    const { input, weight, weightLayout, weightAxis, groups, bias, output } = d;
    layers.push({ info, input, weight, weightLayout, weightAxis, groups, bias, output, activationOutput: act.output, isFirst, isLast });
  }
  return layers;
}

function describeLayer(node: NodeProto, index: GraphIndex, notes: string[]): LayerDraft | null {
  const op = node.opType;
  if (op !== "Conv" && op !== "Gemm" && op !== "MatMul") return null;
  const label = `${op} "${node.name || node.output[0]}"`;
  const [input, weight, biasName] = node.input;
  if (!input || !weight || constantOf(index, input)) return null;
  const w = index.initializers.get(weight);
  if (!w) {
    // MatMul of two computed tensors (attention) is not a weight layer at all; say nothing.
    if (op !== "MatMul") notes.push(`${label} computes its weights while running; it is left in float.`);
    return null;
  }
  if (w.dataType !== DT.FLOAT) {
    notes.push(`${label} has ${dataTypeLabel(w.dataType)} weights; Nibble quantizes float32 weights only, so it is left as it is.`);
    return null;
  }
  const weightShape = w.dims.map(Number);
  const output = node.output[0];
  if (op === "Conv") {
    if (weightShape.length < 3) return null;
    const groups = attrInt(node, "group", 1);
    const kind = groups === 1 ? "conv" : weightShape[1] === 1 ? "depthwise" : "grouped";
    const bias = biasOf(biasName, index, weightShape[0]);
    return { op, kind, input, weight, weightShape, weightLayout: "OC_IC_K", weightAxis: 0, groups, bias, output };
  }
  if (weightShape.length !== 2) return null;
  const transposed = op === "Gemm" && attrInt(node, "transB", 0) === 1;
  const weightAxis = transposed ? 0 : 1;
  const bias = op === "Gemm" ? biasOf(biasName, index, weightShape[weightAxis]) : null;
  return { op, kind: "fc", input, weight, weightShape, weightLayout: transposed ? "OC_IC" : "IC_OC", weightAxis, groups: 1, bias, output };
}

function biasOf(name: string | undefined, index: GraphIndex, channels: number): string | null {
  const t = name ? index.initializers.get(name) : undefined;
  return t && t.dataType === DT.FLOAT && tensorElementCount(t) === channels && t.dims.length === 1 ? t.name : null;
}

/** Layers with no quantizable layer between them and the graph input. */
function firstLayers(graph: GraphProto, index: GraphIndex, drafts: Map<NodeProto, LayerDraft>): Set<NodeProto> {
  const fromInput = new Set(index.inputs);
  const afterLayer = new Set<string>();
  const first = new Set<NodeProto>();
  for (const node of graph.node) {
    const reads = readsOf(node);
    const tainted = reads.some((r) => afterLayer.has(r));
    const reached = reads.some((r) => fromInput.has(r));
    if (drafts.has(node) && reached && !tainted) first.add(node);
    for (const o of node.output) {
      if (drafts.has(node) || tainted) afterLayer.add(o);
      if (reached) fromInput.add(o);
    }
  }
  return first;
}

/** Layers whose output reaches a graph output with no quantizable layer after them. */
function lastLayers(graph: GraphProto, drafts: Map<NodeProto, LayerDraft>): Set<NodeProto> {
  const toOutput = new Set(graph.output.map((o) => o.name));
  const last = new Set<NodeProto>();
  for (let i = graph.node.length - 1; i >= 0; i--) {
    const node = graph.node[i];
    if (!node.output.some((o) => toOutput.has(o))) continue;
    if (drafts.has(node)) last.add(node);
    else readsOf(node).forEach((r) => toOutput.add(r));
  }
  return last;
}

const CHANNEL_COUNTS = new Set([1, 3, 4]);
/** Ops that preprocessing inside the model puts between the input and the first Conv/Transpose. */
const LAYOUT_NEUTRAL = new Set(["Identity", "Cast", "Add", "Sub", "Mul", "Div", "Clip", "Relu", "BatchNormalization"]);

/**
 * The input's layout. The graph says it best: ONNX Conv is always NCHW, so an input that reaches a
 * Conv directly is NCHW and one that first goes through Transpose(0,3,1,2) is NHWC. Otherwise the
 * shape decides, by where a 1/3/4-channel axis sits.
 */
function detectLayout(index: GraphIndex, input: TensorInfo): Layout | null {
  if (input.shape.length !== 4) return null;
  let frontier = [input.name];
  for (let depth = 0; depth < 8 && frontier.length > 0; depth++) {
    const next: string[] = [];
    for (const t of frontier) {
      for (const n of consumersOf(index, t)) {
        if (!isDefaultDomain(n)) continue;
        if (n.opType === "Conv" && n.input[0] === t) return "NCHW";
        if (n.opType === "Transpose" && attrInts(n, "perm")?.join() === "0,3,1,2") return "NHWC";
        if (LAYOUT_NEUTRAL.has(n.opType)) next.push(...n.output);
      }
    }
    frontier = next;
  }
  const [, d1, d2, d3] = input.shape;
  const ch1 = typeof d1 === "number" && CHANNEL_COUNTS.has(d1);
  const ch3 = typeof d3 === "number" && CHANNEL_COUNTS.has(d3);
  if (ch1 && !ch3) return "NCHW";
  if (ch3 && !ch1) return "NHWC";
  if (ch1 && ch3) return d2 === d3 ? "NCHW" : d1 === d2 ? "NHWC" : null;
  return null;
}

function describeInput(index: GraphIndex, info: TensorInfo): ModelInput {
  const layout = detectLayout(index, info);
  const dim = (k: number): number | null => {
    const d = info.shape[k];
    return typeof d === "number" && d > 0 ? d : null;
  };
  const [c, h, w] = layout === "NCHW" ? [1, 2, 3] : [3, 1, 2];
  const height = layout ? dim(h) : null;
  const width = layout ? dim(w) : null;
  return {
    ...info,
    layout,
    channels: layout ? dim(c) : null,
    height,
    width,
    fixedBatch: info.shape.length > 0 ? dim(0) : null,
    dynamicSize: layout !== null && (height === null || width === null),
  };
}
