// Where an exported model will run, in the words the Export screen asks the question with ("Where will
// this model run?"). Plain data: the renderer shows it, the engine's targets/ modules implement it.

export type TargetId = "exact" | "ort" | "int4-npu";
export const TARGET_IDS: readonly TargetId[] = ["exact", "ort", "int4-npu"];

export interface TargetDescription {
  id: TargetId;
  /** the answer to "Where will this model run?" */
  where: string;
  /** one line each: what the user gets */
  speed: string;
  size: string;
  accuracy: string;
  /** what the file is, for readers who know ONNX */
  technical: string;
}

export const TARGETS: Readonly<Record<TargetId, TargetDescription>> = {
  exact: {
    id: "exact",
    where: "Anywhere: the smallest file, for storing or sending the model",
    speed: "Not faster than the original: runtimes turn it back into float arithmetic (a faithful simulation of the low-bit model).",
    size: "Smallest: 4-bit weights are stored as 4 bits (about a fifth of the original at W4).",
    accuracy: "Exactly what Nibble measured, with every method of the paper (per-channel activations, any bit widths).",
    technical: "Standard opset-21 ONNX; INT4/INT8 weights behind DequantizeLinear, per-channel QuantizeLinear/DequantizeLinear pairs on each layer's output (the paper's placement).",
  },
  ort: {
    id: "ort",
    where: "This computer or a server, with onnxruntime",
    speed: "Faster than the original: onnxruntime runs every quantized convolution, matrix product and residual sum as 8-bit integer arithmetic (measured and shown after the run).",
    size: "About a quarter of the original. Weights below 8 bits keep their grid inside 8-bit containers, so a W4 file is no smaller than W8.",
    accuracy: "Usually within a point of the original at 8 bits; the report measures the cost of this layout against the exact simulation.",
    technical: "onnxruntime's QDQ layout: per-tensor UINT8 activations at the inputs of quantized operators, symmetric per-channel INT8 weights, INT32 biases, ReLU/ReLU6 absorbed by the quantizer's range.",
  },
  "int4-npu": {
    id: "int4-npu",
    where: "A phone or board whose NPU takes 4-bit weights (Qualcomm HTP class, through onnxruntime's QNN provider)",
    speed: "Runs on the NPU; on this computer it runs as a slow simulation, so its speed here says nothing about the device.",
    size: "Smallest deployable file: 4-bit weights stored as 4 bits (8 bits for layers kept at 8).",
    accuracy: "Symmetric 4-bit weights and per-tensor activations: a little below the exact simulation at the same bits.",
    technical: "QNN HTP QDQ form, opset 21: symmetric per-channel INT4 weights (INT8 where a layer is kept at 8 bits), UINT8 per-tensor activations, INT32 biases, every quantized operator a DequantizeLinear → op → QuantizeLinear unit.",
  },
};
