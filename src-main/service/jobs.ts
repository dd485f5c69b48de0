// What a worker thread runs: one engine job, start to finish, with progress and cancellation.
import path from "node:path";
import type { AblationRow, DataPreview, JobRequest, JobResult } from "../../shared/engine-api.ts";
import { methodCombinations } from "../../shared/ablation.ts";
import { methodsName } from "../../shared/describe.ts";
import type { ModelSummary, Progress, QuantConfig } from "../../shared/types.ts";
import { DataError } from "../engine/data/errors.ts";
import { describeLabels, previewImages, suggestInputSize } from "../engine/data/preview.ts";
import { scanImages } from "../engine/data/scan.ts";
import { planTensorSet } from "../engine/data/tensors.ts";
import { inspectModel } from "../engine/onnx/inspect.ts";
import { inputStride, prepareModel, requireImageInput, requireRunnable } from "../engine/onnx/prepare.ts";
import { checkQuantConfig } from "../engine/pipeline/config-check.ts";
import { heldOutSplit } from "../engine/pipeline/data-notes.ts";
import { calibrate, evaluateModel, evaluateQuantized, quantize, quantizeCalibrated, scanSource, withHeldOut, type Calibrated } from "../engine/pipeline/quantize.ts";
import { loadModel } from "../engine/onnx/model-io.ts";
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

/**
 * Says which folder a data problem is about: the scan names the role, but other messages (the loader's "None of
 * the 40 images in /data/x could be decoded") name only a path, which does not tell the user whether /data/x was
 * meant for calibration or for evaluation.
 */
function nameFolderRole(err: unknown, folders: { calibration?: string; evaluation?: string | null }): unknown {
  if (!(err instanceof DataError) || /\b(calibration|evaluation) folder\b/i.test(err.message)) return err;
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
      const set = await scanImages(req.dir, { arrays: true });
      const stride = inputStride(prepared);
      const about = {
        dir: set.root,
        kind: set.kind,
        images: set.files.length,
        classes: set.classes,
        labels: await describeLabels(set),
        skipped: set.skipped,
        dynamicInputSize: prepared.input.dynamicSize,
        inputStride: stride,
      };
      if (set.kind === "tensors") {
        requireRunnable(prepared);
        const plan = await planTensorSet(set, prepared.inputs);
        return { result: { kind: "preview", preview: { ...about, sampleCount: plan.samples, suggestedInputSize: null, samples: [] } } };
      }
      const suggested = prepared.input.dynamicSize ? await suggestInputSize(set, stride) : null;
      const inputSize = req.preprocess.inputSize ?? suggested ?? undefined;
      const samples = await previewImages(set, req.count, { ...requireImageInput(prepared, inputSize), preprocess: req.preprocess });
      if (samples.length === 0) {
        const why = set.skipped.slice(0, 3).map((s) => `${s.file}: ${s.reason}`).join("; ");
        throw new DataError(`None of the images in ${set.root} could be read (${why}). Choose a folder of JPEG, PNG, WebP, BMP, TIFF or GIF images.`);
      }
      return { result: { kind: "preview", preview: { ...about, sampleCount: set.files.length, suggestedInputSize: suggested, samples } } };
    }
    case "evaluate-fp32": {
      const r = await evaluateModel({ model: req.model, data: { dir: req.evalDir, labels: req.evalLabels }, preprocess: req.preprocess, signal: ctx.signal, onProgress: ctx.onProgress });
      return { result: { kind: "evaluate-fp32", accuracy: r.fp32 } };
    }
    case "recommend-preprocess":
      return { result: { kind: "recommend-preprocess", ...(await recommendPreprocess(req, ctx)) } };
    case "quantize": {
      checkQuantConfig(req.config);
      const out = await quantize({
        model: req.model,
        calib: { dir: req.calibDir, limit: req.calibLimit, seed: req.calibSeed },
        eval: req.evalDir ? { dir: req.evalDir, labels: req.evalLabels } : null,
        preprocess: req.preprocess,
        config: req.config,
        detection: req.detection,
        signal: ctx.signal,
        onProgress: ctx.onProgress,
      });
      return { result: { kind: "quantize", report: out.report, histograms: out.histograms }, bytes: out.bytes };
    }
    case "ablation": {
      checkQuantConfig(req.config);
      const evalSource = { dir: req.evalDir, labels: req.evalLabels };
      // calibration does not depend on the switches, except equalize, which changes the model it measures: one
      // calibration each way (the same held-out split both times), both before the first combination
      const combos = methodCombinations(req.config.methods);
      const calibrateWith = async (equalize: boolean): Promise<Calibrated> => {
        const config: QuantConfig = { ...req.config, methods: req.config.methods.filter((m) => m !== "equalize" || equalize) };
        const calib = { dir: req.calibDir, limit: req.calibLimit };
        return calibrate(await withHeldOut({ model: req.model, calib, preprocess: req.preprocess, config, signal: ctx.signal, onProgress: ctx.onProgress }, evalSource));
      };
      const plain = await calibrateWith(false);
      const equalized = combos.some((m) => m.includes("equalize")) ? await calibrateWith(true) : null;
      const evalSet = (await heldOutSplit(plain.calibSet, await scanSource(evalSource, "evaluation"))).set;
      if (evalSet.files.length === 0) throw new DataError(`The evaluation folder ${evalSet.root} has no files left that calibration did not use, so the ablation cannot measure anything. Choose a separate evaluation folder, or limit the calibration images.`);
      const rows: AblationRow[] = [];
      let fp32 = undefined;
      const progress = new PassProgress("ablation", combos.length, evalSet.files.length, ctx.onProgress);
      for (const [k, methods] of combos.entries()) {
        const message = `${k + 1} of ${combos.length}: ${methodsName(methods)}`;
        progress.update(k, 0, message);
        const c = methods.includes("equalize") ? equalized! : plain;
        // a reconstruction takes a while: its layers show in the combination's line, and cancelling stops it
        const onReconstruct = (p: Progress) => {
          if (p.stage === "reconstruct") progress.update(k, 0, `${message} (choosing the rounding, layer ${Math.min(p.done + 1, p.total)} of ${p.total})`);
        };
        const { bytes } = await quantizeCalibrated(c, { ...req.config, methods }, {}, onReconstruct, ctx.signal);
        const onProgress = (p: Progress) => progress.update(k, p.done, message);
        const r = await evaluateQuantized(c, bytes, evalSet, { preprocess: req.preprocess, layerErrors: false, signal: ctx.signal, onProgress }, fp32);
        fp32 = r.predictions.fp32;
        rows.push({ methods, top1: r.quantized!.top1, top5: r.quantized!.top5, agreement: r.agreement!.agreement, bytes: bytes.length });
      }
      return { result: { kind: "ablation", rows, wBits: req.config.wBits, aBits: req.config.aBits } };
    }
  }
}
