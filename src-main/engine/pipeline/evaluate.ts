// The evaluation stage: FP32 and quantized models on the same images, paired, in one pass over the data.
// The quantized model is always the exported file's bytes, so the numbers describe what ships.
import type { Accuracy, Agreement, DetectionFidelity, OutputFidelity, TensorInfo } from "../../../shared/types.ts";
import { DetectionAccumulator, type DetectionSettings, type DetectorOutputs } from "./detection.ts";
import { FidelityAccumulator, rankOf, SqnrAccumulator, wilsonInterval } from "./metrics.ts";
import { StageProgress, throwIfAborted, type ProgressListener } from "./progress.ts";
import { closeSession, openSession, runFeeds, tensorData, tensorValues, type Feeds } from "./runtime.ts";
import type { OutputCache } from "./session-cache.ts";

export interface EvalBatch {
  feeds: Feeds;
  count: number;
  labels: Int32Array;
}

export interface Predictions {
  top1: Int32Array;
  /** 1 where the label is in the top 5, 0 otherwise (all 0 without labels) */
  top5: Uint8Array;
  labels: Int32Array;
}

export interface EvaluationResult {
  fp32: Accuracy;
  quantized: Accuracy | null;
  agreement: Agreement | null;
  /** per tapped tensor, SQNR of the quantized model's value against FP32's */
  sqnr: Map<string, number | null>;
  /** each compared output against FP32 (empty when no output was compared) */
  outputs: OutputFidelity[];
  detection: DetectionFidelity | null;
  predictions: { fp32: Predictions; quantized: Predictions | null };
}

export interface EvaluationInput {
  fp32: Uint8Array | string;
  quantized: Uint8Array | string | null;
  /** FP32 predictions from an earlier pass over the same images; skips the FP32 model unless outputs are compared */
  fp32Predictions?: Predictions;
  /** FP32's outputs kept from an earlier pass over the same batches (session-cache.ts); not used with taps */
  fp32Outputs?: OutputCache;
  /** the output ranked for top-1/top-5, or null when the model has no class output */
  output: string | null;
  /** outputs compared against FP32 for fidelity (needs both models) */
  compare?: TensorInfo[];
  detection?: { outputs: DetectorOutputs; settings: DetectionSettings } | null;
  images: number;
  batches: () => AsyncIterable<EvalBatch>;
  /** tensors present under the same name in both models, compared for per-layer SQNR */
  taps?: string[];
  signal?: AbortSignal;
  onProgress?: ProgressListener;
}

export function accuracyOf(p: Predictions): Accuracy {
  let labelled = 0;
  let c1 = 0;
  let c5 = 0;
  for (let i = 0; i < p.labels.length; i++) {
    if (p.labels[i] < 0) continue;
    labelled++;
    if (p.top1[i] === p.labels[i]) c1++;
    c5 += p.top5[i];
  }
  if (labelled === 0) return { images: p.labels.length, labelled, top1: null, top5: null, top1Interval: null, top5Interval: null };
  return {
    images: p.labels.length,
    labelled,
    top1: (100 * c1) / labelled,
    top5: (100 * c5) / labelled,
    top1Interval: wilsonInterval(c1, labelled),
    top5Interval: wilsonInterval(c5, labelled),
  };
}

export function agreementOf(a: Predictions, b: Predictions): Agreement {
  let same = 0;
  let lost = 0;
  let gained = 0;
  let labelled = 0;
  for (let i = 0; i < a.top1.length; i++) {
    if (a.top1[i] === b.top1[i]) same++;
    const y = a.labels[i];
    if (y < 0) continue;
    labelled++;
    if (a.top1[i] === y && b.top1[i] !== y) lost++;
    if (a.top1[i] !== y && b.top1[i] === y) gained++;
  }
  const n = a.top1.length;
  return {
    agreement: n ? (100 * same) / n : 0,
    flipped: n - same,
    lost: labelled ? lost : null,
    gained: labelled ? gained : null,
  };
}

function emptyPredictions(n: number): Predictions {
  return { top1: new Int32Array(n), top5: new Uint8Array(n), labels: new Int32Array(n).fill(-1) };
}

function record(p: Predictions, at: number, logits: ArrayLike<number>, count: number, labels: Int32Array): void {
  const k = logits.length / count;
  for (let i = 0; i < count; i++) {
    const r = rankOf(logits, i * k, k, labels[i]);
    p.top1[at + i] = r.top1;
    p.top5[at + i] = r.inTop5 ? 1 : 0;
    p.labels[at + i] = labels[i];
  }
}

export async function evaluate(input: EvaluationInput): Promise<EvaluationResult> {
  const taps = input.taps ?? [];
  const compare = input.quantized ? (input.compare ?? []) : [];
  const det = input.quantized ? (input.detection ?? null) : null;
  const outputs = [...new Set([...(input.output ? [input.output] : []), ...taps, ...compare.map((o) => o.name), ...(det ? [det.outputs.scores, det.outputs.boxes] : [])])];
  const cache = taps.length === 0 && outputs.length > 0 ? (input.fp32Outputs ?? null) : null;
  const kept = cache?.get(outputs) ?? null;
  const needFp32 = !kept && (!input.fp32Predictions || taps.length > 0 || compare.length > 0 || det !== null);
  const fp32Session = needFp32 ? await openSession(input.fp32) : null;
  const keep = fp32Session && cache ? cache.collector(outputs) : null;
  const quantSession = input.quantized ? await openSession(input.quantized) : null;
  const fp32 = input.fp32Predictions ?? emptyPredictions(input.images);
  const quant = quantSession ? emptyPredictions(input.images) : null;
  const sqnr = new Map(taps.map((t) => [t, new SqnrAccumulator()]));
  const fidelity = new Map(compare.map((o) => [o.name, new FidelityAccumulator()]));
  const detection = det ? new DetectionAccumulator(det.outputs, det.settings) : null;
  const progress = new StageProgress(quantSession ? "evaluate" : "fp32", input.images, input.onProgress);
  let at = 0;
  let index = 0;
  try {
    for await (const batch of input.batches()) {
      throwIfAborted(input.signal);
      // one model at a time: on two cores concurrent runs only contend
      const ref = kept ? kept[index++] : fp32Session ? await runFeeds(fp32Session, batch.feeds, outputs) : null;
      if (ref && keep) keep.add(ref);
      const q = quantSession ? await runFeeds(quantSession, batch.feeds, outputs) : null;
      if (input.output && ref && !input.fp32Predictions) record(fp32, at, tensorValues(ref[input.output]), batch.count, batch.labels);
      if (input.output && q && quant) record(quant, at, tensorValues(q[input.output]), batch.count, batch.labels);
      if (!input.output) for (const p of quant ? [fp32, quant] : [fp32]) p.labels.set(batch.labels, at);
      if (ref && q) {
        for (const [t, acc] of sqnr) acc.add(tensorData(ref[t]), tensorData(q[t]));
        for (const [name, acc] of fidelity) acc.add(tensorValues(ref[name]), tensorValues(q[name]), batch.count);
        if (det && detection) {
          const pick = (o: typeof ref) => ({ scores: tensorValues(o[det.outputs.scores]), boxes: tensorValues(o[det.outputs.boxes]) });
          detection.add(pick(ref), pick(q), batch.count, ref[det.outputs.scores].dims);
        }
      }
      at += batch.count;
      progress.update(at);
    }
    keep?.commit();
  } finally {
    await Promise.all([closeSession(fp32Session), closeSession(quantSession)]);
  }
  const trim = (p: Predictions): Predictions => ({ top1: p.top1.subarray(0, at), top5: p.top5.subarray(0, at), labels: p.labels.subarray(0, at) });
  const fp32Final = trim(fp32);
  const quantFinal = quant ? trim(quant) : null;
  const unranked = (a: Accuracy): Accuracy => (input.output ? a : { ...a, labelled: 0, top1: null, top5: null, top1Interval: null, top5Interval: null });
  return {
    fp32: unranked(accuracyOf(fp32Final)),
    quantized: quantFinal ? unranked(accuracyOf(quantFinal)) : null,
    agreement: quantFinal && input.output ? agreementOf(fp32Final, quantFinal) : null,
    sqnr: new Map([...sqnr].map(([t, acc]) => [t, acc.db()])),
    outputs: compare.map((o) => fidelity.get(o.name)!.result(o.name, o.shape)),
    detection: detection?.result() ?? null,
    predictions: { fp32: fp32Final, quantized: quantFinal },
  };
}
