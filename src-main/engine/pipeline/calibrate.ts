// The calibration stage: run the FP32 model over the calibration images and reduce each quantized layer's
// output to static statistics (ALGORITHMS.md §6: per-image statistics, averaged over images, and the
// extremes over all images). The reductions
// run inside onnxruntime (stats-graph.ts); memory is O(channels), not O(images).
import type { ModelProto } from "onnx-buf";
import { StaticStats, type StatsArrays } from "../quant/stats.ts";
import { ChannelHistograms } from "./histogram.ts";
import { StageProgress, throwIfAborted, type ProgressListener } from "./progress.ts";
import { closeSession, openSession, runFeeds, tensorData, type Feeds, type ort } from "./runtime.ts";
import { buildStatsModel, type Moment, type StatsTap } from "./stats-graph.ts";
import type { TensorStatistics } from "./statistics.ts";
import { encodeModel } from "../onnx/model-io.ts";

export interface CalibrationBatch {
  feeds: Feeds;
  count: number;
}

/** Which images also feed per-channel histograms: none, the first few (for charts), or all (for calibrators). */
export type HistogramScope = "none" | "sample" | "all";
// one batch: enough values per channel for a chart and a clipped fraction, at a small cost
const SAMPLE_IMAGES = 64;

export interface CalibrationInput {
  /** the prepared FP32 model */
  model: ModelProto;
  /** layer outputs to reduce; per-channel ones are conv outputs [N, C, ...spatial] */
  taps: StatsTap[];
  images: number;
  batches: AsyncIterable<CalibrationBatch>;
  histograms: HistogramScope;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
}

interface Reducer {
  stats: StaticStats;
  sampleShape: number[];
  perChannel: boolean;
  histograms: ChannelHistograms | null;
}

function moments(out: Record<string, ort.Tensor>, names: Record<Moment, string>, elements: number): StatsArrays {
  const f64 = (name: string) => Float64Array.from(tensorData(out[name]));
  const ss = f64(names.ss);
  return {
    min: f64(names.min),
    max: f64(names.max),
    mean: f64(names.mean),
    mad: f64(names.l1).map((v) => v / elements),
    // unbiased, as the reference's torch.std
    std: ss.map((v) => (elements > 1 ? Math.sqrt(v / (elements - 1)) : 0)),
  };
}

/**
 * Per-image statistics of the whole tensor from its per-channel ones (every channel has `spatial` elements):
 * exact for min, max, mean and std; exact for the mean absolute deviation only when spatial is 1, otherwise
 * it must come from the graph, and this returns NaN so nothing can use it by mistake.
 */
export function tensorFromChannels(ch: StatsArrays, n: number, channels: number, spatial: number): StatsArrays {
  const t = { min: new Float64Array(n), max: new Float64Array(n), mean: new Float64Array(n), mad: new Float64Array(n), std: new Float64Array(n) };
  const count = channels * spatial;
  for (let s = 0; s < n; s++) {
    const base = s * channels;
    let min = Infinity;
    let max = -Infinity;
    let mean = 0;
    for (let c = 0; c < channels; c++) {
      min = Math.min(min, ch.min[base + c]);
      max = Math.max(max, ch.max[base + c]);
      mean += ch.mean[base + c];
    }
    mean /= channels;
    let ss = 0;
    let absDev = 0;
    for (let c = 0; c < channels; c++) {
      const d = ch.mean[base + c] - mean;
      const within = spatial > 1 ? ch.std[base + c] ** 2 * (spatial - 1) : 0;
      ss += within + spatial * d * d;
      absDev += Math.abs(d);
    }
    t.min[s] = min;
    t.max[s] = max;
    t.mean[s] = mean;
    t.mad[s] = spatial === 1 ? absDev / channels : NaN;
    t.std[s] = count > 1 ? Math.sqrt(ss / (count - 1)) : 0;
  }
  return t;
}

export async function collectStatistics(input: CalibrationInput): Promise<Map<string, TensorStatistics>> {
  const { model, taps } = buildStatsModel(input.model, input.taps, input.histograms !== "none");
  const session = await openSession(encodeModel(model));
  const statOutputs = taps.flatMap((t) => [...Object.values(t.channel ?? {}), ...Object.values(t.tensor_ ?? {}), t.shape]);
  const rawOutputs = taps.map((t) => t.tensor);
  const reducers = new Map<string, Reducer>();
  const progress = new StageProgress("statistics", input.images, input.onProgress);
  let done = 0;
  const fetchesFor = (seen: number) =>
    input.histograms === "all" || (input.histograms === "sample" && seen < SAMPLE_IMAGES) ? [...statOutputs, ...rawOutputs] : statOutputs;
  try {
    const iterator = input.batches[Symbol.asyncIterator]();
    let next = await iterator.next();
    // onnxruntime runs batch k+1 on its own threads while this thread reduces batch k
    let pending = next.done ? null : runFeeds(session, next.value.feeds, fetchesFor(0));
    while (pending && !next.done) {
      const count = next.value.count;
      const out = await pending;
      throwIfAborted(input.signal);
      next = await iterator.next();
      pending = next.done ? null : runFeeds(session, next.value.feeds, fetchesFor(done + count));
      for (const tap of taps) {
        const dims = Array.from(out[tap.shape].data as BigInt64Array, Number);
        const spatial = dims.slice(2).reduce((a, b) => a * b, 1);
        const perChannel = tap.channel !== null && dims.length >= 3 && spatial > 1;
        const channels = perChannel ? dims[1] : 1;
        let r = reducers.get(tap.tensor);
        if (!r) {
          r = { stats: new StaticStats(channels), sampleShape: dims.slice(1), perChannel, histograms: input.histograms === "none" ? null : new ChannelHistograms(channels) };
          reducers.set(tap.tensor, r);
        }
        const perSample = dims.slice(1).reduce((a, b) => a * b, 1);
        const channelMoments = tap.channel ? moments(out, tap.channel, spatial) : null;
        const perTensor = tap.tensor_ ? moments(out, tap.tensor_, perSample) : tensorFromChannels(channelMoments!, count, dims[1], spatial);
        r.stats.addSampleStats(perChannel ? channelMoments! : perTensor, perTensor, count);
        const raw = out[tap.tensor];
        if (raw && r.histograms) r.histograms.add(tensorData(raw), count, channels, raw.size / count / channels);
      }
      for (const t of Object.values(out)) t.dispose();
      done += count;
      progress.update(done);
    }
    if (pending) await pending.catch(() => undefined);
  } finally {
    await closeSession(session);
  }
  const result = new Map<string, TensorStatistics>();
  for (const [tap, r] of reducers) {
    const s = r.stats.summary();
    result.set(tap, {
      tensor: tap,
      sampleShape: r.sampleShape,
      samples: s.units,
      perChannel: r.perChannel ? s.channel : null,
      perTensor: { min: s.tensor.min, max: s.tensor.max, mean: s.tensor.mean, mad: s.tensor.mad, std: s.tensor.std },
      globalMin: s.tensorMin,
      globalMax: s.tensorMax,
      channelGlobal: r.perChannel ? { min: s.channelMin, max: s.channelMax } : null,
      histogram: r.histograms?.summary() ?? null,
    });
  }
  return result;
}
