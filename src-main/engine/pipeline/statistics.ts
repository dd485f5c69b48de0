// What calibration hands to the planner: per-sample statistics averaged over the calibration images
// (ALGORITHMS.md §6, the reference's static mode), per channel where the tensor has spatial extent, and
// the extremes over all of them (the true range).

import type { StatsArrays, TensorStats } from "../quant/stats.ts";

export interface HistogramSummary {
  bins: number;
  channels: number;
  /** channel c's bins cover [−limit[c], limit[c]] evenly */
  limit: Float64Array;
  /** counts[c * bins + k], one histogram per channel (a single one for per-tensor tensors) */
  counts: Float64Array;
}

export interface TensorStatistics {
  tensor: string;
  /** shape of one sample, without the batch dimension */
  sampleShape: number[];
  samples: number;
  /** set when the tensor is [N, C, H, W] with H·W > 1 */
  perChannel: StatsArrays | null;
  perTensor: TensorStats;
  /** extremes over every calibration image: the true range */
  globalMin: number;
  globalMax: number;
  /** per channel, extremes over every calibration image; set with perChannel */
  channelGlobal: { min: Float64Array; max: Float64Array } | null;
  histogram: HistogramSummary | null;
}

export function channelCount(s: TensorStatistics): number {
  return s.perChannel ? s.perChannel.mean.length : 1;
}
