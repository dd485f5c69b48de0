// The report stage: turns the plan, the export and the measurements into the QuantReport users see.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import type { LayerReport, Method, QuantReport } from "../../../shared/types.ts";
import { hashImageSet } from "../data/hash.ts";
import type { ImageSet } from "../data/scan.ts";
import type { EvaluationResult } from "./evaluate.ts";
import type { ExportResult } from "../targets/target.ts";
import { channelView } from "./histogram.ts";
import type { LayerPlan } from "./plan.ts";
import type { Calibrated, QuantizeRequest } from "./quantize.ts";
import type { TensorStatistics } from "./statistics.ts";

export const NIBBLE_VERSION = "0.1.0";

export async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * Fraction of calibration values the quantizer clips, from the histograms. Values beyond the activation's
 * bounds are not counted as clipped: the activation maps them to the same output anyway.
 */
function fractionClipped(s: TensorStatistics, plan: LayerPlan): number | null {
  const a = plan.activation;
  if (!a || !s.histogram) return null;
  const h = s.histogram;
  const [bLo, bHi] = [a.bounds[0] ?? -Infinity, a.bounds[1] ?? Infinity];
  let outside = 0;
  let total = 0;
  for (let c = 0; c < h.channels; c++) {
    const i = a.granularity === "per-channel" ? c : 0;
    const lo = a.lo[i];
    const hi = a.lo[i] + a.range[i];
    const v = channelView(h, c);
    const width = (v.hi - v.lo) / h.bins;
    for (let k = 0; k < h.bins; k++) {
      const centre = v.lo + (k + 0.5) * width;
      total += v.counts[k];
      if ((centre < lo && centre > bLo) || (centre > hi && centre < bHi)) outside += v.counts[k];
    }
  }
  return total > 0 ? outside / total : null;
}

function noEffect(plan: LayerPlan): Method[] {
  const none: Method[] = [];
  const uniform = (bits: number[]) => bits.every((b) => b === bits[0]);
  if (plan.applied.includes("bitalloc-w") && plan.weight && uniform(plan.weight.bits)) none.push("bitalloc-w");
  if (plan.applied.includes("bitalloc-a") && plan.activation && uniform(plan.activation.bits)) none.push("bitalloc-a");
  if (plan.applied.includes("aciq") && plan.activation && !plan.activation.clipsDiffer) none.push("aciq");
  if (plan.applied.includes("biascorr") && plan.weight && (plan.weight.biasShift ?? 0) < 1e-6) none.push("biascorr");
  return none;
}

function layerReport(plan: LayerPlan, c: Calibrated, exported: ExportResult, evaluation: EvaluationResult | null, tap: string | undefined): LayerReport {
  const s = c.statistics.get(plan.layer.output);
  const e = exported.layers.find((l) => l.name === plan.layer.name);
  const a = plan.activation;
  return {
    name: plan.layer.name,
    op: plan.layer.op,
    role: plan.layer.role,
    precision: plan.precision,
    weightBits: plan.weight ? mean(plan.weight.bits) : 32,
    weightBitsPerChannel: plan.weight?.bits ?? [],
    activationBits: a ? mean(a.bits) : null,
    activationBitsPerChannel: a && a.granularity === "per-channel" ? a.bits : null,
    halfRange: a ? a.halfRange : plan.layer.halfRange,
    activationGranularity: a ? a.granularity : "none",
    rangeKept: a ? a.rangeKept : null,
    fractionClipped: s ? fractionClipped(s, plan) : null,
    biasShift: plan.weight?.biasShift ?? null,
    sqnrDb: tap && evaluation ? (evaluation.sqnr.get(tap) ?? null) : null,
    executable: !e ? "float" : e.form.length === 0 ? "integer" : "simulation",
    executableWhy: !e ? "kept in float" : e.form.length === 0 ? `${e.weightContainer ?? "float"} weights, ${e.activationContainer ?? "float"} activations` : e.form.join("; "),
    noEffect: noEffect(plan),
  };
}

export interface ReportInput {
  request: Pick<QuantizeRequest, "model" | "calib" | "eval" | "preprocess" | "config">;
  calibrated: Calibrated;
  plans: LayerPlan[];
  exported: ExportResult;
  bytes: Uint8Array;
  evaluation: EvaluationResult | null;
  evalSet: ImageSet | null;
  errorTaps: Map<string, string>;
  outputPath?: string;
}

export async function buildReport(input: ReportInput): Promise<QuantReport> {
  const { calibrated: c, plans, bytes, evaluation } = input;
  let theoreticalBits = 0;
  const quantizedWeights = new Set<string>();
  for (const p of plans) {
    if (!p.weight) continue;
    quantizedWeights.add(p.layer.weightName);
    const perChannel = p.weight.codes.length / p.weight.bits.length;
    for (const b of p.weight.bits) theoreticalBits += b * perChannel;
  }
  for (const init of c.prepared.model.graph!.initializer) {
    if (quantizedWeights.has(init.name)) continue;
    theoreticalBits += 32 * init.dims.reduce((a, b) => a * Number(b), 1);
  }
  const fp32Bytes = c.prepared.sourceBytes;
  const warnings = [...c.prepared.notes, ...input.exported.notes, ...c.dataNotes];
  const skippedCalib = c.calibSet.skipped;
  if (skippedCalib.length) warnings.push(`${skippedCalib.length} calibration file(s) could not be read and were skipped.`);
  // Skipped folders and broken links never were in `files`; only undecodable files reduce the count.
  const listed = new Set(c.calibSet.files.map((f) => f.rel));
  const calibImages = c.calibSet.files.length - skippedCalib.filter((s) => listed.has(s.file)).length;
  return {
    tool: { name: "nibble", version: NIBBLE_VERSION },
    createdAt: new Date().toISOString(),
    model: { path: input.request.model, sha256: await sha256File(input.request.model) },
    calibration: { dir: c.calibSet.root, images: calibImages, skipped: skippedCalib, sha256: await hashImageSet(c.calibSet) },
    evaluation: input.evalSet
      ? { dir: input.evalSet.root, images: evaluation?.fp32.images ?? 0, skipped: input.evalSet.skipped, sha256: await hashImageSet(input.evalSet), ...(evaluation ? {} : { measured: false }) }
      : null,
    preprocess: input.request.preprocess,
    config: input.request.config,
    output: input.outputPath ? { path: input.outputPath, sha256: sha256(bytes) } : null,
    fp32: evaluation?.fp32 ?? null,
    quantized: evaluation?.quantized ?? null,
    agreement: evaluation?.agreement ?? null,
    outputs: evaluation?.outputs.length ? evaluation.outputs : null,
    detection: evaluation?.detection ?? null,
    size: { fp32Bytes, quantBytes: bytes.length, theoreticalBytes: Math.ceil(theoreticalBits / 8), ratio: fp32Bytes / bytes.length },
    layers: plans.map((p) => layerReport(p, c, input.exported, evaluation, input.errorTaps.get(p.layer.name))),
    timings: c.timings,
    warnings,
  };
}
