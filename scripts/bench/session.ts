// Time across one session (issue 11 item 12), a part of `npm run bench` (--part session): the same W4A4 run twice,
// then the paper's 16-combination ablation, as the app runs them one after another in one engine thread. Work
// that does not change between them (decoded images, FP32 outputs, calibration statistics) is kept by the session
// cache (src-main/engine/pipeline/session-cache.ts); every time is a ratio to the first run, measured in this one
// process. The same sequence with the cache off is the reference, and its accuracies must be the same.
import path from "node:path";
import { defaultQuantConfig } from "../../shared/defaults.ts";
import type { PreprocessConfig } from "../../shared/types.ts";
import { quantize, type DataSource } from "../../src-main/engine/pipeline/quantize.ts";
import { cacheCounters, resetSessionCache } from "../../src-main/engine/pipeline/session-cache.ts";
import { runEngineJob } from "../../src-main/service/jobs.ts";
import { REPO_ROOT, fixed, table } from "./common.ts";

export interface SessionModel {
  key: string;
  file: string;
  preprocess: PreprocessConfig;
  calib: DataSource;
  eval: DataSource;
}

/** MobileNet v1 0.75 on the dev ImageNet split (200 of its 300 calibration images, its 1,000 evaluation images) and ResNet-20 on the demo data. */
export function sessionModels(fixtures: string, imagenet: string): SessionModel[] {
  return [
    {
      key: "resnet20",
      file: path.join(fixtures, "models", "resnet20-cifar10.onnx"),
      preprocess: { preset: "imagenet" },
      // the app's demo data: 200 calibration and 500 evaluation images (an ablation job takes a whole folder)
      calib: { dir: path.join(REPO_ROOT, "resources", "demo", "calib") },
      eval: { dir: path.join(REPO_ROOT, "resources", "demo", "eval") },
    },
    {
      key: "mobilenet",
      file: path.join(fixtures, "models", "mobilenet_v1_0.75_224-imagenet.onnx"),
      preprocess: { preset: "inception", resize: 224, crop: 224 },
      calib: { dir: path.join(imagenet, "calib"), limit: 200, seed: 0 },
      eval: { dir: path.join(imagenet, "eval") },
    },
  ];
}

interface Step {
  name: string;
  seconds: number;
  decoded: number;
  fp32Batches: number;
  /** top-1 of the run, or of every ablation row */
  top1: (number | null)[];
}

async function sequence(m: SessionModel, cached: boolean, log: (s: string) => void): Promise<Step[]> {
  resetSessionCache(cached ? undefined : 0);
  const config = defaultQuantConfig({ wBits: 4, aBits: 4 });
  const steps: Step[] = [];
  const step = async (name: string, work: () => Promise<(number | null)[]>) => {
    const before = { ...cacheCounters };
    const t = performance.now();
    const top1 = await work();
    steps.push({ name, seconds: (performance.now() - t) / 1000, decoded: cacheCounters.decodedSamples - before.decodedSamples, fp32Batches: cacheCounters.fp32Batches - before.fp32Batches, top1 });
    log(`session ${m.key} ${cached ? "cached" : "uncached"}: ${name} ${steps.at(-1)!.seconds.toFixed(1)} s`);
  };
  const run = async () => {
    const { report } = await quantize({ model: m.file, calib: m.calib, eval: m.eval, preprocess: m.preprocess, config });
    return [report.quantized?.top1 ?? null];
  };
  await step("first run", run);
  await step("second run", run);
  await step("ablation", async () => {
    const out = await runEngineJob(
      { kind: "ablation", model: m.file, calibDir: m.calib.dir, calibLimit: m.calib.limit, evalDir: m.eval.dir, preprocess: m.preprocess, config },
      { signal: new AbortController().signal, onProgress: () => undefined },
    );
    if (out.result.kind !== "ablation") throw new Error("not an ablation");
    return out.result.rows.map((r) => r.top1);
  });
  return steps;
}

export async function session(models: SessionModel[], log: (s: string) => void): Promise<{ text: string; data: unknown }> {
  const rows: string[][] = [];
  const data: Record<string, unknown> = {};
  for (const m of models) {
    // module loading, onnxruntime's first sessions and the JIT would otherwise count against whichever runs first
    resetSessionCache(0);
    await quantize({ model: m.file, calib: { ...m.calib, limit: 16 }, eval: { ...m.eval, limit: 16 }, preprocess: m.preprocess, config: defaultQuantConfig() });
    const withCache = await sequence(m, true, log);
    const without = await sequence(m, false, log);
    const same = withCache.every((s, i) => JSON.stringify(s.top1) === JSON.stringify(without[i].top1));
    data[m.key] = { withCache, without, sameAccuracy: same };
    const first = without[0].seconds;
    for (const [i, s] of withCache.entries()) {
      const u = without[i];
      rows.push([
        m.key,
        s.name === "ablation" ? `ablation (${s.top1.length} combinations)` : s.name,
        fixed(u.seconds / first, 2),
        fixed(s.seconds / first, 2),
        fixed(u.seconds, 1),
        fixed(s.seconds, 1),
        `${u.decoded} / ${s.decoded}`,
        `${u.fp32Batches} / ${s.fp32Batches}`,
        same ? "same" : "DIFFERENT",
      ]);
    }
  }
  const text = table(
    ["model", "step (W4A4, paper's methods)", "x first run, no cache", "x first run, cache", "s, no cache", "s, cache", "images decoded (no cache / cache)", "FP32 eval batches", "top-1"],
    rows,
  );
  return { text, data };
}
