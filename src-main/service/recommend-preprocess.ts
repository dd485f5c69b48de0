// The FP32 check that catches a wrong preprocessing: every preset with both resize policies, measured on
// the same labelled sample, so the user sees which setting the model was trained with instead of trusting
// a default (a wrong preset costs points silently: the model still answers, only worse).
import type { PreprocessTrial } from "../../shared/engine-api.ts";
import { RECOMMEND_SAMPLE } from "../../shared/defaults.ts";
import { preprocessCandidates, preprocessName } from "../../shared/describe.ts";
import type { PreprocessConfig } from "../../shared/types.ts";
import { DataError } from "../engine/data/errors.ts";
import { pickSubset } from "../engine/data/scan.ts";
import { encodeModel, loadModel } from "../engine/onnx/model-io.ts";
import { prepareModel, requireImageInput } from "../engine/onnx/prepare.ts";
import { chooseBatching, relaxBatch } from "../engine/pipeline/batching.ts";
import { evaluate } from "../engine/pipeline/evaluate.ts";
import { classOutputOf, firstSamples, openFeeder, scanSource } from "../engine/pipeline/quantize.ts";
import { PassProgress } from "./pass-progress.ts";
import type { JobContext } from "./jobs.ts";

export async function recommendPreprocess(
  req: { model: string; evalDir: string; evalLabels?: string; preprocess: PreprocessConfig; sample?: number },
  ctx: JobContext,
): Promise<{ trials: PreprocessTrial[]; images: number }> {
  const prepared = prepareModel(await loadModel(req.model));
  const set = await scanSource({ dir: req.evalDir, labels: req.evalLabels }, "evaluation");
  if (set.kind === "tensors") throw new DataError(`The evaluation folder ${set.root} holds NumPy arrays, which are fed as they are: there is no image preprocessing to choose.`);
  const output = classOutputOf(prepared);
  if (output === null) throw new DataError(`"${req.model}" has no class output, so preprocessing settings cannot be compared by top-1 accuracy.`);
  const geometry = requireImageInput(prepared, req.preprocess.inputSize);
  const labelled = set.files.filter((f) => f.label !== null);
  if (labelled.length === 0) {
    throw new DataError(`None of the images in the evaluation folder ${set.root} has a label, so settings cannot be compared by accuracy. Add one sub-folder per class or a labels.txt.`);
  }
  const sample = { ...set, files: pickSubset(labelled, req.sample ?? RECOMMEND_SAMPLE, 0), skipped: [] };
  const candidates = preprocessCandidates(geometry.height, geometry.width, req.preprocess);
  // one batching for every setting: whether a batch-1 graph runs batched does not depend on the pixel values
  const batching = await chooseBatching(prepared.model, prepared.inputs, await firstSamples(await openFeeder(prepared, sample, req.preprocess), 2, ctx.signal));
  const fp32 = encodeModel(batching.relaxed ? relaxBatch(prepared.model) : prepared.model);
  const progress = new PassProgress("preprocess", candidates.length, sample.files.length, ctx.onProgress);
  const trials: PreprocessTrial[] = [];
  for (const [k, preprocess] of candidates.entries()) {
    const message = `${k + 1} of ${candidates.length}: ${preprocessName(preprocess)}`;
    progress.update(k, 0, message);
    const feeder = await openFeeder(prepared, sample, preprocess);
    const r = await evaluate({
      fp32,
      quantized: null,
      output,
      images: feeder.samples,
      batches: () => feeder.batches(batching.batchSize, ctx.signal),
      signal: ctx.signal,
      onProgress: (p) => progress.update(k, p.done, message),
    });
    trials.push({ preprocess, accuracy: r.fp32 });
  }
  return { trials, images: sample.files.length };
}
