// Work that does not change between runs of one session, done once: the decoded and preprocessed samples of a
// data set, FP32's outputs on the evaluation samples, and the calibration statistics. Every entry is keyed by
// everything its value depends on (the model file's path, size and modification time; the data folder, every
// file's name, label, size and modification time; the preprocessing and the input geometry; the batch size; the
// statistic-affecting parts of the configuration), so a change to any of them is a miss, never a stale hit.
// Samples and outputs are held up to a bound together (DEFAULT_MAX_BYTES; samples are dropped before outputs,
// least recently used first); a set larger than that is not kept and is decoded again each time, exactly as
// without the cache. The cache lives in the engine thread, which the service keeps for the session.
import { createHash } from "node:crypto";
import { stat } from "node:fs/promises";
import path from "node:path";
import type { PreprocessConfig } from "../../../shared/types.ts";
import type { FeedBatch, Feeder } from "../data/feeds.ts";
import type { ImageSet, Skipped } from "../data/scan.ts";
import type { ort } from "./runtime.ts";
import type { TensorStatistics } from "./statistics.ts";

/** Decoded samples and FP32 outputs kept at most: MobileNet's 1,300 images at 224x224 take 780 MiB. */
export const DEFAULT_MAX_BYTES = 1536 * 2 ** 20;
/** Statistics are O(channels) per layer (histograms O(channels x bins)): a few sets of them are plenty. */
const MAX_STATISTICS = 8;

export interface CacheCounters {
  /** samples that went through the loader (decoded and preprocessed, or read from arrays) */
  decodedSamples: number;
  feedHits: number;
  /** batches FP32 actually ran on during evaluation */
  fp32Batches: number;
  fp32Hits: number;
  statisticsHits: number;
  statisticsMisses: number;
}

interface Entry<T> {
  value: T;
  bytes: number;
}

type OutputBatches = ort.Tensor[];

let maxBytes = DEFAULT_MAX_BYTES;
let used = 0;
// Map order is recency order: a hit moves the entry to the end
const feeds = new Map<string, Entry<{ batches: FeedBatch[]; skipped: Skipped[] }>>();
const outputs = new Map<string, Entry<OutputBatches>>();
const statistics = new Map<string, { statistics: Map<string, TensorStatistics>; skipped: Skipped[] }>();
export const cacheCounters: CacheCounters = zeroCounters();

function zeroCounters(): CacheCounters {
  return { decodedSamples: 0, feedHits: 0, fp32Batches: 0, fp32Hits: 0, statisticsHits: 0, statisticsMisses: 0 };
}

/** Empties the cache and resets its counters; `bytes` sets a new bound, 0 keeps nothing at all (tests, benchmarks). */
export function resetSessionCache(bytes = DEFAULT_MAX_BYTES): void {
  feeds.clear();
  outputs.clear();
  statistics.clear();
  used = 0;
  maxBytes = bytes;
  Object.assign(cacheCounters, zeroCounters());
}

function touch<K, V>(map: Map<K, V>, key: K): V | undefined {
  const v = map.get(key);
  if (v !== undefined) {
    map.delete(key);
    map.set(key, v);
  }
  return v;
}

/** Keeps `entry` if it fits under the bound, evicting least recently used samples and outputs for it. */
function admit<T>(map: Map<string, Entry<T>>, key: string, entry: Entry<T>): void {
  if (entry.bytes > maxBytes) return;
  const old = map.get(key);
  if (old) {
    used -= old.bytes;
    map.delete(key);
  }
  while (used + entry.bytes > maxBytes) {
    const victim = oldest(feeds) ?? oldest(outputs);
    if (!victim) break;
    used -= victim.map.get(victim.key)!.bytes;
    victim.map.delete(victim.key);
  }
  map.set(key, entry);
  used += entry.bytes;
}

function oldest(map: Map<string, Entry<unknown>>): { map: Map<string, Entry<unknown>>; key: string } | null {
  const key = map.keys().next();
  return key.done ? null : { map, key: key.value };
}

/** The identity of a file: where it is, how big, when last written. */
export async function fileKey(file: string): Promise<string> {
  const s = await stat(file);
  return `${path.resolve(file)}:${s.size}:${s.mtimeMs}`;
}

export function digest(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

const setKeys = new WeakMap<ImageSet, Promise<string>>();

/** The identity of a data set: its folder, and every file's name, label, size and modification time. */
export function setKey(set: ImageSet): Promise<string> {
  let key = setKeys.get(set);
  if (!key) {
    key = Promise.all(set.files.map(async (f) => `${f.rel}\0${f.label}\0${(await fileKey(f.path)).slice(f.path.length)}`)).then((files) =>
      JSON.stringify([set.root, set.kind ?? "images", set.classes, files]),
    );
    setKeys.set(set, key);
  }
  return key;
}

export interface CachedFeeder extends Feeder {
  /** what the samples depend on; part of every key derived from them */
  key: string;
}

function feedBytes(b: FeedBatch): number {
  return Object.values(b.feeds).reduce((a, t) => a + t.data.byteLength, 0);
}

function restoreSkipped(set: ImageSet, skipped: Skipped[]): void {
  for (const s of skipped) if (!set.skipped.some((k) => k.file === s.file)) set.skipped.push(s);
}

/**
 * `feeder` with its samples kept after the first complete pass: later passes over the same set and batch size
 * yield the kept batches (and list the same skipped files) instead of decoding again. `depends` names what else the
 * samples depend on (the preprocessing, the input geometry; for arrays, the model's inputs).
 */
export async function cachedFeeder(feeder: Feeder, set: ImageSet, depends: { preprocess: PreprocessConfig; inputs: unknown }): Promise<CachedFeeder> {
  const key = JSON.stringify([await setKey(set), feeder.kind, feeder.geometry, depends.preprocess, depends.inputs]);
  return {
    ...feeder,
    key,
    async *batches(batchSize, signal, subset = set) {
      const k = JSON.stringify([key, batchSize, subset === set ? null : subset.files.map((f) => f.rel)]);
      const hit = touch(feeds, k);
      if (hit) {
        cacheCounters.feedHits++;
        restoreSkipped(subset, hit.value.skipped);
        for (const b of hit.value.batches) {
          signal?.throwIfAborted();
          yield b;
        }
        return;
      }
      let kept: FeedBatch[] | null = [];
      let bytes = 0;
      for await (const b of feeder.batches(batchSize, signal, subset)) {
        cacheCounters.decodedSamples += b.count;
        if (kept) {
          bytes += feedBytes(b);
          if (bytes <= maxBytes) kept.push(b);
          else kept = null;
        }
        yield b;
      }
      // only a complete pass is kept: a consumer that stopped early never reaches this line
      if (kept) {
        const files = new Set(subset.files.map((f) => f.rel));
        admit(feeds, k, { value: { batches: kept, skipped: subset.skipped.filter((s) => files.has(s.file)) }, bytes });
      }
    },
  };
}

/** FP32's outputs per batch of one pass over a cached feeder, by output name, for evaluate(). */
export interface OutputCache {
  /** every named output for every batch, or null unless all were kept */
  get(names: readonly string[]): Record<string, ort.Tensor>[] | null;
  /** collects one pass's outputs, up to the bound; commit() keeps them */
  collector(names: readonly string[]): { add(out: Record<string, ort.Tensor>): void; commit(): void };
}

/** `model` says which FP32 model runs (its file key, and which variant of it Nibble feeds). */
export function outputCache(model: string, feeder: CachedFeeder, batchSize: number): OutputCache {
  const keyOf = (name: string) => JSON.stringify([model, feeder.key, batchSize, name]);
  return {
    get(names) {
      const per = names.map((n) => touch(outputs, keyOf(n))?.value);
      if (per.some((p) => p === undefined)) return null;
      cacheCounters.fp32Hits++;
      return per[0]!.map((_, i) => Object.fromEntries(names.map((n, j) => [n, per[j]![i]])));
    },
    collector(names) {
      let kept: Record<string, ort.Tensor>[] | null = [];
      let bytes = 0;
      return {
        add(out) {
          cacheCounters.fp32Batches++;
          if (!kept) return;
          bytes += names.reduce((a, n) => a + ((out[n].data as { byteLength?: number }).byteLength ?? Infinity), 0);
          if (bytes <= maxBytes) kept.push(out);
          else kept = null;
        },
        commit() {
          if (!kept) return;
          for (const n of names) {
            const batches = kept.map((o) => o[n]);
            admit(outputs, keyOf(n), { value: batches, bytes: batches.reduce((a, t) => a + (t.data as ArrayBufferView).byteLength, 0) });
          }
        },
      };
    },
  };
}

/** Calibration statistics for `key`, computed by `compute` only the first time; the set lists the same skipped files. */
export async function cachedStatistics(
  key: string,
  set: ImageSet,
  compute: () => Promise<Map<string, TensorStatistics>>,
): Promise<Map<string, TensorStatistics>> {
  const hit = maxBytes > 0 ? touch(statistics, key) : undefined;
  if (hit) {
    cacheCounters.statisticsHits++;
    restoreSkipped(set, hit.skipped);
    return hit.statistics;
  }
  cacheCounters.statisticsMisses++;
  const value = await compute();
  if (maxBytes === 0) return value;
  statistics.set(key, { statistics: value, skipped: [...set.skipped] });
  while (statistics.size > MAX_STATISTICS) statistics.delete(statistics.keys().next().value!);
  return value;
}
