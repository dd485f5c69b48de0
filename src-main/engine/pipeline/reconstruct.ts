// The reconstruct stage, between plan and export: on each layer's own per-channel grid (the plan's
// scale/offset/bits stay), re-choose the integer codes so the layer's output on calibration images matches
// the float model's (GPTQ, quant/gptq.ts), and/or fold each output channel's mean error into the layer's
// float bias (empirical bias correction as AIMET and NNCF store it: the integer weights stay on their grid).
//
// The layer inputs come either from the float model (one pass computes every layer's Hessian) or from the
// network with every earlier layer already quantized, weights and activations as the target exports them
// (one pass per layer; QDrop's finding: later layers then also correct what earlier ones got wrong). The
// target's own emitter builds that network, so on an integer target each layer sees its inputs exactly as
// the exported file computes them (per-tensor UINT8 at the operators' inputs, symmetric integer weights). With quantized
// inputs the target can be the float layer's output on float inputs: Ŵ minimises Σ‖W x_f − Ŵ x_q‖², which
// is GPTQ on W* = W·Σx_f x_qᵀ·H⁻¹ with H = Σ x_q x_qᵀ. Memory: one layer's Hessians at a time (K² floats per
// group), never activations for all images.
import { clone } from "@bufbuild/protobuf";
import { ModelProtoSchema, type ModelProto, type NodeProto, type TensorProto } from "onnx-buf";
import type { QuantConfig, ReconstructLayerReport } from "../../../shared/types.ts";
import type { Feeder } from "../data/feeds.ts";
import type { ImageSet } from "../data/scan.ts";
import { addInitializer, nameGenerator } from "../onnx/graph.ts";
import type { PreparedModel, QuantLayer } from "../onnx/prepare.ts";
import { float32Tensor, tensorToFloat32 } from "../onnx/tensor.ts";
import { nearestCodes, outputError, quadraticForm, roundToOutput, type RowGrids } from "../quant/gptq.ts";
import { cholesky, choleskySolve } from "../quant/linalg.ts";
import { relaxBatch, type Batching } from "./batching.ts";
import { cachedFeeds } from "./feed-cache.ts";
import { buildGramModel, collectGrams, gramTapFor, mergeWithReference, referenceName, type GramTap, type LayerGram } from "./hessian.ts";
import { weightResidual, type LayerPlan, type WeightSource } from "./plan.ts";
import { throwIfAborted, type ProgressListener } from "./progress.ts";

export interface ReconstructOptions {
  /** GPTQ codes; false keeps the plan's codes (bias folding alone) */
  rounding: boolean;
  biasFold: boolean;
  inputs: "float" | "quantized";
  /** with quantized inputs, reproduce the float layer on float inputs (W x_f) rather than W x_q */
  floatTarget: boolean;
  actOrder: boolean;
  /** GPTQ dampening, a fraction of the mean Hessian diagonal */
  damp: number;
  /** calibration images used (the first ones of the seeded calibration order) */
  images: number;
}

export const DEFAULT_RECONSTRUCT: ReconstructOptions = { rounding: true, biasFold: true, inputs: "quantized", floatTarget: true, actOrder: true, damp: 0.01, images: 256 };

/** The stage's options for a configuration: "reconstruct" rounds, "bias-fold" folds; the rest from config.reconstruct. */
export function reconstructOptions(config: QuantConfig): ReconstructOptions {
  const s = config.reconstruct ?? {};
  return {
    ...DEFAULT_RECONSTRUCT,
    ...Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined)),
    rounding: config.methods.includes("reconstruct"),
    biasFold: config.methods.includes("bias-fold"),
  };
}

export interface ReconstructInput {
  prepared: PreparedModel;
  /** the calibration data as feeds, and how many samples a run takes */
  feeder: Feeder;
  calibSet: ImageSet;
  batching: Batching;
  weights: Map<string, WeightSource>;
  plans: LayerPlan[];
  /** the network as the target exports it, with `plans` quantized and every other layer float */
  network: (model: ModelProto, plans: LayerPlan[]) => ModelProto;
  options: ReconstructOptions;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
}

export type ReconstructedLayer = ReconstructLayerReport;

export interface ReconstructResult {
  plans: LayerPlan[];
  /** the prepared model with the folded biases (what the exporter must start from) */
  model: ModelProto;
  layers: ReconstructedLayer[];
  /** seconds spent running onnxruntime passes vs solving in JavaScript */
  passSeconds: number;
  solveSeconds: number;
  /** calibration images used */
  images: number;
}

/** A layer's weights as rows = output channels, columns = inputs (im2col order), and back. */
interface LayerMatrix {
  w: Float64Array;
  rows: number;
  k: number;
  /** element (r, j) of the matrix is element toTensor(r, j) of the weight tensor */
  toTensor: (r: number, j: number) => number;
}

function layerMatrix(layer: QuantLayer, source: WeightSource): LayerMatrix {
  const shape = source.shape;
  if (layer.weightLayout === "IC_OC") {
    const [k, rows] = shape;
    const w = new Float64Array(rows * k);
    for (let r = 0; r < rows; r++) for (let j = 0; j < k; j++) w[r * k + j] = source.data[j * rows + r];
    return { w, rows, k, toTensor: (r, j) => j * rows + r };
  }
  const rows = shape[0];
  const k = source.data.length / rows;
  return { w: Float64Array.from(source.data), rows, k, toTensor: (r, j) => r * k + j };
}

/**
 * Each row's map code → weight as the exported file holds it: the plan's, less the residual an integer target
 * moved into the bias (its weights stay on the symmetric grid), so the codes are fitted to the file's weights.
 */
function rowGrids(plan: LayerPlan): RowGrids {
  const wp = plan.weight!;
  const residual = plan.biasCorrection ? weightResidual(wp) : null;
  return { scale: wp.scale, offset: residual ? wp.offset.map((o, c) => o - residual[c]) : wp.offset, qmax: wp.bits.map((b) => 2 ** b - 1) };
}

/** The plan's codes in matrix layout. */
function planCodes(m: LayerMatrix, plan: LayerPlan): Uint8Array {
  const codes = new Uint8Array(m.rows * m.k);
  for (let r = 0; r < m.rows; r++) for (let j = 0; j < m.k; j++) codes[r * m.k + j] = plan.weight!.codes[m.toTensor(r, j)];
  return codes;
}

function subRows<T extends Float64Array | Uint8Array>(a: T, from: number, count: number, k: number): T {
  return a.subarray(from * k, (from + count) * k) as T;
}

function subGrids(g: RowGrids, from: number, count: number): RowGrids {
  const pick = (x: ArrayLike<number>) => Array.from({ length: count }, (_, i) => x[from + i]);
  return { scale: pick(g.scale), offset: pick(g.offset), qmax: pick(g.qmax) };
}

/** W* = W + W·(C − H)·(H + λI)⁻¹ with C = Σ x_f x_qᵀ: the float layer's output expressed on the quantized inputs. */
export function floatTargetWeights(w: Float64Array, rows: number, k: number, h: Float64Array, cross: Float64Array, damp: number): Float64Array {
  let diag = 0;
  for (let i = 0; i < k; i++) diag += h[i * k + i];
  const lambda = Math.max((damp * diag) / k, 1e-12);
  const hd = Float64Array.from(h);
  for (let i = 0; i < k; i++) hd[i * k + i] += lambda;
  // Mᵀ = (C − H)ᵀ·Wᵀ, k x rows
  const mt = new Float64Array(k * rows);
  for (let a = 0; a < k; a++) {
    for (let b = 0; b < k; b++) {
      const d = cross[b * k + a] - h[b * k + a];
      if (d === 0) continue;
      for (let r = 0; r < rows; r++) mt[a * rows + r] += d * w[r * k + b];
    }
  }
  const z = choleskySolve(cholesky(hd, k), k, mt, rows);
  const out = Float64Array.from(w);
  for (let r = 0; r < rows; r++) for (let j = 0; j < k; j++) out[r * k + j] += z[j * rows + r];
  return out;
}

function nodeOf(model: ModelProto, name: string): NodeProto {
  const n = model.graph!.node.find((x) => x.name === name);
  if (!n) throw new Error(`reconstruct: no node named ${name}`);
  return n;
}

function biasOf(model: ModelProto, layer: QuantLayer, channels: number): Float32Array {
  const name = nodeOf(model, layer.info.name).input[2];
  const t = name ? model.graph!.initializer.find((i) => i.name === name) : undefined;
  return t ? tensorToFloat32(t) : new Float32Array(channels);
}

/** Writes the layer's bias (adding a bias input to a Conv or Gemm that had none); false for a MatMul. */
function setBias(model: ModelProto, layer: QuantLayer, values: Float32Array, fresh: (b: string) => string): boolean {
  const node = nodeOf(model, layer.info.name);
  if (node.opType === "MatMul") return false;
  const graph = model.graph!;
  const current = node.input[2];
  const shared = current ? graph.node.filter((n) => n.input.includes(current)).length > 1 : false;
  const at = current ? graph.initializer.findIndex((t) => t.name === current) : -1;
  if (at >= 0 && !shared) {
    graph.initializer[at] = float32Tensor(current, [values.length], values);
    return true;
  }
  const name = fresh(`${layer.info.name}_folded_bias`);
  addInitializer(graph, float32Tensor(name, [values.length], values) as TensorProto, Number(model.irVersion));
  while (node.input.length < 3) node.input.push("");
  node.input[2] = name;
  return true;
}

/**
 * The tensor `layer` reads in `exported`: its own input where the quantizer kept the name, the dequantized
 * copy where the target renamed it (an integer target quantizes a graph input under a new name).
 */
function inputIn(exported: ModelProto, prepared: ModelProto, layer: QuantLayer): string {
  const at = nodeOf(prepared, layer.info.name).input.indexOf(layer.input);
  return nodeOf(exported, layer.info.name).input[at];
}

interface LayerJob {
  plan: LayerPlan;
  layer: QuantLayer;
  tap: GramTap;
}

/**
 * Re-chooses codes and/or biases of every planned layer, in graph order. Layers at "float" precision are
 * skipped. Returns new plans (input plans are not modified) and the model the exporter must use.
 */
export async function reconstruct(input: ReconstructInput): Promise<ReconstructResult> {
  const { prepared, options } = input;
  const model = clone(ModelProtoSchema, prepared.model);
  const fresh = nameGenerator(model.graph!);
  const byName = new Map(prepared.layers.map((l) => [l.info.name, l]));
  const plans = input.plans.map((p) => ({ ...p, weight: p.weight ? { ...p.weight, codes: Uint8Array.from(p.weight.codes) } : null }));
  const jobs: LayerJob[] = [];
  for (const plan of plans) {
    if (!plan.weight) continue;
    const layer = byName.get(plan.layer.name)!;
    const shape = input.weights.get(layer.weight)!.shape;
    jobs.push({ plan, layer, tap: gramTapFor(layer, nodeOf(prepared.model, layer.info.name), shape) });
  }
  const set: ImageSet = { ...input.calibSet, files: input.calibSet.files.slice(0, options.images) };
  const images = cachedFeeds(input.feeder, set, input.batching.batchSize, input.signal);
  const runnable = (m: ModelProto) => (input.batching.relaxed ? relaxBatch(m) : m);
  const result: ReconstructedLayer[] = [];
  let passSeconds = 0;
  let solveSeconds = 0;
  // progress counts image passes, each weighted by the share of the graph it runs (a later layer's pass is longer)
  const position = new Map(prepared.model.graph!.node.map((n, i) => [n.name, i + 1]));
  const nodes = prepared.model.graph!.node.length;
  const weightOf = (j: LayerJob) => (options.inputs === "quantized" ? 0.2 + (position.get(j.layer.info.name) ?? nodes) / nodes : 1);
  const totalWork = options.inputs === "quantized" ? jobs.reduce((a, j) => a + weightOf(j), 0) : 1;
  let workDone = 0;
  const started = performance.now();
  const report = (message: string, fraction: number) => {
    const done = workDone + fraction;
    const elapsed = (performance.now() - started) / 1000;
    const eta = done > 0 ? (elapsed / done) * (totalWork - done) : null;
    input.onProgress?.({ stage: "reconstruct", done: Math.round((done / totalWork) * jobs.length), total: jobs.length, etaSeconds: eta, message });
  };

  const solve = (job: LayerJob, gram: LayerGram) => {
    const t0 = performance.now();
    const m = layerMatrix(job.layer, input.weights.get(job.layer.weight)!);
    const grids = rowGrids(job.plan);
    const codes = options.rounding ? new Uint8Array(m.rows * m.k) : planCodes(m, job.plan);
    const groups = gram.groups;
    const rowsPer = m.rows / groups;
    let errNearest = 0;
    let errChosen = 0;
    let energy = 0;
    for (let g = 0; g < groups; g++) {
      const k = m.k;
      const h = gram.h.subarray(g * k * k, (g + 1) * k * k);
      const w = subRows(m.w, g * rowsPer, rowsPer, k);
      const gg = subGrids(grids, g * rowsPer, rowsPer);
      // the weights whose output on these inputs is the target
      const target = options.inputs === "quantized" && options.floatTarget && gram.cross ? floatTargetWeights(w, rowsPer, k, h, gram.cross.subarray(g * k * k, (g + 1) * k * k), options.damp) : w;
      if (options.rounding) {
        const r = roundToOutput(target, rowsPer, k, h, gg, { actOrder: options.actOrder, damp: options.damp, onBlock: () => throwIfAborted(input.signal) });
        codes.set(r.codes, g * rowsPer * k);
        for (let i = 0; i < rowsPer; i++) {
          errNearest += r.nearestRowError[i];
          errChosen += r.rowError[i];
        }
      } else {
        const chosen = subRows(codes, g * rowsPer, rowsPer, k);
        errNearest += outputError(target, nearestCodes(target, rowsPer, k, gg), rowsPer, k, h, gg);
        errChosen += outputError(target, chosen, rowsPer, k, h, gg);
      }
      for (let r = 0; r < rowsPer; r++) energy += quadraticForm(target.subarray(r * k, (r + 1) * k), h, k);
    }
    for (let r = 0; r < m.rows; r++) for (let j = 0; j < m.k; j++) job.plan.weight!.codes[m.toTensor(r, j)] = codes[r * m.k + j];
    let biasShift = 0;
    if (options.biasFold) {
      const bias = biasOf(model, job.layer, m.rows);
      const k = m.k;
      let moved = 0;
      let size = 0;
      for (let r = 0; r < m.rows; r++) {
        const g = Math.floor(r / rowsPer);
        const muQ = gram.sum.subarray(g * k, (g + 1) * k);
        const muF = gram.refSum ? gram.refSum.subarray(g * k, (g + 1) * k) : muQ;
        let delta = 0;
        for (let j = 0; j < k; j++) delta += m.w[r * k + j] * muF[j] - (codes[r * k + j] * grids.scale[r] + grids.offset[r]) * muQ[j];
        delta /= gram.count;
        const before = bias[r] + (job.plan.biasCorrection?.[r] ?? 0);
        moved += Math.abs(bias[r] + delta - before);
        size += Math.abs(before);
        bias[r] += delta;
      }
      if (setBias(model, job.layer, bias, fresh)) {
        biasShift = size > 0 ? moved / size : moved;
        // the measured mean error replaces the bias correction's expected effect
        job.plan.biasCorrection = null;
      }
    }
    // the expected effect was nearest rounding's mean shift; the chosen codes fit the output, its mean included
    if (options.rounding) job.plan.biasCorrection = null;
    const seconds = (performance.now() - t0) / 1000;
    solveSeconds += seconds;
    result.push({ name: job.layer.info.name, errorNearest: errNearest, errorChosen: errChosen, relativeError: energy > 0 ? errChosen / energy : 0, biasShift, seconds });
  };

  if (options.inputs === "float") {
    const t0 = performance.now();
    const built = buildGramModel(runnable(prepared.model), jobs.map((j) => j.tap));
    const grams = await collectGrams({ ...built, images: set.files.length, batches: images(), signal: input.signal, onProgress: (p) => report("layer inputs of the float model", p.total ? p.done / p.total : 0) });
    passSeconds += (performance.now() - t0) / 1000;
    for (const job of jobs) {
      throwIfAborted(input.signal);
      report(job.layer.info.name, 0);
      solve(job, grams.get(job.layer.info.name)!);
    }
    workDone = totalWork;
  } else {
    for (const [i, job] of jobs.entries()) {
      throwIfAborted(input.signal);
      const t0 = performance.now();
      // the network as exported so far: every earlier layer quantized, this one and later ones float
      const exported = input.network(model, jobs.slice(0, i).map((j) => j.plan));
      const needFloat = options.floatTarget || options.biasFold;
      const source = needFloat ? mergeWithReference(exported, prepared.model) : exported;
      const read = { ...job.tap, input: inputIn(exported, prepared.model, job.layer) };
      const tap = needFloat ? { ...read, reference: referenceName(prepared.model, job.tap.input) } : read;
      const built = buildGramModel(runnable(source), [tap]);
      const w = weightOf(job);
      const grams = await collectGrams({ ...built, images: set.files.length, batches: images(), signal: input.signal, onProgress: (p) => report(job.layer.info.name, p.total ? (w * p.done) / p.total : 0) });
      passSeconds += (performance.now() - t0) / 1000;
      throwIfAborted(input.signal);
      solve(job, grams.get(job.layer.info.name)!);
      workDone += w;
    }
  }
  input.onProgress?.({ stage: "reconstruct", done: jobs.length, total: jobs.length, etaSeconds: 0 });
  return { plans, model, layers: result, passSeconds, solveSeconds, images: set.files.length };
}
