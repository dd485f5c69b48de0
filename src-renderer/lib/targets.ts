// "Where will this model run?": the export target as the app asks and shows it. Choosing a target changes
// what the methods can do (integer targets read 8-bit per-tensor activations), so a choice is applied to
// the settings here, with each change said in words. The facts a run's report holds about its
// target (what onnxruntime runs as integers, the self-check, the measured time) are put in words here too.
import type { TargetId } from "../../shared/targets.ts";
import type { LatencyReport, QuantConfig, QuantReport, SelfCheckReport } from "../../shared/types.ts";
import { count, ratio } from "./format.ts";
import { verdictOf, type Goal } from "./next-steps.ts";
import { methodsPresetOf, withMethodsPreset } from "./presets.ts";

/** The question's answers in the order asked: the common deployment first, the simulation last. */
export const TARGET_ORDER: readonly TargetId[] = ["ort", "int4-npu", "exact"];

/** A target in a run's name and on chips. */
export const TARGET_SHORT: Readonly<Record<TargetId, string>> = { exact: "exact simulation", ort: "for onnxruntime", "int4-npu": "for a 4-bit NPU" };

export const targetOf = (c: Pick<QuantConfig, "target"> | { target?: TargetId }): TargetId => c.target ?? "exact";

export const isInteger = (t: TargetId): boolean => t !== "exact";

/** Why these activation bits cannot be chosen for this target, or null when they can. */
export function bitsUnavailable(target: TargetId, aBits: number): string | null {
  if (!isInteger(target) || aBits === 8) return null;
  return "This target's integer kernels read 8-bit activations: choose the exact simulation for fewer.";
}

/**
 * `c` for another target, and what had to change for it, in words. Best accuracy stays Best accuracy (its
 * recipe follows the target); the rest of the user's choices are kept unless the target cannot run them.
 */
export function withTarget(c: QuantConfig, target: TargetId): { config: QuantConfig; changes: string[] } {
  const best = methodsPresetOf(c) === "best";
  let next: QuantConfig = { ...c, target, methods: [...c.methods] };
  const changes: string[] = [];
  if (isInteger(target) && next.aBits !== 8) {
    changes.push(`Activations are now 8 bits (were ${next.aBits}): this target's integer kernels read 8-bit activations. Fewer bits are for the exact simulation.`);
    next.aBits = 8;
  }
  if (best) next = withMethodsPreset(next, "best");
  return { config: next, changes };
}

/** Settings the target cannot run (a config made before it was chosen, or edited by hand), in words; empty when runnable. */
export function targetConflicts(c: QuantConfig): string[] {
  const bits = bitsUnavailable(targetOf(c), c.aBits);
  return bits ? [`${c.aBits}-bit activations: ${bits}`] : [];
}

const plural = (n: number, one: string, many = `${one}s`) => `${count(n)} ${n === 1 ? one : many}`;

/**
 * What onnxruntime runs as integers, counted in its own optimized graph: "19 of 19 convolutions and 1 of 1
 * fully connected layer run as integers in onnxruntime". Null for reports made before targets existed.
 */
export function integerSummary(r: QuantReport): { text: string; detail: string; all: boolean; none: boolean } | null {
  const rt = r.target?.runtime;
  if (!rt) return null;
  const op = new Map(r.layers.map((l) => [l.name, l.op]));
  const groups = [
    { what: "convolution", layers: rt.layers.filter((l) => (op.get(l.name) ?? "Conv") === "Conv") },
    { what: "fully connected layer", layers: rt.layers.filter((l) => (op.get(l.name) ?? "Conv") !== "Conv") },
  ].filter((g) => g.layers.length > 0);
  const parts = groups.map((g) => `${count(g.layers.filter((l) => l.integer).length)} of ${plural(g.layers.length, g.what)}`);
  const integer = rt.layers.filter((l) => l.integer).length;
  const kernels = Object.entries(rt.ops)
    .filter(([name]) => /^(QLinear|QGemm|MatMulInteger|ConvInteger|DynamicQuantize)/.test(name))
    .sort((a, b) => b[1] - a[1])
    .map(([name, n]) => `${count(n)} ${name}`);
  const left = rt.floatConvs === 0 ? "no float convolution or matrix product left" : `${plural(rt.floatConvs, "float convolution or matrix product", "float convolutions or matrix products")} left`;
  return {
    text: `${parts.join(" and ")} run as integers in onnxruntime.`,
    detail: `Read from onnxruntime's own optimized graph: ${kernels.length ? kernels.join(", ") : "no integer kernel"}; ${left}.`,
    all: integer === rt.layers.length,
    none: integer === 0,
  };
}

export type SelfCheckView = { kind: "ok" | "failed" | "none"; title: string; text: string };

/** The self-check in words: the file's predictions with onnxruntime's optimizations off and fully on. */
export function selfCheckView(sc: SelfCheckReport | null | undefined): SelfCheckView {
  if (!sc) {
    return { kind: "none", title: "Self-check not run", text: "The self-check compares the file's predictions with onnxruntime's optimizations off and on, on the evaluation images; this run had none." };
  }
  if (sc.ok) return { kind: "ok", title: "Self-check passed", text: sc.message };
  return { kind: "failed", title: "Self-check failed", text: sc.message.replace(/^Warning:\s*/, "") };
}

export interface LatencyRow {
  batch: number;
  label: string;
  fp32: string;
  quantized: string;
  ratio: string;
  faster: boolean;
}

const ms = (v: number) => `${v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toFixed(3)} ms`;

/** The measured time per image, labelled as this machine's, with what it means for the target. */
export function latencyView(l: LatencyReport | null | undefined, target: TargetId): { caption: string; rows: LatencyRow[]; note: string } | null {
  if (!l || l.rows.length === 0) return null;
  const rows = l.rows.map((r) => ({
    batch: r.batch,
    label: r.batch === 1 ? "One image at a time" : `Batches of ${r.batch}`,
    fp32: ms(r.fp32Ms),
    quantized: ms(r.quantizedMs),
    ratio: ratio(r.ratio),
    faster: r.ratio < 1,
  }));
  const note =
    target === "int4-npu"
      ? "This file is made for an NPU: on this computer onnxruntime simulates it, so its time here says nothing about the device."
      : target === "exact"
        ? "The exact simulation is not made to be faster: runtimes compute it in float."
        : rows.every((r) => r.faster)
          ? "Faster than FP32 here: onnxruntime runs the quantized layers as 8-bit integer kernels."
          : "Not faster than FP32 here at every batch size: see which layers onnxruntime runs as integers above.";
  return { caption: `Time per image, measured on ${l.machine}, the FP32 model and the export interleaved in one run. Another machine gives other numbers.`, rows, note };
}

export interface ExportWarning {
  id: "verdict" | "self-check";
  title: string;
  text: string;
}

/**
 * What Export asks about before writing the model: a run that misses the goal or was never measured, and a
 * file whose predictions change once onnxruntime optimizes it (the self-check failed).
 */
export function exportWarnings(r: QuantReport, goal: Goal): ExportWarning[] {
  const out: ExportWarning[] = [];
  const v = verdictOf(r, goal);
  if (v.kind === "unmeasured") out.push({ id: "verdict", title: "This model's accuracy was never measured", text: v.text });
  if (v.kind === "useless") out.push({ id: "verdict", title: "This model is useless as it stands", text: v.text });
  const sc = selfCheckView(r.target?.selfCheck);
  if (sc.kind === "failed") out.push({ id: "self-check", title: "The self-check failed", text: sc.text });
  return out;
}

/** The file the Export screen writes for this target, in a line. */
export function modelFileDetail(target: TargetId): string {
  if (target === "ort") return "Opset 21 in onnxruntime's QDQ layout: 8-bit integer weights and activations, 32-bit biases. onnxruntime runs it with integer kernels.";
  if (target === "int4-npu") return "Opset 21 in the QDQ form 4-bit NPUs take: 4-bit integer weights (8-bit where a layer is kept at 8), 8-bit activations, 32-bit biases.";
  return "Opset 21 with QuantizeLinear/DequantizeLinear; weights below 8 bits stored as INT4. Loads in ONNX Runtime, which computes it in float.";
}
