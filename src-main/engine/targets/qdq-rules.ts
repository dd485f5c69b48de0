// Per-operator QDQ rules for the integer targets, as data (like onnxruntime's quantization/operators/*.py):
// which inputs of an operator carry activations, how its output is quantized, and what a runtime makes of
// the DequantizeLinear → op → QuantizeLinear unit. The placement (placement.ts) reads only this table.
import type { NodeProto } from "onnx-buf";
import { attrFloat } from "../onnx/graph.ts";

export type QdqRole =
  /** Conv/Gemm/MatMul with planned weights: activation input from a DQ, weights and INT32 bias behind DQs, output to a Q */
  | "weighted"
  /** every activation input from a DQ, output to a Q with its own scale (QLinearAdd, QLinearConcat, ...) */
  | "multi"
  /** one activation input; quantized only where its output feeds a quantized operator (QLinearAveragePool, ...) */
  | "unary"
  /** moves or selects values: its output keeps its input's scale and zero point, so the runtime runs it on the integers */
  | "passthrough"
  /** an activation the quantizer's range performs (lower clamp 0): removed, its output quantized instead */
  | "absorbed";

export interface QdqRule {
  role: QdqRole;
  /** indices of the inputs that carry activations (the rest are shapes, axes, constants) */
  data: (node: NodeProto) => number[];
  /** the integer operator the unit becomes, for the report */
  becomes: string;
}

const first = () => [0];
const all = (n: NodeProto) => n.input.map((_, i) => i).filter((i) => n.input[i] !== "");

const rule = (role: QdqRole, becomes: string, data: QdqRule["data"] = first): QdqRule => ({ role, becomes, data });

/** What onnxruntime's CPU provider fuses (qdq_selector_action_transformer.cc) and the ops its QDQ propagation passes through. */
export const ORT_RULES: Readonly<Record<string, QdqRule>> = {
  Conv: rule("weighted", "QLinearConv"),
  Gemm: rule("weighted", "QGemm"),
  MatMul: rule("weighted", "QLinearMatMul"),
  Add: rule("multi", "QLinearAdd", all),
  Mul: rule("multi", "QLinearMul", all),
  Concat: rule("multi", "QLinearConcat", all),
  AveragePool: rule("unary", "QLinearAveragePool"),
  GlobalAveragePool: rule("unary", "QLinearGlobalAveragePool"),
  LeakyRelu: rule("unary", "QLinearLeakyRelu"),
  Sigmoid: rule("unary", "QLinearSigmoid"),
  MaxPool: rule("passthrough", "MaxPool on UINT8"),
  Reshape: rule("passthrough", "Reshape on UINT8"),
  Flatten: rule("passthrough", "Flatten on UINT8"),
  Transpose: rule("passthrough", "Transpose on UINT8"),
  Squeeze: rule("passthrough", "Squeeze on UINT8"),
  Unsqueeze: rule("passthrough", "Unsqueeze on UINT8"),
  Slice: rule("passthrough", "Slice on UINT8"),
  Gather: rule("passthrough", "Gather on UINT8"),
  Expand: rule("passthrough", "Expand on UINT8"),
  Tile: rule("passthrough", "Tile on UINT8"),
  // the padded zeros are on the grid (every integer range holds 0); onnxruntime runs Pad in float between DQ and Q
  Pad: rule("passthrough", "Pad between DQ and Q"),
  Relu: rule("absorbed", "the QuantizeLinear's clamp"),
  Clip: rule("absorbed", "the QuantizeLinear's clamp"),
};

/** QNN's HTP takes every operator as a quantized unit; the ones CNNs use beyond onnxruntime's CPU set. */
export const QNN_RULES: Readonly<Record<string, QdqRule>> = {
  ...ORT_RULES,
  Sub: rule("multi", "HTP ElementWiseSubtract", all),
  HardSigmoid: rule("unary", "HTP HardSigmoid"),
  HardSwish: rule("unary", "HTP HardSwish"),
  Tanh: rule("unary", "HTP Tanh"),
  PRelu: rule("unary", "HTP Prelu"),
  Resize: rule("passthrough", "HTP Resize"),
  Softmax: rule("unary", "HTP Softmax"),
};

/** Gemm's bias must be added once (beta 1) for the INT32 bias form; other Gemms stay float. */
export function weightedSupported(node: NodeProto): boolean {
  return node.opType !== "Gemm" || node.input.length < 3 || node.input[2] === "" || attrFloat(node, "beta", 1) === 1;
}
