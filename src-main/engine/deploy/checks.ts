// What a runtime really does with an exported file, measured, not assumed: the operators onnxruntime's
// CPU provider runs after its own graph optimizations (read back from optimizedModelFilePath), the file's
// predictions with optimizations off and fully on (a QDQ file a fusion misreads scores differently), and the
// time per image of FP32 and the export, interleaved in one run on one thread.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema, type ModelProto } from "onnx-buf";
import type * as ort from "onnxruntime-node";
import type { LatencyReport, RuntimeGraphReport, SelfCheckReport } from "../../../shared/types.ts";
import type { FeedBatch } from "../data/feeds.ts";
import { tensorToFloat32 } from "../onnx/tensor.ts";
import { closeSession, openSession, runFeeds, type Feeds } from "../pipeline/runtime.ts";

/** onnxruntime's integer kernels (com.microsoft and ONNX's own). */
export const INTEGER_OPS: ReadonlySet<string> = new Set([
  "QLinearConv", "QLinearMatMul", "QGemm", "MatMulInteger", "ConvInteger", "DynamicQuantizeMatMul", "QLinearAdd",
  "QLinearMul", "QLinearGlobalAveragePool", "QLinearAveragePool", "QLinearConcat", "QLinearLeakyRelu", "QLinearSigmoid",
  "QLinearSoftmax", "QLinearReduceMean", "QLinearWhere",
]);
/** float convolutions and matrix products: what a quantized layer should not have become */
export const FLOAT_CONVS: ReadonlySet<string> = new Set(["Conv", "FusedConv", "NchwcConv", "Gemm", "FusedGemm", "MatMul", "FusedMatMul", "ConvTranspose"]);

/** onnxruntime's optimized graph of `bytes` on its CPU provider, counted; `layers` are node names of the file. */
export async function ortOptimizedGraph(bytes: Uint8Array, layers: readonly string[]): Promise<RuntimeGraphReport> {
  const dir = await mkdtemp(join(tmpdir(), "nibble-ort-"));
  try {
    const path = join(dir, "optimized.onnx");
    await closeSession(await openSession(bytes, { quiet: true, level: "all", optimizedModelFilePath: path, threads: 1 }));
    const model = fromBinary(ModelProtoSchema, await readFile(path));
    const ops: Record<string, number> = {};
    for (const n of model.graph!.node) {
      const key = n.domain && n.domain !== "ai.onnx" && !INTEGER_OPS.has(n.opType) && !FLOAT_CONVS.has(n.opType) ? `${n.domain}.${n.opType}` : n.opType;
      ops[key] = (ops[key] ?? 0) + 1;
    }
    const count = (set: ReadonlySet<string>) => model.graph!.node.filter((n) => set.has(n.opType)).length;
    // fusions keep the anchor node's name, sometimes with a "_token_N" suffix
    const nodeOf = (name: string) => model.graph!.node.find((n) => n.name === name || n.name.startsWith(`${name}_token_`));
    return {
      runtime: "onnxruntime CPU (graphOptimizationLevel all)",
      ops,
      integerOps: count(INTEGER_OPS),
      floatConvs: count(FLOAT_CONVS),
      layers: layers.map((name) => {
        const n = nodeOf(name);
        return { name, runsAs: n?.opType ?? null, integer: n !== undefined && INTEGER_OPS.has(n.opType) };
      }),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Rounding in fused integer kernels (requantization rounded once in integers instead of twice in floats) moves
 * a layer's output by up to one quantization step; through a deep network that grows to a few steps at the
 * output. onnxruntime's own tests compare a QDQ file's levels elementwise (op_test_utils.check_model_correctness:
 * rtol 1e-2, atol 0.05; qdq_transformer_test: 0.01 absolute and relative), on one or two operators. For a whole
 * network the check asks two questions instead, each with its bound from the evaluation itself:
 * - do the two levels classify differently beyond the noise of this many images? A paired comparison: of the
 *   images where exactly one level is right (against the label, and against FP32's class), rounding favours
 *   either level alike, so the count in favour of one is Binomial(discordant, 1/2); more than Z standard
 *   deviations from half is no longer rounding.
 * - do the outputs move by more than a few output quantization steps on more than a small share of images?
 *   (MobileNet v1's ort W8A8 export, 300 ImageNet images: at most 0.84 steps, 2 top-1 changes; the file with
 *   its bias steps misread moves the outputs by whole classes.)
 */
const Z = 3.29; // two-sided p = 0.001: a clean export fails by chance once in a thousand checks
const OUTPUT_STEPS = 4;
const FAR_SHARE = 0.05;
/** without classes or a quantized output: a tenth of the outputs' scale apart is more than rounding */
const SCALE_SHARE = 0.1;

/** ops between a DequantizeLinear and the output that do not change values */
const PASS_THROUGH: ReadonlySet<string> = new Set(["Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose"]);

/**
 * The quantization step of `output`'s values: the scale of the per-tensor DequantizeLinear it comes from,
 * through value-preserving ops, halved through a Softmax (its outputs move at most half as far as its inputs,
 * in the largest element). Null when the output comes out of a float kernel (QGemm with a float output).
 */
export function outputStep(model: ModelProto, output: string): number | null {
  const made = new Map(model.graph!.node.flatMap((n) => n.output.map((o) => [o, n] as const)));
  const inits = new Map(model.graph!.initializer.map((t) => [t.name, t]));
  let factor = 1;
  let name = output;
  for (let hops = 0; hops < 16; hops++) {
    const n = made.get(name);
    if (!n) return null;
    if (n.opType === "DequantizeLinear") {
      const scale = inits.get(n.input[1]);
      const v = scale ? tensorToFloat32(scale) : null;
      return v && v.length === 1 && v[0] > 0 ? v[0] * factor : null;
    }
    if (n.opType === "Softmax") factor *= 0.5;
    else if (!PASS_THROUGH.has(n.opType)) return null;
    name = n.input[0];
  }
  return null;
}

interface Paired {
  /** right at level "disabled" only */
  plainOnly: number;
  /** right at level "all" only */
  optimizedOnly: number;
  /** compared samples and how many each level got right */
  n: number;
  plain: number;
  optimized: number;
}

const paired = (): Paired => ({ plainOnly: 0, optimizedOnly: 0, n: 0, plain: 0, optimized: 0 });

function tally(p: Paired, plainRight: boolean, optimizedRight: boolean): void {
  p.n++;
  if (plainRight) p.plain++;
  if (optimizedRight) p.optimized++;
  if (plainRight && !optimizedRight) p.plainOnly++;
  if (optimizedRight && !plainRight) p.optimizedOnly++;
}

/** more than Z standard deviations between the levels' discordant counts */
function beyondNoise(p: Paired): boolean {
  const d = p.plainOnly + p.optimizedOnly;
  return d > 0 && Math.abs(p.plainOnly - p.optimizedOnly) > Z * Math.sqrt(d);
}

const pct = (k: number, n: number) => `${((100 * k) / n).toFixed(1)}%`;

/**
 * The exported file's outputs at optimization levels "disabled" and "all" on the same samples (see the bounds
 * above). `fp32Top1` is FP32's class per sample in the order of `batches`, when the evaluation has it.
 */
export async function selfCheck(
  bytes: Uint8Array,
  batches: AsyncIterable<FeedBatch>,
  output: string,
  classifier: boolean,
  fp32Top1: ArrayLike<number> | null = null,
): Promise<SelfCheckReport> {
  const step = outputStep(fromBinary(ModelProtoSchema, bytes), output);
  const plain = await openSession(bytes, { quiet: true, level: "disabled" });
  const optimized = await openSession(bytes, { quiet: true, level: "all" });
  let images = 0;
  let agree = 0;
  let far = 0;
  let maxAbsDiff = 0;
  let maxAbsOutput = 0;
  const labels = paired();
  const fp32 = paired();
  try {
    for await (const b of batches) {
      const [x, y] = [(await runFeeds(plain, b.feeds, [output]))[output], (await runFeeds(optimized, b.feeds, [output]))[output]];
      const a = x.data as Float32Array;
      const c = y.data as Float32Array;
      const per = a.length / b.count;
      for (let s = 0; s < b.count; s++) {
        let ia = 0;
        let ic = 0;
        let diff = 0;
        for (let k = 0; k < per; k++) {
          const i = s * per + k;
          diff = Math.max(diff, Math.abs(a[i] - c[i]));
          maxAbsOutput = Math.max(maxAbsOutput, Math.abs(a[i]));
          if (a[i] > a[s * per + ia]) ia = k;
          if (c[i] > c[s * per + ic]) ic = k;
        }
        maxAbsDiff = Math.max(maxAbsDiff, diff);
        if (step !== null && diff > OUTPUT_STEPS * step) far++;
        if (ia === ic) agree++;
        if (classifier && b.labels[s] >= 0) tally(labels, ia === b.labels[s], ic === b.labels[s]);
        if (classifier && fp32Top1 && images + s < fp32Top1.length) tally(fp32, ia === fp32Top1[images + s], ic === fp32Top1[images + s]);
      }
      images += b.count;
    }
  } finally {
    await closeSession(plain);
    await closeSession(optimized);
  }
  const top1Agreement = images > 0 ? (100 * agree) / images : 100;
  const findings: string[] = [];
  const levels = (p: Paired, what: string) =>
    `${what} ${pct(p.plain, p.n)} with optimizations off and ${pct(p.optimized, p.n)} with them on, on ${p.n} images: a gap of ${p.plainOnly} against ${p.optimizedOnly} images is beyond the noise of ${p.n} images (${Z} standard deviations of a paired comparison)`;
  if (beyondNoise(labels)) findings.push(levels(labels, "top-1 accuracy"));
  if (beyondNoise(fp32)) findings.push(levels(fp32, "agreement with FP32's top-1"));
  if (step !== null && far > FAR_SHARE * images) {
    findings.push(`on ${pct(far, images)} of ${images} images the outputs move by more than ${OUTPUT_STEPS} output quantization steps (step ${step.toPrecision(3)}, largest move ${maxAbsDiff.toPrecision(3)}); rounding in fused kernels moves them by a few at most, on more than ${100 * FAR_SHARE}% of images it is not rounding`);
  }
  const scaleOnly = step === null && labels.n === 0 && fp32.n === 0;
  if (scaleOnly && maxAbsDiff > SCALE_SHARE * maxAbsOutput) {
    findings.push(`the outputs move by up to ${maxAbsDiff.toPrecision(3)}, more than a tenth of their scale (${maxAbsOutput.toPrecision(3)})`);
  }
  const ok = findings.length === 0;
  const what = classifier ? `${top1Agreement.toFixed(1)}% of ${images} samples keep their top-1 class` : `over ${images} samples`;
  const message = ok
    ? `The exported file gives the same predictions with onnxruntime's optimizations off and on, within rounding (${what}).`
    : `Warning: the exported file gives different predictions once onnxruntime optimizes it: ${findings.join("; ")}. A runtime's fusion reads the file differently from its plain operators; do not ship it before finding out why.`;
  return {
    images,
    top1Agreement,
    maxAbsDiff,
    maxAbsOutput,
    outputStep: step,
    beyondSteps: far,
    accuracy: labels.n > 0 ? { plain: (100 * labels.plain) / labels.n, optimized: (100 * labels.optimized) / labels.n, images: labels.n } : null,
    fp32Agreement: fp32.n > 0 ? { plain: (100 * fp32.plain) / fp32.n, optimized: (100 * fp32.optimized) / fp32.n, images: fp32.n } : null,
    ok,
    findings,
    message,
  };
}

async function timeOnce(session: ort.InferenceSession, feeds: Feeds, output: string): Promise<number> {
  const t0 = performance.now();
  await runFeeds(session, feeds, [output]);
  return performance.now() - t0;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * Time per image of `fp32` and `quantized` on one thread, runs interleaved so the machine's load falls on both
 * alike; the median of `rounds` runs per batch size, or of as many as fit in `budgetMs` (at least three): a
 * slow simulated file on a large batch must not add a minute to every run. `feeds(batch)` gives the inputs of
 * one batch, or null when the models do not take that batch.
 */
export async function measureLatency(
  fp32: Uint8Array | string,
  quantized: Uint8Array,
  output: string,
  feeds: (batch: number) => Feeds | null,
  batchSizes: readonly number[] = [1, 32],
  rounds = 15,
  budgetMs = 4000,
): Promise<LatencyReport> {
  const a = await openSession(fp32, { quiet: true, threads: 1 });
  const b = await openSession(quantized, { quiet: true, threads: 1 });
  const rows: LatencyReport["rows"] = [];
  try {
    for (const batch of batchSizes) {
      const f = feeds(batch);
      if (!f) continue;
      await timeOnce(a, f, output);
      await timeOnce(b, f, output);
      const ta: number[] = [];
      const tb: number[] = [];
      const start = performance.now();
      for (let r = 0; r < rounds && (r < 3 || performance.now() - start < budgetMs); r++) {
        ta.push(await timeOnce(a, f, output));
        tb.push(await timeOnce(b, f, output));
      }
      const fp32Ms = median(ta) / batch;
      const quantizedMs = median(tb) / batch;
      rows.push({ batch, fp32Ms, quantizedMs, ratio: quantizedMs / fp32Ms });
    }
  } finally {
    await closeSession(a);
    await closeSession(b);
  }
  return { machine: `this machine (${cpus()[0]?.model.trim() ?? "unknown CPU"}, one thread)`, threads: 1, rows };
}
