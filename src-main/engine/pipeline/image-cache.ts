// Calibration batches read more than once (the reconstruct stage makes a pass per layer): decoded once and
// kept while they fit a memory budget, so later passes cost inference only; beyond the budget each pass
// decodes again. The batches are the preprocessed model inputs, never activations.
import type { PreprocessConfig } from "../../../shared/types.ts";
import type { ImageSet } from "../data/scan.ts";
import { imageBatches } from "./quantize.ts";
import type { InputGeometry } from "./runtime.ts";

/** 300 ImageNet images at 224 x 224 take 181 MB. */
export const IMAGE_CACHE_BYTES = 512 * 2 ** 20;

export interface InputBatch {
  data: Float32Array;
  count: number;
}

export function cachedBatches(set: ImageSet, geometry: InputGeometry, preprocess: PreprocessConfig, signal?: AbortSignal, budget = IMAGE_CACHE_BYTES): () => AsyncIterable<InputBatch> {
  const perImage = geometry.channels * geometry.height * geometry.width * 4;
  const fits = perImage * set.files.length <= budget;
  let cache: InputBatch[] | null = null;
  return () => ({
    async *[Symbol.asyncIterator]() {
      if (cache) {
        yield* cache;
        return;
      }
      const kept: InputBatch[] = [];
      for await (const b of imageBatches(set, geometry, preprocess, signal)) {
        const batch = { data: b.data, count: b.count };
        if (fits) kept.push(batch);
        yield batch;
      }
      if (fits) cache = kept;
    },
  });
}
