// What a runtime really does with an exported file, measured, not assumed: the operators onnxruntime's
// CPU provider runs after its own graph optimizations (read back from optimizedModelFilePath), the file's
// predictions with optimizations off and fully on (a QDQ file a fusion misreads scores differently), and the
// time per image of FP32 and the export, interleaved in one run on one thread.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema } from "onnx-buf";
import type * as ort from "onnxruntime-node";
import type { LatencyReport, RuntimeGraphReport, SelfCheckReport } from "../../../shared/types.ts";
import type { FeedBatch } from "../data/feeds.ts";
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

/** Share of samples whose top-1 class differs between the two levels that makes the check fail, percent. */
const SELF_CHECK_TOLERANCE = 1;

/**
 * The exported file's outputs at optimization levels "disabled" and "all" on the same samples. Rounding in
 * fused kernels moves a few borderline samples; a fusion that misreads the file moves many.
 */
export async function selfCheck(bytes: Uint8Array, batches: AsyncIterable<FeedBatch>, output: string, classifier: boolean): Promise<SelfCheckReport> {
  const plain = await openSession(bytes, { quiet: true, level: "disabled" });
  const optimized = await openSession(bytes, { quiet: true, level: "all" });
  let images = 0;
  let agree = 0;
  let maxAbsDiff = 0;
  let maxAbsOutput = 0;
  try {
    for await (const b of batches) {
      const [x, y] = [(await runFeeds(plain, b.feeds, [output]))[output], (await runFeeds(optimized, b.feeds, [output]))[output]];
      const a = x.data as Float32Array;
      const c = y.data as Float32Array;
      const per = a.length / b.count;
      for (let s = 0; s < b.count; s++) {
        let ia = 0;
        let ic = 0;
        for (let k = 0; k < per; k++) {
          const i = s * per + k;
          maxAbsDiff = Math.max(maxAbsDiff, Math.abs(a[i] - c[i]));
          maxAbsOutput = Math.max(maxAbsOutput, Math.abs(a[i]));
          if (a[i] > a[s * per + ia]) ia = k;
          if (c[i] > c[s * per + ic]) ic = k;
        }
        if (ia === ic) agree++;
      }
      images += b.count;
    }
  } finally {
    await closeSession(plain);
    await closeSession(optimized);
  }
  const top1Agreement = images > 0 ? (100 * agree) / images : 100;
  // without classes, the outputs themselves: a tenth of their scale apart is more than rounding
  const ok = classifier ? 100 - top1Agreement <= SELF_CHECK_TOLERANCE : maxAbsDiff <= 0.1 * maxAbsOutput;
  const what = classifier ? `${top1Agreement.toFixed(1)}% of ${images} samples keep their top-1 class` : `over ${images} samples`;
  const message = ok
    ? `The exported file gives the same predictions with onnxruntime's optimizations off and on (${what}).`
    : `Warning: the exported file gives different predictions once onnxruntime optimizes it: ${what}, largest output difference ${maxAbsDiff.toPrecision(3)} (outputs up to ${maxAbsOutput.toPrecision(3)}). A runtime's fusion reads the file differently from its plain operators; do not ship it before finding out why.`;
  return { images, top1Agreement, maxAbsDiff, maxAbsOutput, ok, message };
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
 * alike; the median of `rounds` runs per batch size. `feeds(batch)` gives the inputs of one batch, or null when
 * the models do not take that batch.
 */
export async function measureLatency(
  fp32: Uint8Array | string,
  quantized: Uint8Array,
  output: string,
  feeds: (batch: number) => Feeds | null,
  batchSizes: readonly number[] = [1, 32],
  rounds = 15,
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
      for (let r = 0; r < rounds; r++) {
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
