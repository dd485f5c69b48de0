// What a worker thread runs: one engine job, start to finish, with progress and cancellation.
import path from "node:path";
import type { AblationRow, DataPreview, JobRequest, JobResult } from "../../shared/engine-api.ts";
import { methodsName } from "../../shared/describe.ts";
import { ALL_METHODS, type Method, type ModelSummary, type Progress } from "../../shared/types.ts";
import { DataError } from "../engine/data/errors.ts";
import { describeLabels, previewImages } from "../engine/data/preview.ts";
import { scanImages } from "../engine/data/scan.ts";
import { inspectModel } from "../engine/onnx/inspect.ts";
import { prepareModel, requireImageInput } from "../engine/onnx/prepare.ts";
import { checkQuantConfig } from "../engine/pipeline/config-check.ts";
import { evaluate } from "../engine/pipeline/evaluate.ts";
import { calibrate, evaluateQuantized, imageBatches, quantize, quantizeCalibrated } from "../engine/pipeline/quantize.ts";
import { encodeModel, loadModel } from "../engine/onnx/model-io.ts";
import { PassProgress } from "./pass-progress.ts";
import { recommendPreprocess } from "./recommend-preprocess.ts";

export type EngineRequest =
  | JobRequest
  | { kind: "inspect"; model: string }
  | { kind: "preview"; dir: string; model: string; preprocess: JobRequest["preprocess"]; count: number };

export type EngineResult =
  | JobResult
  | { kind: "inspect"; summary: ModelSummary }
  | { kind: "preview"; preview: DataPreview };

export interface JobContext {
  signal: AbortSignal;
  onProgress: (p: Progress) => void;
}

export interface EngineOutput {
  result: EngineResult;
  /** the exported model of a quantize job */
  bytes?: Uint8Array;
}

/** Every subset of the chosen methods, smallest first: the paper's table rows. */
export function methodCombinations(methods: readonly Method[]): Method[][] {
  const chosen = ALL_METHODS.filter((m) => methods.includes(m));
  const rows: Method[][] = [];
  for (let mask = 0; mask < 1 << chosen.length; mask++) rows.push(chosen.filter((_, i) => mask & (1 << i)));
  return rows.sort((a, b) => a.length - b.length);
}

/**
 * Says which folder a data problem is about: both folders' messages name a path, but "No images found in
 * /data/x" does not tell the user whether /data/x was meant for calibration or for evaluation.
 */
function nameFolderRole(err: unknown, folders: { calibration?: string; evaluation?: string | null }): unknown {
  if (!(err instanceof DataError)) return err;
  const roles = Object.entries(folders)
    .filter((e): e is [string, string] => typeof e[1] === "string" && err.message.includes(path.resolve(e[1])))
    .sort((a, b) => path.resolve(b[1]).length - path.resolve(a[1]).length);
  if (roles.length === 0) return err;
  const role = roles[0][0];
  return new DataError(`${role === "calibration" ? "Calibration" : "Evaluation"} folder: ${err.message}`);
}

export async function runEngineJob(req: EngineRequest, ctx: JobContext): Promise<EngineOutput> {
  const folders =
    req.kind === "quantize" || req.kind === "ablation"
      ? { calibration: req.calibDir, evaluation: req.evalDir }
      : req.kind === "evaluate-fp32" || req.kind === "recommend-preprocess"
        ? { evaluation: req.evalDir }
        : {};
  try {
    return await runJob(req, ctx);
  } catch (err) {
    throw nameFolderRole(err, folders);
  }
}

async function runJob(req: EngineRequest, ctx: JobContext): Promise<EngineOutput> {
  switch (req.kind) {
    case "inspect":
      return { result: { kind: "inspect", summary: await inspectModel(req.model) } };
    case "preview": {
      const prepared = prepareModel(await loadModel(req.model));
      const set = await scanImages(req.dir);
      const samples = await previewImages(set, req.count, { ...requireImageInput(prepared), preprocess: req.preprocess });
      if (samples.length === 0) {
        const why = set.skipped.slice(0, 3).map((s) => `${s.file}: ${s.reason}`).join("; ");
        throw new DataError(`None of the images in ${set.root} could be read (${why}). Choose a folder of JPEG, PNG, WebP, BMP, TIFF or GIF images.`);
      }
      const labels = await describeLabels(set);
      return { result: { kind: "preview", preview: { dir: set.root, images: set.files.length, classes: set.classes, labels, skipped: set.skipped, samples } } };
    }
    case "evaluate-fp32": {
      const prepared = prepareModel(await loadModel(req.model));
      const set = await scanImages(req.evalDir);
      const geometry = requireImageInput(prepared);
      const r = await evaluate({
        fp32: encodeModel(prepared.model),
        quantized: null,
        geometry,
        output: prepared.output,
        images: set.files.length,
        batches: () => imageBatches(set, geometry, req.preprocess, ctx.signal),
        signal: ctx.signal,
        onProgress: ctx.onProgress,
      });
      return { result: { kind: "evaluate-fp32", accuracy: r.fp32 } };
    }
    case "recommend-preprocess":
      return { result: { kind: "recommend-preprocess", ...(await recommendPreprocess(req, ctx)) } };
    case "quantize": {
      checkQuantConfig(req.config);
      const out = await quantize({
        model: req.model,
        calib: { dir: req.calibDir, limit: req.calibLimit, seed: req.calibSeed },
        eval: req.evalDir ? { dir: req.evalDir } : null,
        preprocess: req.preprocess,
        config: req.config,
        signal: ctx.signal,
        onProgress: ctx.onProgress,
      });
      return { result: { kind: "quantize", report: out.report, histograms: out.histograms }, bytes: out.bytes };
    }
    case "ablation": {
      checkQuantConfig(req.config);
      const c = await calibrate({
        model: req.model,
        calib: { dir: req.calibDir, limit: req.calibLimit },
        preprocess: req.preprocess,
        config: req.config,
        signal: ctx.signal,
        onProgress: ctx.onProgress,
      });
      const evalSet = await scanImages(req.evalDir);
      const combos = methodCombinations(req.config.methods);
      const rows: AblationRow[] = [];
      let fp32 = undefined;
      const progress = new PassProgress("ablation", combos.length, evalSet.files.length, ctx.onProgress);
      for (const [k, methods] of combos.entries()) {
        const message = `${k + 1} of ${combos.length}: ${methodsName(methods)}`;
        progress.update(k, 0, message);
        const { bytes } = quantizeCalibrated(c, { ...req.config, methods }, {});
        const onProgress = (p: Progress) => progress.update(k, p.done, message);
        const r = await evaluateQuantized(c, bytes, evalSet, { preprocess: req.preprocess, layerErrors: false, signal: ctx.signal, onProgress }, fp32);
        fp32 = r.predictions.fp32;
        rows.push({ methods, top1: r.quantized!.top1, top5: r.quantized!.top5, agreement: r.agreement!.agreement, bytes: bytes.length });
      }
      return { result: { kind: "ablation", rows, wBits: req.config.wBits, aBits: req.config.aBits } };
    }
  }
}
