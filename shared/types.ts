// Types shared by the engine, the hosts (Electron, loopback web) and the renderer.
// Everything here must stay plain data: it crosses worker, IPC and HTTP boundaries as JSON.

export type Layout = "NCHW" | "NHWC";

export type PresetName = "imagenet" | "inception" | "caffe" | "raw255" | "raw01" | "custom";

export interface PreprocessConfig {
  preset: PresetName;
  /** Per-channel mean/std applied after scaling, in the model's channel order (custom only). */
  mean?: [number, number, number];
  std?: [number, number, number];
  /** Pixel values are multiplied by this before mean/std (custom only), e.g. 1/255. */
  scale?: number;
  channelOrder?: "RGB" | "BGR";
  /** Shorter side scaled to this, then centre crop; both absent = resize straight to the model input. */
  resize?: number;
  crop?: number;
}

export type Method = "aciq" | "bitalloc-w" | "bitalloc-a" | "biascorr";
export const ALL_METHODS: readonly Method[] = ["aciq", "bitalloc-w", "bitalloc-a", "biascorr"];

/** How activations are clipped when ACIQ is off (the baseline calibrators). */
export type Calibrator = "minmax" | "percentile" | "mse";

export interface QuantConfig {
  wBits: number;
  aBits: number;
  methods: Method[];
  prior: "laplace" | "gaussian";
  /** "reference": the authors' 2-decimal constants; "exact": the float64 solution. */
  aciqConstants: "reference" | "exact";
  /** "reference": the authors' fixed-target loop; "strict": never exceeds the budget. */
  bitAllocMode: "reference" | "strict";
  varianceCorrection: boolean;
  baseline: Calibrator;
  activations: "per-channel" | "per-tensor";
  keepFirstLast8: boolean;
  /** Layer name -> held at 8 bits or left in float. */
  keep: Record<string, "8" | "float">;
}

export interface TensorInfo {
  name: string;
  elemType: string;
  shape: (number | string)[];
}

export interface LayerInfo {
  name: string;
  op: "Conv" | "Gemm" | "MatMul";
  /** conv kind: plain, grouped, depthwise; fc for Gemm/MatMul */
  kind: "conv" | "grouped" | "depthwise" | "fc";
  weightShape: number[];
  outChannels: number;
  params: number;
  /** output feeds only a ReLU (quantizer fuses it) */
  halfRange: boolean;
  activation: "relu" | "relu6" | "leakyrelu" | "none";
  role: "first" | "last" | "hidden";
}

export interface ModelSummary {
  path: string;
  fileBytes: number;
  irVersion: number;
  opsets: { domain: string; version: number }[];
  producer: string;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  params: number;
  layout: Layout | null;
  /** expected input height/width when known */
  inputSize: [number, number] | null;
  layers: LayerInfo[];
  foldedBatchNorms: number;
  /** plain-language problems: unsupported operators, several inputs, ... */
  warnings: string[];
  unsupported: string[];
}

export interface Progress {
  /** layer-error: the pass that compares every layer's output with FP32; preprocess: trying preprocessing settings */
  stage: "decode" | "statistics" | "quantize" | "export" | "evaluate" | "layer-error" | "fp32" | "ablation" | "preprocess";
  done: number;
  total: number;
  /** seconds, null when unknown */
  etaSeconds: number | null;
  message?: string;
}

export interface Accuracy {
  images: number;
  labelled: number;
  top1: number | null;
  top5: number | null;
  /** 95% Wilson interval on top-1, percent */
  top1Interval: [number, number] | null;
  top5Interval: [number, number] | null;
}

export interface Agreement {
  /** fraction of images whose top-1 equals FP32's top-1, percent */
  agreement: number;
  flipped: number;
  /** correct in FP32, wrong quantized / wrong in FP32, right quantized (labelled only) */
  lost: number | null;
  gained: number | null;
}

export interface LayerReport {
  name: string;
  op: string;
  role: "first" | "last" | "hidden";
  precision: "low" | "8bit" | "float";
  weightBits: number;
  weightBitsPerChannel: number[];
  activationBits: number | null;
  activationBitsPerChannel: number[] | null;
  halfRange: boolean;
  activationGranularity: "per-channel" | "per-tensor" | "none";
  /** total kept range / total observed range, over channels */
  rangeKept: number | null;
  fractionClipped: number | null;
  /** mean absolute per-channel shift added by bias correction, relative to weight std */
  biasShift: number | null;
  sqnrDb: number | null;
  /** how a runtime executes the exported layer: integer kernels, a faithful QDQ simulation, or plain float */
  executable: "integer" | "simulation" | "float";
  executableWhy: string;
  /** methods that were on for this layer but changed nothing measurable */
  noEffect: Method[];
}

export interface SizeReport {
  fp32Bytes: number;
  quantBytes: number;
  /** sum over weights of bits allocated, in bytes */
  theoreticalBytes: number;
  ratio: number;
}

export interface QuantReport {
  tool: { name: "nibble"; version: string };
  createdAt: string;
  model: { path: string; sha256: string };
  calibration: { dir: string; images: number; skipped: { file: string; reason: string }[]; sha256: string };
  evaluation: { dir: string; images: number; skipped: { file: string; reason: string }[]; sha256: string } | null;
  preprocess: PreprocessConfig;
  config: QuantConfig;
  output: { path: string; sha256: string } | null;
  fp32: Accuracy | null;
  quantized: Accuracy | null;
  agreement: Agreement | null;
  size: SizeReport;
  layers: LayerReport[];
  timings: Record<string, number>;
  warnings: string[];
}
