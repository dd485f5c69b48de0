// What the user sees before quantizing: the model's interface, its quantizable layers, and
// plain-language warnings about anything Nibble cannot handle well.
import type { GraphProto, NodeProto } from "onnx-buf";
import type { ModelSummary } from "../../../shared/types.ts";
import { describeBounds } from "./activations.ts";
import { attribute, constantNodeValue, isDefaultDomain, tensorInfoOf } from "./graph.ts";
import { formatBytes, loadModel, type LoadedModel } from "./model-io.ts";
import { inputStride, prepareModel, type PreparedModel } from "./prepare.ts";
import { isFloatType, tensorElementCount } from "./tensor.ts";

/** Default-domain operators seen in CNN classifiers; anything else is reported, not refused. */
const KNOWN_OPS = new Set([
  "Conv", "ConvTranspose", "Gemm", "MatMul", "Relu", "Clip", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu",
  "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Softplus", "Softsign", "Gelu", "Mish", "Erf",
  "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Exp", "Log", "Neg", "Abs", "Reciprocal", "Max", "Min",
  "Mean", "Sum", "Floor", "Ceil", "Round", "Sign", "Equal", "Greater", "Less", "Not", "And", "Or", "Where",
  "Concat", "Split", "Slice", "Pad", "Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Expand",
  "Tile", "Gather", "Shape", "Size", "Range", "ConstantOfShape", "Constant", "Identity", "Cast", "CastLike",
  "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LpPool", "BatchNormalization",
  "InstanceNormalization", "LayerNormalization", "GroupNormalization", "LRN", "Dropout", "Softmax",
  "LogSoftmax", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum", "ReduceL2", "ArgMax", "TopK",
  "Resize", "Upsample", "DepthToSpace", "SpaceToDepth", "Einsum",
]);
const CONTROL_FLOW = new Set(["If", "Loop", "Scan"]);

export async function inspectModel(file: string): Promise<ModelSummary> {
  const loaded = await loadModel(file);
  return summarize(loaded, prepareModel(loaded));
}

export function summarize(loaded: LoadedModel, prepared: PreparedModel): ModelSummary {
  const graph = loaded.model.graph!;
  const initializers = new Set(graph.initializer.map((t) => t.name));
  const inputs = graph.input.filter((v) => !initializers.has(v.name)).map(tensorInfoOf);
  const layers = prepared.layers.map((l) => l.info);
  const warnings = [...prepared.notes];
  const unsupported: string[] = [];

  if (inputs.length > 1) {
    warnings.push(
      `The model has ${inputs.length} inputs (${inputs.map((i) => `"${i.name}"`).join(", ")}); a folder of images cannot fill them all. Calibrate and evaluate it with a folder of .npz files holding one array per input, named after it.`,
    );
  }
  const input = prepared.input;
  if (input.elemType !== "float32") warnings.push(`The input "${input.name}" takes ${input.elemType} values; images feed float32, so calibrate it with a folder of .npy or .npz files.`);
  if (input.layout === null) {
    warnings.push(`Nibble cannot tell whether input "${input.name}" [${input.shape.join(", ")}] is NCHW or NHWC; it expects 4 dimensions with 1, 3 or 4 channels.`);
  } else if (input.height === null || input.width === null) {
    warnings.push(`The input "${input.name}" takes any height and width: choose the size to feed (--input-size HxW, or the input size on the Model screen), a multiple of ${inputStride(prepared)}. The exported model keeps its dynamic size.`);
  }
  if (layers.length === 0) {
    warnings.push("Nibble found no layer to quantize (no Conv, Gemm or MatMul with constant float32 weights).");
  }

  const ops = countOps(graph);
  const unknown = [...ops].filter(([k]) => !k.includes(":") && !KNOWN_OPS.has(k) && !CONTROL_FLOW.has(k));
  const control = [...ops].filter(([k]) => CONTROL_FLOW.has(k));
  const custom = [...ops].filter(([k]) => k.includes(":"));
  const list = (entries: [string, number][]) => entries.map(([k, n]) => (n > 1 ? `${k} (${n}x)` : k)).join(", ");
  if (unknown.length > 0) {
    warnings.push(`The model uses operators Nibble has not been checked with: ${list(unknown)}. They run in float; check the quantized accuracy carefully.`);
  }
  if (control.length > 0) {
    warnings.push(`The model uses control flow (${list(control)}); layers inside those branches or loops are not quantized.`);
  }
  if (custom.length > 0) {
    warnings.push(`The model uses operators outside standard ONNX (${list(custom)}); onnxruntime may not run them, and Nibble cannot quantize them.`);
  }
  unsupported.push(...[...unknown, ...control, ...custom].map(([k]) => k));

  const depthwise = layers.filter((l) => l.kind === "depthwise");
  if (depthwise.length > 0) {
    warnings.push(
      `${depthwise.length} depthwise convolution${depthwise.length > 1 ? "s" : ""} (e.g. "${depthwise[0].name}"): ` +
        "depthwise networks are hard at 4 bits; consider keeping them at 8.",
    );
  }

  return {
    path: loaded.path,
    fileBytes: loaded.fileBytes,
    irVersion: loaded.declared.irVersion,
    opsets: loaded.declared.opsets,
    producer: [loaded.model.producerName, loaded.model.producerVersion].filter(Boolean).join(" "),
    inputs,
    outputs: graph.output.map(tensorInfoOf),
    params: floatParams(graph),
    layout: input.layout,
    inputSize: input.height !== null && input.width !== null ? [input.height, input.width] : null,
    dynamicInputSize: input.dynamicSize,
    inputStride: inputStride(prepared),
    layers,
    foldedBatchNorms: prepared.foldedBatchNorms,
    warnings,
    unsupported,
  };
}

/** Operator counts keyed by op type, or "domain:op" outside the default domain; subgraphs included. */
function countOps(graph: GraphProto): Map<string, number> {
  const counts = new Map<string, number>();
  const visit = (nodes: NodeProto[]): void => {
    for (const n of nodes) {
      const key = isDefaultDomain(n) ? n.opType : `${n.domain}:${n.opType}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
      for (const a of n.attribute) {
        if (a.g) visit(a.g.node);
        for (const g of a.graphs) visit(g.node);
      }
    }
  };
  visit(graph.node);
  return counts;
}

/** Float elements in initializers and Constant nodes: the model's learned parameters. */
function floatParams(graph: GraphProto): number {
  let n = 0;
  for (const t of graph.initializer) if (isFloatType(t.dataType)) n += tensorElementCount(t);
  for (const node of graph.node) {
    if (node.opType !== "Constant" || !isDefaultDomain(node) || !attribute(node, "value")) continue;
    const t = constantNodeValue(node);
    if (t && isFloatType(t.dataType)) n += tensorElementCount(t);
  }
  return n;
}

/** A readable, aligned text report for the command line. */
export function formatSummary(s: ModelSummary): string {
  const shape = (dims: (number | string)[]) => `[${dims.join(", ")}]`;
  const io = (list: ModelSummary["inputs"]) => list.map((t) => `${t.name}  ${t.elemType} ${shape(t.shape)}`).join("; ") || "(none)";
  const kinds = countBy(s.layers.map((l) => l.kind));
  const header: [string, string][] = [
    ["Model", `${s.path} (${formatBytes(s.fileBytes)})`],
    ["Format", `ONNX IR ${s.irVersion}, ${s.opsets.map((o) => `${o.domain} ${o.version}`).join(", ")}${s.producer ? `, made by ${s.producer}` : ""}`],
    ["Input", `${io(s.inputs)}${s.layout ? `  (${s.layout}${s.inputSize ? `, ${s.inputSize[0]} x ${s.inputSize[1]}` : ""})` : ""}`],
    ["Output", io(s.outputs)],
    ["Parameters", s.params.toLocaleString("en-US")],
    ["Layers", `${s.layers.length} to quantize${kinds ? ` (${kinds})` : ""}; ${s.foldedBatchNorms} BatchNorm folded`],
  ];
  const lines = header.map(([k, v]) => `${k.padEnd(11)} ${v}`);
  if (s.layers.length > 0) {
    const rows = [
      ["#", "layer", "op", "kind", "weights", "out", "activation", "range", "role"],
      ...s.layers.map((l, i) => [
        String(i + 1), l.name, l.op, l.kind, l.weightShape.join("x"), String(l.outChannels),
        l.activation, activationRangeLabel(l), l.role,
      ]),
    ];
    lines.push("", ...table(rows, new Set([0, 5])));
  }
  if (s.warnings.length > 0) lines.push("", "Warnings", ...s.warnings.map((w) => `  - ${w}`));
  return lines.join("\n") + "\n";
}

/** What the quantizer of the layer's output can rely on: "half" (ReLU), "0 to 6" (ReLU6), "-2.5 to 2.5", "signed". */
function activationRangeLabel(l: ModelSummary["layers"][number]): string {
  const clamp = l.activationClamp;
  const out = l.activationRange;
  if (clamp[0] !== null || clamp[1] !== null) return describeBounds(clamp);
  // no clamp on the layer's output, but a bounded output (Sigmoid, Tanh): say what the activation gives
  return out[0] !== null || out[1] !== null ? `signed, output ${describeBounds(out)}` : "signed";
}

function countBy(values: string[]): string {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts].map(([k, n]) => `${n} ${k}`).join(", ");
}

/** Columns padded to their widest cell; numeric columns right-aligned. */
function table(rows: string[][], rightAligned: Set<number>): string[] {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) =>
    "  " + r.map((cell, c) => (rightAligned.has(c) ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join("  ").trimEnd(),
  );
}
