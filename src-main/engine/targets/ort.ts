// The ort target: onnxruntime's own QDQ layout, so its CPU provider fuses every quantized Conv, Gemm,
// MatMul and residual Add into integer kernels (QLinearConv, QGemm, QLinearMatMul, QLinearAdd, ...):
// per-tensor UINT8 activations at the inputs of quantized operators, symmetric per-channel INT8 weights,
// INT32 biases, ReLU/ReLU6 absorbed by the quantizer's range. onnxruntime fuses no weight narrower than
// INT8, so weights below 8 bits keep their grid inside INT8 containers.
import { exportInteger } from "./integer.ts";
import { ORT_RULES } from "./qdq-rules.ts";
import type { Target } from "./target.ts";

export const ORT: Target = {
  id: "ort",
  placement: "operator-inputs",
  rules: ORT_RULES,
  perChannelActivations: false,
  symmetricWeights: true,
  // an INT8 container holds every grid of up to 8 bits, so per-channel bit widths cost nothing to store
  mixedWeightBits: true,
  integerBias: true,
  quantizeFloatOutputs: false,
  weightContainer: () => "INT8",
  emit: (input) => exportInteger(ORT, input),
};
