// Calibration batches read more than once (the reconstruct stage makes a pass per layer): fed once and kept
// while they fit a memory budget, so later passes cost inference only; beyond the budget each pass reads and
// decodes again. The batches are the model's inputs, never activations.
import type { FeedBatch, Feeder } from "../data/feeds.ts";
import type { ImageSet } from "../data/scan.ts";

/** 300 ImageNet images at 224 x 224 take 181 MB. */
export const FEED_CACHE_BYTES = 512 * 2 ** 20;

export type CachedBatch = Pick<FeedBatch, "feeds" | "count">;

function batchBytes(b: CachedBatch): number {
  return Object.values(b.feeds).reduce((a, t) => a + t.data.byteLength, 0);
}

/** A replayable source of `set`'s batches; the first pass decides from its own batches whether they fit. */
export function cachedFeeds(feeder: Feeder, set: ImageSet, batchSize: number, signal?: AbortSignal, budget = FEED_CACHE_BYTES): () => AsyncIterable<CachedBatch> {
  let cache: CachedBatch[] | null = null;
  return () => ({
    async *[Symbol.asyncIterator]() {
      if (cache) {
        yield* cache;
        return;
      }
      let kept: CachedBatch[] | null = [];
      let bytes = 0;
      for await (const b of feeder.batches(batchSize, signal, set)) {
        const batch = { feeds: b.feeds, count: b.count };
        if (kept) {
          bytes += batchBytes(batch);
          if (bytes <= budget) kept.push(batch);
          else kept = null;
        }
        yield batch;
      }
      if (kept) cache = kept;
    },
  });
}
