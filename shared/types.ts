// Types shared by the engine, the hosts (Electron, loopback web) and the renderer.
// Everything here must stay plain data: it crosses worker, IPC and HTTP boundaries as JSON.
import type { TargetId } from "./targets.ts";

export type { TargetId } from "./targets.ts";

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
  /** [height, width] fed to a model whose input size is dynamic (ModelSummary.dynamicInputSize); the export keeps it dynamic. */
  inputSize?: [number, number];
  /** Channel 3 of a 4-channel model: the image's alpha (default; 255 when opaque) times scale, or this constant value. */
  fourthChannel?: "alpha" | number;
}

/** The paper's four methods. */
export type PaperMethod = "aciq" | "bitalloc-w" | "bitalloc-a" | "biascorr";
/** Methods beyond the paper (issue 9): weight clipping, cross-layer equalization, empirical bias correction
 * stored in the bias, rounding reconstruction. */
export type NewMethod = "weight-clip" | "equalize" | "bias-fold" | "reconstruct";
export type Method = PaperMethod | NewMethod;
/** `--methods all`: exactly the paper's four, so the paper-reproduction table keeps its meaning. */
export const ALL_METHODS: readonly Method[] = ["aciq", "bitalloc-w", "bitalloc-a", "biascorr"];
export const NEW_METHODS: readonly NewMethod[] = ["weight-clip", "equalize", "bias-fold", "reconstruct"];
export const KNOWN_METHODS: readonly Method[] = [...ALL_METHODS, ...NEW_METHODS];

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
  /**
   * The extremes min/max quantizers use (the baseline, every 8-bit tensor, the cap on ACIQ's interval):
   * "global", over every calibration image (the true range, per channel where activations are per channel);
   * "reference", the reference code's per-image extremes averaged over images (ALGORITHMS.md §6), which
   * clips, kept to reproduce the paper's tables.
   */
  calibration: Calibration;
  /** where the exported file will run (shared/targets.ts): the exact simulation, onnxruntime's integer kernels, a 4-bit NPU */
  target: TargetId;
  /** Settings of the reconstruct stage (methods "reconstruct" and "bias-fold"); defaults when absent. */
  reconstruct?: ReconstructSettings;
  /** Automatic mixed precision: the smallest model whose measured drop on the evaluation images is at most this
   * many points (top-1 with labels, FP32 agreement without). Needs evaluation images. */
  maxDrop?: number | null;
}

export interface ReconstructSettings {
  /** calibration images the reconstruction uses (default 256) */
  images?: number;
  /** each layer's inputs: from the float model, or from the network with the earlier layers quantized (default) */
  inputs?: "float" | "quantized";
  /** with quantized inputs, reproduce the float layer's output on float inputs (default true) */
  floatTarget?: boolean;
  /** quantize inputs in order of decreasing Hessian diagonal (default true) */
  actOrder?: boolean;
  /** Hessian dampening, a fraction of its mean diagonal (default 0.01) */
  damp?: number;
}

/** What the reconstruct stage did to one layer, for the report. */
export interface ReconstructLayerReport {
  name: string;
  /** Σ squared output error on the calibration inputs: nearest rounding, and the chosen codes */
  errorNearest: number;
  errorChosen: number;
  /** errorChosen over the layer's output energy: the sensitivity proxy */
  relativeError: number;
  /** mean |bias change| relative to mean |bias| (bias-fold) */
  biasShift: number;
  seconds: number;
}

/** The search of --max-drop, as data for the Compare screen. */
export interface MixedPrecisionReport {
  maxDrop: number;
  /** "top1": points of top-1 lost against FP32 (labelled images); "agreement": 100 − FP32 agreement;
   * "detection": 100 − the percentage of FP32's detections the candidate keeps */
  metric: "top1" | "agreement" | "detection";
  images: number;
  /** per layer, most sensitive first: the proxy (relative output error) and, when measured, the drop */
  sensitivity: { layer: string; params: number; proxy: number; measuredDrop: number | null }[];
  /** Spearman rank correlation of proxy and measured drop over the layers where both exist, or null */
  rankCorrelation: number | null;
  /** every model measured: the most sensitive `layers8` layers' weights at 8 bits; `margin` is one standard error
   * of the measured drop, and `meets` means drop + margin ≤ maxDrop */
  candidates: { layers8: number; kept: string[]; averageBits: number; bytes: number; drop: number; margin: number; meets: boolean }[];
  /** index into candidates of the returned model (one whose drop + margin meets the target, else the fewest-8-bit
   * one whose drop alone does), or null when none met the target */
  chosen: number | null;
  /** plain words: what was returned and how close it came */
  summary: string;
}

export type Calibration = "global" | "reference";
export const CALIBRATIONS: readonly Calibration[] = ["global", "reference"];

export interface TensorInfo {
  name: string;
  elemType: string;
  shape: (number | string)[];
}

/** The activations whose range Nibble knows (ALGORITHMS.md §5.3 generalised); "none" when a layer's output is used as it is. */
export type ActivationKind = "relu" | "relu6" | "clip" | "hardsigmoid" | "hardswish" | "sigmoid" | "tanh" | "leakyrelu" | "prelu" | "none";

/** An interval of tensor values; a null end is unbounded (JSON has no Infinity). */
export type Bounds = [number | null, number | null];

export interface LayerInfo {
  name: string;
  op: "Conv" | "Gemm" | "MatMul";
  /** conv kind: plain, grouped, depthwise; fc for Gemm/MatMul */
  kind: "conv" | "grouped" | "depthwise" | "fc";
  weightShape: number[];
  outChannels: number;
  params: number;
  /** output feeds only an activation whose lower clamp is 0 (ReLU, ReLU6, Clip(0, b)): the quantizer fuses it */
  halfRange: boolean;
  activation: ActivationKind;
  /** pre-activation values outside this interval give the same output as its ends, so no quantizer of the layer's output needs them */
  activationClamp: Bounds;
  /** what the activation outputs, known from the graph alone */
  activationRange: Bounds;
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
  /** the image input takes any height or width: the user chooses PreprocessConfig.inputSize (DataPreview suggests one) */
  dynamicInputSize?: boolean;
  /** the model's total downsampling: a chosen input size should be a multiple of it */
  inputStride?: number;
  layers: LayerInfo[];
  foldedBatchNorms: number;
  /** plain-language problems: unsupported operators, several inputs, ... */
  warnings: string[];
  unsupported: string[];
}

export interface Progress {
  /** layer-error: the pass that compares every layer's output with FP32; preprocess: trying preprocessing settings */
  stage: "decode" | "statistics" | "equalize" | "quantize" | "reconstruct" | "export" | "evaluate" | "layer-error" | "fp32" | "ablation" | "sensitivity" | "preprocess";
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
  /**
   * How onnxruntime (CPU) executes the exported layer, read from its own optimized graph: integer kernels,
   * float kernels behind DequantizeLinear (a faithful simulation), or plain float (kept in float)
   */
  executable: "integer" | "simulation" | "float";
  /** the operator onnxruntime's CPU provider runs the layer as (QLinearConv, Conv, ...); absent in older reports */
  runsAs?: string | null;
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

/** What onnxruntime made of the exported file: operator counts of its optimized graph (optimization level "all"). */
export interface RuntimeGraphReport {
  runtime: string;
  /** operator type (domain-qualified when not ONNX's) → count */
  ops: Record<string, number>;
  /** integer kernels: QLinearConv, QLinearMatMul, QGemm, QLinearAdd, ... */
  integerOps: number;
  /** float convolutions and matrix products left (Conv, FusedConv, Gemm, MatMul, ...) */
  floatConvs: number;
  /** per weighted layer: the operator onnxruntime runs it as (null: fused away or not found), integer or not */
  layers: { name: string; runsAs: string | null; integer: boolean }[];
}

/** The exported file's predictions at onnxruntime's lowest and highest optimization levels. */
export interface SelfCheckReport {
  images: number;
  /** top-1 agreement between the two levels, percent */
  top1Agreement: number;
  /** largest absolute difference between the two levels' outputs */
  maxAbsDiff: number;
  /** largest absolute output value, for scale */
  maxAbsOutput: number;
  /** quantization step of the compared output's values (null: it comes out of a float kernel) */
  outputStep: number | null;
  /** samples whose outputs moved by more than a few of those steps */
  beyondSteps: number;
  /** top-1 against the labels at each level, percent (null without labels) */
  accuracy: { plain: number; optimized: number; images: number } | null;
  /** top-1 agreement with FP32 at each level, percent (null without FP32's predictions) */
  fp32Agreement: { plain: number; optimized: number; images: number } | null;
  ok: boolean;
  /** why it failed, one sentence per failed test (empty when ok) */
  findings: string[];
  message: string;
}

export interface LatencyReport {
  /** labelled as this machine's: the numbers mean nothing elsewhere */
  machine: string;
  threads: 1;
  rows: { batch: number; fp32Ms: number; quantizedMs: number; ratio: number }[];
}

export interface TargetReport {
  id: TargetId;
  /** plain-language facts about what this target did: methods switched off, containers, placement */
  notes: string[];
  runtime: RuntimeGraphReport | null;
  selfCheck: SelfCheckReport | null;
  latency: LatencyReport | null;
}

/** One model output of the quantized model against FP32's on the evaluation data. */
export interface OutputFidelity {
  output: string;
  shape: (number | string)[];
  samples: number;
  /** 10·log10(Σx² / Σ(x − x̂)²) over all elements; null when FP32's output is all zero or the two are identical */
  sqnrDb: number | null;
  identical: boolean;
  /** cosine similarity of the two outputs per sample: the mean and the worst sample */
  cosine: number | null;
  worstCosine: number | null;
  maxAbsError: number;
  /** FP32's largest magnitude, the scale maxAbsError reads against */
  referenceMaxAbs: number;
}

/**
 * Detector outputs (scores [N, anchors, classes] and boxes [N, anchors, 4]): the detections FP32 finds at the
 * score threshold after per-class non-maximum suppression, and how many of them the quantized model finds too
 * (same class, overlap at least matchIou).
 */
export interface DetectionFidelity {
  scores: string;
  boxes: string;
  /** boxes are read as corners (x1, y1, x2, y2) */
  boxFormat: "corners";
  scoreThreshold: number;
  nmsIou: number;
  matchIou: number;
  /** classes in the scores output; background is the class not counted (column 0 when there are two or more) */
  classes: number;
  backgroundClass: number | null;
  samples: number;
  fp32Detections: number;
  quantizedDetections: number;
  /** FP32 detections the quantized model also finds */
  kept: number;
  /** kept / fp32Detections, percent; null when FP32 finds nothing */
  keptPercent: number | null;
  /** quantized detections with no FP32 counterpart */
  extra: number;
}

export interface QuantReport {
  tool: { name: "nibble"; version: string };
  createdAt: string;
  model: { path: string; sha256: string };
  calibration: { dir: string; images: number; skipped: { file: string; reason: string }[]; sha256: string };
  /** measured: false when the evaluation folder left nothing to evaluate on (see warnings): "not measured", not "0 images" */
  evaluation: { dir: string; images: number; skipped: { file: string; reason: string }[]; sha256: string; measured?: boolean } | null;
  preprocess: PreprocessConfig;
  config: QuantConfig;
  output: { path: string; sha256: string } | null;
  fp32: Accuracy | null;
  quantized: Accuracy | null;
  agreement: Agreement | null;
  /** every model output against FP32 on the evaluation data; absent or null when not measured */
  outputs?: OutputFidelity[] | null;
  /** detection fidelity when the outputs look like a detector's */
  detection?: DetectionFidelity | null;
  size: SizeReport;
  layers: LayerReport[];
  timings: Record<string, number>;
  warnings: string[];
  /** the export target's checks; absent in reports made before targets existed */
  target?: TargetReport;
  reconstruction?: { layers: ReconstructLayerReport[]; passSeconds: number; solveSeconds: number; images: number };
  mixedPrecision?: MixedPrecisionReport;
}
