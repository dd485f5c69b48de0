// The deploy table of `npm run bench` (--part deploy, issue 10): per model and export target, top-1 of the
// exported file on images calibration never saw, its size, its time per image at batch 1 and 32 relative to
// FP32 (one thread, interleaved in the same run), and what onnxruntime's own optimized graph runs as
// integer kernels and as float Conv/Gemm/MatMul.
import type { TargetId } from "../../shared/targets.ts";
import { defaultQuantConfig } from "../../shared/defaults.ts";
import type { Method } from "../../shared/types.ts";
import { ALL_METHODS } from "../../shared/types.ts";
import { quantize } from "../../src-main/engine/pipeline/quantize.ts";
import type { AblationModel } from "./ablation.ts";
import { fixed, table } from "./common.ts";

interface DeployVariant {
  target: TargetId;
  w: number;
  a: number;
  methods: readonly Method[];
  label: string;
}

export const DEPLOY_VARIANTS: readonly DeployVariant[] = [
  { target: "exact", w: 4, a: 8, methods: ALL_METHODS, label: "exact W4A8 all" },
  { target: "ort", w: 8, a: 8, methods: [], label: "ort W8A8 none" },
  { target: "ort", w: 8, a: 8, methods: ["biascorr"], label: "ort W8A8 biascorr" },
  { target: "ort", w: 4, a: 8, methods: ALL_METHODS, label: "ort W4A8 all" },
  { target: "int4-npu", w: 4, a: 8, methods: ALL_METHODS, label: "int4-npu W4A8 all" },
];

export async function deploy(models: AblationModel[], log: (s: string) => void): Promise<{ text: string; data: unknown[] }> {
  const rows: string[][] = [];
  const data: unknown[] = [];
  for (const m of models) {
    for (const v of DEPLOY_VARIANTS) {
      log(`deploy: ${m.key} ${v.label}`);
      const { report } = await quantize({
        model: m.file,
        calib: m.calib,
        eval: m.eval,
        preprocess: m.preprocess,
        config: defaultQuantConfig({ wBits: v.w, aBits: v.a, methods: [...v.methods], target: v.target }),
      });
      const t = report.target;
      const at = (b: number) => t?.latency?.rows.find((r) => r.batch === b)?.ratio ?? null;
      const fused = t?.runtime ? Object.entries(t.runtime.ops).filter(([op]) => op.startsWith("Q") && op !== "QuantizeLinear").map(([op, n]) => `${n} ${op}`).join(", ") : "";
      rows.push([
        m.key,
        v.label,
        fixed(report.fp32?.top1),
        fixed(report.quantized?.top1),
        `${fixed(report.size.quantBytes / report.size.fp32Bytes)}x`,
        at(1) === null ? "-" : `${fixed(at(1))}x`,
        at(32) === null ? "-" : `${fixed(at(32))}x`,
        String(t?.runtime?.integerOps ?? "-"),
        String(t?.runtime?.floatConvs ?? "-"),
        t?.selfCheck ? (t.selfCheck.ok ? "ok" : `MISMATCH ${fixed(t.selfCheck.top1Agreement, 1)}%`) : "-",
        fused,
      ]);
      data.push({ model: m.key, variant: v, fp32: report.fp32, quantized: report.quantized, size: report.size, target: t });
    }
  }
  const text = table(
    ["model", "export", "FP32 top-1", "top-1", "size vs FP32", "time b1 vs FP32", "time b32 vs FP32", "integer ops", "float Conv/Gemm", "self-check", "onnxruntime integer kernels"],
    rows,
    ["l", "l", "r", "r", "r", "r", "r", "r", "r", "l", "l"],
  );
  return { text, data };
}
