// The whole job, stage by stage: prepare → [equalize] → statistics → plan → [reconstruct] → export → evaluate → report.
// Each stage is a small module; this file only wires them and keeps the timings.
import { fromBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema, type ModelProto } from "onnx-buf";
import type { LayerHistogram } from "../../../shared/engine-api.ts";
import { classOutputName } from "../../../shared/outputs.ts";
import type { MixedPrecisionReport, PreprocessConfig, QuantConfig, QuantReport, TargetReport } from "../../../shared/types.ts";
import { imageFeeder, tensorFeeder, type FeedBatch, type Feeder } from "../data/feeds.ts";
import { batches } from "../data/loader.ts";
import { scanImages, type DataRole, type ImageSet } from "../data/scan.ts";
import type { EqualizeResult } from "../onnx/equalize.ts";
import { checkQuantConfig } from "./config-check.ts";
import { ModelError } from "../onnx/errors.ts";
import { tensorInfoOf, withOutputs } from "../onnx/graph.ts";
import { encodeModel, loadModel } from "../onnx/model-io.ts";
import { inputStride, prepareModel, requireImageInput, requireRunnable, type PreparedModel } from "../onnx/prepare.ts";
import { tensorToFloat32 } from "../onnx/tensor.ts";
import { BATCH_SIZE, chooseBatching, relaxBatch, relaxBytes, sameAsSingles, type Batching } from "./batching.ts";
import { collectStatistics } from "./calibrate.ts";
import { calibrationSizeNote, heldOutCalibrationLimit, heldOutSplit, sameFolder } from "./data-notes.ts";
import { equalizeStage } from "./equalize-stage.ts";
import { DEFAULT_DETECTION, findDetectorOutputs, type DetectionSettings } from "./detection.ts";
import { evaluate, type EvaluationResult, type Predictions } from "./evaluate.ts";
import { channelView } from "./histogram.ts";
import { searchMixedPrecision } from "./mixed-precision.ts";
import { exactPlacement, expectedBiasShift, planLayer, planTensor, type ActivationPlan, type LayerPlan, type PlanLayer } from "./plan.ts";
import { throwIfAborted, type ProgressListener } from "./progress.ts";
import { reconstruct, reconstructOptions, type ReconstructResult } from "./reconstruct.ts";
import { buildReport, NIBBLE_VERSION } from "./report.ts";
import { measureLatency, ortOptimizedGraph, selfCheck } from "../deploy/checks.ts";
import { explainRuntimeFailure } from "./runtime-failure.ts";
import { closeSession, openSession, runFeeds, type Feeds, type InputGeometry } from "./runtime.ts";
import { cachedFeeder, cachedStatistics, digest, fileKey, outputCache, type CachedFeeder } from "./session-cache.ts";
import type { TensorStatistics } from "./statistics.ts";
import { mergeTaps, placementFor, placementTaps, targetFor } from "../targets/index.ts";
import type { Placement } from "../targets/placement.ts";
import type { ExportResult, Target } from "../targets/target.ts";

export { BATCH_SIZE };

export interface DataSource {
  dir: string;
  limit?: number;
  seed?: number;
  /** a labels file to use instead of the folder's labels.txt */
  labels?: string;
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
  /** how detector outputs are compared (score threshold, overlaps); defaults DEFAULT_DETECTION */
  detection?: Partial<DetectionSettings>;
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
  /** the image input's geometry; null when the data are NumPy arrays */
  geometry: InputGeometry | null;
  calibSet: ImageSet;
  /** samples per run, and whether Nibble's runs use batch-relaxed copies of a batch-1 model */
  batching: Batching;
  /** plain-language notes about the data, for the report */
  dataNotes: string[];
  statistics: Map<string, TensorStatistics>;
  weights: Map<string, { data: Float32Array; shape: number[] }>;
  timings: Record<string, number>;
  /** what cross-layer equalization did, when it ran (prepared.model is then the equalized model) */
  equalization?: EqualizeResult;
  preprocess: PreprocessConfig;
  /** the calibration data as model feeds (the reconstruct stage reads them again) */
  feeder: Feeder;
  /** the export target calibration measured for, and its integer placement (null for exact) */
  target: Target;
  placement: Placement | null;
}

export function batchSizeFor(geometry: InputGeometry): number {
  return geometry.fixedBatch ?? BATCH_SIZE;
}

export function scanSource(src: DataSource, role: DataRole): Promise<ImageSet> {
  return scanImages(src.dir, { limit: src.limit, seed: src.seed, role, labels: src.labels, arrays: true });
}

/** How a data set feeds the model: its images through the preprocessing, or its arrays by input name; decoded once per session. */
export async function openFeeder(prepared: PreparedModel, set: ImageSet, preprocess: PreprocessConfig): Promise<CachedFeeder> {
  if (set.kind === "tensors") {
    requireRunnable(prepared);
    return cachedFeeder(await tensorFeeder(set, prepared.inputs), set, { preprocess, inputs: prepared.inputs });
  }
  return cachedFeeder(imageFeeder(set, requireImageInput(prepared, preprocess.inputSize), preprocess), set, { preprocess, inputs: null });
}

/** The first `n` samples of a feeder (fewer when the set is smaller), or null when it has none. */
export async function firstSamples(feeder: Feeder, n: number, signal?: AbortSignal): Promise<FeedBatch | null> {
  for await (const b of feeder.batches(n, signal)) return b;
  return null;
}

/**
 * One sample through the model before any long pass, so data the model cannot take (an input size its graph does
 * not allow, values of the wrong kind) is refused with a message that names the folder and says what to do.
 */
/** The first sample of a batch, as a batch of one. */
function firstOf(sample: FeedBatch): Feeds {
  return Object.fromEntries(Object.entries(sample.feeds).map(([k, t]) => [k, { ...t, data: t.data.subarray(0, t.data.length / sample.count), dims: [1, ...t.dims.slice(1)] }]));
}

async function probe(prepared: PreparedModel, sample: FeedBatch, set: ImageSet, preprocess: PreprocessConfig): Promise<void> {
  let session: Awaited<ReturnType<typeof openSession>> | null = null;
  try {
    session = await openSession(encodeModel(prepared.model), { quiet: true });
    await runFeeds(session, firstOf(sample), prepared.model.graph!.output.map((o) => o.name));
  } catch (e) {
    const why = (e instanceof Error ? e.message : String(e)).split("\n")[0].slice(0, 300);
    const file = prepared.source.path;
    if (set.kind !== "tensors" && prepared.input.dynamicSize && preprocess.inputSize) {
      const stride = inputStride(prepared);
      const [h, w] = preprocess.inputSize;
      const round = (v: number) => Math.max(stride, Math.round(v / stride) * stride);
      throw new ModelError(
        `"${file}" cannot run at input size ${h}x${w} (onnxruntime: ${why}). Choose a size whose height and width are multiples of ${stride}, e.g. ${round(h)}x${round(w)}.`,
        { file },
      );
    }
    // the data fit the model's declared inputs; if the user's own file fails on them too, the file is broken
    throw await explainRuntimeFailure(e, file, firstOf(sample));
  } finally {
    await closeSession(session);
  }
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
  checkQuantConfig(req.config);
  const loaded = await loadModel(req.model);
  let prepared = prepareModel(loaded);
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
  const calibSet = await scanSource(req.calib, "calibration");
  const feeder = await openFeeder(prepared, calibSet, req.preprocess);
  const sample = await firstSamples(feeder, 2, req.signal);
  if (sample) await probe(prepared, sample, calibSet, req.preprocess);
  const batching = await chooseBatching(prepared.model, prepared.inputs, sample);
  lap("batching");
  let equalization: EqualizeResult | undefined;
  if (req.config.methods.includes("equalize")) {
    const eq = await equalizeStage({ prepared, relaxed: batching.relaxed, images: feeder.samples, batches: feeder.batches(batching.batchSize, req.signal), signal: req.signal, onProgress: req.onProgress });
    prepared = eq.prepared;
    equalization = eq.result;
    lap("equalize");
  }
  // the percentile and MSE calibrators read every image's histogram (an ablation uses them without ACIQ too)
  const needHistograms = req.config.baseline !== "minmax";
  const histograms = needHistograms ? "all" : req.histograms === false ? "none" : "sample";
  const wholeTensor = req.config.activations === "per-tensor";
  const target = targetFor(req.config.target);
  const placement = placementFor(prepared.model, target, prepared.layers.map((l) => l.info.name));
  const layerTaps = planLayers(prepared).map((l) => ({ tensor: l.output, perChannel: l.op === "Conv", wholeTensor }));
  const taps = placement ? mergeTaps([...layerTaps, ...placementTaps(placement, prepared.layers.map((l) => l.input))]) : layerTaps;
  // the model itself, not its file: stages before this one (equalize) may have changed it; the taps carry the
  // target's placement
  const statsKey = JSON.stringify([digest(encodeModel(prepared.model)), feeder.key, batching, taps, histograms]);
  const statistics = await cachedStatistics(statsKey, calibSet, () =>
    collectStatistics({
      model: batching.relaxed ? relaxBatch(prepared.model) : prepared.model,
      taps,
      images: feeder.samples,
      batches: feeder.batches(batching.batchSize, req.signal),
      histograms,
      signal: req.signal,
      onProgress: req.onProgress,
    }).catch(async (err: unknown) => {
      // the first time onnxruntime runs the model: a broken file is the user's to fix, not an "unexpected" error
      throw sample ? await explainRuntimeFailure(err, loaded.path, firstOf(sample)) : err;
    }),
  );
  lap("statistics");
  const weights = new Map<string, { data: Float32Array; shape: number[] }>();
  const inits = new Map(prepared.model.graph!.initializer.map((i) => [i.name, i]));
  for (const l of prepared.layers) {
    const init = inits.get(l.weight)!;
    weights.set(l.weight, { data: tensorToFloat32(init), shape: init.dims.map(Number) });
  }
  const dataNotes = [batching.note, calibrationSizeNote(req.config, statistics)].filter((n): n is string => n !== null);
  return { prepared, geometry: feeder.geometry, calibSet, batching, dataNotes, statistics, weights, timings, equalization, preprocess: req.preprocess, feeder, target, placement };
}

/**
 * The plan of every layer for `config`, from the frozen statistics. Integer targets store the bias
 * correction as the expected effect of the weights' correction on the bias (the weights stay on their grid).
 */
export function planCalibrated(c: Calibrated, config: QuantConfig): LayerPlan[] {
  if (config.target !== c.target.id) throw new Error(`internal: calibrated for target ${c.target.id}, planned for ${config.target}`);
  return planLayers(c.prepared).map((layer) => {
    const w = c.weights.get(layer.weightName)!;
    const plan = planLayer(layer, w, c.statistics.get(layer.output), config, c.target);
    const inputStats = c.statistics.get(layer.input);
    if (c.target.integerBias && plan.weight && config.methods.includes("biascorr") && inputStats?.perChannel) {
      return { ...plan, biasCorrection: expectedBiasShift(layer, plan.weight, w, inputStats.perChannel.mean) };
    }
    return plan;
  });
}

/**
 * An integer target's grid for every quantized tensor group. Activations are 8-bit there: the UINT8
 * container is what the fused kernels read, and a coarser grid inside it would save nothing.
 */
export function planTensors(c: Calibrated, config: QuantConfig): Map<string, ActivationPlan> {
  const out = new Map<string, ActivationPlan>();
  if (!c.placement) return out;
  for (const g of c.placement.groups) {
    const stats = c.statistics.get(g.root);
    if (!stats) throw new Error(`internal: no statistics for quantized tensor ${g.root}`);
    out.set(g.root, planTensor(g.root, g.bounds, stats, g.preActivation ? c.statistics.get(g.preActivation) : undefined, 8, config));
  }
  return out;
}

/** Plans written as ONNX; `model` is the prepared model, or the reconstruct stage's copy with folded biases. */
export function exportPlans(
  c: Calibrated,
  plans: LayerPlan[],
  model: ModelProto,
  metadata: Record<string, string>,
  onProgress?: ProgressListener,
  tensors: Map<string, ActivationPlan> = new Map(),
): { exported: ExportResult; bytes: Uint8Array } {
  if (c.placement && tensors.size === 0) throw new Error(`internal: the ${c.target.id} target needs its tensor plans`);
  onProgress?.({ stage: "export", done: 0, total: 1, etaSeconds: null });
  const exported = c.target.emit({
    model,
    plans,
    tensors,
    placement: c.placement,
    weightShapes: new Map([...c.weights].map(([k, v]) => [k, v.shape])),
    activationRanks: activationRanks(c),
    metadata,
  });
  const bytes = encodeModel(exported.model);
  onProgress?.({ stage: "export", done: 1, total: 1, etaSeconds: 0 });
  return { exported, bytes };
}

export function activationRanks(c: Calibrated): Map<string, number> {
  return new Map([...c.statistics].map(([k, v]) => [k, v.sampleShape.length + 1]));
}

export interface Quantized {
  plans: LayerPlan[];
  exported: ExportResult;
  bytes: Uint8Array;
  /** what the reconstruct stage did, when "reconstruct" or "bias-fold" was on */
  reconstruction: ReconstructResult | null;
}

export async function quantizeCalibrated(
  c: Calibrated,
  config: QuantConfig,
  metadata: Record<string, string>,
  onProgress?: ProgressListener,
  signal?: AbortSignal,
): Promise<Quantized> {
  let plans = planCalibrated(c, config);
  onProgress?.({ stage: "quantize", done: plans.length, total: plans.length, etaSeconds: 0 });
  let model = c.prepared.model;
  let reconstruction: ReconstructResult | null = null;
  const tensors = planTensors(c, config);
  if (config.methods.includes("reconstruct") || config.methods.includes("bias-fold")) {
    reconstruction = await reconstructCalibrated(c, plans, config, onProgress, signal, tensors);
    plans = reconstruction.plans;
    model = reconstruction.model;
  }
  return { plans, ...exportPlans(c, plans, model, metadata, onProgress, tensors), reconstruction };
}

/** The reconstruct stage on `plans` (methods "reconstruct": rounding, "bias-fold": biases), on the target's own network. */
export function reconstructCalibrated(
  c: Calibrated,
  plans: LayerPlan[],
  config: QuantConfig,
  onProgress?: ProgressListener,
  signal?: AbortSignal,
  tensors: Map<string, ActivationPlan> = planTensors(c, config),
): Promise<ReconstructResult> {
  const weightShapes = new Map([...c.weights].map(([k, v]) => [k, v.shape]));
  const ranks = activationRanks(c);
  return reconstruct({
    prepared: c.prepared,
    feeder: c.feeder,
    calibSet: c.calibSet,
    batching: c.batching,
    weights: c.weights,
    plans,
    network: (model, sofar) => c.target.emit({ model, plans: sofar, tensors, placement: c.placement, weightShapes, activationRanks: ranks, metadata: {} }).model,
    options: reconstructOptions(config),
    signal,
    onProgress,
  });
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
  req: Pick<QuantizeRequest, "preprocess" | "layerErrors" | "signal" | "onProgress" | "detection">,
  fp32Predictions?: Predictions,
): Promise<EvaluationResult> {
  const feeder = await openFeeder(c.prepared, evalSet, req.preprocess);
  const outputs = c.prepared.source.model.graph!.output.map(tensorInfoOf);
  const classOutput = classOutputOf(c.prepared);
  // an ablation reuses FP32's predictions: worth it only when top-1 is what the report shows
  const labelled = evalSet.files.some((f) => f.label !== null) || evalSet.kind === "tensors";
  const reuse = fp32Predictions !== undefined && classOutput !== null && labelled;
  const detector = findDetectorOutputs(outputs);
  let batchSize = c.batching.batchSize;
  let quantized: Uint8Array = bytes;
  let fp32: Uint8Array | string = c.prepared.source.path;
  if (c.batching.relaxed) {
    // the exported file keeps the user's batch of 1; its batch-relaxed copy is checked once against it
    const sample = await firstSamples(feeder, 2, req.signal);
    const relaxed = relaxBytes(bytes);
    if (sample && (await sameAsSingles(bytes, relaxed, sample))) {
      quantized = relaxed;
      fp32 = encodeModel(relaxBatch(c.prepared.source.model));
    } else batchSize = 1;
  }
  const result = await evaluate({
    fp32,
    quantized,
    fp32Predictions,
    fp32Outputs: outputCache(JSON.stringify([await fileKey(c.prepared.source.path), "source", quantized !== bytes]), feeder, batchSize),
    output: classOutput,
    compare: reuse ? [] : outputs,
    detection: detector && !reuse ? { outputs: detector, settings: { ...DEFAULT_DETECTION, ...req.detection } } : null,
    images: feeder.samples,
    batches: () => feeder.batches(batchSize, req.signal),
    signal: req.signal,
    onProgress: req.onProgress,
  });
  if (req.layerErrors === false) return result;
  const taps = [...new Set(errorTaps(c.prepared).values())];
  const sample: ImageSet = { ...evalSet, files: evalSet.files.slice(0, LAYER_ERROR_IMAGES), skipped: [] };
  const relax = (m: ModelProto) => encodeModel(c.batching.relaxed && batchSize > 1 ? relaxBatch(m) : m);
  const errors = await evaluate({
    fp32: relax(withOutputs(c.prepared.model, taps)),
    quantized: relax(withOutputs(fromBytes(bytes), taps)),
    output: null,
    images: Math.min(feeder.samples, LAYER_ERROR_IMAGES),
    batches: () => limited(feeder.batches(batchSize, req.signal, sample), LAYER_ERROR_IMAGES),
    taps,
    signal: req.signal,
    onProgress: req.onProgress && ((p) => req.onProgress!({ ...p, stage: "layer-error" })),
  });
  return { ...result, sqnr: errors.sqnr };
}

/** The output ranked for top-1: a class vector [N, K] (or [N, K, 1, 1]) of floats; null for any other model. */
export function classOutputOf(prepared: PreparedModel): string | null {
  return classOutputName(prepared.model.graph!.output.slice(0, 1).map(tensorInfoOf));
}

async function* limited(source: AsyncIterable<FeedBatch>, n: number): AsyncGenerator<FeedBatch> {
  let seen = 0;
  for await (const b of source) {
    if (seen >= n) return;
    yield b;
    seen += b.count;
  }
}

/** The FP32 model alone on a data folder (the FP32 check): accuracy where it has a class output and labels. */
export async function evaluateModel(req: {
  model: string;
  data: DataSource;
  preprocess: PreprocessConfig;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
}): Promise<EvaluationResult> {
  const prepared = prepareModel(await loadModel(req.model));
  const set = await scanSource(req.data, "evaluation");
  const feeder = await openFeeder(prepared, set, req.preprocess);
  const sample = await firstSamples(feeder, 2, req.signal);
  if (sample) await probe(prepared, sample, set, req.preprocess);
  const batching = await chooseBatching(prepared.model, prepared.inputs, sample);
  return evaluate({
    fp32: encodeModel(batching.relaxed ? relaxBatch(prepared.model) : prepared.model),
    fp32Outputs: outputCache(JSON.stringify([await fileKey(req.model), "prepared", batching.relaxed]), feeder, batching.batchSize),
    quantized: null,
    output: classOutputOf(prepared),
    images: feeder.samples,
    batches: () => feeder.batches(batching.batchSize, req.signal),
    signal: req.signal,
    onProgress: req.onProgress,
  });
}

function fromBytes(bytes: Uint8Array): ModelProto {
  return fromBinary(ModelProtoSchema, bytes);
}

/**
 * The request with a calibration limit when calibration and evaluation share a folder and no limit was set: the
 * calibration subset is then held out of the evaluation (heldOutSplit), so evaluation never sees its images.
 */
export async function withHeldOut<T extends { calib: DataSource }>(req: T, evalSource: DataSource | null): Promise<T> {
  if (!evalSource || req.calib.limit !== undefined || !(await sameFolder(req.calib.dir, evalSource.dir))) return req;
  const all = await scanSource(req.calib, "calibration");
  return { ...req, calib: { ...req.calib, limit: heldOutCalibrationLimit(all.files.length) } };
}

export async function quantize(request: QuantizeRequest): Promise<QuantizeOutcome> {
  const req = await withHeldOut(request, request.eval);
  const c = await calibrate(req);
  let t = performance.now();
  throwIfAborted(req.signal);
  req.onProgress?.({ stage: "quantize", done: 0, total: c.prepared.layers.length, etaSeconds: null });
  const metadata = { "nibble.version": NIBBLE_VERSION, "nibble.config": JSON.stringify(req.config) };
  let q = await quantizeCalibrated(c, req.config, metadata, req.onProgress, req.signal);
  c.timings.quantize = (performance.now() - t) / 1000;
  if (q.reconstruction) c.timings.reconstruct = q.reconstruction.passSeconds + q.reconstruction.solveSeconds;
  t = performance.now();
  let evaluation: EvaluationResult | null = null;
  let evalSet: ImageSet | null = null;
  let mixedPrecision: MixedPrecisionReport | undefined;
  if (req.eval) {
    const split = await heldOutSplit(c.calibSet, await scanSource(req.eval, "evaluation"));
    evalSet = split.set;
    if (split.note) c.dataNotes.push(split.note);
    if (evalSet.files.length > 0) {
      if (req.config.maxDrop !== undefined && req.config.maxDrop !== null) {
        const search = await searchMixedPrecision({ c, config: req.config, base: q, evalSet, maxDrop: req.config.maxDrop, metadata, detection: req.detection, signal: req.signal, onProgress: req.onProgress });
        q = search.chosen;
        mixedPrecision = search.report;
        c.timings.sensitivity = (performance.now() - t) / 1000;
        t = performance.now();
      }
      evaluation = await evaluateQuantized(c, q.bytes, evalSet, req);
      c.timings.evaluate = (performance.now() - t) / 1000;
    }
  }
  const { plans, exported, bytes } = q;
  const target = await targetReport(c, req.config, bytes, evalSet, evaluation?.predictions.fp32.top1 ?? null, req.signal);
  c.timings.deploy = (performance.now() - t) / 1000;
  const report = await buildReport({ request: req, calibrated: c, plans, exported, bytes, evaluation, evalSet, errorTaps: errorTaps(c.prepared) });
  const reconstruction = q.reconstruction
    ? { layers: q.reconstruction.layers, passSeconds: q.reconstruction.passSeconds, solveSeconds: q.reconstruction.solveSeconds, images: q.reconstruction.images }
    : undefined;
  // what runs as integers is onnxruntime's word, not the file's form
  const runsAs = new Map(target.runtime?.layers.map((l) => [l.name, l]) ?? []);
  const layers = report.layers.map((l) => {
    const seen = runsAs.get(l.name);
    if (!seen) return l;
    if (seen.integer) return { ...l, runsAs: seen.runsAs, executable: "integer" as const, executableWhy: "" };
    if (l.executable === "float") return { ...l, runsAs: seen.runsAs };
    const why = l.executableWhy || `onnxruntime runs it as a float ${seen.runsAs ?? "operator"} on dequantized values (the ${c.target.id} layout does not fuse)`;
    return { ...l, runsAs: seen.runsAs, executable: "simulation" as const, executableWhy: why };
  });
  return { report: { ...report, layers, target, ...(reconstruction ? { reconstruction } : {}), ...(mixedPrecision ? { mixedPrecision } : {}) }, bytes, histograms: layerHistograms(c, plans) };
}

/** What the target changed in the methods, in words, for the report. */
export function targetNotes(config: QuantConfig, target: Target): string[] {
  const notes: string[] = [];
  if (target.placement === "operator-inputs") {
    if (config.aBits !== 8 || config.activations !== "per-tensor") {
      notes.push(`Activations are 8-bit, one scale per tensor, at the inputs of the quantized operators: that is what the ${target.id} target's integer kernels read (the chosen ${config.aBits}-bit ${config.activations} activations apply to the exact target only).`);
    }
    if (config.methods.includes("bitalloc-a")) notes.push("Bit allocation across activation channels is off: the target needs one scale per activation tensor.");
    if (config.methods.includes("aciq")) notes.push("ACIQ clips per tensor (8-bit activations: the true range is kept unless the reference calibration is chosen).");
    if (config.methods.includes("bias-fold")) notes.push("Bias folding stores each channel's measured mean output error in the INT32 bias (the weights stay on their integer grid).");
    else if (config.methods.includes("reconstruct")) notes.push("The rounding reconstruction fits each layer's output, its mean included, on the weights' integer grid.");
    if (config.methods.includes("biascorr")) {
      notes.push(
        config.methods.includes("reconstruct") || config.methods.includes("bias-fold")
          ? "Bias correction's expected effect is replaced by what the reconstruct stage measured (the integer grid cannot hold its weight shift)."
          : "Bias correction is stored in the INT32 bias (the weights stay on their integer grid).",
      );
    }
  }
  if (config.methods.includes("bitalloc-w") && !target.mixedWeightBits) {
    notes.push(`Bit allocation across weight channels is off: the ${target.id} target holds one weight container per layer, and a channel given more than ${config.wBits} bits would turn the whole layer INT8.`);
  }
  if (target.id === "ort" && config.wBits < 8) {
    notes.push(`onnxruntime fuses no weights narrower than INT8: the ${config.wBits}-bit weight grid is kept inside INT8 containers, so the file is no smaller than an INT8 file before compression.`);
  }
  return notes;
}

/**
 * The deployment checks of an export, on the exported bytes: onnxruntime's optimized graph (what it runs as
 * integers), the self-check between optimization levels and the time per image against FP32, each on the
 * evaluation samples (none of them without evaluation data).
 */
async function targetReport(c: Calibrated, config: QuantConfig, bytes: Uint8Array, evalSet: ImageSet | null, fp32Top1: Int32Array | null, signal?: AbortSignal): Promise<TargetReport> {
  const notes = targetNotes(config, c.target);
  // onnxruntime writes its optimized graph to a temporary file; on a full disk or under a file-size limit that
  // check is lost, not the export (whose own save then says what is wrong)
  const runtime = await ortOptimizedGraph(bytes, c.prepared.layers.map((l) => l.info.name)).catch((err: unknown) => {
    notes.push(`What onnxruntime runs as integers was not checked: its optimized graph could not be written to the temporary folder (${err instanceof Error ? err.message : String(err)}).`);
    return null;
  });
  if (!evalSet || evalSet.files.length === 0) return { id: c.target.id, notes, runtime, selfCheck: null, latency: null };
  const feeder = await openFeeder(c.prepared, evalSet, c.preprocess);
  const classOutput = classOutputOf(c.prepared);
  const output = classOutput ?? c.prepared.source.model.graph!.output[0].name;
  const relaxed = c.batching.relaxed;
  const quantized = relaxed ? relaxBytes(bytes) : bytes;
  const fp32 = relaxed ? encodeModel(relaxBatch(c.prepared.source.model)) : c.prepared.source.path;
  const selfCheckResult = await selfCheck(quantized, feeder.batches(c.batching.batchSize, signal), output, classOutput !== null, fp32Top1);
  const samples = new Map<number, Feeds | null>();
  for (const batch of [1, LATENCY_BATCH]) {
    if (batch > 1 && c.batching.batchSize === 1 && !relaxed) continue;
    // a complete pass over the first files (room for a few unreadable ones), so the session cache keeps it
    const head: ImageSet = { ...evalSet, files: evalSet.files.slice(0, 2 * batch), skipped: [] };
    let first: FeedBatch | null = null;
    for await (const b of feeder.batches(batch, signal, head)) first ??= b;
    samples.set(batch, first && first.count === batch ? first.feeds : null);
  }
  const latency = await measureLatency(fp32, quantized, output, (b) => samples.get(b) ?? null, [1, LATENCY_BATCH]);
  return { id: c.target.id, notes, runtime, selfCheck: selfCheckResult, latency };
}

/** the larger batch latency is measured at (throughput); batch 1 is the per-request case */
const LATENCY_BATCH = 32;
