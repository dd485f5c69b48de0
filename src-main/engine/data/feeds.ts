// What reaches onnxruntime: batches of named input tensors, from an image folder (one image input) or a folder
// of NumPy arrays (any inputs). Calibration and evaluation only see FeedBatches.
import type { PreprocessConfig } from "../../../shared/types.ts";
import type { ModelInput } from "../onnx/prepare.ts";
import { imageFeeds, type Feeds, type InputGeometry } from "../pipeline/runtime.ts";
import { batches } from "./loader.ts";
import type { ImageSet } from "./scan.ts";
import { planTensorSet, tensorBatches, type TensorPlan } from "./tensors.ts";

export interface FeedBatch {
  feeds: Feeds;
  /** samples in this batch */
  count: number;
  /** class index per sample, -1 when unlabelled */
  labels: Int32Array;
  /** the file each sample came from */
  files: string[];
  /** files of the set consumed so far, decoded or skipped */
  processed: number;
}

/** How one data set feeds one model. */
export interface Feeder {
  kind: "images" | "tensors";
  /** samples the set holds (images: files listed, some may still fail to decode) */
  samples: number;
  /** the image input's geometry, null for arrays */
  geometry: InputGeometry | null;
  batches(batchSize: number, signal?: AbortSignal, set?: ImageSet): AsyncGenerator<FeedBatch>;
}

export function imageFeeder(set: ImageSet, geometry: InputGeometry, preprocess: PreprocessConfig): Feeder {
  return {
    kind: "images",
    samples: set.files.length,
    geometry,
    async *batches(batchSize, signal, subset = set) {
      const { layout, channels, height, width } = geometry;
      for await (const b of batches(subset, { batchSize, layout, channels, height, width, preprocess, signal })) {
        yield { feeds: imageFeeds(geometry, b.data, b.count), count: b.count, labels: b.labels, files: b.files, processed: b.processed };
      }
    },
  };
}

export async function tensorFeeder(set: ImageSet, inputs: ModelInput[]): Promise<Feeder> {
  const plan: TensorPlan = await planTensorSet(set, inputs);
  return {
    kind: "tensors",
    samples: plan.samples,
    geometry: null,
    batches: (batchSize, signal, subset = set) =>
      tensorBatches(subset, subset === set ? plan : { ...plan, files: plan.files.filter((f) => subset.files.includes(f.file)) }, batchSize, signal),
  };
}
