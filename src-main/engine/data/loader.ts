// Streams an ImageSet as normalised batches for calibration and evaluation.
//
// Decoding runs on sharp's (libuv) worker threads with at most `concurrency` images in flight, in file
// order. The next batch is assembled while the consumer works on the current one, so decode overlaps
// inference; memory stays at two batches plus `concurrency` images whatever the size of the set.
//
// Undecodable files are skipped, never fatal: each is appended to `set.skipped` (once per file, so
// iterating the same set twice does not double them), which is what the report lists. Only when no
// file at all decodes does the generator throw a DataError.
import type { PreprocessConfig } from "../../../shared/types.ts";
import { DataError } from "./errors.ts";
import { checkGeometry, loadPixels, normalisationTables, resolvePreprocess, writeTensor, type Pixels, type TensorSpec } from "./preprocess.ts";
import type { ImageSet } from "./scan.ts";

export interface BatchOptions extends TensorSpec {
  batchSize: number;
  preprocess: PreprocessConfig;
  /** images decoded at once; default DEFAULT_CONCURRENCY */
  concurrency?: number;
  signal?: AbortSignal;
}

export interface Batch {
  /** count x C x H x W (or x H x W x C) values; owned by the consumer, never reused by the loader */
  data: Float32Array;
  /** images in this batch: batchSize, fewer only in the last batch */
  count: number;
  /** class index per image, -1 when unlabelled */
  labels: Int32Array;
  /** relative paths, as in ImageSet.files */
  files: string[];
  /** files of the set consumed so far, decoded or skipped: the progress numerator against set.files.length */
  processed: number;
}

/**
 * Images in flight. More than the cores: each decode is a round trip to sharp's thread pool, and during
 * calibration onnxruntime holds the cores, so a deep queue is what keeps decoding ahead of inference
 * (measured on 2 cores with ResNet-56: 2 in flight left inference waiting 2.5 s per 2,000 images, 16 left 1.5 s).
 */
const DEFAULT_CONCURRENCY = 16;

type Decoded = { ok: true; pixels: Pixels } | { ok: false; reason: string };

export async function* batches(set: ImageSet, opts: BatchOptions): AsyncGenerator<Batch> {
  const { batchSize, signal } = opts;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new DataError(`Batch size must be a whole number of at least 1, not ${batchSize}.`);
  checkGeometry(opts.preprocess, opts);
  const norm = resolvePreprocess(opts.preprocess);
  const tables = normalisationTables(norm, opts.channels);
  const perImage = opts.channels * opts.height * opts.width;
  const concurrency = Math.max(1, Math.floor(opts.concurrency ?? DEFAULT_CONCURRENCY));

  const files = set.files;
  const inFlight: Promise<Decoded>[] = [];
  let launched = 0;
  let processed = 0;
  let decoded = 0;
  let stopped = false;
  const failures: { file: string; reason: string }[] = [];
  const alreadySkipped = new Set(set.skipped.map((s) => s.file));

  const pump = () => {
    while (!stopped && !signal?.aborted && inFlight.length < concurrency && launched < files.length) {
      const f = files[launched++];
      inFlight.push(
        loadPixels(f.path, opts.preprocess, opts).then(
          (pixels): Decoded => ({ ok: true, pixels }),
          (e): Decoded => ({ ok: false, reason: e instanceof Error ? e.message : String(e) }),
        ),
      );
    }
  };

  const assemble = async (): Promise<Batch | null> => {
    const data = new Float32Array(batchSize * perImage);
    const labels = new Int32Array(batchSize);
    const names: string[] = [];
    while (names.length < batchSize) {
      pump();
      const next = inFlight.shift();
      if (!next) break;
      const result = await abortable(next, signal);
      const file = files[processed++];
      pump();
      if (!result.ok) {
        if (failures.length < 3) failures.push({ file: file.rel, reason: result.reason }); // examples for the error
        // another pass over the same set (a first-sample probe) may have listed it since this one started
        if (!alreadySkipped.has(file.rel) && !set.skipped.some((k) => k.file === file.rel)) {
          alreadySkipped.add(file.rel);
          set.skipped.push({ file: file.rel, reason: result.reason });
        }
        continue;
      }
      writeTensor(result.pixels, tables, norm.bgr, opts.layout, data, names.length);
      labels[names.length] = file.label ?? -1;
      names.push(file.rel);
    }
    const count = names.length;
    decoded += count;
    if (count === 0) return null;
    return { data: data.subarray(0, count * perImage), count, labels: labels.subarray(0, count), files: names, processed };
  };

  try {
    let pending = assemble();
    for (;;) {
      const batch = await pending;
      signal?.throwIfAborted();
      if (batch === null) break;
      pending = assemble();
      // If the consumer stops early, this prefetch may reject with nobody awaiting it.
      pending.catch(() => undefined);
      yield batch;
    }
  } finally {
    stopped = true;
  }

  if (decoded === 0) {
    const examples = failures.map((f) => `${f.file}: ${f.reason}`).join("; ");
    throw new DataError(
      `None of the ${files.length} images in ${set.root} could be decoded (${examples}). Check that they are JPEG, PNG, WebP, BMP, TIFF or GIF images and not damaged.`,
    );
  }
}

/** Rejects as soon as the signal aborts, without waiting for the decode in progress. */
function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}
