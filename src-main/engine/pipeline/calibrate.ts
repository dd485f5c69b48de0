// The calibration stage: run the FP32 model with every quantized layer's output exposed, and reduce each
// output to static statistics as the batches stream by. Memory is O(channels), not O(images).
import { StaticStats } from "../quant/stats.ts";
import { ChannelHistograms } from "./histogram.ts";
import { StageProgress, throwIfAborted, type ProgressListener } from "./progress.ts";
import { openSession, runBatch, tensorData, type InputGeometry } from "./runtime.ts";
import type { TensorStatistics } from "./statistics.ts";

export interface CalibrationBatch {
  data: Float32Array;
  count: number;
}

export interface CalibrationInput {
  /** the prepared model with `taps` added as graph outputs */
  model: Uint8Array;
  geometry: InputGeometry;
  taps: string[];
  images: number;
  batches: AsyncIterable<CalibrationBatch>;
  /** per-channel histograms over every image, for the percentile and MSE calibrators */
  histograms: boolean;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
}

interface Reducer {
  stats: StaticStats;
  sampleShape: number[];
  perChannel: boolean;
  histograms: ChannelHistograms | null;
}

/** [N, C, H, W] with spatial extent is reduced per channel; anything else per tensor (ALGORITHMS.md §2.6). */
function layoutOf(dims: readonly number[]): { channels: number; inner: number; perChannel: boolean } {
  const perSample = dims.slice(1).reduce((a, b) => a * b, 1);
  if (dims.length === 4 && dims[2] * dims[3] > 1) return { channels: dims[1], inner: dims[2] * dims[3], perChannel: true };
  return { channels: 1, inner: perSample, perChannel: false };
}

export async function collectStatistics(input: CalibrationInput): Promise<Map<string, TensorStatistics>> {
  const session = await openSession(input.model);
  const reducers = new Map<string, Reducer>();
  const progress = new StageProgress("statistics", input.images, input.onProgress);
  let done = 0;
  try {
    const iterator = input.batches[Symbol.asyncIterator]();
    let next = await iterator.next();
    // run batch k+1 on onnxruntime's threads while this thread reduces batch k
    let pending = next.done ? null : runBatch(session, input.geometry, next.value.data, next.value.count, input.taps);
    while (pending && !next.done) {
      const count = next.value.count;
      const outputs = await pending;
      throwIfAborted(input.signal);
      next = await iterator.next();
      pending = next.done ? null : runBatch(session, input.geometry, next.value.data, next.value.count, input.taps);
      for (const tap of input.taps) {
        const t = outputs[tap];
        const dims = t.dims as number[];
        const { channels, inner, perChannel } = layoutOf(dims);
        let r = reducers.get(tap);
        if (!r) {
          r = {
            stats: new StaticStats(channels),
            sampleShape: dims.slice(1),
            perChannel,
            histograms: input.histograms ? new ChannelHistograms(channels) : null,
          };
          reducers.set(tap, r);
        }
        const data = tensorData(t);
        r.stats.addPerSample(data, count, channels, inner);
        r.histograms?.add(data, count, channels, inner);
        t.dispose();
      }
      done += count;
      progress.update(done);
    }
    if (pending) await pending.catch(() => undefined);
  } finally {
    await session.release();
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
      histogram: r.histograms?.summary() ?? null,
    });
  }
  return result;
}
