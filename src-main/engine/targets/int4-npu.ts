// The int4-npu target: the QDQ form Qualcomm's HTP takes through onnxruntime's QNN provider
// (get_qnn_qdq_config): opset 21, symmetric per-channel INT4 weights (INT8 for layers kept at 8 bits),
// per-tensor UINT8 activations, INT32 biases, every quantized operator a DequantizeLinear → op →
// QuantizeLinear unit, its output included (the NPU keeps the whole graph in integers).
import { exportInteger } from "./integer.ts";
import { QNN_RULES } from "./qdq-rules.ts";
import type { Target } from "./target.ts";

export const INT4_NPU: Target = {
  id: "int4-npu",
  placement: "operator-inputs",
  rules: QNN_RULES,
  perChannelActivations: false,
  symmetricWeights: true,
  // one container per layer: a channel allocated more than 4 bits would turn the whole layer INT8
  mixedWeightBits: false,
  integerBias: true,
  quantizeFloatOutputs: true,
  weightContainer: (bits) => (bits <= 4 ? "INT4" : "INT8"),
  emit: (input) => exportInteger(INT4_NPU, input),
};
