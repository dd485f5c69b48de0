// The ablation of the methods beyond the paper (issue 9), a part of `npm run bench` (--part ablation):
// on the ImageNet networks at W4A8 and the CIFAR ResNets at W4A4 and W3A3, every new method alone, the
// recommended recipe (`--methods best`), the recipe without each of its parts, and the paper's methods, each
// measured on the exported bytes on images calibration never saw, with the time of every stage.
//
// ImageNet data: the fixture's imagenet-val-1300 split by the engine's held-out rule (a seeded 300 for
// calibration, the other 1,000 for evaluation), or with --imagenet DIR a folder holding calib/, eval/,
// calib-darknet/ and eval-darknet/ (Tiny Darknet's label order), each with a labels.txt.
import path from "node:path";
import { defaultQuantConfig } from "../../shared/defaults.ts";
import { bestRecipe } from "../../shared/recipes.ts";
import type { Method, PreprocessConfig, QuantConfig } from "../../shared/types.ts";
import { heldOutSplit } from "../../src-main/engine/pipeline/data-notes.ts";
import type { Predictions } from "../../src-main/engine/pipeline/evaluate.ts";
import { calibrate, evaluateQuantized, quantizeCalibrated, scanSource, withHeldOut, type Calibrated, type DataSource } from "../../src-main/engine/pipeline/quantize.ts";
import { fileBytes, fixed, table } from "./common.ts";

export interface AblationModel {
  key: string;
  file: string;
  preprocess: PreprocessConfig;
  calib: DataSource;
  eval: DataSource;
  settings: { w: number; a: number }[];
}

export function ablationModels(fixtures: string, imagenet: string | undefined, calibLimit: number): AblationModel[] {
  const val = path.join(fixtures, "imagenet-val-1300");
  const inet = (key: string, file: string, preset: PreprocessConfig["preset"], labels: string, suffix: string): AblationModel => ({
    key,
    file: path.join(fixtures, "models", file),
    preprocess: { preset, resize: 224, crop: 224 },
    calib: imagenet ? { dir: path.join(imagenet, `calib${suffix}`) } : { dir: val, limit: 300, seed: 0, labels: path.join(val, labels) },
    eval: imagenet ? { dir: path.join(imagenet, `eval${suffix}`) } : { dir: val, labels: path.join(val, labels) },
    settings: [{ w: 4, a: 8 }],
  });
  const cifar = (key: string): AblationModel => ({
    key,
    file: path.join(fixtures, "models", `${key}-cifar10.onnx`),
    preprocess: { preset: "imagenet" },
    calib: { dir: path.join(fixtures, "cifar10-train-1000"), limit: calibLimit, seed: 0 },
    eval: { dir: path.join(fixtures, "cifar10-test") },
    settings: [
      { w: 4, a: 4 },
      { w: 3, a: 3 },
    ],
  });
  return [
    inet("mobilenet", "mobilenet_v1_0.75_224-imagenet.onnx", "inception", "labels.txt", ""),
    inet("tiny-darknet", "tiny-darknet-imagenet.onnx", "raw01", "labels-darknet.txt", "-darknet"),
    cifar("resnet20"),
    cifar("resnet56"),
  ];
}

interface Variant {
  name: string;
  methods: Method[];
  baseline: QuantConfig["baseline"];
}

/** The rows of one setting: baselines, each new method alone, the recipe, the recipe without each of its parts. */
export function ablationVariants(w: number, a: number): Variant[] {
  const r = bestRecipe(w, a);
  const paper: Method[] = ["aciq", "bitalloc-w", "bitalloc-a", "biascorr"];
  const rows: Variant[] = [
    { name: "none (min/max)", methods: [], baseline: "minmax" },
    { name: "paper (all)", methods: paper, baseline: "minmax" },
  ];
  if (r.baseline !== "minmax") rows.push({ name: `${r.baseline} activation ranges`, methods: [], baseline: r.baseline });
  for (const m of ["weight-clip", "equalize", "bias-fold", "reconstruct"] as const) rows.push({ name: m, methods: [m], baseline: "minmax" });
  rows.push({ name: "best", methods: r.methods, baseline: r.baseline });
  for (const m of r.methods) rows.push({ name: `best − ${m}`, methods: r.methods.filter((x) => x !== m), baseline: r.baseline });
  if (r.baseline !== "minmax") rows.push({ name: `best − ${r.baseline} ranges`, methods: r.methods, baseline: "minmax" });
  if (!r.methods.includes("equalize")) rows.push({ name: "best + equalize", methods: [...r.methods, "equalize"], baseline: r.baseline });
  return rows;
}

export interface AblationRow {
  model: string;
  setting: string;
  variant: string;
  methods: string;
  top1: number;
  fp32: number;
  agreement: number;
  bytes: number;
  /** seconds: calibration (prepare, equalize, statistics) as shared or own, plan + reconstruct + export, evaluation */
  calibrate: number;
  reconstruct: number;
  quantize: number;
  evaluate: number;
}

export async function ablation(models: AblationModel[], log: (msg: string) => void): Promise<{ text: string; data: unknown }> {
  const rows: AblationRow[] = [];
  const out: string[] = [];
  for (const m of models) {
    const calibrated = new Map<string, { c: Calibrated; seconds: number }>();
    let fp32Predictions: Predictions | undefined;
    for (const s of m.settings) {
      const setting = `W${s.w}A${s.a}`;
      for (const v of ablationVariants(s.w, s.a)) {
        // every row reconstructs as the recipe does (its images, column order), so "best" is the CLI's --methods best
        const config = defaultQuantConfig({ wBits: s.w, aBits: s.a, methods: v.methods, baseline: v.baseline, reconstruct: bestRecipe(s.w, s.a).reconstruct });
        // statistics do not depend on the methods, except equalize (it changes the model): one calibration each
        // way, with every image's histogram so the MSE ranges can be planned from it
        const eq = v.methods.includes("equalize");
        const key = eq ? "equalized" : "plain";
        let cal = calibrated.get(key);
        if (!cal) {
          const t = performance.now();
          const calibConfig: QuantConfig = { ...config, baseline: "mse", methods: eq ? ["equalize"] : [] };
          const req = await withHeldOut({ model: m.file, calib: m.calib, preprocess: m.preprocess, config: calibConfig, histograms: true }, m.eval);
          cal = { c: await calibrate(req), seconds: (performance.now() - t) / 1000 };
          calibrated.set(key, cal);
          log(`${m.key}: calibrated${eq ? " (equalized)" : ""} on ${cal.c.calibSet.files.length} images in ${cal.seconds.toFixed(0)} s`);
        }
        const c = cal.c;
        const evalSet = (await heldOutSplit(c.calibSet, await scanSource(m.eval, "evaluation"))).set;
        let t = performance.now();
        const q = await quantizeCalibrated(c, config, {});
        const quantizeSeconds = (performance.now() - t) / 1000;
        t = performance.now();
        const e = await evaluateQuantized(c, q.bytes, evalSet, { preprocess: m.preprocess, layerErrors: false }, fp32Predictions);
        fp32Predictions = e.predictions.fp32;
        const recon = q.reconstruction ? q.reconstruction.passSeconds + q.reconstruction.solveSeconds : 0;
        const row: AblationRow = {
          model: m.key,
          setting,
          variant: v.name,
          methods: [...v.methods, ...(v.baseline === "minmax" ? [] : [`${v.baseline} ranges`])].join(", ") || "-",
          top1: e.quantized!.top1!,
          fp32: e.fp32.top1!,
          agreement: e.agreement!.agreement,
          bytes: q.bytes.length,
          calibrate: (eq ? (c.timings.equalize ?? 0) : 0) + (c.timings.statistics ?? 0),
          reconstruct: recon,
          quantize: quantizeSeconds - recon,
          evaluate: (performance.now() - t) / 1000,
        };
        rows.push(row);
        log(`${m.key} ${setting} ${v.name}: ${fixed(row.top1)} (FP32 ${fixed(row.fp32)}), reconstruct ${recon.toFixed(0)} s`);
      }
    }
    const mine = rows.filter((r) => r.model === m.key);
    out.push(
      `### ${m.key} (${path.basename(m.file)}, FP32 ${fixed(mine[0].fp32)} top-1 on ${fp32Predictions!.labels.length} images calibration never saw, ` +
        `${calibrated.get("plain")!.c.calibSet.files.length} calibration images; FP32 file ${(fileBytes(m.file) / 1e6).toFixed(2)} MB)`,
      "",
      table(
        ["setting", "variant", "methods", "top-1", "drop", "agree %", "MB", "statistics s", "reconstruct s", "plan+export s", "evaluate s"],
        mine.map((r) => [r.setting, r.variant, r.methods, fixed(r.top1), fixed(r.fp32 - r.top1), fixed(r.agreement, 1), (r.bytes / 1e6).toFixed(2), fixed(r.calibrate, 1), fixed(r.reconstruct, 1), fixed(r.quantize, 1), fixed(r.evaluate, 1)]),
      ),
      "",
    );
  }
  return { text: out.join("\n"), data: rows };
}
