// The whole job, stage by stage: prepare → statistics → plan → export → evaluate → report.
// Each stage is a small module; this file only wires them and keeps the timings.
import { fromBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema, type ModelProto } from "onnx-buf";
import type { LayerHistogram } from "../../../shared/engine-api.ts";
import type { PreprocessConfig, QuantConfig, QuantReport } from "../../../shared/types.ts";
import { batches } from "../data/loader.ts";
import { scanImages, type ImageSet } from "../data/scan.ts";
import { ModelError } from "../onnx/errors.ts";
import { withOutputs } from "../onnx/graph.ts";
import { encodeModel, loadModel } from "../onnx/model-io.ts";
import { prepareModel, requireImageInput, type PreparedModel } from "../onnx/prepare.ts";
import { tensorToFloat32 } from "../onnx/tensor.ts";
import { collectStatistics } from "./calibrate.ts";
import { evaluate, type EvaluationResult, type Predictions } from "./evaluate.ts";
import { channelView } from "./histogram.ts";
import { exactPlacement, planLayer, type LayerPlan, type PlanLayer } from "./plan.ts";
import { throwIfAborted, type ProgressListener } from "./progress.ts";
import { buildReport, NIBBLE_VERSION } from "./report.ts";
import type { InputGeometry } from "./runtime.ts";
import type { TensorStatistics } from "./statistics.ts";
import { EXACT } from "../targets/exact.ts";
import type { ExportResult } from "../targets/target.ts";

export const BATCH_SIZE = 64;

export interface DataSource {
  dir: string;
  limit?: number;
  seed?: number;
}

export interface QuantizeRequest {
  model: string;
  calib: DataSource;
  eval: DataSource | null;
  preprocess: PreprocessConfig;
  config: QuantConfig;
  /** per-layer SQNR needs both models' intermediate tensors; benchmarks switch it off */
  layerErrors?: boolean;
  /** per-channel histograms of every quantized output on the first images, for charts and the clipped
   * fraction; on unless switched off (the percentile and MSE calibrators always histogram every image) */
  histograms?: boolean;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
}

export interface QuantizeOutcome {
  report: QuantReport;
  /** the exported model, exactly the bytes that were evaluated */
  bytes: Uint8Array;
  histograms: Record<string, LayerHistogram>;
}

/** Everything that does not depend on the method switches, so an ablation computes it once. */
export interface Calibrated {
  prepared: PreparedModel;
  geometry: InputGeometry;
  calibSet: ImageSet;
  statistics: Map<string, TensorStatistics>;
  weights: Map<string, { data: Float32Array; shape: number[] }>;
  timings: Record<string, number>;
}

export function batchSizeFor(geometry: InputGeometry): number {
  return geometry.fixedBatch ?? BATCH_SIZE;
}

export function imageBatches(set: ImageSet, geometry: InputGeometry, preprocess: PreprocessConfig, signal?: AbortSignal) {
  return batches(set, {
    batchSize: batchSizeFor(geometry),
    layout: geometry.layout,
    channels: geometry.channels,
    height: geometry.height,
    width: geometry.width,
    preprocess,
    signal,
  });
}

function planLayers(prepared: PreparedModel): PlanLayer[] {
  return prepared.layers.map(exactPlacement);
}

export async function calibrate(req: Omit<QuantizeRequest, "eval" | "layerErrors">): Promise<Calibrated> {
  const timings: Record<string, number> = {};
  let t = performance.now();
  const lap = (name: string) => {
    const now = performance.now();
    timings[name] = (now - t) / 1000;
    t = now;
  };
  const loaded = await loadModel(req.model);
  const prepared = prepareModel(loaded);
  const geometry: InputGeometry = requireImageInput(prepared);
  const names = new Set(prepared.layers.map((l) => l.info.name));
  for (const name of Object.keys(req.config.keep)) {
    if (!names.has(name)) {
      throw new ModelError(`No quantizable layer of ${req.model} is named "${name}", so it cannot be kept at 8 bits or in float. "nibble inspect" and the Model screen list the layer names.`, { file: req.model });
    }
  }
  if (prepared.layers.length === 0) {
    throw new ModelError(`${req.model} has no layer Nibble can quantize (Conv, Gemm or MatMul with constant weights). "nibble inspect" shows what the model contains.`, { file: req.model });
  }
  lap("prepare");
  throwIfAborted(req.signal);
  const calibSet = await scanImages(req.calib.dir, { limit: req.calib.limit, seed: req.calib.seed });
  // the percentile and MSE calibrators read every image's histogram (an ablation uses them without ACIQ too)
  const needHistograms = req.config.baseline !== "minmax";
  const statistics = await collectStatistics({
    model: prepared.model,
    geometry,
    taps: planLayers(prepared).map((l) => ({ tensor: l.output, perChannel: l.op === "Conv", wholeTensor: req.config.activations === "per-tensor" })),
    images: calibSet.files.length,
    batches: imageBatches(calibSet, geometry, req.preprocess, req.signal),
    histograms: needHistograms ? "all" : req.histograms === false ? "none" : "sample",
    signal: req.signal,
    onProgress: req.onProgress,
  });
  lap("statistics");
  const weights = new Map<string, { data: Float32Array; shape: number[] }>();
  const inits = new Map(prepared.model.graph!.initializer.map((i) => [i.name, i]));
  for (const l of prepared.layers) {
    const init = inits.get(l.weight)!;
    weights.set(l.weight, { data: tensorToFloat32(init), shape: init.dims.map(Number) });
  }
  return { prepared, geometry, calibSet, statistics, weights, timings };
}

export function quantizeCalibrated(
  c: Calibrated,
  config: QuantConfig,
  metadata: Record<string, string>,
  onProgress?: ProgressListener,
): { plans: LayerPlan[]; exported: ExportResult; bytes: Uint8Array } {
  const plans = planLayers(c.prepared).map((layer) => planLayer(layer, c.weights.get(layer.weightName)!, c.statistics.get(layer.output), config, EXACT));
  onProgress?.({ stage: "quantize", done: plans.length, total: plans.length, etaSeconds: 0 });
  onProgress?.({ stage: "export", done: 0, total: 1, etaSeconds: null });
  const exported = EXACT.emit({
    model: c.prepared.model,
    plans,
    tensors: new Map(),
    placement: null,
    weightShapes: new Map([...c.weights].map(([k, v]) => [k, v.shape])),
    activationRanks: new Map([...c.statistics].map(([k, v]) => [k, v.sampleShape.length + 1])),
    metadata,
  });
  const bytes = encodeModel(exported.model);
  onProgress?.({ stage: "export", done: 1, total: 1, etaSeconds: 0 });
  return { plans, exported, bytes };
}

/** The tensor to compare per layer: the activation's output (what the next layer sees), else the layer output. */
function errorTaps(prepared: PreparedModel): Map<string, string> {
  return new Map(prepared.layers.map((l) => [l.info.name, l.activationOutput ?? l.output]));
}

function layerHistograms(c: Calibrated, plans: LayerPlan[]): Record<string, LayerHistogram> {
  const out: Record<string, LayerHistogram> = {};
  for (const p of plans) {
    const s = c.statistics.get(p.layer.output);
    if (!s?.histogram) continue;
    const h = s.histogram;
    const limit = Math.max(...h.limit);
    const bins = 80;
    const counts = new Array<number>(bins).fill(0);
    for (let ch = 0; ch < h.channels; ch++) {
      const v = channelView(h, ch);
      const width = (v.hi - v.lo) / h.bins;
      for (let k = 0; k < h.bins; k++) {
        const centre = v.lo + (k + 0.5) * width;
        const j = Math.min(bins - 1, Math.max(0, Math.floor(((centre + limit) / (2 * limit)) * bins)));
        counts[j] += v.counts[k];
      }
    }
    const a = p.activation;
    out[p.layer.name] = {
      edges: Array.from({ length: bins + 1 }, (_, k) => -limit + (2 * limit * k) / bins),
      counts,
      clipLo: a ? Math.min(...a.lo) : s.globalMin,
      clipHi: a ? Math.max(...a.lo.map((lo, i) => lo + a.range[i])) : s.globalMax,
      observedMin: s.globalMin,
      observedMax: s.globalMax,
    };
  }
  return out;
}

/** Per-layer errors come from this many evaluation images: enough for a stable SQNR, cheap next to the accuracy pass. */
export const LAYER_ERROR_IMAGES = 256;

/**
 * Accuracy of the user's own FP32 file and of the exported bytes exactly as written (no extra outputs, which
 * would let onnxruntime optimise the graph differently); then, on the first images, per-layer SQNR from copies
 * of both models that expose each layer's output.
 */
export async function evaluateQuantized(
  c: Calibrated,
  bytes: Uint8Array,
  evalSet: ImageSet,
  req: Pick<QuantizeRequest, "preprocess" | "layerErrors" | "signal" | "onProgress">,
  fp32Predictions?: Predictions,
): Promise<EvaluationResult> {
  const common = { geometry: c.geometry, output: c.prepared.output, signal: req.signal };
  const result = await evaluate({
    ...common,
    fp32: c.prepared.source.path,
    quantized: bytes,
    fp32Predictions,
    images: evalSet.files.length,
    batches: () => imageBatches(evalSet, c.geometry, req.preprocess, req.signal),
    onProgress: req.onProgress,
  });
  if (req.layerErrors === false) return result;
  const taps = [...new Set(errorTaps(c.prepared).values())];
  const sample: ImageSet = { ...evalSet, files: evalSet.files.slice(0, LAYER_ERROR_IMAGES), skipped: [] };
  const errors = await evaluate({
    ...common,
    fp32: encodeModel(withOutputs(c.prepared.model, taps)),
    quantized: encodeModel(withOutputs(fromBytes(bytes), taps)),
    images: sample.files.length,
    batches: () => imageBatches(sample, c.geometry, req.preprocess, req.signal),
    taps,
    onProgress: req.onProgress && ((p) => req.onProgress!({ ...p, message: "per-layer error" })),
  });
  return { ...result, sqnr: errors.sqnr };
}

function fromBytes(bytes: Uint8Array): ModelProto {
  return fromBinary(ModelProtoSchema, bytes);
}

export async function quantize(req: QuantizeRequest): Promise<QuantizeOutcome> {
  const c = await calibrate(req);
  let t = performance.now();
  throwIfAborted(req.signal);
  req.onProgress?.({ stage: "quantize", done: 0, total: c.prepared.layers.length, etaSeconds: null });
  const { plans, exported, bytes } = quantizeCalibrated(c, req.config, { "nibble.version": NIBBLE_VERSION, "nibble.config": JSON.stringify(req.config) }, req.onProgress);
  c.timings.quantize = (performance.now() - t) / 1000;
  t = performance.now();
  let evaluation: EvaluationResult | null = null;
  let evalSet: ImageSet | null = null;
  if (req.eval) {
    evalSet = await scanImages(req.eval.dir, { limit: req.eval.limit, seed: req.eval.seed });
    evaluation = await evaluateQuantized(c, bytes, evalSet, req);
    c.timings.evaluate = (performance.now() - t) / 1000;
  }
  const report = await buildReport({ request: req, calibrated: c, plans, exported, bytes, evaluation, evalSet, errorTaps: errorTaps(c.prepared) });
  return { report, bytes, histograms: layerHistograms(c, plans) };
}
