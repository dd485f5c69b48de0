// The evaluation stage: FP32 and quantized models on the same images, paired, in one pass over the data.
// The quantized model is always the exported file's bytes, so the numbers describe what ships.
import type { Accuracy, Agreement } from "../../../shared/types.ts";
import { rankOf, SqnrAccumulator, wilsonInterval } from "./metrics.ts";
import { StageProgress, throwIfAborted, type ProgressListener } from "./progress.ts";
import { closeSession, openSession, runBatch, tensorData, type InputGeometry } from "./runtime.ts";

export interface EvalBatch {
  data: Float32Array;
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
  predictions: { fp32: Predictions; quantized: Predictions | null };
}

export interface EvaluationInput {
  fp32: Uint8Array | string;
  quantized: Uint8Array | string | null;
  /** FP32 predictions from an earlier pass over the same images; skips the FP32 model */
  fp32Predictions?: Predictions;
  geometry: InputGeometry;
  output: string;
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

function record(p: Predictions, at: number, logits: Float32Array, count: number, labels: Int32Array): void {
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
  const fp32Session = input.fp32Predictions && taps.length === 0 ? null : await openSession(input.fp32);
  const quantSession = input.quantized ? await openSession(input.quantized) : null;
  const fp32 = input.fp32Predictions ?? emptyPredictions(input.images);
  const quant = quantSession ? emptyPredictions(input.images) : null;
  const sqnr = new Map(taps.map((t) => [t, new SqnrAccumulator()]));
  const progress = new StageProgress(quantSession ? "evaluate" : "fp32", input.images, input.onProgress);
  const outputs = [input.output, ...taps];
  let at = 0;
  try {
    for await (const batch of input.batches()) {
      throwIfAborted(input.signal);
      // one model at a time: on two cores concurrent runs only contend
      const ref = fp32Session ? await runBatch(fp32Session, input.geometry, batch.data, batch.count, outputs) : null;
      const q = quantSession ? await runBatch(quantSession, input.geometry, batch.data, batch.count, outputs) : null;
      if (ref && !input.fp32Predictions) record(fp32, at, tensorData(ref[input.output]), batch.count, batch.labels);
      if (q && quant) record(quant, at, tensorData(q[input.output]), batch.count, batch.labels);
      if (ref && q) for (const [t, acc] of sqnr) acc.add(tensorData(ref[t]), tensorData(q[t]));
      at += batch.count;
      progress.update(at);
    }
  } finally {
    await Promise.all([closeSession(fp32Session), closeSession(quantSession)]);
  }
  const trim = (p: Predictions): Predictions => ({ top1: p.top1.subarray(0, at), top5: p.top5.subarray(0, at), labels: p.labels.subarray(0, at) });
  const fp32Final = trim(fp32);
  const quantFinal = quant ? trim(quant) : null;
  return {
    fp32: accuracyOf(fp32Final),
    quantized: quantFinal ? accuracyOf(quantFinal) : null,
    agreement: quantFinal ? agreementOf(fp32Final, quantFinal) : null,
    sqnr: new Map([...sqnr].map(([t, acc]) => [t, acc.db()])),
    predictions: { fp32: fp32Final, quantized: quantFinal },
  };
}
